// Harness of the data-layer tests: a DataCache in a fresh temp dir, fd counting via
// /proc/self/fd, "every gauge is zero" and a seeded PRNG. Ramp checks are in ramp.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/base/clock.js';
import type { DataConfig } from '../../src/data/config.js';
import { DataCache, type DataStats } from '../../src/data/data-cache.js';
import type { DataHooks } from '../../src/data/hooks.js';
import type { Remote } from '../../src/remote/remote.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/**
 * Open fds of this process that are files (not sockets): sockets of in-process servers and
 * clients close asynchronously after destroy(), so they are checked by the servers' own
 * counters instead.
 */
export function openFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while we looked (the readdir fd itself)
    }
  }
  return n;
}

export function tempDir(prefix = 'fusestream-data-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface CacheOptions {
  remote: Remote;
  dir: string;
  config?: Partial<DataConfig>;
  clock?: Clock;
  hooks?: DataHooks;
}

export function openCache(o: CacheOptions): Promise<DataCache> {
  return DataCache.open({
    cacheDir: join(o.dir, 'cache'),
    remote: o.remote,
    config: { operationDeadlineMs: 20_000, ...o.config },
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.hooks ? { hooks: o.hooks } : {}),
  });
}

const GAUGES: (keyof DataStats)[] = [
  'openFiles',
  'openReaders',
  'inFlightReads',
  'waiters',
  'downloadsActive',
  'downloadsInFlight',
  'downloadsQueued',
  'readAheadBytes',
  'reservedBytes',
];

export function assertGaugesZero(stats: DataStats, where: string): void {
  const nonZero = GAUGES.filter((g) => stats[g] !== 0).map((g) => `${g}=${stats[g]}`);
  assert.deepEqual(nonZero, [], `gauges not back to zero ${where}`);
}

/** A small seeded PRNG (mulberry32) so random workloads are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
