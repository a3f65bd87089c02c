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
import type { AttrOut, DirentSink, EntryOut, SetattrIn, StatfsOut } from '../base/fs-types.js';
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

export type { Attr, AttrOut, Dirent, DirentSink, EntryOut, SetattrIn, StatfsOut } from '../base/fs-types.js';

export interface OpenOut {
  fh: Fh;
  /** FOPEN_* flags (abi.ts). */
  openFlags: number;
}

export interface CreateOut {
  entry: EntryOut;
  open: OpenOut;
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
