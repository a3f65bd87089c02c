// The kernel's page cache is per inode, not per handle. A file replaced on the remote while a
// slow reader still reads the old version, and another process opens the new one: each read
// returns bytes of exactly one version (the old reader the old bytes, the new reader the new
// ones), and an open after the old reader finished sees only the new version. Local-directory
// remote, a real mount, each reader its own child process (support/mount-driver.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { MountDriver } from '../support/mount-driver.js';
import { checkRamp, rampBuffer } from '../support/ramp.js';
import { tempDir } from '../support/mounted.js';
import { withRemoteMount } from '../support/remote-mount.js';

const SIZE = 512 * 1024;
const O_RDONLY = 0;

/** Reads the whole file through `fd` and says which version (seed) every byte belongs to. */
async function readVersion(d: MountDriver, fd: number): Promise<number> {
  const buf = await d.read(fd, SIZE, 0);
  assert.equal(buf.length, SIZE);
  for (const seed of [1, 2]) if (checkRamp(buf, 0, seed) === -1) return seed;
  const firstOld = checkRamp(buf, 0, 1);
  const firstNew = checkRamp(buf, 0, 2);
  assert.fail(`a read mixed two versions (not v1 from byte ${firstOld}, not v2 from byte ${firstNew})`);
}

describe('versions in the page cache', () => {
  test('a slow reader of v1 never makes a reader of v2 see v1 pages, and a later open sees only v2', async () => {
    const tmp = tempDir();
    const root = join(tmp.path, 'remote');
    mkdirSync(root);
    const file = join(root, 'f.bin');
    writeFileSync(file, rampBuffer(0, SIZE, 1));
    utimesSync(file, new Date(Date.UTC(2026, 0, 1)), new Date(Date.UTC(2026, 0, 1)));
    const remote = new LocalRemote({ root });
    try {
      // attrTtl 0: every open confirms the version with the remote.
      await withRemoteMount(remote, async ({ mnt }) => {
        const slow = new MountDriver(mnt);
        const other = new MountDriver(mnt);
        try {
          const fd1 = await slow.open('f.bin', O_RDONLY);
          assert.equal(await readVersion(slow, fd1), 1, 'the first reader reads v1');
          // Replace the file on the remote: same size, other bytes, other mtime.
          writeFileSync(join(root, 'f.new'), rampBuffer(0, SIZE, 2));
          utimesSync(join(root, 'f.new'), new Date(Date.UTC(2026, 0, 2)), new Date(Date.UTC(2026, 0, 2)));
          renameSync(join(root, 'f.new'), file);
          const fd2 = await other.open('f.bin', O_RDONLY);
          // The slow reader reads again through its v1 handle: v1 pages go back into the
          // inode's page cache (served from its v1 cache file).
          assert.equal(await readVersion(slow, fd1), 1, 'the old handle keeps reading v1');
          assert.equal(await readVersion(other, fd2), 2, 'the reader of v2 sees only v2');
          await slow.close(fd1);
          await other.close(fd2);
          const fd3 = await other.open('f.bin', O_RDONLY);
          assert.equal(await readVersion(other, fd3), 2, 'an open after the old reader finished sees only v2');
          await other.close(fd3);
        } finally {
          await slow.dispose();
          await other.dispose();
        }
      }, { core: { attrTtlMs: 0, entryTtlMs: 0 } });
    } finally {
      await remote.close();
      tmp.cleanup();
    }
  });
});
