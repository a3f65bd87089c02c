// LocalRemote: list/stat/read over a temp dir, symlinks reported (not followed), traversal
// refused, change detection by size+mtime, non-UTF-8 names refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { checkRamp, writeRampFile } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';

void describe('LocalRemote', () => {
  let base: string;
  let root: string;
  let remote: LocalRemote;
  const ac = new AbortController();

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'fusestream-local-'));
    root = join(base, 'root');
    await mkdir(join(root, 'dir one', 'deeper'), { recursive: true });
    await writeRampFile(join(root, 'ramp.bin'), 1_000_003);
    await writeRampFile(join(root, 'dir one', 'ünï 100%#?.bin'), 5000);
    await writeFile(join(root, 'empty'), '');
    await writeFile(join(base, 'secret'), 'outside');
    await symlink('ramp.bin', join(root, 'link'));
    await symlink('..', join(root, 'up'));
    await symlink(base, join(root, 'escape'));
    // a name that is not valid UTF-8: refused in listings
    await writeFile(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
    remote = new LocalRemote({ root, chunkBytes: 64 * 1024 });
  });

  after(async () => {
    ac.abort();
    await remote.close();
    await rm(base, { recursive: true, force: true });
  });

  void test('list reports files, dirs and symlinks with exact sizes; refuses non-UTF-8 names', async () => {
    const entries = (await remote.list('', ac.signal)).sort((a, b) => a.name.localeCompare(b.name));
    const mt = async (p: string): Promise<number> => (await stat(join(root, p))).mtimeMs;
    const names = entries.map((e) => [e.name, e.type, e.type === 'file' ? e.size : undefined]);
    assert.deepEqual(names, [
      ['dir one', 'dir', undefined],
      ['empty', 'file', 0],
      ['escape', 'symlink', undefined],
      ['link', 'symlink', undefined],
      ['ramp.bin', 'file', 1_000_003],
      ['up', 'symlink', undefined],
    ]);
    assert.equal(entries.find((e) => e.name === 'ramp.bin')?.mtimeMs, await mt('ramp.bin'));
    assert.equal(remote.capabilities.exactListing, true);
    assert.equal(remote.capabilities.writable, true);
    assert.deepEqual(
      (await remote.list('dir one', ac.signal)).map((e) => e.name).sort(),
      ['deeper', 'ünï 100%#?.bin'],
    );
  });

  void test('stat', async () => {
    const st = await remote.stat('ramp.bin', ac.signal);
    assert.equal(st.type, 'file');
    assert.equal(st.size, 1_000_003);
    assert.equal(st.etag, undefined);
    assert.equal((await remote.stat('dir one', ac.signal)).type, 'dir');
    assert.equal((await remote.stat('link', ac.signal)).type, 'symlink');
    assert.equal((await remote.stat('', ac.signal)).type, 'dir');
    await rejectsKind(remote.stat('nope', ac.signal), 'not-found', 'missing');
    await rejectsKind(remote.stat('ramp.bin/x', ac.signal), 'not-found', 'file as dir');
  });

  void test('ranged reads', async () => {
    for (const [offset, length] of [
      [0, 1],
      [0, 1_000_003],
      [65535, 200_000],
      [1_000_000, 100],
    ] as const) {
      const r = await remote.read('ramp.bin', offset, length, { signal: ac.signal });
      const buf = await within(collect(r.body), 5000, `local read ${offset}+${length}`);
      assert.equal(buf.length, Math.min(length, 1_000_003 - offset));
      assert.equal(checkRamp(buf, offset), -1);
      assert.equal(r.fingerprint.size, 1_000_003);
    }
    const u = await remote.read('dir one/ünï 100%#?.bin', 10, 20, { signal: ac.signal });
    assert.equal(checkRamp(await collect(u.body), 10), -1);
    const e = await remote.read('empty', 0, 10, { signal: ac.signal });
    assert.equal((await collect(e.body)).length, 0);
    await rejectsKind(remote.read('ramp.bin', 2_000_000, 10, { signal: ac.signal }), 'invalid', 'past EOF');
    await rejectsKind(remote.read('link', 0, 10, { signal: ac.signal }), 'invalid', 'symlink read');
    await rejectsKind(remote.read('dir one', 0, 10, { signal: ac.signal }), 'invalid', 'dir read');
  });

  void test('traversal is refused', async () => {
    for (const p of ['..', '../secret', 'dir one/../../secret', './ramp.bin']) {
      await rejectsKind(remote.stat(p, ac.signal), 'invalid', `stat ${p}`);
      await rejectsKind(remote.read(p, 0, 10, { signal: ac.signal }), 'invalid', `read ${p}`);
      await rejectsKind(remote.list(p, ac.signal), 'invalid', `list ${p}`);
    }
    // through symlinked directories
    await rejectsKind(remote.stat('escape/secret', ac.signal), 'invalid', 'stat through a symlink out');
    await rejectsKind(remote.read('escape/secret', 0, 10, { signal: ac.signal }), 'invalid', 'read through a symlink out');
    await rejectsKind(remote.read('up/secret', 0, 10, { signal: ac.signal }), 'invalid', 'read through ..-symlink');
    await rejectsKind(remote.list('escape', ac.signal), 'invalid', 'list of a symlink');
  });

  void test('changed files are detected', async () => {
    const path = join(root, 'changing.bin');
    await writeRampFile(path, 10_000);
    const st = await remote.stat('changing.bin', ac.signal);
    const fp = { size: st.size, mtimeMs: st.mtimeMs ?? 0 };
    const r = await remote.read('changing.bin', 0, 10_000, { signal: ac.signal, expect: fp });
    await truncate(path, 5000);
    await rejectsKind(collect(r.body), 'changed', 'shrunk before reading');
    await rejectsKind(remote.read('changing.bin', 0, 10, { signal: ac.signal, expect: fp }), 'changed', 'stale expect');
  });

  void test('abort stops a read', async () => {
    const ctl = new AbortController();
    const r = await remote.read('ramp.bin', 0, 1_000_003, { signal: ctl.signal });
    const it = r.body[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    ctl.abort();
    await rejectsKind(it.next(), 'aborted', 'aborted local read');
  });
});

