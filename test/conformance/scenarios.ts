// POSIX conformance scenarios, written once against the path-level FsDriver and run on any
// FileSystem: directly (support/core-driver.ts) and through a mount (support/mount-driver.ts).
// Both runs must give the same answers, errnos included.
//
// Each scenario names the capabilities it needs; runConformance skips, with the reason in the
// test name's skip message, the ones a filesystem lacks. Scenarios that need nothing only read
// the FIXTURE tree (fixture.ts), so a read-only filesystem can run them. Writing scenarios
// each get a fresh directory of their own (`t.dir`), so they cannot see each other.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, RENAME_NOREPLACE } from '../../src/base/posix.js';
import { joinPath, rejectsErrno, type FsDriver } from '../support/fs-driver.js';
import { assertRamp, rampBuffer } from '../support/ramp.js';
import { FIXTURE, FIXTURE_ROOT } from './fixture.js';

export type Capability =
  /** create, write, truncate, mkdir, unlink, rmdir, rename */
  | 'writable'
  | 'symlinks'
  /** renameat2 flags (RENAME_NOREPLACE) */
  | 'rename-flags'
  /** chmod keeps the mode bits it was given */
  | 'permissions'
  /** utimes keeps the times it was given */
  | 'times'
  /**
   * A directory's st_nlink is 2 plus its subdirectories. Remote filesystems that cannot count
   * them without listing answer 1 instead ("unknown": find then does not use the leaf
   * optimisation); either way never a wrong count.
   */
  | 'dir-nlink';

export const ALL_CAPABILITIES: readonly Capability[] = ['writable', 'symlinks', 'rename-flags', 'permissions', 'times', 'dir-nlink'];

export interface ScenarioContext {
  d: FsDriver;
  /** The scenario's own directory ('' for read-only scenarios). */
  dir: string;
  /** A path inside `dir`. */
  p: (...parts: string[]) => string;
  /** What the filesystem under test can do (for answers that differ by capability). */
  caps: readonly Capability[];
}

export interface Scenario {
  name: string;
  needs: readonly Capability[];
  run(t: ScenarioContext): Promise<void>;
}

const fixtureFile = (name: string): { path: string; size: number; seed: number } => {
  const f = FIXTURE.files.find((x) => x.path === joinPath(FIXTURE_ROOT, name));
  if (!f) throw new Error(`no fixture file ${name}`);
  return f;
};

/** Writes `data` to a new file (O_EXCL) and closes it. */
async function put(d: FsDriver, path: string, data: Buffer): Promise<void> {
  const fd = await d.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644);
  try {
    await d.write(fd, data, 0);
  } finally {
    await d.close(fd);
  }
}

const W = ['writable'] as const;

