// Ramp data for data-layer tests: byte i of an object with seed s is a function of (i, s), so
// any range read back can be checked on its own. Period 251 (prime) so that neither 4 KiB
// pages nor 1 MiB chunks line up with it, and a misplaced range shows.
export function rampAt(i: number, seed = 0): number {
  return (i + seed * 7 + Math.floor(i / 251)) % 251;
}

export function rampBuffer(start: number, length: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let k = 0; k < length; k++) b[k] = rampAt(start + k, seed);
  return b;
}

/** Index of the first wrong byte of `buf` read at `start`, or -1. */
export function firstRampMismatch(buf: Uint8Array, start: number, seed = 0): number {
  for (let k = 0; k < buf.length; k++) if (buf[k] !== rampAt(start + k, seed)) return k;
  return -1;
}
