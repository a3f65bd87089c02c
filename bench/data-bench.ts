// npm run bench:data — the data layer alone (no FUSE) against nginx on 127.0.0.1, next to curl
// in the same run: cold sequential read of a 1 GiB object, random 4 KiB reads (with bytes
// fetched per byte read), and 8 parallel readers over 8 objects. Medians of 3 runs, each cold
// (fresh cache dir). Goal: cold sequential >= 0.7x curl.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { readBuffers } from '../src/base/buffer-pool.js';
import { DataCache } from '../src/data/data-cache.js';
import { HttpRemote } from '../src/remote/http/http-remote.js';
import { startNginx } from '../test/support/nginx.js';
import { writeRampFile } from '../test/support/ramp.js';

const MiB = 1024 * 1024;
const BIG = 1024 * MiB;
const SMALL = 128 * MiB;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

function curl(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn('curl', ['-s', '-o', '/dev/null', url], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`curl exit ${code}`))));
  });
}

async function withCache<T>(remote: HttpRemote, fn: (c: DataCache) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fusestream-bench-cache-'));
  const cache = await DataCache.open({ cacheDir: dir, remote, config: { cacheCapBytes: 4 * 1024 * MiB } });
  try {
    return await fn(cache);
  } finally {
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function readSequential(cache: DataCache, remote: HttpRemote, path: string, size: number): Promise<number> {
  const st = await remote.stat(path, AbortSignal.timeout(10_000));
  const fp = st.etag === undefined ? { size: st.size } : { size: st.size, etag: st.etag };
  const reader = await cache.openFile(path, fp, size);
  const t0 = performance.now();
  // Like the FUSE session, hand each reply buffer back once it is consumed.
  for (let off = 0; off < size; off += MiB) readBuffers.release(await reader.read(off, MiB));
  const ms = performance.now() - t0;
  await reader.close();
  return ms;
}

const www = mkdtempSync(join(tmpdir(), 'fusestream-bench-www-'));
await writeRampFile(join(www, 'big.bin'), BIG);
for (let i = 0; i < 8; i++) await writeRampFile(join(www, `s${i}.bin`), SMALL);
const nginx = await startNginx({ root: www, autoindex: 'json' });
const remote = new HttpRemote({ baseUrl: nginx.url });
try {
  const curlSeq: number[] = [];
  const oursSeq: number[] = [];
  for (let i = 0; i < 3; i++) {
    curlSeq.push(BIG / MiB / ((await curl(`${nginx.url}big.bin`)) / 1000));
    oursSeq.push(await withCache(remote, async (c) => BIG / MiB / ((await readSequential(c, remote, 'big.bin', BIG)) / 1000)));
  }
  // Random 4 KiB reads over the cold 1 GiB object.
  const rnd: { iops: number; amp: number }[] = [];
  for (let i = 0; i < 3; i++) {
    rnd.push(
      await withCache(remote, async (c) => {
        const st = await remote.stat('big.bin', AbortSignal.timeout(10_000));
        const reader = await c.openFile('big.bin', st.etag === undefined ? { size: st.size } : { size: st.size, etag: st.etag }, BIG);
        let seed = 12345 + i;
        const n = 2000;
        const t0 = performance.now();
        for (let k = 0; k < n; k++) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          await reader.read(Math.floor((seed / 2147483648) * (BIG / 4096)) * 4096, 4096);
        }
        const ms = performance.now() - t0;
        await reader.close();
        return { iops: n / (ms / 1000), amp: c.stats().bytesFetched / (n * 4096) };
      }),
    );
  }
  // 8 parallel sequential readers, one object each.
  const par: number[] = [];
  const curlPar: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, (_, k) => curl(`${nginx.url}s${k}.bin`)));
    curlPar.push((8 * SMALL) / MiB / ((performance.now() - t0) / 1000));
    par.push(
      await withCache(remote, async (c) => {
        const t1 = performance.now();
        await Promise.all(Array.from({ length: 8 }, (_, k) => readSequential(c, remote, `s${k}.bin`, SMALL)));
        return (8 * SMALL) / MiB / ((performance.now() - t1) / 1000);
      }),
    );
  }
  const f = (x: number): string => x.toFixed(0);
  const r = median(rnd.map((x) => x.iops));
  const amp = median(rnd.map((x) => x.amp));
  process.stdout.write(`
## bench:data — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}

| figure | curl | data layer | ratio |
|---|---|---|---|
| cold sequential 1 GiB, MiB/s | ${f(median(curlSeq))} | ${f(median(oursSeq))} (${oursSeq.map(f).join(' / ')}) | ${(median(oursSeq) / median(curlSeq)).toFixed(2)}x |
| 8 parallel readers, 8 x 128 MiB, MiB/s | ${f(median(curlPar))} | ${f(median(par))} (${par.map(f).join(' / ')}) | ${(median(par) / median(curlPar)).toFixed(2)}x |
| random 4 KiB reads, cold, IOPS (one reader) | — | ${f(r)} | — |
| bytes fetched per byte read (random 4 KiB) | 1 | ${amp.toFixed(1)} | — |

Goal: cold sequential >= 0.7x curl. Medians of 3 cold runs.
`);
} finally {
  await remote.close();
  await nginx.stop();
  rmSync(www, { recursive: true, force: true });
}
