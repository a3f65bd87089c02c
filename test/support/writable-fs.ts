// A read-write RemoteFs built the way the CLI builds one (DataCache + the cache dir's Journal +
// RemoteFs with `upload`), for tests that call the core directly. The caller owns the remote
// (a restart test reopens the same cache dir over the same remote); `close()` closes what
// this opened, in the mount's order: the filesystem (which drains for `drainTimeoutMs` and
// keeps the rest journaled), then the journal, then the data cache.
//
// Also: a Remote wrapper that records every range read (what the data layer fetched), and a
// wait for "every dirty byte has left the cache" built on DataCache's own room accounting.
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import type { Clock } from '../../src/base/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { CoreConfig } from '../../src/core/config.js';
import type { OpContext } from '../../src/core/filesystem.js';
import { RemoteFs, type UploadOptions } from '../../src/core/remote-fs.js';
import type { DataConfig } from '../../src/data/config.js';
import { DataCache } from '../../src/data/data-cache.js';
import { MEMORY_OPS, type MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { Journal } from '../../src/store/journal.js';
import { CoreDriver } from './core-driver.js';

export interface WritableFsOptions {
  /** The cache dir (reused across a restart). */
  cacheDir: string;
  remote: Remote;
  /** The core's and the upload queue's clock (default: the system clock). */
  clock?: Clock;
  upload?: Partial<Omit<UploadOptions, 'journal'>>;
  data?: Partial<DataConfig>;
  core?: Partial<CoreConfig>;
}

export interface WritableFs {
  fs: RemoteFs;
  data: DataCache;
  journal: Journal;
  /** Path-level calls, errors as errno names (CoreDriver). */
  driver: CoreDriver;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Upload settings of these tests unless a test says otherwise: no write-back delay, no drain at close. */
const TEST_UPLOAD = { concurrency: 2, writeBackDelayMs: 0, fsync: 'local', drainTimeoutMs: 0, retryBaseMs: 1000, retryMaxMs: 60_000 } as const;

export async function openWritableFs(o: WritableFsOptions): Promise<WritableFs> {
  const data = await DataCache.open({ cacheDir: o.cacheDir, remote: o.remote, logger: silentLogger(), ...(o.data !== undefined ? { config: o.data } : {}) });
  let journal: Journal;
  try {
    journal = Journal.open(join(o.cacheDir, 'cache.db'), { remote: o.remote.id, ...(o.clock !== undefined ? { clock: o.clock } : {}) });
  } catch (err) {
    await data.close();
    throw err;
  }
  const fs = new RemoteFs({
    remote: o.remote,
    data,
    logger: silentLogger(),
    ...(o.clock !== undefined ? { clock: o.clock } : {}),
    config: { negativeTtlMs: 0, ...o.core },
    upload: { ...TEST_UPLOAD, ...o.upload, journal },
  });
  const driver = new CoreDriver(fs);
  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    await driver.closeLeftovers();
    await driver.dispose();
    await fs.close();
    journal.close();
    await data.close();
  };
  return { fs, data, journal, driver, close: () => (closed ??= close()) };
}

/** Opens every hold of `remote` (a teardown must not wait at one). */
export function releaseAll(remote: MemoryRemote): void {
  for (const op of MEMORY_OPS) remote.release(op);
}

/** An OpContext for direct calls of FileSystem ops. */
export function opContext(signal: AbortSignal = new AbortController().signal): OpContext {
  return { uid: 0, gid: 0, pid: process.pid, signal, log: silentLogger() };
}

export interface RecordedRead {
  path: string;
  offset: number;
  length: number;
}

/**
 * `remote` with every `read` recorded (path, offset, length as asked); everything else is the
 * remote itself (its methods bound to it, so its private state works through the wrapper).
 */
export function recordReads<R extends Remote>(remote: R): { remote: R; reads: RecordedRead[] } {
  const reads: RecordedRead[] = [];
  const wrapped = new Proxy(remote, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (prop === 'read') {
        const read = target.read.bind(target);
        return (path: string, offset: number, length: number, options: Parameters<Remote['read']>[3]) => {
          reads.push({ path, offset, length });
          return read(path, offset, length, options);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { remote: wrapped, reads };
}

/**
 * Resolves once no dirty byte is counted in `data` any more: it reserves the whole cap as dirty
 * (which waits, through DataCache's own wakeups, until every dirty byte was released) and gives
 * it back. Evicts every clean cached object on the way. Fails naming what it waited for.
 */
export async function allDirtyReleased(data: DataCache, ms: number, what: string): Promise<void> {
  const cap = data.config.cacheCapBytes;
  try {
    await within(data.reserveDirty(cap, AbortSignal.timeout(ms)), ms + 1000, what);
  } catch (err) {
    throw new Error(`${what}: still ${data.dirtyBytes} dirty bytes after ${ms} ms`, { cause: err });
  }
  data.releaseDirty(cap);
}
