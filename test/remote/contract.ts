// The remote contract, written once: what every writable Remote guarantees to the write path,
// run against each implementation (local-remote-contract.test.ts, memory-remote-contract.test.ts).
// Each test gets a fresh, empty remote. Reads use chunks smaller than the objects, so a reader
// can be stopped half-way through a version while a put replaces it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, Gate, within } from '../../src/base/async.js';
import { sameVersion } from '../../src/remote/fingerprint.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import type { ContentSource, Remote, RemoteStat } from '../../src/remote/remote.js';
import { checkRamp, rampBuffer } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';

export interface ContractSubject {
  /** A writable remote over an empty root; its read bodies yield chunks of 64 KiB or less. */
  remote: Remote;
  dispose(): Promise<void>;
}

/** What the suite expects the remote to claim (and then checks it keeps). */
export interface ContractCapabilities {
  atomicRename: boolean;
  renameNoReplace: boolean;
  conditionalPut: boolean;
  symlinks: boolean;
  mtimes: boolean;
}

const SIZE = 300_000;
const MS = 5000;

/** A re-openable source of ramp bytes in `chunkBytes` pieces. */
export function rampSource(size: number, seed: number, chunkBytes = 64 * 1024): ContentSource {
  return {
    sizeBytes: size,
    async *open(signal: AbortSignal) {
      for (let off = 0; off < size; off += chunkBytes) {
        signal.throwIfAborted();
        yield rampBuffer(off, Math.min(chunkBytes, size - off), seed);
        await Promise.resolve();
      }
    },
  };
}

/** A source that yields one chunk, reports it through `yielded`, then waits on `gate` (or its signal) and fails with `failWith` if given. */
function stallingSource(size: number, seed: number, yielded: Deferred<void>, gate: Gate, failWith?: Error): ContentSource {
  return {
    sizeBytes: size,
    async *open(signal: AbortSignal) {
      yield rampBuffer(0, 64 * 1024, seed);
      yielded.resolve();
      if (failWith !== undefined) throw failWith;
      await gate.wait(signal);
      yield rampBuffer(64 * 1024, size - 64 * 1024, seed);
    },
  };
}

async function readAll(remote: Remote, path: string, signal: AbortSignal): Promise<Buffer> {
  const st = await remote.stat(path, signal);
  if (st.size === 0) return Buffer.alloc(0);
  const r = await remote.read(path, 0, st.size, { signal });
  return within(collect(r.body), MS, `reading ${path}`);
}

async function names(remote: Remote, dir: string, signal: AbortSignal): Promise<string[]> {
  return (await remote.list(dir, signal)).map((e) => e.name).sort();
}

function writer(remote: Remote): Required<Pick<Remote, 'put' | 'delete' | 'rename' | 'mkdir' | 'rmdir'>> & Remote {
  for (const op of ['put', 'delete', 'rename', 'mkdir', 'rmdir'] as const) assert.equal(typeof remote[op], 'function', `a writable remote has ${op}`);
  return remote as Required<Pick<Remote, 'put' | 'delete' | 'rename' | 'mkdir' | 'rmdir'>> & Remote;
}

