// THE error → errno mapping. Every error that reaches a FUSE reply from the core passes
// through `toFsError` exactly once, here; the session then answers with `errno`.
// Rules:
// - FsError passes through (the core already knew the precise answer).
// - RemoteError maps by its closed `kind` (exhaustive switch: a new kind fails the build).
// - Data-layer errors map by class.
// - A Node system error maps by its `code` when we know it.
// - Anything else is EIO, logged at error level with its stack (level 'error' on the FsError).
import { AbortedError, TimeoutError } from '../base/async.js';
import { Errno, errnoFromCode } from '../base/errno.js';
import { FsError, type LogLevel } from '../base/fs-error.js';
import { RemoteError, type RemoteErrorKind } from '../remote/remote-error.js';
import { CacheFullError, CacheIoError, ChangedError, ClosedError } from '../data/errors.js';

export function remoteKindErrno(kind: RemoteErrorKind): { errno: number; level: LogLevel } {
  switch (kind) {
    case 'not-found':
      return { errno: Errno.ENOENT, level: 'debug' };
    case 'permission':
      return { errno: Errno.EACCES, level: 'info' };
    case 'timeout':
      // A stalled remote: EIO is what readers (cat, cp, players) report as an I/O error.
      return { errno: Errno.EIO, level: 'warn' };
    case 'unavailable':
      return { errno: Errno.EIO, level: 'warn' };
    case 'changed':
      // The object changed under an open handle: the handle's data is stale.
      return { errno: Errno.ESTALE, level: 'info' };
    case 'conflict':
      // A conditional write lost to another version. EBUSY ("someone else holds it") rather
      // than EEXIST (which programs read as "the name is taken" and handle by picking another
      // name) or ESTALE (which the kernel may silently retry as a fresh lookup).
      return { errno: Errno.EBUSY, level: 'warn' };
    case 'exists':
      // O_EXCL creates and mkdir of an existing name are normal traffic.
      return { errno: Errno.EEXIST, level: 'debug' };
    case 'not-empty':
      return { errno: Errno.ENOTEMPTY, level: 'debug' };
    case 'no-space':
      return { errno: Errno.ENOSPC, level: 'warn' };
    case 'read-only':
      return { errno: Errno.EROFS, level: 'info' };
    case 'protocol':
      return { errno: Errno.EIO, level: 'warn' };
    case 'invalid':
      return { errno: Errno.EINVAL, level: 'info' };
    case 'unsupported':
      return { errno: Errno.ENOTSUP, level: 'info' };
    case 'aborted':
      return { errno: Errno.EINTR, level: 'debug' };
  }
}

export function toFsError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  if (err instanceof RemoteError) {
    const { errno, level } = remoteKindErrno(err.kind);
    return new FsError(errno, err.message, { cause: err, level });
  }
  if (err instanceof ChangedError) return new FsError(Errno.ESTALE, err.message, { cause: err, level: 'info' });
  if (err instanceof ClosedError) return new FsError(Errno.EBADF, err.message, { cause: err, level: 'debug' });
  if (err instanceof TimeoutError) return new FsError(Errno.EIO, err.message, { cause: err, level: 'warn' });
  if (err instanceof AbortedError) return new FsError(Errno.EINTR, err.message, { cause: err, level: 'debug' });
  if (err instanceof CacheFullError) return new FsError(Errno.ENOSPC, err.message, { cause: err, level: 'warn' });
  if (err instanceof CacheIoError) return new FsError(Errno.EIO, err.message, { cause: err, level: 'error' });
  const fromCode = errnoFromCode((err as { code?: unknown } | null)?.code);
  if (fromCode !== undefined) return new FsError(fromCode, err instanceof Error ? err.message : String(err), { cause: err, level: 'info' });
  return new FsError(Errno.EIO, `unexpected error: ${err instanceof Error ? err.message : String(err)}`, { cause: err, level: 'error' });
}
