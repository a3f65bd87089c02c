// The conformance scenarios on MemoryFs through a real mount (uid root): the same answers as
// the direct run, errnos included, with the kernel in between. Client syscalls run in one
// child process (support/mount-driver.ts), never in this process, which serves the mount.
import { MemoryFs } from '../../src/core/memory-fs.js';
import { openMountDriver } from '../support/mount-driver.js';
import { addFixture } from './fixture.js';
import { ALL_CAPABILITIES, runConformance } from './scenarios.js';

runConformance(
  'MemoryFs, mounted',
  () => {
    const fs = new MemoryFs();
    addFixture(fs);
    return openMountDriver(fs);
  },
  ALL_CAPABILITIES,
);
