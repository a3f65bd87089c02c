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
import type { EntryOut, FsOps } from '../base/fs-types.js';
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

/**
 * What the kernel has cached, as the core may ask to drop it: a file's pages and attributes,
 * a name → inode entry (positive or negative). Sent off the request path (the bridge queues,
 * coalesces and writes from a thread): call it from anywhere, never wait for it.
 */
export interface KernelCache {
  invalidateInode(ino: Ino): void;
  invalidateEntry(parent: Ino, name: string): void;
}

/** The core's filesystem contract (base/fs-types.ts has each operation's). */
export interface FileSystem extends FsOps<OpContext, OpenReply> {
  /** Releases everything (unmount); called once, after the last request. */
  close?(): Promise<void>;
}
