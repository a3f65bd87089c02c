// Request decoding: struct fuse_in_header, then one decoder per kernel argument struct. Pure
// (no I/O); tested with annotated byte fixtures in test/kernel.
//
// Which decoder reads which opcode is written once, in the dispatch table
// (session/dispatch.ts) for routed opcodes and in the session for the control opcodes (INIT,
// INTERRUPT, FORGET, BATCH_FORGET); this file only knows structs.
//
// Invariants:
// - Every field is read through `Cursor` (cursor.ts), inside the argument window
//   [in_header, len - extensions) that `argsCursor` frames: nothing is read past the request,
//   and an overrun names the field in its ProtocolError.
// - Layouts follow include/uapi/linux/fuse.h at 7.45; comments name the struct and the minor
//   that introduced a field where it matters (we accept kernels from 7.31).
// - Kernel ids come out branded (Ino, Fh, Unique) and stay bigint; offsets and sizes become
//   numbers only through toSafeNumber, where a handler's argument needs one.
// - Bytes after the last field are tolerated (the kernel pads some requests).
import { asFh, asIno, asUnique, toSafeNumber, type Fh, type Ino, type Unique } from '../../base/ids.js';
import * as abi from '../abi.js';
import type { SetattrIn } from '../ops.js';
import { Cursor, ProtocolError } from './cursor.js';

/** struct fuse_in_header (40 bytes). */
export interface InHeader {
  len: number;
  opcode: number;
  unique: Unique;
  nodeid: Ino;
  uid: number;
  gid: number;
  pid: number;
  /** Length of extensions after the arguments, in 8-byte units (7.38+). */
  totalExtlen: number;
}

export function decodeInHeader(buf: Buffer): InHeader {
  const c = new Cursor(buf);
  const h: InHeader = {
    len: c.u32('in_header.len'),
    opcode: c.u32('in_header.opcode'),
    unique: asUnique(c.u64('in_header.unique')),
    nodeid: asIno(c.u64('in_header.nodeid')),
    uid: c.u32('in_header.uid'),
    gid: c.u32('in_header.gid'),
    pid: c.u32('in_header.pid'),
    totalExtlen: c.u16('in_header.total_extlen'),
  };
  c.skip(2);
  if (h.len < abi.FUSE_IN_HEADER_SIZE || h.len > buf.length) {
    throw new ProtocolError(`in_header.len ${h.len} does not match the ${buf.length} bytes read`);
  }
  return h;
}

/** What a body decoder may depend on besides the bytes: the negotiated protocol. */
export interface DecodeOptions {
  /** Negotiated minor; before INIT the session passes the maximum. */
  minor: number;
  /** Whether FUSE_SETXATTR_EXT was negotiated (fuse_setxattr_in grows to 16 bytes). */
  setxattrExt: boolean;
}

/** Reads one argument struct. Throws ProtocolError (or FsError EINVAL for a non-UTF-8 name). */
export type BodyDecoder<T> = (c: Cursor, opts: DecodeOptions) => T;

/**
 * A cursor over the arguments of one request: after the header, before the extensions
 * (total_extlen, 7.38). `buf` must hold exactly that request (header.len bytes).
 */
export function argsCursor(buf: Buffer, header: InHeader): Cursor {
  const argsEnd = header.len - header.totalExtlen * 8;
  if (argsEnd < abi.FUSE_IN_HEADER_SIZE) throw new ProtocolError(`extension length ${header.totalExtlen * 8} exceeds the request`);
  return new Cursor(buf, abi.FUSE_IN_HEADER_SIZE, argsEnd);
}

/** Frames the arguments of one request and reads them with `decode`. */
export function decodeArgs<T>(buf: Buffer, header: InHeader, opts: DecodeOptions, decode: BodyDecoder<T>): T {
  return decode(argsCursor(buf, header), opts);
}

// ---- argument structs, in opcode order ----

/** READLINK, STATFS, DESTROY and opcodes we do not route: no arguments are read. */
export const noArgs: BodyDecoder<Record<string, never>> = () => ({});

/** LOOKUP, UNLINK, RMDIR: one NUL-terminated name (no struct). */
export const nameIn: BodyDecoder<{ name: string }> = (c) => ({ name: c.cstring() });

