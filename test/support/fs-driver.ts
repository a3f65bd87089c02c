// A path-level view of a filesystem for the conformance scenarios (test/conformance/): the same
// scenario runs on a FileSystem object directly (core-driver.ts) and through a real mount from
// a child process (mount-driver.ts), and must get the same answers from both.
//
// Invariants every driver keeps:
// - Paths are '/'-separated and relative to the filesystem's root ('' or '/' is the root).
// - A failed op rejects with a DriverError whose `code` is the errno name ('ENOENT'), so the
//   two drivers compare equal; anything that is not an errno answer (a bug in the driver, a
//   timeout) is a plain Error.
// - `read` returns `length` bytes, fewer only at end of file; `write` writes everything.
// - Open flags and mode bits are Linux numbers (base/posix.ts).
// - `release()` closes whatever fds a scenario left open and says which ones, so a scenario
//   that leaks an fd fails and the next scenario starts clean.
import assert from 'node:assert/strict';
import { within } from '../../src/base/async.js';

export type FileKind = 'file' | 'dir' | 'symlink' | 'other';

export interface DriverStat {
  kind: FileKind;
  /** Permission bits only (mode & 0o7777). */
  perm: number;
  size: number;
  nlink: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
}

export class DriverError extends Error {
  override readonly name = 'DriverError';
  constructor(
    readonly code: string,
    what: string,
  ) {
    super(`${what}: ${code}`);
  }
}

export interface FsDriver {
  /** For test names and messages ('core', 'mount'). */
  readonly name: string;
  stat(path: string): Promise<DriverStat>;
  lstat(path: string): Promise<DriverStat>;
  /** Names in the directory, sorted, without "." and "..". */
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** `flags`: 0 or RENAME_NOREPLACE / RENAME_EXCHANGE (renameat2). */
  rename(from: string, to: string, flags?: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  open(path: string, flags: number, mode?: number): Promise<number>;
  read(fd: number, length: number, position: number): Promise<Buffer>;
  write(fd: number, data: Buffer, position: number): Promise<void>;
  ftruncate(fd: number, size: number): Promise<void>;
  truncate(path: string, size: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Times in epoch ms; use whole seconds, which every layer keeps exactly. */
  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  /** Creates or truncates `path` (mode 0o644) and writes `data`. */
  writeFile(path: string, data: Buffer): Promise<void>;
  /** Closes the fds still open; returns them (empty when the scenario cleaned up). */
  closeLeftovers(): Promise<number[]>;
  /** Ends the driver and everything it owns (child process, mount); idempotent. */
  dispose(): Promise<void>;
}

/** Asserts that `p` rejects with errno `code` (within `ms`), naming `what` otherwise. */
export async function rejectsErrno(p: Promise<unknown>, code: string, what: string, ms = 10_000): Promise<void> {
  let caught: unknown;
  try {
    await within(p, ms, what);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `${what}: expected ${code}, but it succeeded`);
  assert.ok(caught instanceof DriverError, `${what}: expected ${code}, got ${caught instanceof Error ? caught.message : 'a non-error'}`);
  assert.equal(caught.code, code, `${what}: expected ${code}, got ${caught.code}`);
}

/** `a/b` joined without doubling slashes; '' stays the root. */
export function joinPath(...parts: string[]): string {
  return parts
    .flatMap((p) => p.split('/'))
    .filter((p) => p !== '')
    .join('/');
}
