// DataConfig: every size, bound and timeout the data layer uses, in one object with
// documented defaults; nothing in src/data hard-codes a number that is not derived from here.
// Two kinds of field:
// - user-facing ones (cache cap, deadline, download concurrency, read-ahead max) are settings:
//   their defaults come from base/settings.ts `defaultSettings()` through `dataConfigFrom`, the
//   one map from Settings to this object, which the CLI uses too. No default is written here.
// - internal tuning knobs (chunk size, retry timings, …) are not user settings; their
//   defaults are written here and only here.
//
// Invariants (checked by `resolveDataConfig`):
// - all sizes and counts are positive integers; chunkSizeBytes divides nothing in particular
//   but every download is aligned to it;
// - readAheadInitialBytes <= readAheadMaxBytes <= readAheadBudgetBytes;
// - perFileCapBytes <= cacheCapBytes; chunkSizeBytes <= maxRequestBytes.

import { defaultSettings, type Settings } from '../base/settings.js';

export interface DataConfig {
  /**
   * Downloads are planned in units of this size (aligned to multiples of it), so a 4 KiB read
   * fetches the surrounding 1 MiB once instead of 256 tiny requests. 1 MiB matches the
   * kernel's maximum READ size with FUSE_MAX_PAGES (RESEARCH.md Part 1 §2).
   */
  chunkSizeBytes: number;
  /**
   * Reads that do not continue a sequential stream (see read-ahead.ts) fetch only their own
   * bytes, widened to this alignment (a page), so random 4 KiB reads cost about 1 byte fetched
   * per byte read instead of a whole chunk each.
   */
  randomAlignBytes: number;
  /**
   * Upper bound of one remote request. Longer missing ranges are split. A streaming GET is
   * 1.5–2x faster than per-READ range requests (RESEARCH.md Part 1 §2), so this is large.
   */
  maxRequestBytes: number;
  /**
   * Read-ahead downloads at least this long go through the remote's `readToFile` where it has
   * one (a transfer thread writes the cache file; RESEARCH.md: one thread tops out near
   * 1 GB/s). Shorter ones, and demand downloads (a reader waits for their first bytes), stream
   * on this thread, which has the lower latency.
   */
  offThreadMinBytes: number;
  /** First read-ahead window of a handle, and the window after every seek. */
  readAheadInitialBytes: number;
  /** The window doubles on each sequential read up to this. */
  readAheadMaxBytes: number;
  /** Global bound on read-ahead bytes requested but not yet landed, over all handles. */
  readAheadBudgetBytes: number;
  /** Concurrent remote requests (downloads) of this cache. */
  downloadConcurrency: number;
  /** Downloads that may wait for a slot; further callers wait for queue space. */
  downloadQueueMax: number;
  /** Deadline of one read operation (and of one download's retries). */
  operationDeadlineMs: number;
  /** Hard cap on the bytes of all cache files together. */
  cacheCapBytes: number;
  /** Hard cap on the cached bytes of one object. Reads past it are served uncached. */
  perFileCapBytes: number;
  /** Period of the background cleanup loop. */
  cleanupIntervalMs: number;
  /** The cleanup loop evicts down to this fraction of the cap, leaving headroom for fills. */
  cleanupTargetRatio: number;
  /** First retry delay of a transient download failure (then doubling, jittered). */
  retryBaseMs: number;
  /** Longest single retry delay. */
  retryMaxMs: number;
  /** Attempts of one download before its last error is final (the deadline may stop it sooner). */
  retryMaxAttempts: number;
  /** Newly present ranges are written to the store at most this long after they land. */
  persistIntervalMs: number;
}

const MiB = 1024 * 1024;

/** The DataConfig fields that are user settings. */
export type UserDataConfig = Pick<DataConfig, 'cacheCapBytes' | 'perFileCapBytes' | 'operationDeadlineMs' | 'downloadConcurrency' | 'readAheadMaxBytes'>;

/** The data layer's part of the user settings (already in bytes and ms). */
export function dataConfigFrom(s: Pick<Settings, 'cacheMaxSizeBytes' | 'deadlineMs' | 'downloadConcurrency' | 'readAheadMaxBytes'>): UserDataConfig {
  return {
    cacheCapBytes: s.cacheMaxSizeBytes,
    // One object may fill the whole cache: there is no separate per-file setting.
    perFileCapBytes: s.cacheMaxSizeBytes,
    // A 0 s deadline (which turns the kernel session's off) still needs a positive bound here.
    operationDeadlineMs: Math.max(1, s.deadlineMs),
    downloadConcurrency: s.downloadConcurrency,
    readAheadMaxBytes: s.readAheadMaxBytes,
  };
}

export const DEFAULT_DATA_CONFIG: Readonly<DataConfig> = Object.freeze({
  ...dataConfigFrom(defaultSettings()),
  chunkSizeBytes: 1 * MiB,
  randomAlignBytes: 4096,
  maxRequestBytes: 8 * MiB,
  offThreadMinBytes: 256 * 1024,
  readAheadInitialBytes: 128 * 1024,
  readAheadBudgetBytes: 64 * MiB,
  downloadQueueMax: 64,
  cleanupIntervalMs: 60_000,
  cleanupTargetRatio: 0.9,
  retryBaseMs: 100,
  retryMaxMs: 5_000,
  retryMaxAttempts: 6,
  persistIntervalMs: 1_000,
});

export class DataConfigError extends Error {
  override readonly name = 'DataConfigError';
  readonly code = 'DATA_CONFIG';
}

/** Fills defaults and checks the invariants above; throws DataConfigError on a bad value. */
export function resolveDataConfig(partial: Partial<DataConfig> = {}): DataConfig {
  const c: DataConfig = { ...DEFAULT_DATA_CONFIG, ...partial };
  if (partial.cacheCapBytes !== undefined && partial.perFileCapBytes === undefined) {
    c.perFileCapBytes = c.cacheCapBytes;
  }
  for (const [k, v] of Object.entries(c)) {
    if (k === 'cleanupTargetRatio') continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new DataConfigError(`data config ${k} must be a positive integer, got ${String(v)}`);
    }
  }
  if (!(c.cleanupTargetRatio > 0 && c.cleanupTargetRatio <= 1)) {
    throw new DataConfigError(`data config cleanupTargetRatio must be in (0, 1], got ${c.cleanupTargetRatio}`);
  }
  if (c.readAheadInitialBytes > c.readAheadMaxBytes) {
    throw new DataConfigError('data config readAheadInitialBytes must not exceed readAheadMaxBytes');
  }
  if (c.readAheadMaxBytes > c.readAheadBudgetBytes) {
    throw new DataConfigError('data config readAheadMaxBytes must not exceed readAheadBudgetBytes');
  }
  if (c.perFileCapBytes > c.cacheCapBytes) {
    throw new DataConfigError('data config perFileCapBytes must not exceed cacheCapBytes');
  }
  if (c.randomAlignBytes > c.chunkSizeBytes) {
    throw new DataConfigError('data config randomAlignBytes must not exceed chunkSizeBytes');
  }
  if (c.chunkSizeBytes > c.maxRequestBytes) {
    throw new DataConfigError('data config chunkSizeBytes must not exceed maxRequestBytes');
  }
  if (c.retryBaseMs > c.retryMaxMs) {
    throw new DataConfigError('data config retryBaseMs must not exceed retryMaxMs');
  }
  return c;
}
