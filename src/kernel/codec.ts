// The FUSE wire codec: bytes from /dev/fuse → a typed request, and replies/notifications →
// bytes. Everything here is pure (no I/O), so it is tested with annotated byte fixtures.
//
// Invariants:
// - Decoding never reads outside the request: every field goes through `Cursor`, which throws
//   ProtocolError on overrun, and names must be NUL-terminated inside the request.
// - A ProtocolError carries the errno to answer with (EIO for a malformed request of a known
//   opcode, ENOSYS for an opcode we do not know), so a bad request gets one reply and the
//   session goes on.
// - Layouts follow include/uapi/linux/fuse.h at 7.45; comments name the struct and the minor
//   that introduced a field where it matters.
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { asFh, asIno, asUnique, type Fh, type Ino, type Unique } from '../base/ids.js';
import * as abi from './abi.js';
import type { Attr, AttrOut, Dirent, DirentSink, EntryOut, OpenOut, StatfsOut } from './ops.js';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly errno: number;
  constructor(message: string, errno: number = Errno.EIO, options?: { cause?: unknown }) {
    super(message, options);
    this.errno = errno;
  }
}

/** A bounds-checked little-endian reader over one request. */
export class Cursor {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  get position(): number {
    return this.#pos;
  }

  #need(n: number, what: string): number {
    if (this.#end - this.#pos < n) {
      throw new ProtocolError(`truncated request: need ${n} bytes for ${what}, have ${this.#end - this.#pos}`);
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u16(what = 'u16'): number {
    return this.#buf.readUInt16LE(this.#need(2, what));
  }

  u32(what = 'u32'): number {
    return this.#buf.readUInt32LE(this.#need(4, what));
  }

  i32(what = 'i32'): number {
    return this.#buf.readInt32LE(this.#need(4, what));
  }

  u64(what = 'u64'): bigint {
    return this.#buf.readBigUInt64LE(this.#need(8, what));
  }

  skip(n: number, what = 'padding'): void {
    this.#need(n, what);
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number, what = 'bytes'): Buffer {
    const at = this.#need(n, what);
    return this.#buf.subarray(at, at + n);
  }

  /** A view of everything left. */
  rest(): Buffer {
    const at = this.#pos;
    this.#pos = this.#end;
    return this.#buf.subarray(at, this.#end);
  }

  /** A NUL-terminated name, decoded as UTF-8. */
  cstring(what = 'name'): string {
    const nul = this.#buf.indexOf(0, this.#pos);
    if (nul < 0 || nul >= this.#end) throw new ProtocolError(`${what} is not NUL-terminated`);
    const raw = this.#buf.subarray(this.#pos, nul);
    this.#pos = nul + 1;
    return decodeName(raw, what);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(raw: Buffer, what: string): string {
  try {
    return utf8.decode(raw);
  } catch (cause) {
    // A name that is not UTF-8 cannot exist on any of our remotes: precise answer, not EIO.
    throw new FsError(Errno.EINVAL, `${what} is not valid UTF-8`, { cause });
  }
}

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

// ---------------------------------------------------------------------------------------
// Encoders. Each writes one struct at `off` of a buffer the caller sized (sizes in abi.ts).

/** struct fuse_out_header (16 bytes). `error` is 0 or a negative errno (or a notify code). */
export function encodeOutHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.allocUnsafe(abi.FUSE_OUT_HEADER_SIZE);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(unique, 8);
  return b;
}

function splitMs(ms: number): [bigint, number] {
  const clamped = Math.max(0, ms);
  const sec = Math.floor(clamped / 1000);
  const nsec = Math.min(999_999_999, Math.round((clamped - sec * 1000) * 1e6));
  return [BigInt(sec), nsec];
}

/** struct fuse_attr (88 bytes). */
export function writeAttr(b: Buffer, off: number, a: Attr): void {
  const [as, ans] = splitMs(a.atimeMs);
  const [ms, mns] = splitMs(a.mtimeMs);
  const [cs, cns] = splitMs(a.ctimeMs);
  b.writeBigUInt64LE(a.ino, off + 0); // ino
  b.writeBigUInt64LE(BigInt(a.size), off + 8); // size
  b.writeBigUInt64LE(BigInt(a.blocks ?? Math.ceil(a.size / 512)), off + 16); // blocks (512 B units)
  b.writeBigUInt64LE(as, off + 24); // atime
  b.writeBigUInt64LE(ms, off + 32); // mtime
  b.writeBigUInt64LE(cs, off + 40); // ctime
  b.writeUInt32LE(ans, off + 48); // atimensec
  b.writeUInt32LE(mns, off + 52); // mtimensec
  b.writeUInt32LE(cns, off + 56); // ctimensec
  b.writeUInt32LE(a.mode >>> 0, off + 60); // mode
  b.writeUInt32LE(a.nlink, off + 64); // nlink
  b.writeUInt32LE(a.uid, off + 68); // uid
  b.writeUInt32LE(a.gid, off + 72); // gid
  b.writeUInt32LE(a.rdev ?? 0, off + 76); // rdev
  b.writeUInt32LE(a.blksize ?? 4096, off + 80); // blksize (7.9)
  b.writeUInt32LE(0, off + 84); // flags (FUSE_ATTR_SUBMOUNT etc.; 7.33)
}

/** struct fuse_entry_out (128 bytes). */
export function writeEntryOut(b: Buffer, off: number, e: EntryOut): void {
  const [es, ens] = splitMs(e.entryTtlMs);
  const [as, ans] = splitMs(e.attrTtlMs);
  b.writeBigUInt64LE(e.nodeid, off + 0); // nodeid
  b.writeBigUInt64LE(e.generation, off + 8); // generation
  b.writeBigUInt64LE(es, off + 16); // entry_valid
  b.writeBigUInt64LE(as, off + 24); // attr_valid
  b.writeUInt32LE(ens, off + 32); // entry_valid_nsec
  b.writeUInt32LE(ans, off + 36); // attr_valid_nsec
  writeAttr(b, off + 40, e.attr);
}

export function encodeEntryOut(e: EntryOut): Buffer {
  const b = Buffer.alloc(abi.FUSE_ENTRY_OUT_SIZE);
  writeEntryOut(b, 0, e);
  return b;
}

/** struct fuse_attr_out (104 bytes). */
export function encodeAttrOut(a: AttrOut): Buffer {
  const b = Buffer.alloc(abi.FUSE_ATTR_OUT_SIZE);
  const [s, ns] = splitMs(a.attrTtlMs);
  b.writeBigUInt64LE(s, 0); // attr_valid
  b.writeUInt32LE(ns, 8); // attr_valid_nsec
  b.writeUInt32LE(0, 12); // dummy
  writeAttr(b, 16, a.attr);
  return b;
}

/** struct fuse_open_out (16 bytes). */
export function encodeOpenOut(o: OpenOut): Buffer {
  const b = Buffer.alloc(abi.FUSE_OPEN_OUT_SIZE);
  b.writeBigUInt64LE(o.fh, 0); // fh
  b.writeUInt32LE(o.openFlags >>> 0, 8); // open_flags
  b.writeInt32LE(0, 12); // backing_id (passthrough; unused)
  return b;
}

/** fuse_entry_out followed by fuse_open_out, the CREATE reply. */
export function encodeCreateOut(entry: EntryOut, open: OpenOut): Buffer {
  return Buffer.concat([encodeEntryOut(entry), encodeOpenOut(open)]);
}

/** struct fuse_statfs_out = fuse_kstatfs (80 bytes). */
export function encodeStatfsOut(s: StatfsOut): Buffer {
  const b = Buffer.alloc(abi.FUSE_KSTATFS_SIZE);
  b.writeBigUInt64LE(BigInt(s.blocks), 0); // blocks
  b.writeBigUInt64LE(BigInt(s.bfree), 8); // bfree
  b.writeBigUInt64LE(BigInt(s.bavail), 16); // bavail
  b.writeBigUInt64LE(BigInt(s.files), 24); // files
  b.writeBigUInt64LE(BigInt(s.ffree), 32); // ffree
  b.writeUInt32LE(s.bsize, 40); // bsize
  b.writeUInt32LE(s.namelen, 44); // namelen
  b.writeUInt32LE(s.frsize, 48); // frsize
  return b; // 52: padding, 56: spare[6], all zero
}

/** struct fuse_write_out (8 bytes). */
export function encodeWriteOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** struct fuse_getxattr_out (8 bytes): the size a GETXATTR/LISTXATTR with size 0 asks for. */
export function encodeXattrSizeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** struct fuse_lseek_out (8 bytes). */
export function encodeLseekOut(offset: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(offset), 0);
  return b;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: bigint;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

/** struct fuse_init_out (64 bytes; flags2 from 7.36 is the high half of `flags`). */
export function encodeInitOut(o: InitOut): Buffer {
  const b = Buffer.alloc(abi.FUSE_INIT_OUT_SIZE);
  b.writeUInt32LE(o.major, 0); // major
  b.writeUInt32LE(o.minor, 4); // minor
  b.writeUInt32LE(o.maxReadahead, 8); // max_readahead
  b.writeUInt32LE(Number(o.flags & 0xffffffffn), 12); // flags
  b.writeUInt16LE(o.maxBackground, 16); // max_background
  b.writeUInt16LE(o.congestionThreshold, 18); // congestion_threshold
  b.writeUInt32LE(o.maxWrite, 20); // max_write
  b.writeUInt32LE(o.timeGran, 24); // time_gran
  b.writeUInt16LE(o.maxPages, 28); // max_pages (7.28)
  b.writeUInt16LE(0, 30); // map_alignment
  b.writeUInt32LE(Number((o.flags >> 32n) & 0xffffffffn), 32); // flags2 (7.36)
  return b; // 36: max_stack_depth, 40: request_timeout, unused: zero
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Packs READDIR / READDIRPLUS replies into one buffer of at most `maxBytes`, 8-byte aligned
 * records (struct fuse_dirent / fuse_direntplus). It is the DirentSink handed to readdir.
 */
export class DirentPacker implements DirentSink {
  readonly plus: boolean;
  readonly #buf: Buffer;
  #used = 0;
  #count = 0;

  constructor(maxBytes: number, plus: boolean) {
    this.plus = plus;
    this.#buf = Buffer.alloc(Math.max(0, maxBytes));
  }

  get count(): number {
    return this.#count;
  }

  add(d: Dirent, entry?: EntryOut): boolean {
    const name = Buffer.from(d.name, 'utf8');
    if (name.length === 0 || name.length > abi.FUSE_NAME_MAX) throw new FsError(Errno.ENAMETOOLONG, `bad dirent name length ${name.length}`);
    const head = this.plus ? abi.FUSE_DIRENTPLUS_SIZE : abi.FUSE_DIRENT_SIZE;
    const rec = align8(head + name.length);
    if (this.#used + rec > this.#buf.length) return false;
    let off = this.#used;
    if (this.plus) {
      if (entry) writeEntryOut(this.#buf, off, entry);
      // else: nodeid 0 and zero attrs; the kernel then takes no reference (like "." and "..")
      off += abi.FUSE_ENTRY_OUT_SIZE;
    }
    this.#buf.writeBigUInt64LE(d.ino, off + 0); // dirent.ino
    this.#buf.writeBigUInt64LE(d.offset, off + 8); // dirent.off: cookie for the next READDIR
    this.#buf.writeUInt32LE(name.length, off + 16); // dirent.namelen
    this.#buf.writeUInt32LE(d.type, off + 20); // dirent.type (DT_*)
    name.copy(this.#buf, off + 24); // name, no NUL; the padding stays zero
    this.#used += rec;
    this.#count++;
    return true;
  }

  /** The packed records (a view). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#used);
  }
}

// Notifications (unique = 0, error = notify code).

/** FUSE_NOTIFY_INVAL_INODE: fuse_notify_inval_inode_out (24 bytes). off < 0: attributes only; len <= 0: to EOF. */
export function encodeNotifyInvalInode(ino: Ino, off: bigint, len: bigint): Buffer[] {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(ino, 0); // ino
  b.writeBigInt64LE(off, 8); // off
  b.writeBigInt64LE(len, 16); // len
  return [encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE + 24, abi.FUSE_NOTIFY_INVAL_INODE, 0n), b];
}

/** FUSE_NOTIFY_INVAL_ENTRY: fuse_notify_inval_entry_out (16 bytes) + name + NUL. */
export function encodeNotifyInvalEntry(parent: Ino, name: string, flags = 0): Buffer[] {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(16 + n.length + 1);
  b.writeBigUInt64LE(parent, 0); // parent
  b.writeUInt32LE(n.length, 8); // namelen
  b.writeUInt32LE(flags, 12); // flags (FUSE_EXPIRE_ONLY, 7.38)
  n.copy(b, 16); // name, then the NUL left by alloc
  return [encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE + b.length, abi.FUSE_NOTIFY_INVAL_ENTRY, 0n), b];
}

/** FUSE_NOTIFY_DELETE: fuse_notify_delete_out (24 bytes) + name + NUL. */
export function encodeNotifyDelete(parent: Ino, child: Ino, name: string): Buffer[] {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(24 + n.length + 1);
  b.writeBigUInt64LE(parent, 0); // parent
  b.writeBigUInt64LE(child, 8); // child
  b.writeUInt32LE(n.length, 16); // namelen
  n.copy(b, 24);
  return [encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE + b.length, abi.FUSE_NOTIFY_DELETE, 0n), b];
}