/** struct fuse_forget_in (FORGET). */
export const forgetIn: BodyDecoder<{ nlookup: bigint }> = (c) => ({ nlookup: c.u64('forget_in.nlookup') });

/** struct fuse_getattr_in (7.9). */
export const getattrIn: BodyDecoder<{ getattrFlags: number; fh: Fh }> = (c) => {
  const getattrFlags = c.u32('getattr_in.getattr_flags');
  c.skip(4);
  return { getattrFlags, fh: asFh(c.u64('getattr_in.fh')) };
};

/** struct fuse_setattr_in, as on the wire; `setattrIn` makes the handler's SetattrIn of it. */
export interface SetattrWire {
  valid: number;
  fh: Fh;
  size: bigint;
  lockOwner: bigint;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  uid: number;
  gid: number;
}

export const setattrWire: BodyDecoder<SetattrWire> = (c) => {
  const valid = c.u32('setattr_in.valid');
  c.skip(4);
  const fh = asFh(c.u64('setattr_in.fh'));
  const size = c.u64('setattr_in.size');
  const lockOwner = c.u64('setattr_in.lock_owner');
  const atime = c.u64('setattr_in.atime');
  const mtime = c.u64('setattr_in.mtime');
  const ctime = c.u64('setattr_in.ctime');
  const atimensec = c.u32('setattr_in.atimensec');
  const mtimensec = c.u32('setattr_in.mtimensec');
  const ctimensec = c.u32('setattr_in.ctimensec');
  const mode = c.u32('setattr_in.mode');
  c.skip(4);
  const uid = c.u32('setattr_in.uid');
  const gid = c.u32('setattr_in.gid');
  c.skip(4);
  return { valid, fh, size, lockOwner, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, uid, gid };
};

function timeMs(sec: bigint, nsec: number): number {
  return Number(sec) * 1000 + nsec / 1e6;
}

/**
 * fuse_setattr_in → SetattrIn: only the fields whose FATTR_* bit is set, times in epoch ms
 * ('now' for FATTR_ATIME_NOW / FATTR_MTIME_NOW), size through the one checked conversion
 * (FsError EOVERFLOW past 2^53). Called by the SETATTR route, inside the request's handling,
 * so an overflow is answered like any handler error.
 */
export function setattrIn(b: SetattrWire): SetattrIn {
  const out: SetattrIn = { valid: b.valid };
  const v = b.valid;
  if (v & abi.FATTR_FH) out.fh = b.fh;
  if (v & abi.FATTR_MODE) out.mode = b.mode;
  if (v & abi.FATTR_UID) out.uid = b.uid;
  if (v & abi.FATTR_GID) out.gid = b.gid;
  if (v & abi.FATTR_SIZE) out.size = toSafeNumber(b.size, 'size');
  if (v & abi.FATTR_ATIME_NOW) out.atime = 'now';
  else if (v & abi.FATTR_ATIME) out.atime = timeMs(b.atime, b.atimensec);
  if (v & abi.FATTR_MTIME_NOW) out.mtime = 'now';
  else if (v & abi.FATTR_MTIME) out.mtime = timeMs(b.mtime, b.mtimensec);
  if (v & abi.FATTR_CTIME) out.ctime = timeMs(b.ctime, b.ctimensec);
  return out;
}

/** SYMLINK: two strings, the new entry's name then the link target (no struct). */
export const symlinkIn: BodyDecoder<{ name: string; target: string }> = (c) => {
  const name = c.cstring('symlink name');
  return { name, target: c.cstring('symlink target') };
};

/** struct fuse_mknod_in (umask: 7.12) + name. */
export const mknodIn: BodyDecoder<{ mode: number; rdev: number; umask: number; name: string }> = (c) => {
  const mode = c.u32('mknod_in.mode');
  const rdev = c.u32('mknod_in.rdev');
  const umask = c.u32('mknod_in.umask');
  c.skip(4);
  return { mode, rdev, umask, name: c.cstring() };
};

/** struct fuse_mkdir_in + name. */
export const mkdirIn: BodyDecoder<{ mode: number; umask: number; name: string }> = (c) => {
  const mode = c.u32('mkdir_in.mode');
  const umask = c.u32('mkdir_in.umask');
  return { mode, umask, name: c.cstring() };
};

