// DirentPacker: the DirentSink a readdir handler fills, packing READDIR / READDIRPLUS replies
// (struct fuse_dirent; struct fuse_direntplus = fuse_entry_out + fuse_dirent, 7.21).
//
// Invariants:
// - The reply never exceeds the size the kernel asked for: a record that does not fit is
//   refused (add returns false) and nothing of it is written, so the handler can stop and hand
//   that entry out again on the next READDIR.
// - Records are 8-byte aligned and the padding is zero (the buffer is zero-filled).
import { Errno } from '../../base/errno.js';
import { FsError } from '../../base/fs-error.js';
import * as abi from '../abi.js';
import type { Dirent, DirentSink, EntryOut } from '../ops.js';
import { writeEntryOut } from './encode.js';

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
