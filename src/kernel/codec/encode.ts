// Reply encoders: typed results → the kernel's reply structs. Pure (no I/O); each function
// writes one struct and names it, with the protocol minor that added a field where it matters.
//
// Invariants:
// - Layouts follow include/uapi/linux/fuse.h at 7.45 (we refuse kernels older than 7.31, so
//   every field written here exists on every kernel we talk to); struct sizes are in abi.ts.
// - Times go through `splitMs` (clamped at 0, nsec < 1e9) so a negative or fractional ms value
//   can never produce an invalid timespec.
import * as abi from '../abi.js';
import type { Attr, AttrOut, EntryOut, OpenOut, StatfsOut } from '../ops.js';

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