void describe('LocalRemote: a directory swapped for a symlink between the check and the use', () => {
  // The hook runs exactly in the window between #resolve's realpath check and the open: it
  // replaces `inside/` with a symlink to a directory outside the root holding the same names.
  for (const op of ['read', 'list', 'stat'] as const) {
    test(`${op} never reaches outside the root`, async () => {
      const base = await mkdtemp(join(tmpdir(), 'fusestream-swap-'));
      const root = join(base, 'root');
      const outside = join(base, 'outside');
      await mkdir(join(root, 'inside'), { recursive: true });
      await mkdir(outside);
      await writeFile(join(root, 'inside', 'f.txt'), 'inside bytes');
      await writeFile(join(outside, 'f.txt'), 'SECRET outside');
      let swapped = false;
      const remote = new LocalRemote({
        root,
        hooks: {
          afterResolve: async () => {
            if (swapped) return;
            swapped = true;
            await rename(join(root, 'inside'), join(root, 'inside.old'));
            await symlink(outside, join(root, 'inside'));
          },
        },
      });
      const signal = new AbortController().signal;
      try {
        if (op === 'read') {
          await rejectsKind(remote.read('inside/f.txt', 0, 100, { signal }).then(async (r) => collect(r.body)), 'invalid', 'read through a swapped directory');
        } else if (op === 'list') {
          await rejectsKind(remote.list('inside', signal), 'invalid', 'list of a swapped directory');
        } else {
          await rejectsKind(remote.stat('inside/f.txt', signal), 'invalid', 'stat through a swapped directory');
        }
        assert.ok(swapped, 'the swap happened inside the window');
      } finally {
        await remote.close();
        await rm(base, { recursive: true, force: true });
      }
    });
  }
});
