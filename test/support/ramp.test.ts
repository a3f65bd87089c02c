// The properties the ramp promises (ramp.ts): a function of (offset, seed), shifted ranges
// differ, seeds differ, seed 0 is the default, and offsets past 4 GiB do not wrap.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRamp, rampBuffer, rampByte } from './ramp.js';

describe('ramp data', () => {
  test('a range read at any offset is the same bytes as rampByte gives one by one', () => {
    for (const [offset, seed] of [[0, 0], [12_345, 7], [2 ** 32 - 3, 1], [5 * 2 ** 32 + 17, 99]] as const) {
      const buf = rampBuffer(offset, 4096, seed);
      for (let i = 0; i < buf.length; i++) assert.equal(buf[i], rampByte(offset + i, seed));
      assert.equal(checkRamp(buf, offset, seed), -1);
      assert.deepEqual(rampBuffer(offset, 4096, seed), buf, 'deterministic');
    }
    assert.deepEqual(rampBuffer(100, 64), rampBuffer(100, 64, 0), 'seed 0 is the default');
  });

  test('a 64-byte range shifted by 1..70,000 bytes differs from the original, for several seeds', () => {
    for (const seed of [0, 1, 2, 1000]) {
      for (const base of [0, 4096, 1 << 20, 2 ** 32 - 32]) {
        const ref = rampBuffer(base, 64, seed);
        for (let shift = 1; shift <= 70_000; shift++) {
          if (checkRamp(ref, base + shift, seed) === -1) assert.fail(`seed ${seed}: range at ${base} equals the range at ${base + shift}`);
        }
      }
    }
  });

  test('objects with different seeds differ, even shifted', () => {
    const seeds = [0, 1, 2, 3, 256, 257, 65_536, 123_456_789];
    for (const a of seeds) {
      const ref = rampBuffer(0, 64, a);
      for (const b of seeds) {
        if (a === b) continue;
        for (let shift = 0; shift <= 70_000; shift++) {
          if (checkRamp(ref, shift, b) === -1) assert.fail(`seed ${a} at 0 equals seed ${b} at ${shift}`);
        }
      }
    }
  });

  test('checkRamp names the first wrong byte', () => {
    const buf = rampBuffer(1000, 100, 3);
    buf[42] = (buf[42] ?? 0) ^ 1;
    assert.equal(checkRamp(buf, 1000, 3), 42);
    assert.equal(checkRamp(rampBuffer(1000, 100, 3), 1000, 4), 0);
  });
});