export interface RenameArgs {
  newdir: Ino;
  /** RENAME_NOREPLACE / RENAME_EXCHANGE; 0 for plain RENAME. */
  flags: number;
  name: string;
  newName: string;
}

/** struct fuse_rename_in + old name + new name (RENAME). */
export const renameIn: BodyDecoder<RenameArgs> = (c) => {
  const newdir = asIno(c.u64('rename_in.newdir'));
  const name = c.cstring('old name');
  return { newdir, flags: 0, name, newName: c.cstring('new name') };
};

/** struct fuse_rename2_in + old name + new name (RENAME2, 7.23). */
export const rename2In: BodyDecoder<RenameArgs> = (c) => {
  const newdir = asIno(c.u64('rename2_in.newdir'));
  const flags = c.u32('rename2_in.flags');
  c.skip(4);
  const name = c.cstring('old name');
  return { newdir, flags, name, newName: c.cstring('new name') };
};

/** struct fuse_link_in + name. */
export const linkIn: BodyDecoder<{ oldnodeid: Ino; name: string }> = (c) => {
  const oldnodeid = asIno(c.u64('link_in.oldnodeid'));
  return { oldnodeid, name: c.cstring() };
};

/** struct fuse_open_in (OPEN, OPENDIR). */
export const openIn: BodyDecoder<{ flags: number; openFlags: number }> = (c) => ({
  flags: c.u32('open_in.flags'),
  openFlags: c.u32('open_in.open_flags'),
});

/** struct fuse_read_in (READ, READDIR, READDIRPLUS; lock_owner and flags 7.9). */
export const readIn: BodyDecoder<{ fh: Fh; offset: bigint; size: number; readFlags: number; lockOwner: bigint; flags: number }> = (c) => {
  const fh = asFh(c.u64('read_in.fh'));
  const offset = c.u64('read_in.offset');
  const size = c.u32('read_in.size');
  const readFlags = c.u32('read_in.read_flags');
  const lockOwner = c.u64('read_in.lock_owner');
  const flags = c.u32('read_in.flags');
  c.skip(4);
  return { fh, offset, size, readFlags, lockOwner, flags };
};

/** struct fuse_write_in (lock_owner and flags 7.9) + `size` bytes of data, as a view. */
export const writeIn: BodyDecoder<{ fh: Fh; offset: bigint; size: number; writeFlags: number; lockOwner: bigint; flags: number; data: Buffer }> = (c) => {
  const fh = asFh(c.u64('write_in.fh'));
  const offset = c.u64('write_in.offset');
  const size = c.u32('write_in.size');
  const writeFlags = c.u32('write_in.write_flags');
  const lockOwner = c.u64('write_in.lock_owner');
  const flags = c.u32('write_in.flags');
  c.skip(4);
  return { fh, offset, size, writeFlags, lockOwner, flags, data: c.bytes(size, 'write data') };
};

/** struct fuse_release_in (RELEASE, RELEASEDIR). */
export const releaseIn: BodyDecoder<{ fh: Fh; flags: number; releaseFlags: number; lockOwner: bigint }> = (c) => {
  const fh = asFh(c.u64('release_in.fh'));
  const flags = c.u32('release_in.flags');
  const releaseFlags = c.u32('release_in.release_flags');
  const lockOwner = c.u64('release_in.lock_owner');
  return { fh, flags, releaseFlags, lockOwner };
};

/** struct fuse_fsync_in (FSYNC, FSYNCDIR). */
export const fsyncIn: BodyDecoder<{ fh: Fh; fsyncFlags: number }> = (c) => {
  const fh = asFh(c.u64('fsync_in.fh'));
  const fsyncFlags = c.u32('fsync_in.fsync_flags');
  c.skip(4);
  return { fh, fsyncFlags };
};

/** struct fuse_setxattr_in (+ setxattr_flags and padding with SETXATTR_EXT, 7.33) + name + value. */
export const setxattrIn: BodyDecoder<{ size: number; flags: number; name: string; value: Buffer }> = (c, opts) => {
  const size = c.u32('setxattr_in.size');
  const flags = c.u32('setxattr_in.flags');
  if (opts.setxattrExt) c.skip(8, 'setxattr_in.setxattr_flags+padding');
  const name = c.cstring('xattr name');
  return { size, flags, name, value: c.bytes(size, 'xattr value') };
};

