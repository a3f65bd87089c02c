// The conformance scenarios on MemoryFs called directly (no kernel): the reference model must
// pass all of them. After each scenario no file handle is open, and once all ran every node
// MemoryFs still holds is reachable from the root: a lookup reference the driver forgot to
// give back would keep an unlinked node alive and show here.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { MemoryFs } from '../../src/core/memory-fs.js';
import { CoreDriver } from '../support/core-driver.js';
import { joinPath, type FsDriver } from '../support/fs-driver.js';
import { addFixture } from './fixture.js';
import { ALL_CAPABILITIES, runConformance } from './scenarios.js';

const fs = new MemoryFs();
addFixture(fs);

/** Entries reachable from `dir` (each name is one node: the scenarios make no hard links). */
async function countReachable(d: FsDriver, dir: string): Promise<number> {
  let n = 0;
  for (const name of await d.readdir(dir)) {
    const path = joinPath(dir, name);
    n += 1 + ((await d.lstat(path)).kind === 'dir' ? await countReachable(d, path) : 0);
  }
  return n;
}

runConformance('MemoryFs, direct', () => Promise.resolve(new CoreDriver(fs)), ALL_CAPABILITIES, {
  afterEach: () => assert.equal(fs.openHandleCount, 0, 'open handles after the scenario'),
});

after(async () => {
  const d = new CoreDriver(fs);
  assert.equal(fs.nodeCount, 1 + (await countReachable(d, '')), 'live nodes = the root + the reachable entries');
  await d.dispose();
});
