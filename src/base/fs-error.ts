// FsError: an error that maps to one precise errno. Every layer throws it (or a subclass)
// when it knows the right answer; anything else reaching a reply becomes EIO and is logged
// with its stack by the one mapping in bridge/ (or the session, for the kernel layer).
import { errnoName } from './errno.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export class FsError extends Error {
  override readonly name = 'FsError';
  readonly errno: number;
  /** How loudly to log it: a lookup's ENOENT is routine (`debug`), an EIO is not. */
  readonly level: LogLevel;

  constructor(errno: number, message?: string, options?: { cause?: unknown; level?: LogLevel }) {
    super(message ?? errnoName(errno), options?.cause === undefined ? undefined : { cause: options.cause });
    this.errno = errno;
    this.level = options?.level ?? 'debug';
  }

  get code(): string {
    return errnoName(this.errno);
  }
}

export function isFsError(err: unknown): err is FsError {
  return err instanceof FsError;
}