/** struct fuse_getxattr_in + name (GETXATTR). */
export const getxattrIn: BodyDecoder<{ size: number; name: string }> = (c) => {
  const size = c.u32('getxattr_in.size');
  c.skip(4);
  return { size, name: c.cstring('xattr name') };
};

/** struct fuse_getxattr_in, no name (LISTXATTR). */
export const listxattrIn: BodyDecoder<{ size: number }> = (c) => {
  const size = c.u32('getxattr_in.size');
  c.skip(4);
  return { size };
};

/** REMOVEXATTR: one NUL-terminated xattr name (no struct). */
export const removexattrIn: BodyDecoder<{ name: string }> = (c) => ({ name: c.cstring('xattr name') });

/** struct fuse_flush_in. */
export const flushIn: BodyDecoder<{ fh: Fh; lockOwner: bigint }> = (c) => {
  const fh = asFh(c.u64('flush_in.fh'));
  c.skip(8); // unused, padding
  return { fh, lockOwner: c.u64('flush_in.lock_owner') };
};

/** struct fuse_init_in: major, minor, max_readahead, flags, then flags2 (7.36, with INIT_EXT). */
export const initIn: BodyDecoder<{ major: number; minor: number; maxReadahead: number; flags: bigint }> = (c) => {
  const major = c.u32('init_in.major');
  const minor = c.u32('init_in.minor');
  const maxReadahead = c.u32('init_in.max_readahead');
  let flags = BigInt(c.u32('init_in.flags'));
  if ((flags & abi.FUSE_INIT_EXT) !== 0n && c.remaining >= 4) flags |= BigInt(c.u32('init_in.flags2')) << 32n;
  return { major, minor, maxReadahead, flags };
};

/** struct fuse_access_in. */
export const accessIn: BodyDecoder<{ mask: number }> = (c) => {
  const mask = c.u32('access_in.mask');
  c.skip(4);
  return { mask };
};

/** struct fuse_create_in (umask and open_flags 7.12) + name. */
export const createIn: BodyDecoder<{ flags: number; mode: number; umask: number; openFlags: number; name: string }> = (c) => {
  const flags = c.u32('create_in.flags');
  const mode = c.u32('create_in.mode');
  const umask = c.u32('create_in.umask');
  const openFlags = c.u32('create_in.open_flags');
  return { flags, mode, umask, openFlags, name: c.cstring() };
};

/** struct fuse_interrupt_in (INTERRUPT, 7.8). */
export const interruptIn: BodyDecoder<{ target: Unique }> = (c) => ({ target: asUnique(c.u64('interrupt_in.unique')) });

/** struct fuse_batch_forget_in + count × struct fuse_forget_one (BATCH_FORGET, 7.16). */
export const batchForgetIn: BodyDecoder<{ items: { nodeid: Ino; nlookup: bigint }[] }> = (c) => {
  const count = c.u32('batch_forget_in.count');
  c.skip(4);
  if (count * 16 > c.remaining) throw new ProtocolError(`batch_forget count ${count} exceeds the request`);
  const items: { nodeid: Ino; nlookup: bigint }[] = [];
  for (let i = 0; i < count; i++) items.push({ nodeid: asIno(c.u64('forget_one.nodeid')), nlookup: c.u64('forget_one.nlookup') });
  return { items };
};

/** struct fuse_fallocate_in (7.19). */
export const fallocateIn: BodyDecoder<{ fh: Fh; offset: bigint; length: bigint; mode: number }> = (c) => {
  const fh = asFh(c.u64('fallocate_in.fh'));
  const offset = c.u64('fallocate_in.offset');
  const length = c.u64('fallocate_in.length');
  const mode = c.u32('fallocate_in.mode');
  c.skip(4);
  return { fh, offset, length, mode };
};

/** struct fuse_lseek_in (7.24). */
export const lseekIn: BodyDecoder<{ fh: Fh; offset: bigint; whence: number }> = (c) => {
  const fh = asFh(c.u64('lseek_in.fh'));
  const offset = c.u64('lseek_in.offset');
  const whence = c.u32('lseek_in.whence');
  c.skip(4);
  return { fh, offset, whence };
};
