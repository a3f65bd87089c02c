// RemoteError: the only error type a Remote throws. `kind` is a closed union so the data
// layer's retry policy and the bridge's errno mapping are exhaustive switches.

export type RemoteErrorKind =
  | 'not-found' // 404/410, ENOENT
  | 'permission' // 401/403, EACCES
  | 'timeout' // no progress within the deadline or a stall
  | 'unavailable' // connection refused/reset, 5xx, 429
  | 'changed' // the object is not the version the caller expected (ETag/size/mtime differ)
  | 'conflict' // a conditional write lost: the object is not the version ifMatch named (412)
  | 'exists' // a create-only write (ifNoneMatch, mkdir, symlink, rename noReplace) found something there; EEXIST
  | 'not-empty' // rmdir of a directory with entries, rename over one; ENOTEMPTY
  | 'no-space' // the remote is full or over quota (ENOSPC, EDQUOT, 507)
  | 'read-only' // the remote refuses writes as a whole (EROFS), unlike 'permission' for one object
  | 'protocol' // the server answered wrongly: bad Content-Range, short body, bad listing
  | 'invalid' // the request itself is bad (bad path/name, range past EOF)
  | 'unsupported' // the remote cannot do this (writes on http, ranges on a server without them)
  | 'aborted'; // the caller's signal fired

const RETRYABLE: ReadonlySet<RemoteErrorKind> = new Set(['timeout', 'unavailable', 'protocol']);

export interface RemoteErrorOptions {
  cause?: unknown;
  status?: number;
  /** Milliseconds the server asked us to wait (Retry-After). */
  retryAfterMs?: number;
  retryable?: boolean;
  /**
   * The connection itself failed (reset, closed, refused) rather than the server answering
   * wrongly: evidence about reachability for the health state, whatever the kind.
   */
  connectionLost?: boolean;
}

export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  readonly kind: RemoteErrorKind;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly retryable: boolean;
  readonly connectionLost: boolean;

  constructor(kind: RemoteErrorKind, message: string, options: RemoteErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.retryable = options.retryable ?? RETRYABLE.has(kind);
    this.connectionLost = options.connectionLost ?? false;
  }

  get code(): string {
    return `REMOTE_${this.kind.toUpperCase().replace('-', '_')}`;
  }
}

export function isRemoteError(err: unknown): err is RemoteError {
  return err instanceof RemoteError;
}

/**
 * Not a remote failure: writing the local target file of a `readToFile` transfer failed
 * (ENOSPC, EIO...). `code` is the errno code when there was one.
 */
export class FileWriteError extends Error {
  override readonly name = 'FileWriteError';
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

/**
 * The error for work stopped by `signal`: kind 'timeout' when the signal fired because a time
 * bound passed (AbortSignal.timeout, or a reason that is itself a timeout), else 'aborted'.
 * A deadline that passes is an I/O failure (EIO), not an interrupted call (EINTR): programs
 * retry EINTR forever.
 */
export function abortError(signal: AbortSignal, what: string, cause: unknown = signal.reason): RemoteError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && (reason.name === 'TimeoutError' || (reason instanceof RemoteError && reason.kind === 'timeout'));
  return timedOut
    ? new RemoteError('timeout', `${what}: no answer within its time bound`, { cause })
    : new RemoteError('aborted', `${what}: aborted`, { cause });
}
