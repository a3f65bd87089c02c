// Mount preflight errors (each with its code and an actionable message), symlink-safe path
// resolution, mountinfo parsing with escaped characters, the mount option string, and the
// no-op paths of unmount / cleanStaleMount / abortConnection. Only the "live FUSE mount" test
// mounts for real (through the test harness), and it probes from a child process.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryFs } from '../../src/core/memory-fs.js';
import { MountError, abortConnection, cleanStaleMount, findFuseMount, mountOptionString, parseMountInfo, preflight, resolveMountpoint, unmount } from '../../src/kernel/mount.js';
import { tempDir, withMount } from '../support/mounted.js';
import { run } from '../support/proc.js';

const cli = new URL('../../../bin/fusestream.js', import.meta.url).pathname;

const code = (c: string, message?: RegExp) => (e: unknown) => e instanceof MountError && e.code === c && (message === undefined || message.test(e.message));

/**
 * /proc/self/mountinfo lines, except FUSE mounts outside `under`: other suites on this machine
 * mount and unmount FUSE file systems while we run, and those are not ours to compare.
 */
function stableMounts(under: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => {
      const [m] = parseMountInfo(line);
      if (!m) return line !== '';
      return !m.fstype.startsWith('fuse') || m.mountpoint === under || m.mountpoint.startsWith(`${under}/`);
    });
}

describe('mount preflight', () => {
  test('missing mountpoint, not a directory, not empty: precise codes and what to do', async () => {
    const t = tempDir();
    try {
      await assert.rejects(preflight({ mountpoint: join(t.path, 'nope') }), code('MOUNTPOINT_MISSING', /mkdir -p/));
      await assert.rejects(preflight({ mountpoint: join(t.path, 'no', 'such', 'dir') }), code('MOUNTPOINT_MISSING'));
      writeFileSync(join(t.path, 'file'), 'x');
      await assert.rejects(preflight({ mountpoint: join(t.path, 'file') }), code('NOT_A_DIRECTORY', /not a directory/));
      await assert.rejects(preflight({ mountpoint: join(t.path, 'file', 'below') }), code('MOUNTPOINT_MISSING'));
      mkdirSync(join(t.path, 'full'));
      writeFileSync(join(t.path, 'full', 'x'), 'x');
      await assert.rejects(preflight({ mountpoint: join(t.path, 'full') }), code('NOT_EMPTY', /empty directory/));
      assert.equal(await preflight({ mountpoint: join(t.path, 'full'), allowNonEmpty: true }), join(t.path, 'full'));
      mkdirSync(join(t.path, 'empty'));
      assert.equal(await preflight({ mountpoint: join(t.path, 'empty') }), join(t.path, 'empty'));
    } finally {
      t.cleanup();
    }
  });

  test('a symlinked mountpoint resolves to the real directory; a dangling one is missing', async () => {
    const t = tempDir();
    try {
      mkdirSync(join(t.path, 'real'));
      symlinkSync('real', join(t.path, 'link'));
      symlinkSync(join(t.path, 'link'), join(t.path, 'link2'));
      assert.equal(await preflight({ mountpoint: join(t.path, 'link2') }), join(t.path, 'real'));
      assert.equal(await preflight({ mountpoint: `${t.path}/real/../link` }), join(t.path, 'real'));
      symlinkSync('gone', join(t.path, 'dangling'));
      await assert.rejects(preflight({ mountpoint: join(t.path, 'dangling') }), code('MOUNTPOINT_MISSING', /gone/));
      symlinkSync('loop', join(t.path, 'loop'));
      await assert.rejects(preflight({ mountpoint: join(t.path, 'loop') }), code('MOUNT_FAILED', /symbolic links/));
    } finally {
      t.cleanup();
    }
  });

  test('a path that mountinfo lists as a FUSE mount is not lstat()ed or followed', () => {
    const t = tempDir();
    try {
      symlinkSync('/nonexistent-target', join(t.path, 'mnt'));
      const fixture = `50 22 0:77 / ${join(t.path, 'mnt')} rw - fuse.other src rw\n`;
      assert.equal(resolveMountpoint(join(t.path, 'mnt'), fixture), join(t.path, 'mnt'), 'stops at the FUSE mount');
      assert.equal(resolveMountpoint(join(t.path, 'mnt'), ''), '/nonexistent-target', 'an ordinary symlink is followed');
      assert.equal(resolveMountpoint('/', ''), '/');
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
      assert.equal(await cleanStaleMount(mnt), false, 'a live mount is not stale');
      assert.ok(findFuseMount(mnt), 'still mounted after the stale check');
    });
  });
});

