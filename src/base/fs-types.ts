// The values a filesystem hands out, in the shape every layer shares: attributes (stat),
// entries (name -> inode with cache lifetimes), statfs figures, SETATTR changes and directory
// entries. The kernel layer encodes them into the wire structs (fuse_attr, fuse_entry_out,
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

