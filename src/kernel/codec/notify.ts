// Notification encoders: messages the filesystem sends unasked (out_header.unique = 0,
// out_header.error = the FUSE_NOTIFY_* code). Pure; the session writes them.
//
// Invariants:
// - Each returns the header and the body as separate chunks for one writev: the kernel
//   rejects a notification split over two writes.
// - Names are followed by a NUL the kernel checks for (namelen excludes it).
import type { Ino } from '../../base/ids.js';
import * as abi from '../abi.js';
import { encodeOutHeader } from './encode.js';

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