export const SCENARIOS: readonly Scenario[] = [
  // ---- read-only: the fixture tree ----
  {
    name: 'ranged reads of a fixture file return exactly its ramp bytes, short at end of file',
    needs: [],
    async run({ d }) {
      const f = fixtureFile('ramp.bin');
      const fd = await d.open(f.path, O_RDONLY);
      try {
        for (const [off, len] of [[0, 1], [0, 4096], [4095, 2], [131_071, 131_073], [200_000, 100_007], [f.size - 5, 5]] as const) {
          const b = await d.read(fd, len, off);
          assert.equal(b.length, len, `read ${off}+${len}`);
          assertRamp(b, off, f.seed, `read ${off}+${len}`);
        }
        const tail = await d.read(fd, 100, f.size - 7);
        assert.equal(tail.length, 7, 'a read across end of file is short');
        assertRamp(tail, f.size - 7, f.seed, 'tail');
        assert.equal((await d.read(fd, 100, f.size)).length, 0, 'a read at end of file is empty');
        assert.equal((await d.read(fd, 100, f.size + 1000)).length, 0, 'a read past end of file is empty');
      } finally {
        await d.close(fd);
      }
      assertRamp(await d.readFile(f.path), 0, f.seed, 'readFile');
    },
  },
  {
    name: 'stat of fixture entries gives their types, sizes and modes',
    needs: [],
    async run({ d, caps }) {
      for (const f of FIXTURE.files) {
        const s = await d.stat(f.path);
        assert.deepEqual([s.kind, s.size, s.nlink], ['file', f.size, 1], f.path);
      }
      const dir = await d.stat(FIXTURE_ROOT);
      assert.equal(dir.kind, 'dir');
      if (caps.includes('dir-nlink')) {
        // A directory's nlink is 2 plus its subdirectories.
        assert.equal(dir.nlink, 4, 'fixture has two subdirectories');
        assert.equal((await d.stat('fixture/empty')).nlink, 2);
      } else {
        assert.ok(dir.nlink === 1 || dir.nlink === 4, `a directory says 1 (not counted) or its right count, never a wrong one: ${dir.nlink}`);
      }
      assert.equal((await d.stat('')).kind, 'dir', 'the root');
    },
  },
  {
    name: 'readdir of a fixture directory lists exactly its names, without . and ..',
    needs: [],
    async run({ d }) {
      assert.deepEqual(await d.readdir(FIXTURE_ROOT), ['empty', 'ramp.bin', 'sub', 'zero.bin']);
      assert.deepEqual(await d.readdir('fixture/sub'), ['small.bin']);
      assert.deepEqual(await d.readdir('fixture/empty'), []);
    },
  },
  {
    name: 'open, stat and readdir of a missing name are ENOENT',
    needs: [],
    async run({ d }) {
      await rejectsErrno(d.open('fixture/nope', O_RDONLY), 'ENOENT', 'open missing');
      await rejectsErrno(d.stat('fixture/nope'), 'ENOENT', 'stat missing');
      await rejectsErrno(d.readdir('fixture/nope'), 'ENOENT', 'readdir missing');
      await rejectsErrno(d.stat('fixture/nope/deeper'), 'ENOENT', 'stat under a missing directory');
    },
  },
  {
    name: 'a path through a file is ENOTDIR',
    needs: [],
    async run({ d }) {
      await rejectsErrno(d.stat('fixture/ramp.bin/x'), 'ENOTDIR', 'stat through a file');
      await rejectsErrno(d.open('fixture/ramp.bin/x', O_RDONLY), 'ENOTDIR', 'open through a file');
      await rejectsErrno(d.readdir('fixture/ramp.bin'), 'ENOTDIR', 'readdir of a file');
    },
  },
  {
    name: 'a name of 256 bytes is ENAMETOOLONG on lookup, counted in bytes not characters',
    needs: [],
    async run({ d }) {
      await rejectsErrno(d.stat(joinPath(FIXTURE_ROOT, 'a'.repeat(256))), 'ENAMETOOLONG', '256 ASCII bytes');
      await rejectsErrno(d.stat(joinPath(FIXTURE_ROOT, 'é'.repeat(128))), 'ENAMETOOLONG', '128 two-byte characters');
      await rejectsErrno(d.stat(joinPath(FIXTURE_ROOT, 'a'.repeat(255))), 'ENOENT', '255 bytes is a legal, missing name');
    },
  },

  // ---- writing ----
  {
    name: 'create + write + read back: ramp data written in uneven pieces reads back exactly',
    needs: W,
    async run({ d, p }) {
      const data = rampBuffer(0, 200_003, 1);
      const fd = await d.open(p('f.bin'), O_RDWR | O_CREAT | O_EXCL, 0o644);
      try {
        // Out of order and unaligned: 1..70000, then 70000..end, then byte 0.
        await d.write(fd, data.subarray(1, 70_000), 1);
        await d.write(fd, data.subarray(70_000), 70_000);
        await d.write(fd, data.subarray(0, 1), 0);
        for (const [off, len] of [[0, 200_003], [1, 4096], [65_535, 10_000], [199_999, 4]] as const) {
          assertRamp(await d.read(fd, len, off), off, 1, `read back ${off}+${len} through the same fd`);
        }
      } finally {
        await d.close(fd);
      }
      assert.equal((await d.stat(p('f.bin'))).size, 200_003);
      assert.ok((await d.readFile(p('f.bin'))).equals(data), 'readFile after close');
    },
  },
  {
    name: 'O_CREAT|O_EXCL on an existing name is EEXIST and leaves the file alone',
    needs: W,
    async run({ d, p }) {
      await put(d, p('f'), Buffer.from('keep'));
      await rejectsErrno(d.open(p('f'), O_RDWR | O_CREAT | O_EXCL, 0o644), 'EEXIST', 'O_EXCL on a file');
      await d.mkdir(p('dir'), 0o755);
      await rejectsErrno(d.open(p('dir'), O_RDWR | O_CREAT | O_EXCL, 0o644), 'EEXIST', 'O_EXCL on a directory');
      assert.equal((await d.readFile(p('f'))).toString(), 'keep');
      // Without O_EXCL, O_CREAT opens the existing file (and O_TRUNC empties it).
      const fd = await d.open(p('f'), O_RDWR | O_CREAT, 0o644);
      assert.equal((await d.read(fd, 10, 0)).toString(), 'keep');
      await d.close(fd);
      await d.close(await d.open(p('f'), O_WRONLY | O_CREAT | O_TRUNC, 0o644));
      assert.equal((await d.stat(p('f'))).size, 0);
    },
  },
  {
    name: 'open of a missing name without O_CREAT is ENOENT and creates nothing',
    needs: W,
    async run({ d, p, dir }) {
      await rejectsErrno(d.open(p('missing'), O_RDONLY), 'ENOENT', 'read-only open');
      await rejectsErrno(d.open(p('missing'), O_RDWR | O_TRUNC), 'ENOENT', 'read-write open');
      await rejectsErrno(d.open(p('no-dir', 'f'), O_RDWR | O_CREAT, 0o644), 'ENOENT', 'O_CREAT in a missing directory');
      assert.deepEqual(await d.readdir(dir), []);
    },
  },
  {
    name: 'mkdir of an existing name is EEXIST, for a directory and for a file',
    needs: W,
    async run({ d, p }) {
      await d.mkdir(p('sub'), 0o755);
      await rejectsErrno(d.mkdir(p('sub'), 0o755), 'EEXIST', 'mkdir existing dir');
      await put(d, p('f'), Buffer.from('x'));
      await rejectsErrno(d.mkdir(p('f'), 0o755), 'EEXIST', 'mkdir over a file');
      assert.equal((await d.stat(p('f'))).kind, 'file');
    },
  },
  {
    name: 'rmdir of a non-empty directory is ENOTEMPTY and removes nothing; once empty it goes',
    needs: W,
    async run({ d, p, dir }) {
      await d.mkdir(p('full'), 0o755);
      await put(d, p('full', 'f'), Buffer.from('x'));
      await rejectsErrno(d.rmdir(p('full')), 'ENOTEMPTY', 'rmdir with a file inside');
      await d.mkdir(p('full2'), 0o755);
      await d.mkdir(p('full2', 'sub'), 0o755);
      await rejectsErrno(d.rmdir(p('full2')), 'ENOTEMPTY', 'rmdir with a directory inside');
      assert.deepEqual(await d.readdir(p('full')), ['f']);
      await d.unlink(p('full', 'f'));
      await d.rmdir(p('full'));
      await rejectsErrno(d.stat(p('full')), 'ENOENT', 'stat after rmdir');
      assert.deepEqual(await d.readdir(dir), ['full2']);
    },
  },
  {
    name: 'rmdir of a file is ENOTDIR',
    needs: W,
    async run({ d, p }) {
      await put(d, p('f'), Buffer.from('x'));
      await rejectsErrno(d.rmdir(p('f')), 'ENOTDIR', 'rmdir a file');
      assert.equal((await d.stat(p('f'))).kind, 'file');
      await rejectsErrno(d.rmdir(p('missing')), 'ENOENT', 'rmdir missing');
    },
  },
  {
    name: 'unlink of a directory is EISDIR (Linux)',
    needs: W,
    async run({ d, p }) {
      await d.mkdir(p('sub'), 0o755);
      await rejectsErrno(d.unlink(p('sub')), 'EISDIR', 'unlink a dir');
      assert.equal((await d.stat(p('sub'))).kind, 'dir');
      await rejectsErrno(d.unlink(p('missing')), 'ENOENT', 'unlink missing');
    },
  },
  {
    name: 'rename over an existing file replaces it; the old name is gone',
    needs: W,
    async run({ d, p, dir }) {
      await put(d, p('a'), rampBuffer(0, 5000, 2));
      await put(d, p('b'), rampBuffer(0, 100, 3));
      await d.rename(p('a'), p('b'));
      await rejectsErrno(d.stat(p('a')), 'ENOENT', 'old name');
      assertRamp(await d.readFile(p('b')), 0, 2, 'the target has the source bytes');
      assert.equal((await d.stat(p('b'))).size, 5000);
      assert.deepEqual(await d.readdir(dir), ['b']);
      // Across directories, and to a new name.
      await d.mkdir(p('sub'), 0o755);
      await d.rename(p('b'), p('sub', 'c'));
      assert.deepEqual(await d.readdir(dir), ['sub']);
      assertRamp(await d.readFile(p('sub', 'c')), 0, 2, 'moved into sub');
      await rejectsErrno(d.rename(p('missing'), p('x')), 'ENOENT', 'rename a missing name');
    },
  },
  {
    name: 'RENAME_NOREPLACE onto an existing name is EEXIST and changes nothing; onto a free name it renames',
    needs: ['writable', 'rename-flags'],
    async run({ d, p, dir }) {
      await put(d, p('a'), Buffer.from('aaa'));
      await put(d, p('b'), Buffer.from('bb'));
      await rejectsErrno(d.rename(p('a'), p('b'), RENAME_NOREPLACE), 'EEXIST', 'noreplace onto a file');
      assert.equal((await d.readFile(p('a'))).toString(), 'aaa');
      assert.equal((await d.readFile(p('b'))).toString(), 'bb');
      await d.rename(p('a'), p('c'), RENAME_NOREPLACE);
      assert.deepEqual(await d.readdir(dir), ['b', 'c']);
    },
  },
  {
    name: 'rename of a directory into its own subdirectory is EINVAL and changes nothing',
    needs: W,
    async run({ d, p, dir }) {
      await d.mkdir(p('a'), 0o755);
      await d.mkdir(p('a', 'b'), 0o755);
      await rejectsErrno(d.rename(p('a'), p('a', 'b', 'c')), 'EINVAL', 'a -> a/b/c');
      await rejectsErrno(d.rename(p('a'), p('a', 'c')), 'EINVAL', 'a -> a/c');
      assert.deepEqual(await d.readdir(dir), ['a']);
      assert.deepEqual(await d.readdir(p('a')), ['b']);
    },
  },
  {
    name: 'rename between a file and a directory: EISDIR, ENOTDIR, ENOTEMPTY; onto an empty directory it replaces it',
    needs: W,
    async run({ d, p, dir }) {
      await put(d, p('f'), Buffer.from('f'));
      await d.mkdir(p('empty'), 0o755);
      await d.mkdir(p('full'), 0o755);
      await put(d, p('full', 'x'), Buffer.from('x'));
      await d.mkdir(p('src'), 0o755);
      await rejectsErrno(d.rename(p('f'), p('empty')), 'EISDIR', 'a file onto a directory');
      await rejectsErrno(d.rename(p('src'), p('f')), 'ENOTDIR', 'a directory onto a file');
      await rejectsErrno(d.rename(p('src'), p('full')), 'ENOTEMPTY', 'a directory onto a non-empty directory');
      assert.deepEqual(await d.readdir(dir), ['empty', 'f', 'full', 'src']);
      await put(d, p('src', 'inside'), Buffer.from('in'));
      await d.rename(p('src'), p('empty'));
      assert.deepEqual(await d.readdir(dir), ['empty', 'f', 'full']);
      assert.equal((await d.readFile(p('empty', 'inside'))).toString(), 'in');
      assert.equal((await d.stat(p())).nlink, 4, 'two subdirectories left');
    },
  },
  {
    name: 'a directory cannot be opened for writing or truncated: EISDIR',
    needs: W,
    async run({ d, p }) {
      await d.mkdir(p('sub'), 0o755);
      await rejectsErrno(d.open(p('sub'), O_RDWR), 'EISDIR', 'open a directory read-write');
      await rejectsErrno(d.open(p('sub'), O_WRONLY), 'EISDIR', 'open a directory write-only');
      await rejectsErrno(d.truncate(p('sub'), 0), 'EISDIR', 'truncate a directory');
    },
  },
  {
    name: 'readdir lists exactly the created names, and not the removed ones',
    needs: W,
    async run({ d, p, dir }) {
      const names = ['a', 'B', 'with space', 'ünïcødé', 'x'.repeat(255), '.hidden', '..dots', ...Array.from({ length: 30 }, (_, i) => `n${i}`)];
      for (const n of names) await put(d, p(n), Buffer.from(n));
      await d.mkdir(p('sub'), 0o755);
      assert.deepEqual(await d.readdir(dir), [...names, 'sub'].sort());
      for (const n of names.filter((_, i) => i % 3 === 0)) await d.unlink(p(n));
      assert.deepEqual(await d.readdir(dir), [...names.filter((_, i) => i % 3 !== 0), 'sub'].sort());
    },
  },
  {
    name: 'truncate shrinks and grows; bytes past the old end read as zeros',
    needs: W,
    async run({ d, p }) {
      await put(d, p('f'), rampBuffer(0, 10_000, 4));
      await d.truncate(p('f'), 4000);
      assert.equal((await d.stat(p('f'))).size, 4000);
      const fd = await d.open(p('f'), O_RDWR);
      try {
        await d.ftruncate(fd, 70_000);
        const b = await d.read(fd, 80_000, 0);
        assert.equal(b.length, 70_000);
        assertRamp(b.subarray(0, 4000), 0, 4, 'kept head');
        assert.ok(b.subarray(4000).equals(Buffer.alloc(66_000)), 'the old bytes 4000..10000 must not come back');
      } finally {
        await d.close(fd);
      }
      assert.equal((await d.stat(p('f'))).size, 70_000);
      await d.truncate(p('f'), 0);
      assert.equal((await d.readFile(p('f'))).length, 0);
    },
  },
  {
    name: 'a write past end of file leaves a zero-filled hole',
    needs: W,
    async run({ d, p }) {
      const fd = await d.open(p('f'), O_RDWR | O_CREAT | O_EXCL, 0o644);
      const far = 1_000_000;
      try {
        await d.write(fd, rampBuffer(0, 100, 5), 0);
        await d.write(fd, rampBuffer(far, 100, 5), far);
        const b = await d.read(fd, far + 200, 0);
        assert.equal(b.length, far + 100);
        assertRamp(b.subarray(0, 100), 0, 5, 'head');
        assert.ok(b.subarray(100, far).equals(Buffer.alloc(far - 100)), 'the hole reads as zeros');
        assertRamp(b.subarray(far), far, 5, 'tail');
      } finally {
        await d.close(fd);
      }
      assert.equal((await d.stat(p('f'))).size, far + 100);
    },
  },
  {
    name: 'an unlinked file stays readable and writable through its open fd until close',
    needs: W,
    async run({ d, p, dir }) {
      await put(d, p('f'), rampBuffer(0, 50_000, 6));
      const fd = await d.open(p('f'), O_RDWR);
      try {
        await d.unlink(p('f'));
        await rejectsErrno(d.stat(p('f')), 'ENOENT', 'stat after unlink');
        assert.deepEqual(await d.readdir(dir), []);
        assertRamp(await d.read(fd, 50_000, 0), 0, 6, 'read through the fd after unlink');
        await d.write(fd, rampBuffer(50_000, 1000, 6), 50_000);
        assertRamp(await d.read(fd, 51_000, 0), 0, 6, 'read after writing to the unlinked file');
        // The name is free again, for a new, different file.
        await put(d, p('f'), Buffer.from('new'));
        assert.equal((await d.readFile(p('f'))).toString(), 'new');
        assertRamp(await d.read(fd, 100, 0), 0, 6, 'the fd still reads the old file');
      } finally {
        await d.close(fd);
      }
    },
  },
  {
    name: 'symlink + readlink: the target text comes back; stat follows, lstat does not',
    needs: ['writable', 'symlinks'],
    async run({ d, p }) {
      await put(d, p('target.bin'), rampBuffer(0, 1234, 7));
      await d.symlink('target.bin', p('link'));
      assert.equal(await d.readlink(p('link')), 'target.bin');
      const l = await d.lstat(p('link'));
      assert.deepEqual([l.kind, l.size], ['symlink', 'target.bin'.length]);
      const s = await d.stat(p('link'));
      assert.deepEqual([s.kind, s.size], ['file', 1234]);
      assertRamp(await d.readFile(p('link')), 0, 7, 'read through the link');
      await d.symlink('nowhere/at/all', p('dangling'));
      assert.equal(await d.readlink(p('dangling')), 'nowhere/at/all');
      await rejectsErrno(d.stat(p('dangling')), 'ENOENT', 'stat of a dangling link');
      assert.equal((await d.lstat(p('dangling'))).kind, 'symlink');
      await rejectsErrno(d.readlink(p('target.bin')), 'EINVAL', 'readlink of a file');
      await rejectsErrno(d.symlink('x', p('target.bin')), 'EEXIST', 'symlink over a file');
      await d.unlink(p('link'));
      assert.equal((await d.stat(p('target.bin'))).size, 1234, 'unlinking the link leaves the target');
    },
  },
  {
    name: 'creating through a file is ENOTDIR',
    needs: W,
    async run({ d, p }) {
      await put(d, p('f'), Buffer.from('x'));
      await rejectsErrno(d.open(p('f', 'x'), O_RDWR | O_CREAT, 0o644), 'ENOTDIR', 'create under a file');
      await rejectsErrno(d.mkdir(p('f', 'x'), 0o755), 'ENOTDIR', 'mkdir under a file');
    },
  },
  {
    name: 'creating a 255-byte name works; 256 bytes is ENAMETOOLONG',
    needs: W,
    async run({ d, p, dir }) {
      await put(d, p('é'.repeat(127) + 'a'), Buffer.from('x'));
      await rejectsErrno(d.open(p('é'.repeat(128)), O_RDWR | O_CREAT, 0o644), 'ENAMETOOLONG', 'create 256 bytes');
      await rejectsErrno(d.mkdir(p('b'.repeat(256)), 0o755), 'ENAMETOOLONG', 'mkdir 256 bytes');
      assert.deepEqual(await d.readdir(dir), ['é'.repeat(127) + 'a']);
    },
  },
  {
    name: 'stat gives types, sizes and link counts of new entries',
    needs: W,
    async run({ d, p }) {
      await put(d, p('empty'), Buffer.alloc(0));
      await put(d, p('f'), rampBuffer(0, 4097, 8));
      await d.mkdir(p('sub'), 0o755);
      await d.mkdir(p('sub', 'inner'), 0o755);
      const e = await d.stat(p('empty'));
      assert.deepEqual([e.kind, e.size, e.nlink], ['file', 0, 1]);
      const f = await d.stat(p('f'));
      assert.deepEqual([f.kind, f.size, f.nlink], ['file', 4097, 1]);
      const s = await d.stat(p('sub'));
      assert.deepEqual([s.kind, s.nlink], ['dir', 3]);
      assert.equal((await d.stat(p('sub', 'inner'))).nlink, 2);
      assert.equal((await d.stat(p())).nlink, 3, 'the scenario directory holds one subdirectory');
      await d.rmdir(p('sub', 'inner'));
      assert.equal((await d.stat(p('sub'))).nlink, 2, 'rmdir drops the parent link count');
    },
  },
  {
    name: 'chmod changes the permission bits; new entries get mode & ~umask (022)',
    needs: ['writable', 'permissions'],
    async run({ d, p }) {
      const fd = await d.open(p('f'), O_RDWR | O_CREAT | O_EXCL, 0o666);
      await d.close(fd);
      assert.equal((await d.stat(p('f'))).perm, 0o644);
      await d.mkdir(p('sub'), 0o777);
      assert.equal((await d.stat(p('sub'))).perm, 0o755);
      await d.chmod(p('f'), 0o600);
      assert.equal((await d.stat(p('f'))).perm, 0o600);
      await d.chmod(p('f'), 0o4751);
      assert.equal((await d.stat(p('f'))).perm, 0o4751, 'setuid and odd bits are kept for root');
      await d.chmod(p('sub'), 0o700);
      const s = await d.stat(p('sub'));
      assert.deepEqual([s.kind, s.perm], ['dir', 0o700]);
      await rejectsErrno(d.chmod(p('missing'), 0o600), 'ENOENT', 'chmod missing');
    },
  },
  {
    name: 'utimes sets mtime and atime to the second',
    needs: ['writable', 'times'],
    async run({ d, p }) {
      await put(d, p('f'), Buffer.from('x'));
      const atimeMs = 1_600_000_000_000;
      const mtimeMs = 1_700_000_001_000;
      await d.utimes(p('f'), atimeMs, mtimeMs);
      const s = await d.stat(p('f'));
      assert.equal(s.mtimeMs, mtimeMs);
      assert.equal(s.atimeMs, atimeMs);
      await d.mkdir(p('sub'), 0o755);
      await d.utimes(p('sub'), atimeMs, mtimeMs);
      assert.equal((await d.stat(p('sub'))).mtimeMs, mtimeMs);
    },
  },
  {
    name: 'a write changes mtime',
    needs: ['writable', 'times'],
    async run({ d, p }) {
      await put(d, p('f'), Buffer.from('x'));
      await d.utimes(p('f'), 1_000_000_000_000, 1_000_000_000_000);
      const fd = await d.open(p('f'), O_WRONLY);
      try {
        await d.write(fd, Buffer.from('y'), 1);
        await d.fsync(fd);
      } finally {
        await d.close(fd);
      }
      assert.ok((await d.stat(p('f'))).mtimeMs > 1_000_000_000_000, 'mtime moved forward');
    },
  },
];

