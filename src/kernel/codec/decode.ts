// Request decoding: struct fuse_in_header and the argument structs of each opcode → typed
// values. Pure (no I/O); tested with annotated byte fixtures in test/kernel.
//
// Invariants:
// - Every field is read through `Cursor` (cursor.ts), inside the argument window
//   [in_header, len - extensions): nothing is read past the request, and an overrun names the
//   field in its ProtocolError.
// - Layouts follow include/uapi/linux/fuse.h; comments name the struct and the minor that
//   introduced a field where it matters (we accept kernels from 7.31).
// - Kernel ids come out branded (Ino, Fh, Unique) and stay bigint; offsets and sizes become
//   numbers only through toSafeNumber, where a handler's argument needs one.
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

/** The decoded arguments of each opcode. Opcode names as in abi.ts. */
export type RequestBody =
  | { op: 'INIT'; major: number; minor: number; maxReadahead: number; flags: bigint }
  | { op: 'DESTROY' }
  | { op: 'LOOKUP'; name: string }
  | { op: 'FORGET'; nlookup: bigint }
  | { op: 'BATCH_FORGET'; items: { nodeid: Ino; nlookup: bigint }[] }
  | { op: 'GETATTR'; getattrFlags: number; fh: Fh }
  | {
      op: 'SETATTR';
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
  | { op: 'READLINK' }
  | { op: 'SYMLINK'; name: string; target: string }
  | { op: 'MKNOD'; mode: number; rdev: number; umask: number; name: string }
  | { op: 'MKDIR'; mode: number; umask: number; name: string }
  | { op: 'UNLINK'; name: string }
  | { op: 'RMDIR'; name: string }
  | { op: 'RENAME'; newdir: Ino; flags: number; name: string; newName: string }
  | { op: 'LINK'; oldnodeid: Ino; name: string }
  | { op: 'OPEN' | 'OPENDIR'; flags: number; openFlags: number }
  | { op: 'READ' | 'READDIR' | 'READDIRPLUS'; fh: Fh; offset: bigint; size: number; readFlags: number; lockOwner: bigint; flags: number }
  | { op: 'WRITE'; fh: Fh; offset: bigint; size: number; writeFlags: number; lockOwner: bigint; flags: number; data: Buffer }
  | { op: 'STATFS' }
  | { op: 'RELEASE' | 'RELEASEDIR'; fh: Fh; flags: number; releaseFlags: number; lockOwner: bigint }
  | { op: 'FSYNC' | 'FSYNCDIR'; fh: Fh; fsyncFlags: number }
  | { op: 'FLUSH'; fh: Fh; lockOwner: bigint }
  | { op: 'SETXATTR'; size: number; flags: number; name: string; value: Buffer }
  | { op: 'GETXATTR'; size: number; name: string }
  | { op: 'LISTXATTR'; size: number }
  | { op: 'REMOVEXATTR'; name: string }
  | { op: 'ACCESS'; mask: number }
  | { op: 'CREATE'; flags: number; mode: number; umask: number; openFlags: number; name: string }
  | { op: 'INTERRUPT'; target: Unique }
  | { op: 'FALLOCATE'; fh: Fh; offset: bigint; length: bigint; mode: number }
  | { op: 'LSEEK'; fh: Fh; offset: bigint; whence: number }
  | { op: 'UNSUPPORTED'; opcode: number };

export interface FuseRequest {
  header: InHeader;
  body: RequestBody;
}

export interface DecodeOptions {
  /** Negotiated minor; before INIT the session passes the maximum. */
  minor: number;
  /** Whether FUSE_SETXATTR_EXT was negotiated (fuse_setxattr_in grows to 16 bytes). */
  setxattrExt: boolean;
}

/**
 * Decodes one request. `buf` must hold exactly one request (header.len bytes). Throws
 * ProtocolError (or FsError for an undecodable name); the caller still has the header to
 * answer it, from `decodeInHeader`.
 */
export function decodeRequest(buf: Buffer, opts: DecodeOptions, header: InHeader = decodeInHeader(buf)): FuseRequest {
  const argsEnd = header.len - header.totalExtlen * 8;
  if (argsEnd < abi.FUSE_IN_HEADER_SIZE) throw new ProtocolError(`extension length ${header.totalExtlen * 8} exceeds the request`);
  const c = new Cursor(buf, abi.FUSE_IN_HEADER_SIZE, argsEnd);
  return { header, body: decodeBody(header.opcode, c, opts) };
}

function decodeBody(opcode: number, c: Cursor, opts: DecodeOptions): RequestBody {
  switch (opcode) {
    case abi.FUSE_INIT: {
      // fuse_init_in: major, minor, max_readahead, flags, then flags2 (7.36, with INIT_EXT).
      const major = c.u32('init_in.major');
      const minor = c.u32('init_in.minor');
      const maxReadahead = c.u32('init_in.max_readahead');
      let flags = BigInt(c.u32('init_in.flags'));
      if ((flags & abi.FUSE_INIT_EXT) !== 0n && c.remaining >= 4) flags |= BigInt(c.u32('init_in.flags2')) << 32n;
      return { op: 'INIT', major, minor, maxReadahead, flags };
    }
    case abi.FUSE_DESTROY:
      return { op: 'DESTROY' };
    case abi.FUSE_LOOKUP:
      return { op: 'LOOKUP', name: c.cstring() };
    case abi.FUSE_FORGET:
      return { op: 'FORGET', nlookup: c.u64('forget_in.nlookup') };
    case abi.FUSE_BATCH_FORGET: {
      const count = c.u32('batch_forget_in.count');
      c.skip(4);
      if (count * 16 > c.remaining) throw new ProtocolError(`batch_forget count ${count} exceeds the request`);
      const items: { nodeid: Ino; nlookup: bigint }[] = [];
      for (let i = 0; i < count; i++) items.push({ nodeid: asIno(c.u64('forget_one.nodeid')), nlookup: c.u64('forget_one.nlookup') });
      return { op: 'BATCH_FORGET', items };
    }
    case abi.FUSE_GETATTR: {
      const getattrFlags = c.u32('getattr_in.getattr_flags');
      c.skip(4);
      return { op: 'GETATTR', getattrFlags, fh: asFh(c.u64('getattr_in.fh')) };
    }
    case abi.FUSE_SETATTR: {
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
      return { op: 'SETATTR', valid, fh, size, lockOwner, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, uid, gid };
    }
    case abi.FUSE_READLINK:
      return { op: 'READLINK' };
    case abi.FUSE_SYMLINK: {
      // Two strings: the new entry's name, then the link target (fuse_symlink has no struct).
      const name = c.cstring('symlink name');
      return { op: 'SYMLINK', name, target: c.cstring('symlink target') };
    }
    case abi.FUSE_MKNOD: {
      const mode = c.u32('mknod_in.mode');
      const rdev = c.u32('mknod_in.rdev');
      const umask = c.u32('mknod_in.umask');
      c.skip(4);
      return { op: 'MKNOD', mode, rdev, umask, name: c.cstring() };
    }
    case abi.FUSE_MKDIR: {
      const mode = c.u32('mkdir_in.mode');
      const umask = c.u32('mkdir_in.umask');
      return { op: 'MKDIR', mode, umask, name: c.cstring() };
    }
    case abi.FUSE_UNLINK:
      return { op: 'UNLINK', name: c.cstring() };
    case abi.FUSE_RMDIR:
      return { op: 'RMDIR', name: c.cstring() };
    case abi.FUSE_RENAME: {
      const newdir = asIno(c.u64('rename_in.newdir'));
      const name = c.cstring('old name');
      return { op: 'RENAME', newdir, flags: 0, name, newName: c.cstring('new name') };
    }
    case abi.FUSE_RENAME2: {
      const newdir = asIno(c.u64('rename2_in.newdir'));
      const flags = c.u32('rename2_in.flags');
      c.skip(4);
      const name = c.cstring('old name');
      return { op: 'RENAME', newdir, flags, name, newName: c.cstring('new name') };
    }
    case abi.FUSE_LINK: {
      const oldnodeid = asIno(c.u64('link_in.oldnodeid'));
      return { op: 'LINK', oldnodeid, name: c.cstring() };
    }
    case abi.FUSE_OPEN:
    case abi.FUSE_OPENDIR:
      return { op: opcode === abi.FUSE_OPEN ? 'OPEN' : 'OPENDIR', flags: c.u32('open_in.flags'), openFlags: c.u32('open_in.open_flags') };
    case abi.FUSE_READ:
    case abi.FUSE_READDIR:
    case abi.FUSE_READDIRPLUS: {
      const fh = asFh(c.u64('read_in.fh'));
      const offset = c.u64('read_in.offset');
      const size = c.u32('read_in.size');
      const readFlags = c.u32('read_in.read_flags');
      const lockOwner = c.u64('read_in.lock_owner');
      const flags = c.u32('read_in.flags');
      c.skip(4);
      const op = opcode === abi.FUSE_READ ? 'READ' : opcode === abi.FUSE_READDIR ? 'READDIR' : 'READDIRPLUS';
      return { op, fh, offset, size, readFlags, lockOwner, flags };
    }
    case abi.FUSE_WRITE: {
      const fh = asFh(c.u64('write_in.fh'));
      const offset = c.u64('write_in.offset');
      const size = c.u32('write_in.size');
      const writeFlags = c.u32('write_in.write_flags');
      const lockOwner = c.u64('write_in.lock_owner');
      const flags = c.u32('write_in.flags');
      c.skip(4);
      return { op: 'WRITE', fh, offset, size, writeFlags, lockOwner, flags, data: c.bytes(size, 'write data') };
    }
    case abi.FUSE_STATFS:
      return { op: 'STATFS' };
    case abi.FUSE_RELEASE:
    case abi.FUSE_RELEASEDIR: {
      const fh = asFh(c.u64('release_in.fh'));
      const flags = c.u32('release_in.flags');
      const releaseFlags = c.u32('release_in.release_flags');
      const lockOwner = c.u64('release_in.lock_owner');
      return { op: opcode === abi.FUSE_RELEASE ? 'RELEASE' : 'RELEASEDIR', fh, flags, releaseFlags, lockOwner };
    }
    case abi.FUSE_FSYNC:
    case abi.FUSE_FSYNCDIR: {
      const fh = asFh(c.u64('fsync_in.fh'));
      const fsyncFlags = c.u32('fsync_in.fsync_flags');
      c.skip(4);
      return { op: opcode === abi.FUSE_FSYNC ? 'FSYNC' : 'FSYNCDIR', fh, fsyncFlags };
    }
    case abi.FUSE_FLUSH: {
      const fh = asFh(c.u64('flush_in.fh'));
      c.skip(8); // unused, padding
      return { op: 'FLUSH', fh, lockOwner: c.u64('flush_in.lock_owner') };
    }
    case abi.FUSE_SETXATTR: {
      const size = c.u32('setxattr_in.size');
      const flags = c.u32('setxattr_in.flags');
      if (opts.setxattrExt) c.skip(8, 'setxattr_in.setxattr_flags+padding'); // 7.33 with SETXATTR_EXT
      const name = c.cstring('xattr name');
      return { op: 'SETXATTR', size, flags, name, value: c.bytes(size, 'xattr value') };
    }
    case abi.FUSE_GETXATTR: {
      const size = c.u32('getxattr_in.size');
      c.skip(4);
      return { op: 'GETXATTR', size, name: c.cstring('xattr name') };
    }
    case abi.FUSE_LISTXATTR: {
      const size = c.u32('getxattr_in.size');
      c.skip(4);
      return { op: 'LISTXATTR', size };
    }
    case abi.FUSE_REMOVEXATTR:
      return { op: 'REMOVEXATTR', name: c.cstring('xattr name') };
    case abi.FUSE_ACCESS: {
      const mask = c.u32('access_in.mask');
      c.skip(4);
      return { op: 'ACCESS', mask };
    }
    case abi.FUSE_CREATE: {
      const flags = c.u32('create_in.flags');
      const mode = c.u32('create_in.mode');
      const umask = c.u32('create_in.umask');
      const openFlags = c.u32('create_in.open_flags');
      return { op: 'CREATE', flags, mode, umask, openFlags, name: c.cstring() };
    }
    case abi.FUSE_INTERRUPT:
      return { op: 'INTERRUPT', target: asUnique(c.u64('interrupt_in.unique')) };
    case abi.FUSE_FALLOCATE: {
      const fh = asFh(c.u64('fallocate_in.fh'));
      const offset = c.u64('fallocate_in.offset');
      const length = c.u64('fallocate_in.length');
      const mode = c.u32('fallocate_in.mode');
      c.skip(4);
      return { op: 'FALLOCATE', fh, offset, length, mode };
    }
    case abi.FUSE_LSEEK: {
      const fh = asFh(c.u64('lseek_in.fh'));
      const offset = c.u64('lseek_in.offset');
      const whence = c.u32('lseek_in.whence');
      c.skip(4);
      return { op: 'LSEEK', fh, offset, whence };
    }
    default:
      return { op: 'UNSUPPORTED', opcode };
  }
}

function timeMs(sec: bigint, nsec: number): number {
  return Number(sec) * 1000 + nsec / 1e6;
}

/**
 * struct fuse_setattr_in → SetattrIn: only the fields whose FATTR_* bit is set, times in epoch
 * ms ('now' for FATTR_ATIME_NOW / FATTR_MTIME_NOW), size through the one checked conversion
 * (EOVERFLOW past 2^53).
 */
export function setattrIn(b: Extract<RequestBody, { op: 'SETATTR' }>): SetattrIn {
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
