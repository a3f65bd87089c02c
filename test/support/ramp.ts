// Ramp test data, the one generator of the tests and benchmarks: the byte at offset i of an
// object with seed s is a fixed function of (i, s), so any range of any file is checkable
// without keeping a copy.
// - Ranges shifted by any amount differ (the offset goes through a golden-ratio multiply and
//   its high byte is kept, unlike i & 0xff), so a misplaced range shows.
// - Objects with different seeds differ (the seed is mixed into the offset bits, not added
//   to it, so one seed is not another seed's shifted copy), so bytes served from the wrong
//   object show.
// - Seed 0 is the default: a file written with writeRampFile(path, size) is rampBuffer(0, size).
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const TWO_32 = 2 ** 32;

function seedMix(seed: number): number {
  return seed === 0 ? 0 : Math.imul(seed ^ 0x5bd1e995, 0x85ebca6b) >>> 0;
}

export function rampByte(offset: number, seed = 0): number {
  const lo = offset >>> 0;
  const hi = Math.floor(offset / TWO_32);
  const s = seedMix(seed);
  return ((Math.imul(lo ^ s, 0x9e3779b1) >>> 24) ^ (lo >>> 12) ^ hi ^ (s >>> 24)) & 0xff;
}

export function rampBuffer(offset: number, length: number, seed = 0): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = rampByte(offset + i, seed);
  return buf;
}

/** Index in `buf` of the first byte that is not ramp data for `offset` and `seed`, or -1. */
export function checkRamp(buf: Uint8Array, offset: number, seed = 0): number {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== rampByte(offset + i, seed)) return i;
  return -1;
}

/** Asserts that `buf` is the ramp at `offset` for `seed`, naming the first wrong byte. */
export function assertRamp(buf: Uint8Array, offset: number, seed: number, what: string): void {
  const bad = checkRamp(buf, offset, seed);
  assert.equal(bad, -1, `${what}: wrong byte at offset ${offset + bad}`);
}

/** Writes `size` bytes of ramp data to `path` in 1 MiB chunks, with backpressure. */
export async function writeRampFile(path: string, size: number, seed = 0): Promise<void> {
  const chunkBytes = 1024 * 1024;
  const out = createWriteStream(path);
  const closed = once(out, 'close');
  try {
    for (let off = 0; off < size; off += chunkBytes) {
      const chunk = rampBuffer(off, Math.min(chunkBytes, size - off), seed);
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await closed;
  } catch (err) {
    out.destroy();
    throw err;
  }
}
