// Errors of the data layer. Each has a stable `code` so that the bridge's one error → errno
// mapping (and the logs) can switch on it; every wrap sets `cause`.
//
// Remote failures that are final (not-found, permission, a protocol error after the retries
// ran out...) are passed through as the RemoteError itself: it already has a closed `kind`.
import { TimeoutError } from '../base/async.js';

/** The file, handle or cache was closed while (or before) the operation ran. */
export class ClosedError extends Error {
  override readonly name = 'ClosedError';
  readonly code = 'DATA_CLOSED';
}

/**
 * The object on the remote is no longer the version this cache file holds. The caller must
 * drop the stale cache (DataCache.invalidate) and re-open with the new fingerprint; old bytes
 * are never served for the new version.
 */
export class ChangedError extends Error {
  override readonly name = 'ChangedError';
  readonly code = 'DATA_CHANGED';
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.path = path;
  }
}

/** The operation's deadline (DataConfig.operationDeadlineMs) passed. A TimeoutError. */
export class DeadlineError extends TimeoutError {
  readonly deadlineMs: number;

  constructor(message: string, deadlineMs: number, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.deadlineMs = deadlineMs;
  }
}

/**
 * The cache cannot take these bytes without crossing its cap (everything evictable is
 * already gone, or the object reached its per-file cap). Internal: a reader that meets it
 * fetches its range uncached instead.
 */
export class CacheFullError extends Error {
  override readonly name: string = 'CacheFullError';
  readonly code = 'DATA_CACHE_FULL';
}

/**
 * Writing the cache file failed because its disk (or the user's quota) is full: ENOSPC or
 * EDQUOT. A CacheFullError, so a reader that meets it is served uncached, never an error.
 */
export class CacheDiskFullError extends CacheFullError {
  override readonly name = 'CacheDiskFullError';
}

/** A remote or local I/O failure of the cache file itself (write, read, open). */
export class CacheIoError extends Error {
  override readonly name = 'CacheIoError';
  readonly code = 'DATA_CACHE_IO';
}

/**
 * Another live DataCache (another mount, in this or another process) owns the cache dir: two
 * owners would each keep the cap and evict each other's open files. The CLI reports it as a
 * usage error (use another cache dir, or unmount the other one).
 */
export class CacheDirBusyError extends Error {
  override readonly name = 'CacheDirBusyError';
  readonly code = 'CACHE_DIR_BUSY';
  readonly dir: string;
  readonly ownerPid: number;

  constructor(dir: string, ownerPid: number, message: string) {
    super(message);
    this.dir = dir;
    this.ownerPid = ownerPid;
  }
}
