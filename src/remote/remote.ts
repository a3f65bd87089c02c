// The Remote interface: what every backend (http, local, later webdav and s3) offers the
// data layer. Paths are remote-relative, '/'-separated, without a leading slash ('' is the
// root). Every call takes an AbortSignal and must stop promptly when it fires.
//
// Errors: implementations throw RemoteError (remote-error.ts) with a closed `kind`, never raw
// library errors, so the data layer and the one errno mapping can reason about them. The one
// exception is a put's ContentSource: when the caller's own source fails, put rethrows that
// error unchanged (it is not the remote's failure).
//
// Writes (all optional, present when `capabilities.writable`): a write either happens whole or
// not at all. No remote ever shows a partial object, and a write resolves only once it is as
// durable as the remote can make it (a resolved put is never lost by a crash of this process).
// Conditional writes compare versions with the one comparison in fingerprint.ts.

import type { Fingerprint } from './fingerprint.js';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface RemoteEntry {
  /** The entry's own name (one path component, already validated by `validateName`). */
  name: string;
  type: EntryType;
  /** Bytes; undefined when the listing does not say exactly (e.g. "1.2M" in an HTML index). */
  size?: number;
  /** Epoch ms; undefined when unknown or not exact. */
  mtimeMs?: number;
  /**
   * A rounded mtime for display only (e.g. minute precision from an HTML index). Never part of
   * a fingerprint.
   */
  approxMtimeMs?: number;
  /** Strong or weak ETag as the server sent it (with quotes), when known. */
  etag?: string;
}

/** What identifies one version of an object: the ETag, or size+mtime where there is none. */
export type { Fingerprint } from './fingerprint.js';

export interface RemoteStat extends RemoteEntry {
  /** For files, always present after stat (a HEAD or a range probe gives it). */
  size: number;
}

export interface ReadRangeOptions {
  signal: AbortSignal;
  /**
   * The version the caller's cache holds. The read must fail with kind 'changed' rather than
   * return bytes of any other version (If-Range / If-Match, and checking the response).
   */
  expect?: Fingerprint;
}

export interface RemoteReadStream {
  /** The object's fingerprint as the server reported it for this response. */
  fingerprint: Fingerprint;
  /** Exactly the requested bytes (or up to EOF), in order. Aborting the signal ends it with an error. */
  body: AsyncIterable<Uint8Array>;
}

export interface ReadToFileOptions extends ReadRangeOptions {
  /**
   * Flow control: the transfer writes no byte at or past this offset until `allow` raises it
   * (the caller reserves cache space before it lets bytes land).
   */
  allowTo: number;
  /** Called on the caller's thread, in order, each time bytes up to `to` are in the file. */
  onWritten: (to: number) => void;
}

/** A running transfer of a byte range straight into a local file. */
export interface FileTransfer {
  /**
   * Resolves with the response's fingerprint once every byte is written and reported through
   * `onWritten`. Rejects with RemoteError, or with an Error carrying a `code` when writing the
   * file failed; in every case only after the transfer stopped touching the file.
   */
  readonly done: Promise<Fingerprint>;
  /** Lets the transfer write bytes below `to`. */
  allow(to: number): void;
}

export interface RemoteCapabilities {
  /** put, delete, rename, mkdir and rmdir exist and may succeed (else they are absent). */
  readonly writable: boolean;
  /** Byte-range reads are supported (else whole-object only). */
  readonly ranges: boolean;
  /** Listings carry exact sizes and mtimes, so no per-entry stat is needed. */
  readonly exactListing: boolean;
  // The write path's questions. Absent means false: a remote claims a guarantee, never
  // inherits one.
  /**
   * `rename` is one atomic step on the remote: `to` never goes missing while it is replaced,
   * nobody sees both or neither name, and directories move with their contents. False: a rename
   * may be a copy then a delete (S3), visible half-done, and may fail half-way.
   */
  readonly atomicRename?: boolean;
  /**
   * `rename(..., { noReplace: true })` never replaces an existing `to`, even one a concurrent
   * writer creates during the call. False: noReplace is still honoured ('exists' when `to` is
   * there), but by a check before the rename, so a `to` created inside that window can be
   * replaced. Each remote says in docs/SEMANTICS.md what can be lost in that window.
   */
  readonly renameNoReplace?: boolean;
  /**
   * put's `ifMatch` and `ifNoneMatch` are decided atomically with the write (the server
   * compares and replaces in one step, like S3 or HTTP If-Match/If-None-Match). False: they
   * are honoured by a check shortly before the write becomes visible, leaving a window in
   * which a concurrent writer's version can be replaced; docs/SEMANTICS.md says how wide.
   */
  readonly conditionalPut?: boolean;
  /** Symlinks exist: `symlink` and `readlink` work and listings report type 'symlink'. */
  readonly symlinks?: boolean;
  /** The remote keeps a settable mtime per entry: `setMtime` exists and put honours `mtimeMs`. */
  readonly mtimes?: boolean;
  /**
   * The remote keeps permission bits the mount may show. False (every remote so far): the
   * mount synthesizes modes, and a put that replaces a local file keeps the old file's mode.
   */
  readonly modes?: boolean;
}

