// The filesystem contract of the core: what a mounted tree answers, callable without a kernel.
// Every filesystem fusestream serves (RemoteFs over a Remote, MemoryFs, the reference model)
// implements it; the bridge translates kernel requests into these calls and their results and
// errors into replies, and tests call them directly.
//
// The core owns the semantics here, not the bridge:
// - attributes and modes (what `stat` shows), entry and attribute lifetimes (TTLs);
// - readdir cookies, "." and "..", and which READDIRPLUS entries take a lookup reference;
// - lookup reference counting: every EntryOut with a non-zero nodeid that an op returns, and
//   every entry `readdir` hands to a sink that accepts it with an EntryOut, is one reference
//   the caller (the kernel) now holds, given back through `forget`;
// - negative entries (nodeid 0) and every errno (thrown as FsError, or as an error the one
//   mapping in bridge/errno-map.ts knows).
// An op a filesystem leaves undefined is answered ENOSYS by the kernel layer: define it and
// throw the precise errno (EROFS, EPERM...) instead wherever POSIX names one.
// Every op honours `op.signal` (interrupt, deadline, unmount): after it fires the answer has
// already been sent, so work may stop early.
import type { Fh, Ino } from '../base/ids.js';
import type { AttrOut, DirentSink, EntryOut, SetattrIn, StatfsOut } from '../base/fs-types.js';
import type { Logger } from '../observability/logger.js';

/** Who asks, and the signal that ends the asking. */
export interface OpContext {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly signal: AbortSignal;
  /** A logger carrying the request's identity; created on first use. */
  readonly log: Logger;
}

export interface OpenReply {
  fh: Fh;
  /** The kernel may keep the file's cached pages: they can only hold the current version. */
  keepCache?: boolean;
  /** Bypass the page cache for this handle (every read reaches the filesystem). */
  directIo?: boolean;
}

export interface CreateReply {
  entry: EntryOut;
  open: OpenReply;
}

export interface FileSystem {
  lookup?(op: OpContext, parent: Ino, name: string): Promise<EntryOut>;
  /** Gives back `nlookup` references (kernel FORGET); never throws. */
  forget?(ino: Ino, nlookup: bigint): void;
  getattr?(op: OpContext, ino: Ino, fh: Fh | undefined): Promise<AttrOut>;
  setattr?(op: OpContext, ino: Ino, attr: SetattrIn): Promise<AttrOut>;
  readlink?(op: OpContext, ino: Ino): Promise<string>;
  symlink?(op: OpContext, parent: Ino, name: string, target: string): Promise<EntryOut>;
  mknod?(op: OpContext, parent: Ino, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut>;
  mkdir?(op: OpContext, parent: Ino, name: string, mode: number, umask: number): Promise<EntryOut>;
  unlink?(op: OpContext, parent: Ino, name: string): Promise<void>;
  rmdir?(op: OpContext, parent: Ino, name: string): Promise<void>;
  /** `flags`: RENAME_NOREPLACE / RENAME_EXCHANGE (posix.ts), 0 for a plain rename. */
  rename?(op: OpContext, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void>;
  link?(op: OpContext, ino: Ino, newParent: Ino, newName: string): Promise<EntryOut>;
  /** `flags`: the open(2) flags (O_ACCMODE, O_TRUNC, O_APPEND...). */
  open?(op: OpContext, ino: Ino, flags: number): Promise<OpenReply>;
  /**
   * At most `size` bytes; fewer means end of file. The buffer is handed to the kernel layer,
   * which returns pooled ones (base/buffer-pool.ts) after the reply is written: return a
   * buffer nothing else keeps using.
   */
  read?(op: OpContext, ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer>;
  /** Bytes written. `data` is only valid until the promise settles. */
  write?(op: OpContext, ino: Ino, fh: Fh, offset: number, data: Buffer, writeFlags: number, flags: number): Promise<number>;
  statfs?(op: OpContext, ino: Ino): Promise<StatfsOut>;
  release?(op: OpContext, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsync?(op: OpContext, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  flush?(op: OpContext, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void>;
  opendir?(op: OpContext, ino: Ino, flags: number): Promise<OpenReply>;
  /**
   * Entries after cookie `offset` (0: from the start, including "." and ".."). Stop at the
   * first entry the sink refuses; only accepted READDIRPLUS entries take a reference.
   */
  readdir?(op: OpContext, ino: Ino, fh: Fh, offset: bigint, sink: DirentSink): Promise<void>;
  releasedir?(op: OpContext, ino: Ino, fh: Fh, flags: number): Promise<void>;
  fsyncdir?(op: OpContext, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  access?(op: OpContext, ino: Ino, mask: number): Promise<void>;
  create?(op: OpContext, parent: Ino, name: string, mode: number, flags: number, umask: number): Promise<CreateReply>;
  fallocate?(op: OpContext, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void>;
  /** The value, whole; the caller handles size probes and ERANGE. */
  getxattr?(op: OpContext, ino: Ino, name: string, size: number): Promise<Buffer>;
  listxattr?(op: OpContext, ino: Ino, size: number): Promise<Buffer>;
  setxattr?(op: OpContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void>;
  removexattr?(op: OpContext, ino: Ino, name: string): Promise<void>;
  /** SEEK_DATA / SEEK_HOLE; the resulting offset. */
  lseek?(op: OpContext, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number>;
  /** Releases everything (unmount); called once, after the last request. */
  close?(): Promise<void>;
}
