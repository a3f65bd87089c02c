// npm run bench:kernel — the FUSE layer alone, no remote: a 1 GiB synthetic file read with
// dd bs=1M through direct I/O and through the page cache, and stat() calls per second with
// zero entry/attr timeouts (each stat is LOOKUP + GETATTR round trips), for both reader
// designs. Prints a markdown table. Medians of 3 runs. Targets on a 2-core machine:
// >= 3 GB/s direct-I/O reads and >= 10k stat/s.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { FuseServer } from '../src/kernel/fuse-server.js';
import { createLogger } from '../src/observability/logger.js';
import { SyntheticFs } from '../test/fakes/synthetic-fs.js';
import type { ReaderKind } from '../src/kernel/device.js';

const GiB = 1024 ** 3;
const logger = createLogger({ level: 'warn' });

function exec(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

async function dd(path: string, direct: boolean): Promise<number> {
  const t0 = performance.now();
  const r = await exec('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M', ...(direct ? ['iflag=direct'] : []), 'status=none']);
  if (r.code !== 0) throw new Error(`dd failed: ${r.err}`);
  return GiB / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function withServer<T>(reader: ReaderKind, ttlMs: number, fn: (mnt: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fusestream-bench-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const server = await FuseServer.start({ mountpoint: mnt, ops: new SyntheticFs(GiB, ttlMs), logger, reader, deadlineMs: 30_000 });
  try {
    return await fn(mnt);
  } finally {
    await server.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The stat client: C when a compiler is present (as in RESEARCH.md; a Node client adds its
// own per-call overhead), else the Node loop.
const statLoopJs = new URL('./stat-loop.js', import.meta.url).pathname;
const statLoopC = new URL('../../bench/stat-loop.c', import.meta.url).pathname;
const statLoopBin = join(tmpdir(), `fusestream-stat-loop-${process.pid}`);
const cc = await exec('cc', ['-O2', '-o', statLoopBin, statLoopC]).catch(() => ({ code: 1, out: '', err: 'no cc' }));
const statClient: [string, string[]] = cc.code === 0 ? [statLoopBin, []] : [process.execPath, [statLoopJs]];
const statClientName = cc.code === 0 ? 'C client' : 'Node client';
const rows: string[] = [];
for (const reader of ['uvpipe', 'worker'] as const) {
  const direct: number[] = [];
  const cached: number[] = [];
  const stats: number[] = [];
  await withServer(reader, 1000, async (mnt) => {
    for (let i = 0; i < 3; i++) direct.push(await dd(join(mnt, 'big.bin'), true));
    for (let i = 0; i < 3; i++) cached.push(await dd(join(mnt, 'big.bin'), false));
  });
  await withServer(reader, 0, async (mnt) => {
    for (let i = 0; i < 3; i++) {
      const r = await exec(statClient[0], [...statClient[1], join(mnt, 'small.txt'), '3']);
      stats.push(Number(r.out.trim()));
    }
  });
  const fmt = (xs: number[]): string => `${(median(xs) / 1e9).toFixed(2)} GB/s (${xs.map((x) => (x / 1e9).toFixed(2)).join(' / ')})`;
  rows.push(`| ${reader} | ${fmt(direct)} | ${fmt(cached)} | ${Math.round(median(stats)).toLocaleString('en')} /s (${stats.map((s) => Math.round(s / 1000) + 'k').join(' / ')}) |`);
}
const cpu = cpus()[0]?.model ?? 'unknown cpu';
process.stdout.write(`
## bench:kernel — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / GiB)} GiB, Node ${process.version}

| reader | dd bs=1M, direct I/O (1 GiB) | dd bs=1M, page cache | stat() with zero TTLs (${statClientName}) |
|---|---|---|---|
${rows.join('\n')}

Targets: direct I/O >= 3 GB/s, stat >= 10k/s. Median of 3 runs (each run in parentheses).
`);
rmSync(statLoopBin, { force: true });
logger.flush();