/**
 * The bytes of a put. Re-openable: every `open` yields the same frozen bytes from the start
 * (a retry re-reads them), `sizeBytes` in total. A source that yields a different total fails
 * the put with kind 'invalid' and leaves the remote unchanged.
 */
export interface ContentSource {
  readonly sizeBytes: number;
  open(signal: AbortSignal): AsyncIterable<Uint8Array>;
}

export interface PutOptions {
  signal: AbortSignal;
  /**
   * Replace only if the object is still this version (sameVersion in fingerprint.ts), else kind
   * 'conflict'. A missing object is not this version either: 'conflict'.
   */
  ifMatch?: Fingerprint;
  /** Create only: kind 'exists' when anything is already at `path`. */
  ifNoneMatch?: true;
  /** The new object's mtime (epoch ms), where `capabilities.mtimes`; else the remote's clock. */
  mtimeMs?: number;
}

export interface DeleteOptions {
  signal: AbortSignal;
  /** Delete only if the object is still this version, else kind 'conflict'. */
  ifMatch?: Fingerprint;
}

export interface RenameOptions {
  signal: AbortSignal;
  /** Never replace `to`: kind 'exists' when it is there (how atomically: `capabilities.renameNoReplace`). */
  noReplace?: boolean;
}

export interface WriteOptions {
  signal: AbortSignal;
}

export interface Remote {
  /** For logs and cache identity, e.g. "http://127.0.0.1:8080/files/". No credentials. */
  readonly id: string;
  readonly capabilities: RemoteCapabilities;
  stat(path: string, signal: AbortSignal): Promise<RemoteStat>;
  list(path: string, signal: AbortSignal): Promise<RemoteEntry[]>;
  /**
   * Reads [offset, offset+length) (clamped at EOF). The returned body yields exactly those
   * bytes; a short body is an error (kind 'protocol'), never silently short data.
   */
  read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream>;
  /**
   * Optional: like `read`, but the bytes go straight into `filePath` at their own offsets,
   * positional writes off the caller's thread, so a large body never crosses it. Same checks
   * and errors as `read`.
   */
  readToFile?(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer;
  /** The target text of a symlink, as stored (never resolved). Only remotes that list symlinks. */
  readlink?(path: string, signal: AbortSignal): Promise<string>;
  /**
   * A caller waited a whole deadline for this remote (a stall its own request may not have
   * noticed yet: a body that stopped, a queue that never moved). Remotes with a health state
   * (health.ts) count it as a timeout; others ignore it.
   */
  reportTimeout?(what: string): void;

  // Writes (where `capabilities.writable`). Kinds every implementation uses the same way:
  // 'not-found' (the object, or for creations the parent directory, is missing), 'exists',
  // 'not-empty', 'conflict' (a condition on the version failed), 'invalid' (wrong type: a
  // directory given to delete, a file to rmdir, a reserved name), 'no-space', 'read-only',
  // 'aborted'/'timeout' (the signal fired; nothing was changed unless the call had already
  // committed, which it then reports as success only if it returns).

  /**
   * Creates or replaces the whole file at `path` with the source's bytes. Readers see the old
   * object or the new one, never a mix or a partial object; a put that fails or is aborted
   * leaves the old object (or nothing) in place. Resolves, once the new object is durable on
   * the remote, with its stat: the fingerprint fields (size, mtimeMs, etag) of exactly the
   * version this put wrote. `path`'s parent must exist ('not-found'); a directory at `path`
   * is 'invalid'.
   */
  put?(path: string, source: ContentSource, options: PutOptions): Promise<RemoteStat>;
  /** Removes a file or symlink. A directory is 'invalid' (use rmdir). */
  delete?(path: string, options: DeleteOptions): Promise<void>;
  /**
   * Moves `from` to `to`, replacing a file at `to` (or an empty directory, when `from` is one).
   * A non-empty directory at `to` is 'not-empty'; a file onto a directory or a directory onto a
   * file is 'invalid'; a directory into its own subtree is 'invalid'.
   */
  rename?(from: string, to: string, options: RenameOptions): Promise<void>;
  /** Creates one directory: 'exists' when anything is at `path`, 'not-found' when the parent is missing. */
  mkdir?(path: string, options: WriteOptions): Promise<void>;
  /** Removes an empty directory: 'not-empty' when it holds entries, 'invalid' when it is not a directory. */
  rmdir?(path: string, options: WriteOptions): Promise<void>;
  /** Creates a symlink holding `target` as text (never resolved). Where `capabilities.symlinks`. */
  symlink?(target: string, path: string, options: WriteOptions): Promise<void>;
  /**
   * Sets the mtime of the entry at `path` itself (a symlink's own time, never its target's).
   * Resolves with the entry's new stat (its fingerprint changed). Where `capabilities.mtimes`.
   */
  setMtime?(path: string, mtimeMs: number, options: WriteOptions): Promise<RemoteStat>;
  close(): Promise<void>;
}
