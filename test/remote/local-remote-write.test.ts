// LocalRemote's write path beyond the shared contract: writes never land outside the root when a
// directory is swapped for a symlink inside the race window; put's temp files are hidden, kept
// out of reach and cleaned; a replaced file keeps its mode and never keeps its fingerprint;
// ifMatch is re-checked just before the commit; and kill -9 at any point of a put leaves the old
// file or the whole new one (a child process is killed at markers it prints).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { within } from '../../src/base/async.js';
import { sameVersion } from '../../src/remote/fingerprint.js';
import { LocalRemote, TEMP_PREFIX, isTempName } from '../../src/remote/local/local-remote.js';
import { assertRamp, rampBuffer, writeRampFile } from '../support/ramp.js';
import { start } from '../support/proc.js';
import { rejectsKind } from '../support/remote-asserts.js';
import { rampSource } from './contract.js';

const signal = new AbortController().signal;

async function withRoot(body: (base: string, root: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'fusestream-lw-'));
  const root = join(base, 'root');
  await mkdir(root);
  try {
    await body(base, root);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

const temps = async (dir: string): Promise<string[]> => (await readdir(dir)).filter(isTempName);

void describe('LocalRemote writes: a directory swapped for a symlink between the check and the use', () => {
  // The hook replaces `inside/` with a symlink to a directory outside the root, at the
  // `swapAt`-th verified open (rename opens two parents: the second is the target's). At depth
  // 'direct' the swapped directory is the parent itself (O_NOFOLLOW refuses it); at 'nested' it
  // is the grandparent, which only the check of the opened fd's real path catches.
  const cases: { op: string; swapAt: number; run: (r: LocalRemote, d: string) => Promise<unknown> }[] = [
    { op: 'put', swapAt: 1, run: (r, d) => r.put(`${d}/new.txt`, rampSource(1000, 1), { signal }) },
    { op: 'mkdir', swapAt: 1, run: (r, d) => r.mkdir(`${d}/newdir`, { signal }) },
    { op: 'rmdir', swapAt: 1, run: (r, d) => r.rmdir(`${d}/emptydir`, { signal }) },
    { op: 'symlink', swapAt: 1, run: (r, d) => r.symlink('x', `${d}/newlink`, { signal }) },
    { op: 'delete', swapAt: 1, run: (r, d) => r.delete(`${d}/f.txt`, { signal }) },
    { op: 'setMtime', swapAt: 1, run: (r, d) => r.setMtime(`${d}/f.txt`, 0, { signal }) },
    { op: 'rename (source side)', swapAt: 1, run: (r, d) => r.rename(`${d}/f.txt`, 'moved.txt', { signal }) },
    { op: 'rename (target side)', swapAt: 2, run: (r, d) => r.rename('top.txt', `${d}/f.txt`, { signal }) },
    { op: 'cleanupTemp', swapAt: 1, run: (r, d) => r.cleanupTemp(signal, d) },
  ];
  for (const depth of ['direct', 'nested'] as const) {
    for (const c of cases) {
      void test(`${c.op} (${depth}) never reaches outside the root`, () =>
        withRoot(async (base, root) => {
          const outside = join(base, 'outside');
          const sub = depth === 'direct' ? '' : 'sub';
          await mkdir(join(root, 'inside', sub, 'emptydir'), { recursive: true });
          await mkdir(join(outside, sub, 'emptydir'), { recursive: true });
          await writeFile(join(root, 'inside', sub, 'f.txt'), 'inside bytes');
          await writeFile(join(root, 'top.txt'), 'top bytes');
          await writeFile(join(outside, sub, 'f.txt'), 'SECRET outside');
          await writeFile(join(outside, sub, `${TEMP_PREFIX}999999999-00aa`), 'not ours');
          const before = (await stat(join(outside, sub, 'f.txt'))).mtimeMs;
          const listing = (await readdir(join(outside, sub))).sort();
          let calls = 0;
          const remote = new LocalRemote({
            root,
            hooks: {
              afterResolve: async () => {
                if (++calls !== c.swapAt) return;
                await rename(join(root, 'inside'), join(root, 'inside.old'));
                await symlink(outside, join(root, 'inside'));
              },
            },
          });
          await rejectsKind(c.run(remote, depth === 'direct' ? 'inside' : 'inside/sub'), 'invalid', `${c.op} through a swapped directory`);
          assert.ok(calls >= c.swapAt, 'the swap happened inside the window');
          assert.deepEqual((await readdir(join(outside, sub))).sort(), listing, 'nothing created or removed outside');
          assert.equal(await readFile(join(outside, sub, 'f.txt'), 'utf8'), 'SECRET outside');
          assert.equal((await stat(join(outside, sub, 'f.txt'))).mtimeMs, before, 'nothing changed outside');
          assert.equal(await readFile(join(root, 'top.txt'), 'utf8'), 'top bytes');
        }),
      );
    }
  }
});

void describe('LocalRemote put: temp files', () => {
  void test('a put in flight has a temp file that no listing, stat or write can reach', () =>
    withRoot(async (_base, root) => {
      let atCommit!: () => void;
      const reached = new Promise<void>((resolve) => (atCommit = resolve));
      let letGo!: () => void;
      const go = new Promise<void>((resolve) => (letGo = resolve));
      const remote = new LocalRemote({ root, hooks: { beforeCommit: async () => (atCommit(), go) } });
      const p = remote.put('a.bin', rampSource(100_000, 1), { signal });
      await within(reached, 5000, 'the put to reach its commit');
      const [temp] = await temps(root);
      assert.ok(temp !== undefined, 'the temp file exists on disk');
      assert.equal((await stat(join(root, temp))).size, 100_000, 'complete before the commit');
      assert.deepEqual(await remote.list('', signal), [], 'hidden from the listing');
      await rejectsKind(remote.stat(temp, signal), 'not-found', 'stat of a temp name');
      await rejectsKind(remote.read(temp, 0, 10, { signal }), 'not-found', 'read of a temp name');
      await rejectsKind(remote.put(temp, rampSource(1, 1), { signal }), 'invalid', 'put to a temp name');
      await rejectsKind(remote.mkdir(`${TEMP_PREFIX}x`, { signal }), 'invalid', 'mkdir of a temp name');
      await rejectsKind(remote.rename('nothing', temp, { signal }), 'invalid', 'rename onto a temp name');
      assert.equal(await remote.cleanupTemp(signal), 0, "cleanup leaves a live put's temp alone");
      letGo();
      await within(p, 5000, 'the put');
      assert.deepEqual(await temps(root), []);
      assertRamp(await readFile(join(root, 'a.bin')), 0, 1, 'the put file');
    }));

  void test('cleanupTemp removes the temps of dead writers, recursively, and keeps the rest', () =>
    withRoot(async (_base, root) => {
      await mkdir(join(root, 'd', 'e'), { recursive: true });
      const dead = `${TEMP_PREFIX}999999999-00aa`; // above any pid_max: no such process
      const oursStale = `${TEMP_PREFIX}${process.pid}-00bb`; // ours, but no put of ours owns it
      const alive = `${TEMP_PREFIX}1-00cc`; // pid 1 is alive
      const foreign = `${TEMP_PREFIX}not-ours`; // not our format: not ours to judge
      for (const n of [dead, oursStale, alive, foreign]) await writeFile(join(root, n), 'x');
      await writeFile(join(root, 'd', 'e', dead), 'x');
      await writeFile(join(root, 'keep.txt'), 'keep');
      const remote = new LocalRemote({ root });
      assert.deepEqual((await remote.list('', signal)).map((e) => e.name).sort(), ['d', 'keep.txt']);
      assert.equal(await remote.cleanupTemp(signal), 3);
      assert.deepEqual((await readdir(root)).sort(), [alive, foreign, 'd', 'keep.txt'].sort());
      assert.deepEqual(await readdir(join(root, 'd', 'e')), []);
    }));

  void test('the first put into a directory and an rmdir that finds only stale temps clean them', () =>
    withRoot(async (_base, root) => {
      await mkdir(join(root, 'd'));
      await mkdir(join(root, 'e'));
      const dead = `${TEMP_PREFIX}999999999-00aa`;
      await writeFile(join(root, 'd', dead), 'x');
      await writeFile(join(root, 'e', dead), 'x');
      const remote = new LocalRemote({ root });
      await remote.put('d/a.bin', rampSource(10, 1), { signal });
      assert.deepEqual(await readdir(join(root, 'd')), ['a.bin']);
      assert.deepEqual(await remote.list('e', signal), []);
      await remote.rmdir('e', { signal });
      await rejectsKind(remote.stat('e', signal), 'not-found', 'removed');
      await rejectsKind(remote.rmdir('d', { signal }), 'not-empty', 'rmdir of a directory with a file');
    }));
});

void describe('LocalRemote put: versions', () => {
  void test('a replaced file keeps its mode; a new version never keeps the old fingerprint', () =>
    withRoot(async (_base, root) => {
      const remote = new LocalRemote({ root });
      const v1 = await remote.put('s.sh', rampSource(5000, 1), { signal, mtimeMs: 1_700_000_000_000 });
      await chmod(join(root, 's.sh'), 0o751);
      const v1b = await remote.stat('s.sh', signal);
      // Same size, and asked for the same mtime: the fingerprint must still move.
      const v2 = await remote.put('s.sh', rampSource(5000, 2), { signal, mtimeMs: 1_700_000_000_000 });
      assert.equal((await stat(join(root, 's.sh'))).mode & 0o7777, 0o751);
      assert.ok(sameVersion(v1, v1b));
      assert.ok(!sameVersion(v1b, v2), `a new version has a new fingerprint (${v1b.mtimeMs} vs ${v2.mtimeMs})`);
      // Back to back with the clock's own mtimes (ext4's is coarse): still distinct.
      let prev = v2;
      for (let i = 0; i < 5; i++) {
        const next = await remote.put('s.sh', rampSource(5000, 3 + i), { signal });
        assert.ok(!sameVersion(prev, next), `put ${i} has a new fingerprint`);
        prev = next;
      }
    }));

  void test('ifMatch is checked again just before the commit: a change inside the upload wins', () =>
    withRoot(async (_base, root) => {
      await writeRampFile(join(root, 'a.bin'), 5000, 1);
      const remote = new LocalRemote({
        root,
        hooks: {
          beforeCommit: async () => {
            await writeFile(join(root, 'a.bin'), rampBuffer(0, 6000, 9)); // someone else's version
          },
        },
      });
      const v1 = await remote.stat('a.bin', signal);
      await rejectsKind(remote.put('a.bin', rampSource(5000, 2), { signal, ifMatch: v1 }), 'conflict', 'put ifMatch against a version changed meanwhile');
      assertRamp(await readFile(join(root, 'a.bin')), 0, 9, "the other writer's version stays");
      assert.deepEqual(await temps(root), []);
    }));
});

void describe('LocalRemote put: kill -9 at any point leaves the old file or the whole new one', () => {
  const child = fileURLToPath(new URL('./local-put-child.js', import.meta.url));
  const SIZE = 8 * 1024 * 1024;
  for (const [mode, marker] of [
    ['mid', 'MID'],
    ['commit', 'COMMIT'],
    ['done', 'DONE'],
  ] as const) {
    for (const existing of [true, false]) {
      void test(`killed at ${mode}, ${existing ? 'replacing a file' : 'creating a file'}`, () =>
        withRoot(async (_base, root) => {
          if (existing) await writeRampFile(join(root, 'big.bin'), 1_000_000, 1);
          const proc = start(process.execPath, [child, root, 'big.bin', String(SIZE), mode]);
          try {
            await proc.waitFor(marker, 20_000);
          } finally {
            proc.child.kill('SIGKILL');
          }
          const r = await within(proc.done, 5000, 'the killed child to exit');
          assert.equal(r.signal, 'SIGKILL', `killed at ${marker}; stderr: ${r.stderr}`);
          const remote = new LocalRemote({ root });
          const names = (await remote.list('', signal)).map((e) => e.name);
          if (mode === 'done') {
            assert.deepEqual(names, ['big.bin']);
            const buf = await readFile(join(root, 'big.bin'));
            assert.equal(buf.length, SIZE);
            assertRamp(buf, 0, 2, 'the new file, whole');
            assert.deepEqual(await temps(root), []);
            return;
          }
          assert.deepEqual(names, existing ? ['big.bin'] : [], 'the listing shows no temp and no partial file');
          if (existing) assertRamp(await readFile(join(root, 'big.bin')), 0, 1, 'the old file, whole');
          const left = await temps(root);
          assert.equal(left.length, 1, 'the dead put left its temp');
          if (mode === 'commit') assert.equal((await stat(join(root, left[0] ?? ''))).size, SIZE);
          assert.equal(await remote.cleanupTemp(signal), 1);
          assert.deepEqual(await temps(root), []);
        }),
      );
    }
  }
});