export function runRemoteContract(name: string, makeRemote: () => Promise<ContractSubject>, caps: ContractCapabilities): void {
  const signal = new AbortController().signal;

  const withRemote = (title: string, body: (remote: ReturnType<typeof writer>) => Promise<void>): void => {
    void test(title, async () => {
      const subject = await makeRemote();
      try {
        await body(writer(subject.remote));
      } finally {
        await subject.remote.close();
        await subject.dispose();
      }
    });
  };

  const put = (remote: ReturnType<typeof writer>, path: string, seed: number, size = SIZE): Promise<RemoteStat> =>
    within(remote.put(path, rampSource(size, seed), { signal }), MS, `put ${path}`);

  void describe(`remote contract: ${name}`, () => {
    withRemote('claims the capabilities it keeps', async (remote) => {
      const c = remote.capabilities;
      assert.equal(c.writable, true);
      assert.deepEqual(
        { atomicRename: c.atomicRename, renameNoReplace: c.renameNoReplace, conditionalPut: c.conditionalPut, symlinks: c.symlinks, mtimes: c.mtimes },
        caps,
      );
      assert.deepEqual(await names(remote, '', signal), []);
    });

    withRemote('put then read back; the returned stat is the stored version', async (remote) => {
      const st = await put(remote, 'a.bin', 1);
      assert.equal(st.type, 'file');
      assert.equal(st.size, SIZE);
      const now = await remote.stat('a.bin', signal);
      assert.ok(sameVersion(st, now), 'put returns the fingerprint stat reports');
      const buf = await readAll(remote, 'a.bin', signal);
      assert.equal(buf.length, SIZE);
      assert.equal(checkRamp(buf, 0, 1), -1);
      const part = await remote.read('a.bin', 70_000, 1000, { signal, expect: st });
      assert.equal(checkRamp(await collect(part.body), 70_000, 1), -1);
      assert.deepEqual(await names(remote, '', signal), ['a.bin']);
      // An empty file is a file too.
      const empty = await put(remote, 'empty', 3, 0);
      assert.equal(empty.size, 0);
      assert.deepEqual(await names(remote, '', signal), ['a.bin', 'empty']);
    });

    withRemote('put replaces atomically: a reader that started before sees the old bytes or "changed", never a mix', async (remote) => {
      const v1 = await put(remote, 'a.bin', 1);
      const started = await remote.read('a.bin', 0, SIZE, { signal, expect: v1 });
      const it = started.body[Symbol.asyncIterator]();
      const first = await within(it.next(), MS, 'the first chunk of v1');
      assert.equal(first.done, false);
      const notStarted = await remote.read('a.bin', 0, SIZE, { signal, expect: v1 });
      const v2 = await put(remote, 'a.bin', 2);
      assert.ok(!sameVersion(v1, v2), 'the new version has another fingerprint');
      const finish = async (): Promise<Buffer> => {
        const parts: Uint8Array[] = [first.value];
        for (let r = await it.next(); r.done !== true; r = await it.next()) parts.push(r.value);
        return Buffer.concat(parts);
      };
      for (const [label, body] of [
        ['a reader half-way', () => within(finish(), MS, 'the rest of v1')],
        ['a reader not started', () => within(collect(notStarted.body), MS, 'v1 not started')],
      ] as const) {
        try {
          const buf = await body();
          assert.equal(buf.length, SIZE, `${label}: whole`);
          assert.equal(checkRamp(buf, 0, 1), -1, `${label}: all old bytes`);
        } catch (err) {
          assert.ok(err instanceof RemoteError && err.kind === 'changed', `${label}: old bytes or 'changed', got ${String(err)}`);
        }
      }
      assert.equal(checkRamp(await readAll(remote, 'a.bin', signal), 0, 2), -1, 'a new reader sees v2');
      await rejectsKind(remote.read('a.bin', 0, 10, { signal, expect: v1 }), 'changed', 'a read expecting v1');
      assert.deepEqual(await names(remote, '', signal), ['a.bin']);
    });

    withRemote('ifNoneMatch creates only', async (remote) => {
      const v1 = await within(remote.put('a.bin', rampSource(SIZE, 1), { signal, ifNoneMatch: true }), MS, 'create-only put');
      await rejectsKind(remote.put('a.bin', rampSource(SIZE, 2), { signal, ifNoneMatch: true }), 'exists', 'create-only put over a file');
      assert.ok(sameVersion(v1, await remote.stat('a.bin', signal)), 'unchanged');
      assert.equal(checkRamp(await readAll(remote, 'a.bin', signal), 0, 1), -1);
      await remote.mkdir('d', { signal });
      await rejectsKind(remote.put('d', rampSource(10, 2), { signal, ifNoneMatch: true }), 'exists', 'create-only put over a directory');
      assert.deepEqual(await names(remote, '', signal), ['a.bin', 'd']);
    });

    withRemote('ifMatch replaces only the named version', async (remote) => {
      const v1 = await put(remote, 'a.bin', 1);
      const v2 = await within(remote.put('a.bin', rampSource(SIZE, 2), { signal, ifMatch: v1 }), MS, 'put ifMatch current');
      await rejectsKind(remote.put('a.bin', rampSource(SIZE, 3), { signal, ifMatch: v1 }), 'conflict', 'put ifMatch stale');
      assert.ok(sameVersion(v2, await remote.stat('a.bin', signal)));
      assert.equal(checkRamp(await readAll(remote, 'a.bin', signal), 0, 2), -1, 'the stale put changed nothing');
      await rejectsKind(remote.put('gone.bin', rampSource(SIZE, 3), { signal, ifMatch: v1 }), 'conflict', 'put ifMatch on a missing object');
      assert.deepEqual(await names(remote, '', signal), ['a.bin']);
    });

    withRemote('put: a missing parent is not-found, a directory is invalid, a short source is invalid', async (remote) => {
      await rejectsKind(remote.put('no/such/a.bin', rampSource(10, 1), { signal }), 'not-found', 'put under a missing directory');
      await remote.mkdir('d', { signal });
      await rejectsKind(remote.put('d', rampSource(10, 1), { signal }), 'invalid', 'put over a directory');
      const v1 = await put(remote, 'a.bin', 1);
      const short: ContentSource = { sizeBytes: SIZE + 1, open: (s) => rampSource(SIZE, 2).open(s) };
      await rejectsKind(remote.put('a.bin', short, { signal }), 'invalid', 'a source shorter than it said');
      assert.ok(sameVersion(v1, await remote.stat('a.bin', signal)), 'unchanged');
      assert.deepEqual(await names(remote, '', signal), ['a.bin', 'd']);
      assert.deepEqual(await names(remote, 'd', signal), []);
    });

    withRemote('a put whose source fails mid-way leaves the old object and nothing else', async (remote) => {
      const v1 = await put(remote, 'a.bin', 1);
      const broke = new Error('the cache file broke');
      const yielded = new Deferred<void>();
      let caught: unknown;
      try {
        await within(remote.put('a.bin', stallingSource(SIZE, 2, yielded, new Gate(), broke), { signal }), MS, 'a put with a failing source');
      } catch (err) {
        caught = err;
      }
      assert.equal(caught, broke, "the source's own error, unchanged");
      assert.ok(sameVersion(v1, await remote.stat('a.bin', signal)));
      assert.equal(checkRamp(await readAll(remote, 'a.bin', signal), 0, 1), -1);
      await assert.rejects(remote.put('new.bin', stallingSource(SIZE, 2, new Deferred(), new Gate(), broke), { signal }));
      assert.deepEqual(await names(remote, '', signal), ['a.bin'], 'no temp, no partial new object');
    });

    withRemote('a put aborted mid-way leaves the old object and nothing else', async (remote) => {
      const v1 = await put(remote, 'a.bin', 1);
      for (const path of ['a.bin', 'new.bin']) {
        const ctl = new AbortController();
        const yielded = new Deferred<void>();
        const p = remote.put(path, stallingSource(SIZE, 2, yielded, new Gate()), { signal: ctl.signal });
        await within(yielded.promise, MS, 'the source to yield its first chunk');
        ctl.abort();
        await rejectsKind(p, 'aborted', `aborted put of ${path}`);
      }
      assert.ok(sameVersion(v1, await remote.stat('a.bin', signal)));
      assert.equal(checkRamp(await readAll(remote, 'a.bin', signal), 0, 1), -1);
      assert.deepEqual(await names(remote, '', signal), ['a.bin']);
    });

    withRemote('delete', async (remote) => {
      const v1 = await put(remote, 'a.bin', 1);
      await put(remote, 'b.bin', 2);
      await remote.mkdir('d', { signal });
      await rejectsKind(remote.delete('a.bin', { signal, ifMatch: { size: SIZE + 1 } }), 'conflict', 'delete ifMatch stale');
      await remote.delete('a.bin', { signal, ifMatch: v1 });
      await remote.delete('b.bin', { signal });
      await rejectsKind(remote.stat('a.bin', signal), 'not-found', 'deleted');
      await rejectsKind(remote.delete('a.bin', { signal }), 'not-found', 'delete of a missing file');
      await rejectsKind(remote.delete('d', { signal }), 'invalid', 'delete of a directory');
      assert.deepEqual(await names(remote, '', signal), ['d']);
    });

    withRemote('rename: plain, over a file, noReplace, directories', async (remote) => {
      await put(remote, 'a.bin', 1);
      await put(remote, 'b.bin', 2);
      await remote.rename('a.bin', 'c.bin', { signal });
      assert.deepEqual(await names(remote, '', signal), ['b.bin', 'c.bin']);
      await remote.rename('c.bin', 'b.bin', { signal });
      assert.deepEqual(await names(remote, '', signal), ['b.bin']);
      assert.equal(checkRamp(await readAll(remote, 'b.bin', signal), 0, 1), -1, 'the moved bytes replaced the old ones');
      await put(remote, 'x.bin', 3);
      await rejectsKind(remote.rename('x.bin', 'b.bin', { signal, noReplace: true }), 'exists', 'noReplace over a file');
      assert.equal(checkRamp(await readAll(remote, 'b.bin', signal), 0, 1), -1, 'the target is untouched');
      assert.equal(checkRamp(await readAll(remote, 'x.bin', signal), 0, 3), -1, 'the source is untouched');
      await remote.rename('x.bin', 'y.bin', { signal, noReplace: true });
      assert.deepEqual(await names(remote, '', signal), ['b.bin', 'y.bin']);
      assert.equal(checkRamp(await readAll(remote, 'y.bin', signal), 0, 3), -1);
      await rejectsKind(remote.rename('missing', 'z', { signal }), 'not-found', 'rename of a missing entry');
      await rejectsKind(remote.rename('y.bin', 'no/such/z', { signal }), 'not-found', 'rename into a missing directory');
      // directories
      await remote.mkdir('d', { signal });
      await put(remote, 'd/in.bin', 4, 1000);
      await remote.mkdir('e', { signal });
      await rejectsKind(remote.rename('d', 'e', { signal, noReplace: true }), 'exists', 'noReplace over a directory');
      await rejectsKind(remote.rename('d', 'd/sub', { signal }), 'invalid', 'a directory into itself');
      await rejectsKind(remote.rename('d', 'b.bin', { signal }), 'invalid', 'a directory over a file');
      await rejectsKind(remote.rename('b.bin', 'd', { signal }), 'invalid', 'a file over a directory');
      await remote.rename('d', 'e', { signal });
      assert.deepEqual(await names(remote, '', signal), ['b.bin', 'e', 'y.bin']);
      assert.deepEqual(await names(remote, 'e', signal), ['in.bin']);
      await remote.mkdir('f', { signal });
      await rejectsKind(remote.rename('f', 'e', { signal }), 'not-empty', 'a directory over a non-empty one');
      await remote.rename('f', 'g', { signal, noReplace: true });
      assert.deepEqual(await names(remote, '', signal), ['b.bin', 'e', 'g', 'y.bin']);
      assert.equal(checkRamp(await readAll(remote, 'e/in.bin', signal), 0, 4), -1);
    });

    withRemote('mkdir and rmdir', async (remote) => {
      await remote.mkdir('d', { signal });
      await rejectsKind(remote.mkdir('d', { signal }), 'exists', 'mkdir of an existing directory');
      await put(remote, 'f', 1, 10);
      await rejectsKind(remote.mkdir('f', { signal }), 'exists', 'mkdir over a file');
      await rejectsKind(remote.mkdir('no/such', { signal }), 'not-found', 'mkdir under a missing parent');
      await remote.mkdir('d/e', { signal });
      assert.equal((await remote.stat('d/e', signal)).type, 'dir');
      await rejectsKind(remote.rmdir('d', { signal }), 'not-empty', 'rmdir of a non-empty directory');
      await rejectsKind(remote.rmdir('f', { signal }), 'invalid', 'rmdir of a file');
      await rejectsKind(remote.rmdir('nope', { signal }), 'not-found', 'rmdir of a missing directory');
      await remote.rmdir('d/e', { signal });
      await remote.rmdir('d', { signal });
      assert.deepEqual(await names(remote, '', signal), ['f']);
    });

    if (caps.symlinks) {
      withRemote('symlink', async (remote) => {
        assert.ok(remote.symlink !== undefined && remote.readlink !== undefined);
        await remote.symlink('../some where/ü', 'l', { signal });
        assert.equal((await remote.stat('l', signal)).type, 'symlink');
        assert.equal(await remote.readlink('l', signal), '../some where/ü');
        await rejectsKind(remote.symlink('x', 'l', { signal }), 'exists', 'symlink over an existing name');
        await rejectsKind(remote.symlink('x', 'no/such/l', { signal }), 'not-found', 'symlink under a missing parent');
        await remote.rename('l', 'm', { signal, noReplace: true });
        assert.equal(await remote.readlink('m', signal), '../some where/ü');
        await remote.delete('m', { signal });
        assert.deepEqual(await names(remote, '', signal), []);
      });
    }

    if (caps.mtimes) {
      withRemote('setMtime and put with mtimeMs', async (remote) => {
        assert.ok(remote.setMtime !== undefined);
        const t1 = Date.UTC(2020, 1, 2, 3, 4, 5, 678);
        const st = await within(remote.put('a.bin', rampSource(1000, 1), { signal, mtimeMs: t1 }), MS, 'put with mtime');
        assert.ok(Math.abs((st.mtimeMs ?? 0) - t1) < 1, `put's mtime ${st.mtimeMs} is ${t1}`);
        const t2 = Date.UTC(2021, 5, 6, 7, 8, 9, 10);
        const set = await remote.setMtime('a.bin', t2, { signal });
        assert.ok(Math.abs((set.mtimeMs ?? 0) - t2) < 1, `setMtime's mtime ${set.mtimeMs} is ${t2}`);
        assert.equal((await remote.stat('a.bin', signal)).mtimeMs, set.mtimeMs);
        await remote.mkdir('d', { signal });
        assert.ok(Math.abs(((await remote.setMtime('d', t1, { signal })).mtimeMs ?? 0) - t1) < 1);
        await rejectsKind(remote.setMtime('nope', t1, { signal }), 'not-found', 'setMtime of a missing entry');
        if (caps.symlinks && remote.symlink !== undefined) {
          await remote.symlink('a.bin', 'l', { signal });
          const l = await remote.setMtime('l', t1, { signal });
          assert.ok(Math.abs((l.mtimeMs ?? 0) - t1) < 1, "the link's own mtime");
          assert.equal((await remote.stat('a.bin', signal)).mtimeMs, set.mtimeMs, 'the target is untouched');
        }
      });
    }
  });
}
