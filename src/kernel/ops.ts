// The contract between the session (which speaks the wire protocol) and a filesystem.
// A FuseOps implementation never sees bytes of the protocol: it gets decoded arguments and a
// RequestContext, and returns plain objects or throws. The session owns replying:
//   - a returned value is encoded and sent once;
//   - a thrown FsError is answered with its errno;
//   - anything else thrown is answered with EIO and logged with its stack;
//   - an op the implementation does not define is answered ENOSYS (logged once per opcode).
// Every handler must honour `ctx.signal`: it fires on INTERRUPT, on the request deadline and
// on unmount, and after it fires the session has already replied, so the result is dropped.
import type { Fh, Ino, Unique } from '../base/ids.js';
import type { Logger } from '../observability/logger.js';

export interface RequestContext {
  readonly unique: Unique;
  readonly opcode: number;
  readonly nodeid: Ino;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Fires on INTERRUPT, deadline or unmount. */
  readonly signal: AbortSignal;
  /** A child logger carrying {req, op, ino}; created on first use. */
  readonly log: Logger;
}

/** File attributes, as the kernel's struct fuse_attr wants them. Times are epoch ms. */
export interface Attr {
  ino: Ino;
  size: number;
  /** 512-byte blocks; derived from size when omitted. */
  blocks?: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Full st_mode including the S_IF* type bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  blksize?: number;
}

export interface EntryOut {
  /** 0 makes a negative entry (cached ENOENT for entryTtlMs). */
  nodeid: Ino;
  generation: bigint;
  entryTtlMs: number;
  attrTtlMs: number;
  attr: Attr;
}

export interface AttrOut {
  attrTtlMs: number;
  attr: Attr;
}

export interface OpenOut {
  fh: Fh;
  /** FOPEN_* flags (abi.ts). */
  openFlags: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenOut;
}

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** SETATTR: only the fields whose FATTR_* bit was set are present. */
export interface SetattrIn {
  /** Raw FATTR_* mask, for implementations that want it. */
  valid: number;
  fh?: Fh;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** A time in epoch ms, or 'now' for FATTR_ATIME_NOW / FATTR_MTIME_NOW. */
  atime?: number | 'now';
  mtime?: number | 'now';
  ctime?: number;
}

/** One directory entry. `offset` is the cookie the kernel hands back to continue after it. */
export interface Dirent {
  name: string;
  ino: Ino;
  /** DT_* type (abi.ts DT). */
  type: number;
  offset: bigint;
}

/**
 * Where readdir puts entries. `add` returns false when the entry did not fit in the reply
 * buffer: the implementation must stop and must NOT count that entry as handed out (for
 * READDIRPLUS, only entries that were accepted take a kernel lookup reference).
 */
export interface DirentSink {
  readonly plus: boolean;
  /** For READDIRPLUS pass `entry`; entry.nodeid 0 (as for "." and "..") takes no reference. */
  add(dirent: Dirent, entry?: EntryOut): boolean;
}

export interface InitInfo {
  /** Negotiated protocol minor (the lower of the kernel's and ours). */
  minor: number;
  maxWrite: number;
  maxReadahead: number;
  /** Capabilities we asked for and the kernel granted (FUSE_* flags, 64-bit). */
  flags: bigint;
}

export interface FuseOps {
  init?(info: InitInfo): void | Promise<void>;
  destroy?(): void | Promise<void>;

  lookup?(ctx: RequestContext, parent: Ino, name: string): Promise<EntryOut>;
  /** No reply is sent for FORGET/BATCH_FORGET; this must not throw. */
  forget?(ino: Ino, nlookup: bigint): void;
  getattr?(ctx: RequestContext, ino: Ino, fh: Fh | undefined): Promise<AttrOut>;
  setattr?(ctx: RequestContext, ino: Ino, attr: SetattrIn): Promise<AttrOut>;
  readlink?(ctx: RequestContext, ino: Ino): Promise<string>;
  symlink?(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<EntryOut>;
  mknod?(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut>;
  mkdir?(ctx: RequestContext, parent: Ino, name: string, mode: number, umask: number): Promise<EntryOut>;
  unlink?(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  rmdir?(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  /** `flags` carries RENAME_NOREPLACE / RENAME_EXCHANGE (0 for plain RENAME). */
  rename?(ctx: RequestContext, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void>;
  link?(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<EntryOut>;
  open?(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenOut>;
  /**
   * Returns at most `size` bytes; fewer means EOF (unless the file is direct_io). The session
   * hands the buffer to `readBuffers.release` once the reply is written: return a buffer
   * nothing else keeps using (pooled ones are reused; any other buffer is left alone).
   */
  read?(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer>;
  /** Returns the number of bytes written. `data` is only valid until the promise settles. */
  write?(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, data: Buffer, writeFlags: number, flags: number): Promise<number>;
  statfs?(ctx: RequestContext, ino: Ino): Promise<StatfsOut>;
  release?(ctx: RequestContext, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsync?(ctx: RequestContext, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  flush?(ctx: RequestContext, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void>;
  opendir?(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenOut>;
  readdir?(ctx: RequestContext, ino: Ino, fh: Fh, offset: bigint, sink: DirentSink): Promise<void>;
  releasedir?(ctx: RequestContext, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsyncdir?(ctx: RequestContext, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  access?(ctx: RequestContext, ino: Ino, mask: number): Promise<void>;
  create?(ctx: RequestContext, parent: Ino, name: string, mode: number, flags: number, umask: number): Promise<CreateOut>;
  fallocate?(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void>;
  getxattr?(ctx: RequestContext, ino: Ino, name: string, size: number): Promise<Buffer>;
  listxattr?(ctx: RequestContext, ino: Ino, size: number): Promise<Buffer>;
  setxattr?(ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void>;
  removexattr?(ctx: RequestContext, ino: Ino, name: string): Promise<void>;
  /** SEEK_DATA / SEEK_HOLE; returns the resulting offset. */
  lseek?(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number>;
}
