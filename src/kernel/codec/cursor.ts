// The bounds-checked reader every request decoder goes through, and ProtocolError, the error a
// request that cannot be read is answered with.
//
// Invariants:
// - No read leaves [start, end): each field is checked first and an overrun throws a
//   ProtocolError naming the field ("need 8 bytes for read_in.offset, have 3").
// - Names must be NUL-terminated inside the window and valid UTF-8 (a name that is not cannot
//   exist on any of our remotes: FsError EINVAL, a precise answer rather than EIO).
// - ProtocolError carries the errno to answer with (EIO for a malformed request), so a bad
//   request gets one reply and the session goes on.
import { Errno } from '../../base/errno.js';
import { FsError } from '../../base/fs-error.js';

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
