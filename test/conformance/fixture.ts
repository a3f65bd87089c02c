// The tree every filesystem under conformance test starts with, so that a read-only filesystem
// can run the read subset of the scenarios. A writable filesystem may start with it too: the
// writing scenarios work in their own directories and never touch it.
import type { MemoryFs } from '../../src/core/memory-fs.js';
import { rampByte } from '../support/ramp.js';

export interface FixtureFile {
  path: string;
  size: number;
  /** Content is ramp data with this seed (support/ramp.ts). */
  seed: number;
}

export const FIXTURE_ROOT = 'fixture';

export const FIXTURE: { dirs: readonly string[]; files: readonly FixtureFile[] } = {
  dirs: ['fixture', 'fixture/sub', 'fixture/empty'],
  files: [
    // Not a multiple of 4 KiB, and larger than one 128 KiB read.
    { path: 'fixture/ramp.bin', size: 300_007, seed: 11 },
    { path: 'fixture/sub/small.bin', size: 10, seed: 12 },
    { path: 'fixture/zero.bin', size: 0, seed: 13 },
  ],
};

/** Adds FIXTURE to a MemoryFs (files are generated: they take no memory until written). */
export function addFixture(fs: MemoryFs): void {
  for (const d of FIXTURE.dirs) fs.addDir(d);
  for (const f of FIXTURE.files) fs.addFile(f.path, { size: f.size, generator: (off) => rampByte(off, f.seed) });
}
