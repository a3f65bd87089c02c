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
import type { EntryOut, FsOps } from '../base/fs-types.js';
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

/** The operations the session dispatches to (base/fs-types.ts has each one's contract). */
export interface FuseOps extends FsOps<RequestContext, OpenOut> {
  init?(info: InitInfo): void | Promise<void>;
  destroy?(): void | Promise<void>;
}
