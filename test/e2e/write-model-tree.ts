// What the remote holds before a write-model run: a few files with names the op sequence uses
// (so it rewrites, renames over and unlinks files the mount has not fetched yet), seeded ramp
// data. Shared by write-model.test.ts and write-model-shrink.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../support/prng.js';
import { rampBuffer } from '../support/ramp.js';

export function writeInitialTree(dir: string, seed: number): void {
  const rnd = prng(seed * 31);
  mkdirSync(join(dir, 'd0'));
  for (const p of ['f0', 'f2', 'd0/f1']) writeFileSync(join(dir, p), rampBuffer(0, Math.floor(rnd() * 300 * 1024), seed * 100 + p.length));
}
