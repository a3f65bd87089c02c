// Ramp test data: the byte at offset i is a fixed function of i, so any range of any file is
// checkable without keeping a copy. The function mixes the offset (golden-ratio multiply,
// high byte) so that ranges shifted by any amount differ, unlike i & 0xff.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const TWO_32 = 2 ** 32;

export function rampByte(offset: number): number {
  const lo = offset >>> 0;
  const hi = Math.floor(offset / TWO_32);
  return ((Math.imul(lo, 0x9e3779b1) >>> 24) ^ (lo >>> 12) ^ hi) & 0xff;
}

export function rampBuffer(offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  fillRamp(buf, offset);
  return buf;
}

function fillRamp(buf: Uint8Array, offset: number): void {
  for (let i = 0; i < buf.length; i++) buf[i] = rampByte(offset + i);
}

/** Index in `buf` of the first byte that is not ramp data for `offset`, or -1. */
export function checkRamp(buf: Uint8Array, offset: number): number {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== rampByte(offset + i)) return i;
  return -1;
}

/** Writes `size` bytes of ramp data to `path` in 1 MiB chunks, with backpressure. */
export async function writeRampFile(path: string, size: number): Promise<void> {
  const chunkBytes = 1024 * 1024;
  const out = createWriteStream(path);
  const closed = once(out, 'close');
  try {
    for (let off = 0; off < size; off += chunkBytes) {
      const chunk = rampBuffer(off, Math.min(chunkBytes, size - off));
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await closed;
  } catch (err) {
    out.destroy();
    throw err;
  }
}
