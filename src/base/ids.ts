// Branded kernel ids. They stay bigint end to end (the kernel's u64), so nothing is lost
// converting; offsets and sizes go through `toSafeNumber` once, where they enter the code.
import { randomBytes } from 'node:crypto';
import { Errno } from './errno.js';
import { FsError } from './fs-error.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A FUSE node id (inode number as seen by the kernel). */
export type Ino = Brand<bigint, 'Ino'>;
/** A file or directory handle returned by OPEN/OPENDIR/CREATE. */
export type Fh = Brand<bigint, 'Fh'>;
/** The unique id of a kernel request. */
export type Unique = Brand<bigint, 'Unique'>;

export const ROOT_INO = 1n as Ino;

export const asIno = (v: bigint): Ino => v as Ino;
export const asFh = (v: bigint): Fh => v as Fh;
export const asUnique = (v: bigint): Unique => v as Unique;

/**
 * The one checked conversion from a kernel u64 offset/size to a JS number. Values past
 * 2^53 cannot be addressed exactly, so they are EOVERFLOW rather than silently rounded.
 */
export function toSafeNumber(v: bigint, what = 'value'): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FsError(Errno.EOVERFLOW, `${what} ${v} is out of the safe integer range`);
  }
  return Number(v);
}

const processTag = randomBytes(6).toString('hex');
let uniqueCounter = 0;

/**
 * A file name part unique to this call: this process's random tag (48 bits, drawn once) and a
 * counter. Files made by an earlier process in the same directory (a crash leaves some) never
 * have it, and it costs no system call (a randomBytes per file was measurable in an untar).
 */
export function uniqueFileTag(): string {
  return `${processTag}${(uniqueCounter++).toString(36)}`;
}
