// The Remote interface: what every backend (http, local, later webdav and s3) offers the
// data layer. Paths are remote-relative, '/'-separated, without a leading slash ('' is the
// root). Every call takes an AbortSignal and must stop promptly when it fires.
//
// Errors: implementations throw RemoteError (remote-error.ts) with a closed `kind`, never raw
// library errors, so the data layer and the one errno mapping can reason about them.

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
  readonly writable: boolean;
  /** Byte-range reads are supported (else whole-object only). */
  readonly ranges: boolean;
  /** Listings carry exact sizes and mtimes, so no per-entry stat is needed. */
  readonly exactListing: boolean;
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
  close(): Promise<void>;
}
