// Harness of the data-layer tests: a DataCache in a fresh temp dir, fd counting via
// /proc/self/fd, "every gauge is zero" and a seeded PRNG. Ramp checks are in ramp.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
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

export { prng } from './prng.js';

/**
 * The setup every DataCache suite shares, registered once per suite: a fresh temp dir per test,
 * and at teardown every tracked cache closed (bounded) with its gauges back to zero, then the
 * extra fixtures stopped (last first), no leaked file descriptor, the dir removed.
 */
export interface CacheTestbed {
  /** This test's temp dir. */
  readonly dir: string;
  /** Closes `c` at teardown (and checks its gauges) unless the test closes it through `close`. */
  track(c: DataCache): DataCache;
  /** Closes a tracked cache now, bounded, and checks its gauges. */
  close(c: DataCache): Promise<void>;
  /** Closes every tracked cache now (before a fixture they live on goes, e.g. a tmpfs). */
  closeAll(): Promise<void>;
  /** Stops another fixture at teardown (after the caches). */
  onTeardown(stop: () => Promise<void>): void;
}

export function useCacheTestbed(hooks: { beforeEach: (fn: () => void) => void; afterEach: (fn: () => Promise<void>) => void }, boundMs: number): CacheTestbed {
  let dir = '';
  let fdsBefore = 0;
  const caches: DataCache[] = [];
  const stops: (() => Promise<void>)[] = [];
  const closeChecked = async (c: DataCache, what: string): Promise<void> => {
    await within(c.close(), boundMs, what);
    assertGaugesZero(c.stats(), 'after cache close');
  };
  hooks.beforeEach(() => {
    dir = tempDir();
    fdsBefore = openFds();
  });
  hooks.afterEach(async () => {
    try {
      for (const c of caches.splice(0)) await closeChecked(c, 'the data cache to close at teardown');
      for (const stop of stops.splice(0).reverse()) await within(stop(), boundMs, 'a test fixture to stop');
      assert.equal(openFds(), fdsBefore, 'file descriptors leaked');
    } finally {
      removeDir(dir);
    }
  });
  return {
    get dir() {
      return dir;
    },
    track(c) {
      caches.push(c);
      return c;
    },
    async close(c) {
      caches.splice(caches.indexOf(c), 1);
      await closeChecked(c, 'a data cache to close');
    },
    async closeAll() {
      for (const c of caches.splice(0)) await closeChecked(c, 'a data cache to close');
    },
    onTeardown(stop) {
      stops.push(stop);
    },
  };
}