describe('unmount and friends without a mount', () => {
  test('unmount of a path with no FUSE mount is a no-op, also for a missing path', async () => {
    // "No-op" means: it resolves with false (nothing unmounted), no unmount command runs
    // (fusermount3 and umount are replaced on PATH by scripts that log every call), the
    // directory and a file in it are untouched, and the mount table is what it was.
    const t = tempDir();
    const bin = tempDir('fusestream-fakebin-');
    const calls = join(bin.path, 'calls.log');
    for (const cmd of ['fusermount3', 'umount']) {
      writeFileSync(join(bin.path, cmd), `#!/bin/sh\necho "${cmd} $*" >> '${calls}'\nexit 1\n`, { mode: 0o755 });
    }
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin.path}:${savedPath ?? ''}`;
    try {
      const dir = join(t.path, 'mnt');
      mkdirSync(dir);
      const file = join(dir, 'keep.txt');
      writeFileSync(file, 'untouched');
      const before = { dir: statSync(dir), file: statSync(file), entries: readdirSync(dir), mounts: stableMounts(t.path) };
      assert.equal(await unmount(dir), false, 'nothing was mounted there');
      assert.equal(await unmount(dir, { lazy: true }), false, 'nothing was mounted there (lazy)');
      assert.equal(await unmount(join(t.path, 'missing')), false, 'a missing path has nothing mounted');
      assert.equal(await unmount(file), false, 'a plain file has nothing mounted');
      assert.equal(existsSync(calls) ? readFileSync(calls, 'utf8') : '', '', 'no unmount command ran');
      const after = { dir: statSync(dir), file: statSync(file), entries: readdirSync(dir) };
      assert.deepEqual(after.entries, before.entries, 'the directory lists the same entries');
      for (const k of ['dir', 'file'] as const) {
        assert.equal(after[k].ino, before[k].ino, `${k}: same inode`);
        assert.equal(after[k].mode, before[k].mode, `${k}: same mode`);
        assert.equal(after[k].mtimeMs, before[k].mtimeMs, `${k}: not modified`);
        assert.equal(after[k].dev, before[k].dev, `${k}: same device (nothing mounted or unmounted over it)`);
      }
      assert.equal(readFileSync(file, 'utf8'), 'untouched');
      assert.equal(existsSync(join(t.path, 'missing')), false, 'the missing path was not created');
      assert.deepEqual(stableMounts(t.path), before.mounts, '/proc/self/mountinfo is unchanged');
    } finally {
      process.env.PATH = savedPath;
      bin.cleanup();
      t.cleanup();
    }
  });

  test('cleanStaleMount of a plain directory does nothing; abortConnection refuses a bad id', async () => {
    const t = tempDir();
    try {
      assert.equal(await cleanStaleMount(t.path), false);
      await assert.rejects(abortConnection(-1), code('ABORT_FAILED'));
      await assert.rejects(abortConnection(1.5), code('ABORT_FAILED'));
    } finally {
      t.cleanup();
    }
  });
});

describe('mount options', () => {
  test('the -o string carries the fd, root mode, owner and the asked-for flags', () => {
    assert.equal(mountOptionString({}, 0, 0), 'fd=3,rootmode=40000,user_id=0,group_id=0,nosuid,nodev');
    assert.equal(
      mountOptionString({ allowOther: true, defaultPermissions: true, readOnly: true, maxRead: 131072 }, 1000, 100),
      'fd=3,rootmode=40000,user_id=1000,group_id=100,nosuid,nodev,allow_other,default_permissions,ro,max_read=131072',
    );
    assert.throws(() => mountOptionString({ maxRead: 0 }, 0, 0), code('MOUNT_FAILED', /max_read/));
  });
});

describe('mountinfo', () => {
  const text = [
    '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '40 22 0:39 / /tmp/with\\040space rw,nosuid,nodev,relatime shared:20 master:3 - fuse.fusestream http://h/ rw,user_id=0,group_id=0',
    '41 22 0:40 / /tmp/other rw - fuse.sshfs user@h: rw',
    '42 40 0:41 / /tmp/with\\040space rw - fuse.fusestream again rw',
    'garbage line without separator',
    '43 22 0:42 / /tmp/back\\134slash\\011tab rw - fuseblk /dev/sdb1 rw',
    '44 22 0:43 / /sys/fs/fuse/connections rw - fusectl fusectl rw',
    '45 22 x:y / /tmp/bad-dev rw - fuse bad rw',
    '',
  ].join('\n');

  test('parses fields, optional tags and octal escapes; skips malformed lines', () => {
    const m = parseMountInfo(text);
    assert.equal(m.length, 6);
    assert.deepEqual(m[1], { mountpoint: '/tmp/with space', fstype: 'fuse.fusestream', source: 'http://h/', minor: 39 });
    assert.equal(m[4]?.mountpoint, '/tmp/back\\slash\ttab');
    assert.equal(m[4]?.fstype, 'fuseblk');
  });

  test('finds the topmost FUSE mount at a path, and no other', () => {
    assert.deepEqual(findFuseMount('/tmp/with space', text), { connectionId: 41, fstype: 'fuse.fusestream' });
    assert.deepEqual(findFuseMount('/tmp/other', text), { connectionId: 40, fstype: 'fuse.sshfs' });
    assert.deepEqual(findFuseMount('/tmp/back\\slash\ttab', text), { connectionId: 42, fstype: 'fuseblk' });
    assert.equal(findFuseMount('/', text), undefined, 'ext4 is not FUSE');
    assert.equal(findFuseMount('/sys/fs/fuse/connections', text), undefined, 'fusectl is not a FUSE mount');
    assert.equal(findFuseMount('/tmp/with\\040space', text), undefined, 'paths compare unescaped');
    assert.equal(findFuseMount('/tmp/none', text), undefined);
  });
});
