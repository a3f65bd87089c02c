// The values a filesystem hands out, in the shape every layer shares: attributes (stat),
// entries (name -> inode with cache lifetimes), statfs figures, SETATTR changes and directory
// entries; and the one list of operations with their arguments (FsOps), which the kernel's
// FuseOps and the core's FileSystem both are, each with its own context and open reply. The kernel layer encodes them into the wire structs (fuse_attr, fuse_entry_out,
// fuse_kstatfs, fuse_dirent...), the core produces them; neither owns the vocabulary, so it
// lives here. Times are epoch ms; modes are full st_mode values (posix.ts).
import type { Fh, Ino } from './ids.js';

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


/**
 * The operations of a filesystem, once: the kernel layer's FuseOps is
 * FsOps<RequestContext, OpenOut>, the core's FileSystem is FsOps<OpContext, OpenReply>. An op
 * left undefined is answered ENOSYS by the kernel layer. Every op honours the context's
 * signal (interrupt, deadline, unmount).
 */
export interface FsOps<Ctx, Open> {
  lookup?(ctx: Ctx, parent: Ino, name: string): Promise<EntryOut>;
  /** Gives back `nlookup` references (FORGET/BATCH_FORGET get no reply); must not throw. */
  forget?(ino: Ino, nlookup: bigint): void;
  getattr?(ctx: Ctx, ino: Ino, fh: Fh | undefined): Promise<AttrOut>;
  setattr?(ctx: Ctx, ino: Ino, attr: SetattrIn): Promise<AttrOut>;
  readlink?(ctx: Ctx, ino: Ino): Promise<string>;
  symlink?(ctx: Ctx, parent: Ino, name: string, target: string): Promise<EntryOut>;
  mknod?(ctx: Ctx, parent: Ino, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut>;
  mkdir?(ctx: Ctx, parent: Ino, name: string, mode: number, umask: number): Promise<EntryOut>;
  unlink?(ctx: Ctx, parent: Ino, name: string): Promise<void>;
  rmdir?(ctx: Ctx, parent: Ino, name: string): Promise<void>;
  /** `flags`: RENAME_NOREPLACE / RENAME_EXCHANGE (posix.ts), 0 for a plain rename. */
  rename?(ctx: Ctx, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void>;
  link?(ctx: Ctx, ino: Ino, newParent: Ino, newName: string): Promise<EntryOut>;
  /** `flags`: the open(2) flags (O_ACCMODE, O_TRUNC, O_APPEND...). */
  open?(ctx: Ctx, ino: Ino, flags: number): Promise<Open>;
  /**
   * At most `size` bytes; fewer means end of file (unless the file is direct_io). The kernel
   * layer hands the buffer to `readBuffers.release` (buffer-pool.ts) once the reply is
   * written: return a buffer nothing else keeps using.
   */
  read?(ctx: Ctx, ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer>;
  /** Bytes written. `data` is only valid until the promise settles. */
  write?(ctx: Ctx, ino: Ino, fh: Fh, offset: number, data: Buffer, writeFlags: number, flags: number): Promise<number>;
  statfs?(ctx: Ctx, ino: Ino): Promise<StatfsOut>;
  release?(ctx: Ctx, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsync?(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  flush?(ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void>;
  opendir?(ctx: Ctx, ino: Ino, flags: number): Promise<Open>;
  /**
   * Entries after cookie `offset` (0: from the start, including "." and ".."). Stop at the
   * first entry the sink refuses; only accepted READDIRPLUS entries take a reference.
   */
  readdir?(ctx: Ctx, ino: Ino, fh: Fh, offset: bigint, sink: DirentSink): Promise<void>;
  releasedir?(ctx: Ctx, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsyncdir?(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  access?(ctx: Ctx, ino: Ino, mask: number): Promise<void>;
  create?(ctx: Ctx, parent: Ino, name: string, mode: number, flags: number, umask: number): Promise<{ entry: EntryOut; open: Open }>;
  fallocate?(ctx: Ctx, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void>;
  /** The value, whole; the kernel layer handles size probes and ERANGE. */
  getxattr?(ctx: Ctx, ino: Ino, name: string, size: number): Promise<Buffer>;
  listxattr?(ctx: Ctx, ino: Ino, size: number): Promise<Buffer>;
  setxattr?(ctx: Ctx, ino: Ino, name: string, value: Buffer, flags: number): Promise<void>;
  removexattr?(ctx: Ctx, ino: Ino, name: string): Promise<void>;
  /** SEEK_DATA / SEEK_HOLE; the resulting offset. */
  lseek?(ctx: Ctx, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number>;
}
