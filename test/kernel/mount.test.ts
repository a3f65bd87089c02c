// Mount preflight errors (each with its code and an actionable message), mountinfo parsing
// with escaped characters, and unmount of a path that is not mounted.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryFs } from '../../src/kernel/memory-fs.js';
import { MountError, findFuseMount, parseMountInfo, preflight, unmount } from '../../src/kernel/mount.js';
import { tempDir, withMount } from '../support/mounted.js';
import { run } from '../support/proc.js';

const cli = new URL('../../../bin/fusestream.js', import.meta.url).pathname;

const code = (c: string) => (e: unknown) => e instanceof MountError && e.code === c;

describe('mount preflight', () => {
  test('missing mountpoint, not a directory, not empty: precise codes and what to do', async () => {
    const t = tempDir();
    try {
      await assert.rejects(preflight({ mountpoint: join(t.path, 'nope') }), (e: unknown) => code('MOUNTPOINT_MISSING')(e) && /mkdir -p/.test((e as Error).message));
      writeFileSync(join(t.path, 'file'), 'x');
      await assert.rejects(preflight({ mountpoint: join(t.path, 'file') }), code('NOT_A_DIRECTORY'));
      mkdirSync(join(t.path, 'full'));
      writeFileSync(join(t.path, 'full', 'x'), 'x');
      await assert.rejects(preflight({ mountpoint: join(t.path, 'full') }), (e: unknown) => code('NOT_EMPTY')(e) && /empty directory/.test((e as Error).message));
      assert.equal(await preflight({ mountpoint: join(t.path, 'full'), allowNonEmpty: true }), join(t.path, 'full'));
    } finally {
      t.cleanup();
    }
  });

  test('a live FUSE mount there is ALREADY_MOUNTED (busy), and is left alone', async () => {
    // The probe runs in a child (the CLI): this process serves the mount and must never do
    // file I/O on it itself.
    await withMount(new MemoryFs(), async ({ mnt }) => {
      const r = await run(process.execPath, [cli, 'memfs', mnt, '--log-level', 'silent'], 20_000);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /already a FUSE mount \(busy\); unmount it first/);
      assert.ok(findFuseMount(mnt), 'still mounted');
    });
  });

  test('unmount of a path with no FUSE mount is a no-op', async () => {
    const t = tempDir();
    try {
      await unmount(t.path);
    } finally {
      t.cleanup();
    }
  });
});

describe('mountinfo', () => {
  const text = [
    '22 1 0:21 / / rw,relatime - ext4 /dev/vda rw',
    '40 22 0:39 / /tmp/with\\040space rw,nosuid,nodev,relatime - fuse.fusestream http://h/ rw,user_id=0,group_id=0',
    '41 22 0:40 / /tmp/other rw - fuse.sshfs user@h: rw',
    '42 22 0:41 / /tmp/with\\040space rw - fuse.fusestream again rw',
  ].join('\n');

  test('parses fields and unescapes octal escapes', () => {
    const m = parseMountInfo(text);
    assert.equal(m[1]?.mountpoint, '/tmp/with space');
    assert.equal(m[1]?.fstype, 'fuse.fusestream');
    assert.equal(m[1]?.minor, 39);
  });

  test('finds the topmost FUSE mount at a path, and no other', () => {
    assert.deepEqual(findFuseMount('/tmp/with space', text), { connectionId: 41, fstype: 'fuse.fusestream' });
    assert.equal(findFuseMount('/', text), undefined, 'ext4 is not FUSE');
    assert.equal(findFuseMount('/tmp/none', text), undefined);
  });
});
