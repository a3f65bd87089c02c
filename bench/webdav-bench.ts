// npm run bench, WebDAV section — fusestream next to `rclone mount` (webdav backend, vfs cache
// mode writes) on one Apache mod_dav share on 127.0.0.1, in one run and one dataset:
// - cold sequential read of a big file (a fresh mount, empty cache): MB/s;
// - `ls -l` of a directory of 10,000 entries (cold): seconds;
// - sequential write of a big file (dd, then until the server holds all of it): seconds;
// - untar of 10,000 small files (tar, then until the server holds all of them): seconds.
// Every byte on a mount is read or written by a child process (dd, ls, tar); the bench reads
// only Apache's DocumentRoot (a plain directory) and its own temp files.
//
//   FUSESTREAM_BENCH_QUICK=1     small dataset (64 MiB, 1,000 entries), results in $TMPDIR
//   FUSESTREAM_BENCH_OUT=DIR     where webdav.md goes (default bench/results)
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApacheDav, type DavServer } from '../test/support/webdav-servers.js';
import { writeRampFile } from '../test/support/ramp.js';
import { exec, machine, mustExec, progress, runBench, sig3, sleep, startDaemon, stopEverything, type MountTool } from './mount-tools.js';

const MiB = 1024 * 1024;
const QUICK = process.env.FUSESTREAM_BENCH_QUICK === '1';
const cfg = { bigBytes: QUICK ? 64 * MiB : 1024 * MiB, entries: QUICK ? 1000 : 10_000, writeBytes: QUICK ? 64 * MiB : 1024 * MiB };
const OUT = process.env.FUSESTREAM_BENCH_OUT ?? (QUICK ? join(tmpdir(), 'fusestream-bench-results') : new URL('../../bench/results', import.meta.url).pathname);
const fusestreamBin = new URL('../../bin/fusestream.js', import.meta.url).pathname;

type DavToolId = 'fusestream' | 'rclone';
const TOOLS: readonly MountTool<DavToolId>[] = [
  {
    id: 'fusestream',
    label: 'fusestream',
    diskCache: true,
    command: (url, mnt, cacheDir) => ({ cmd: process.execPath, args: [fusestreamBin, 'mount', `webdav+${url}`, mnt, '--cache-dir', cacheDir, '--write-back-delay', '0', '--drain-timeout', '600', '--log-level', 'warn'] }),
  },
  {
    id: 'rclone',
    label: 'rclone mount (webdav, vfs writes)',
    diskCache: true,
    command: (url, mnt, cacheDir, workDir) => ({
      cmd: 'rclone',
      args: ['mount', ':webdav:', mnt, '--webdav-url', url, '--vfs-cache-mode', 'writes', '--vfs-write-back', '0s', '--cache-dir', cacheDir, '--config', join(workDir, 'rclone.conf'), '--log-level', 'NOTICE'],
    }),
  },
];

interface Figures {
  readMBs: number;
  lsSeconds: number;
  writeSeconds: number;
  writeLandedSeconds: number;
  untarSeconds: number;
  untarLandedSeconds: number;
}

/** Waits until `done()` holds (polling the server's directory), up to `ms`; the seconds it took from `t0`. */
async function landed(done: () => boolean, t0: number, ms: number, what: string): Promise<number> {
  for (;;) {
    if (done()) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > ms) throw new Error(`${what} did not reach the server within ${ms / 1000} s`);
    await sleep(50);
  }
}