export interface ConformanceOptions {
  /** Runs after each scenario that passed (e.g. a leak check on the filesystem). */
  afterEach?: (d: FsDriver) => Promise<void> | void;
}

/**
 * Runs every scenario against the filesystem `makeDriver` serves, which must hold FIXTURE
 * (fixture.ts). Scenarios needing a capability not in `capabilities` are skipped with the
 * reason. One driver for the whole suite, disposed at the end.
 */
export function runConformance(name: string, makeDriver: () => Promise<FsDriver>, capabilities: readonly Capability[], options: ConformanceOptions = {}): void {
  describe(`conformance: ${name}`, () => {
    let driver: FsDriver | undefined;
    before(async () => {
      driver = await makeDriver();
    });
    after(async () => {
      await driver?.dispose();
    });
    for (const [i, s] of SCENARIOS.entries()) {
      const missing = s.needs.filter((c) => !capabilities.includes(c));
      const skip = missing.length > 0 ? `${name} lacks ${missing.join(', ')}` : false;
      test(s.name, { skip }, async () => {
        const d = driver;
        assert.ok(d, 'the driver started');
        const dir = s.needs.includes('writable') ? `t${i}` : '';
        if (dir) await d.mkdir(dir, 0o755);
        let leftovers: number[];
        try {
          await s.run({ d, dir, p: (...parts) => joinPath(dir, ...parts), caps: capabilities });
        } finally {
          leftovers = await d.closeLeftovers();
        }
        assert.deepEqual(leftovers, [], 'the scenario closed every fd it opened');
        await options.afterEach?.(d);
      });
    }
  });
}