function sizeOr0(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function measure(tool: MountTool<DavToolId>, server: DavServer, work: string, tarPath: string): Promise<Figures> {
  const cache = (n: string): string => mkdtempSync(join(work, `${tool.id}-${n}-`));
  // Cold read and ls: one fresh mount each.
  let d = await startDaemon(tool, server.url, cache('read'), work);
  const read = await exec('dd', [`if=${d.mnt}/big.bin`, 'of=/dev/null', 'bs=1M'], { timeoutMs: 600_000 });
  await d.stop();
  if (read.code !== 0) throw new Error(`${tool.label}: dd read failed: ${read.stderr}`);
  d = await startDaemon(tool, server.url, cache('ls'), work);
  const ls = await exec('bash', ['-c', `ls -l '${d.mnt}/many' | wc -l`], { timeoutMs: 600_000 });
  await d.stop();
  if (ls.code !== 0 || Number(ls.stdout.trim()) < cfg.entries) throw new Error(`${tool.label}: ls -l failed or short: ${ls.stdout} ${ls.stderr}`);
  // Writes: dd and tar on one mount; "landed" is when the server's own directory holds it all.
  d = await startDaemon(tool, server.url, cache('write'), work);
  const wname = `w-${tool.id}.bin`;
  const t0 = performance.now();
  const write = await exec('dd', ['if=/dev/zero', `of=${d.mnt}/${wname}`, 'bs=1M', `count=${cfg.writeBytes / MiB}`], { timeoutMs: 900_000 });
  if (write.code !== 0) throw new Error(`${tool.label}: dd write failed: ${write.stderr}`);
  const writeLanded = await landed(() => sizeOr0(join(server.root, wname)) === cfg.writeBytes, t0, 900_000, `${tool.label}'s big write`);
  const udir = `untar-${tool.id}`;
  await mustExec('mkdir', [`${d.mnt}/${udir}`], 60_000);
  const t1 = performance.now();
  const untar = await exec('tar', ['-xf', tarPath, '-C', `${d.mnt}/${udir}`], { timeoutMs: 900_000 });
  if (untar.code !== 0) throw new Error(`${tool.label}: untar failed: ${untar.stderr}`);
  const untarLanded = await landed(
    () => {
      try {
        return readdirSync(join(server.root, udir, 'many')).filter((n) => !n.startsWith('.')).length === cfg.entries;
      } catch {
        return false;
      }
    },
    t1,
    900_000,
    `${tool.label}'s untar`,
  );
  await d.stop();
  return {
    readMBs: cfg.bigBytes / MiB / (read.ms / 1000),
    lsSeconds: ls.ms / 1000,
    writeSeconds: write.ms / 1000,
    writeLandedSeconds: writeLanded,
    untarSeconds: untar.ms / 1000,
    untarLandedSeconds: untarLanded,
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'fusestream-webdav-bench-'));
  writeFileSync(join(work, 'rclone.conf'), '');
  const root = join(work, 'root');
  mkdirSync(join(root, 'many'), { recursive: true });
  progress(`dataset: ${cfg.bigBytes / MiB} MiB file, ${cfg.entries} entries`);
  await writeRampFile(join(root, 'big.bin'), cfg.bigBytes);
  const src = join(work, 'src', 'many');
  mkdirSync(src, { recursive: true });
  for (let i = 0; i < cfg.entries; i++) {
    const body = `file ${i}\n`.repeat(100);
    writeFileSync(join(root, 'many', `f${i}.txt`), body);
    writeFileSync(join(src, `f${i}.txt`), body);
  }
  const tarPath = join(work, 'many.tar');
  await mustExec('tar', ['-cf', tarPath, '-C', join(work, 'src'), 'many'], 120_000);
  const server = await startApacheDav(root);
  try {
    const rows: string[] = [];
    const results = new Map<DavToolId, Figures>();
    for (const tool of TOOLS) {
      progress(`${tool.label}: measuring`);
      const f = await measure(tool, server, work, tarPath);
      results.set(tool.id, f);
      rows.push(
        `| ${tool.label} | ${sig3(f.readMBs)} | ${sig3(f.lsSeconds)} | ${sig3(f.writeSeconds)} / ${sig3(f.writeLandedSeconds)} | ${sig3(f.untarSeconds)} / ${sig3(f.untarLandedSeconds)} |`,
      );
    }
    const fs = results.get('fusestream');
    const rc = results.get('rclone');
    const ahead = (a: number, b: number, higherIsBetter: boolean): string => (higherIsBetter ? (a > b ? 'ahead' : 'behind') : a < b ? 'ahead' : 'behind');
    const verdict =
      fs && rc
        ? [
            `- cold sequential read: fusestream ${ahead(fs.readMBs, rc.readMBs, true)} of rclone`,
            `- ls -l of ${cfg.entries}: ${ahead(fs.lsSeconds, rc.lsSeconds, false)}`,
            `- write of ${cfg.writeBytes / MiB} MiB until on the server: ${ahead(fs.writeLandedSeconds, rc.writeLandedSeconds, false)}`,
            `- untar of ${cfg.entries} files until on the server: ${ahead(fs.untarLandedSeconds, rc.untarLandedSeconds, false)}`,
          ].join('\n')
        : '';
    const md = `# WebDAV: fusestream and rclone mount on one Apache mod_dav share\n\n${machine()}\n\nOne run${QUICK ? ' (quick dataset)' : ''}; each figure from a fresh mount with an empty cache.\n\n| tool | cold read MB/s | ls -l of ${cfg.entries} (s) | write ${cfg.writeBytes / MiB} MiB: dd / on the server (s) | untar ${cfg.entries} files: tar / on the server (s) |\n|---|---|---|---|---|\n${rows.join('\n')}\n\n${verdict}\n`;
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'webdav.md'), md);
    process.stdout.write(md);
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await runBench('webdav', main, stopEverything, progress);
