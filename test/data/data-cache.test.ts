// DataCache scenarios: concurrent readers, close while reading, several files, the missed
// wakeup window, eviction under load, restart and changed objects. Deterministic: the fake
// remote moves only when told (manual reads) or in fixed chunk steps, hooks expose the exact
// points that matter, and every wait goes through `within`.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Deferred, Gate, within } from '../../src/base/async.js';
import type { DataCache, FileReader } from '../../src/data/data-cache.js';
import { ClosedError, ChangedError } from '../../src/data/errors.js';
import type { DataHooks } from '../../src/data/hooks.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { nginxAvailable, startNginx } from '../support/nginx.js';
import { assertRamp, checkRamp, writeRampFile } from '../support/ramp.js';
import { FakeRemote } from '../fakes/fake-remote.js';
import { KiB, MiB, assertGaugesZero, openCache, prng, useCacheTestbed } from '../support/cache-harness.js';

const T = 10_000; // generous bound for anything that should take milliseconds

/** Observes a promise at once (no unhandled rejection) and reports how it settled. */
function settle<V>(p: Promise<V>): Promise<PromiseSettledResult<V>> {
  return p.then(
    (value) => ({ status: 'fulfilled', value }) as const,
    (reason: unknown) => ({ status: 'rejected', reason }) as const,
  );
}

void describe('DataCache', () => {
  const bed = useCacheTestbed({ beforeEach, afterEach }, T);
  const track = async (p: Promise<DataCache>): Promise<DataCache> => bed.track(await p);

  void test('1. eight concurrent readers with random reads over a 32 MiB ramp object get exact bytes', async () => {
    const size = 32 * MiB;
    const root = join(bed.dir, 'remote');
    mkdirSync(root);
    await writeRampFile(join(root, 'big.bin'), size);
    // The real thing where we can: nginx on 127.0.0.1 through HttpRemote; else the local remote.
    let remote: Remote;
    if (nginxAvailable()) {
      const ng = await startNginx({ root });
      bed.onTeardown(() => ng.stop());
      remote = new HttpRemote({ baseUrl: ng.url });
    } else {
      remote = new LocalRemote({ root, chunkBytes: 64 * KiB });
    }
    bed.onTeardown(() => remote.close());
    const st = await remote.stat('big.bin', new AbortController().signal);
    const fp = { size: st.size, ...(st.etag !== undefined ? { etag: st.etag } : {}), ...(st.mtimeMs !== undefined ? { mtimeMs: st.mtimeMs } : {}) };
    const cache = await track(openCache({ remote, dir: bed.dir }));
    const rnd = prng(1);
    const workers = Array.from({ length: 8 }, async (_, w) => {
      const reader = await cache.openFile('big.bin', fp, size);
      try {
        for (let i = 0; i < 40; i++) {
          const sequential = w % 2 === 0;
          const off = sequential ? (i * 200 * KiB + w * 4 * MiB) % size : Math.floor(rnd() * size);
          const len = 1 + Math.floor(rnd() * 256 * KiB);
          const buf = await reader.read(off, len);
          assert.equal(buf.length, Math.min(len, size - off));
          assert.equal(checkRamp(buf, off), -1, `worker ${w} read ${i} at ${off}: wrong bytes`);
        }
      } finally {
        await reader.close();
      }
    });
    await within(Promise.all(workers), 60_000, '8 readers to finish their random reads');
    const s = cache.stats();
    assertGaugesZero(s, 'after the readers closed');
    assert.ok(s.bytesFetched <= size + 8 * MiB, `fetched ${s.bytesFetched} bytes, more than the object plus slack`);
  });

  void test('random 4 KiB reads fetch only their pages; a read that continues one starts read-ahead again', async () => {
    const remote = new FakeRemote({ chunkBytes: 64 * KiB });
    const size = 1024 * MiB; // sparse in the cache; big enough that random reads rarely look sequential
    const fp = remote.setObject('r', size, 5);
    const cache = await track(openCache({ remote, dir: bed.dir }));
    const reader = await cache.openFile('r', fp, size);
    const rnd = prng(7);
    const n = 200;
    for (let i = 0; i < n; i++) {
      const off = Math.floor(rnd() * (size / (4 * KiB))) * 4 * KiB + (i % 3 === 0 ? 100 : 0); // some unaligned
      const buf = await within(reader.read(off, 4 * KiB), T, `random read ${i}`);
      assert.equal(buf.length, Math.min(4 * KiB, size - off));
      assertRamp(buf, off, 5, `random read ${i} at ${off}`);
    }
    const fetched = cache.stats().bytesFetched;
    const read = n * 4 * KiB;
    assert.ok(fetched <= 2 * read, `random reads fetched ${fetched} bytes for ${read} read (${(fetched / read).toFixed(1)}x, want <= 2x)`);
    assert.ok(remote.reads.every((r) => r.length <= 8 * KiB), `a random read fetched more than two pages: ${remote.reads.map((r) => r.length).join(',')}`);
    // Continue the last read sequentially: the stream is recognised and read-ahead resumes.
    const readsBefore = remote.reads.length;
    const base = 40 * MiB;
    await reader.read(base, 64 * KiB); // a seek: fetches its pages only
    await reader.read(base + 64 * KiB, 64 * KiB); // continues it: read-ahead starts
    assert.ok(remote.reads.slice(readsBefore).some((r) => r.offset >= base + 128 * KiB), 'no read-ahead after the reads became sequential');
    await reader.close();
  });

  void test('2. close while reads are starting: each point of a read gives its exact outcome, nothing hangs', async () => {
    // A close of the handle racing its reads, with each read held at a precise point (hooks and
    // the manual fake remote, no sleeps), and the outcome each point must give:
    // - before-start: close() before any read was called: every read gets ClosedError and no
    //   request reaches the remote;
    // - in-window: close() from inside a read's look-then-register step (it entered the file's
    //   gate and saw its bytes missing, its waiter is not registered yet): it still sees the
    //   close (ClosedError, not a hang on the download it then plans), and so does a read after;
    // - waiting: three reads registered and waiting on downloads that reached the remote and
    //   stall there: all get ClosedError, every remote request is aborted;
    // - copying-out: read 0 has its bytes and is held right before copying them out, read 1
    //   waits on a stalled download: read 1 gets ClosedError at once, close waits for read 0,
    //   which returns its exact bytes.
    // After each: the handle closed, no remote body open, every gauge back to zero.
    const remote = new FakeRemote({ mode: 'manual', chunkBytes: 64 * KiB });
    let onWindow: (() => void) | undefined;
    let onCopyOut: ((start: number) => Promise<void> | undefined) | undefined;
    let closeWaits = new Deferred<number>();
    const hooks: DataHooks = {
      onSawMissing: () => onWindow?.(),
      beforeCopyOut: ({ start }) => onCopyOut?.(start),
      onCloseWaitsForReads: ({ inFlightReads }) => closeWaits.resolve(inFlightReads),
    };
    const cache = await track(openCache({ remote, dir: bed.dir, hooks, config: { chunkSizeBytes: 256 * KiB } }));
    const size = 4 * MiB;
    const isClosed = (r: PromiseSettledResult<Buffer>): boolean => r.status === 'rejected' && r.reason instanceof ClosedError;
    const describeResult = (r: PromiseSettledResult<Buffer>): string => (r.status === 'fulfilled' ? `${r.value.length} bytes` : String(r.reason));
    const orders = ['before-start', 'in-window', 'waiting', 'copying-out'] as const;
    for (const [n, order] of orders.entries()) {
      const path = `f-${order}`;
      const seed = 20 + n;
      const fp = remote.setObject(path, size, seed);
      const reader = await cache.openFile(path, fp, size);
      const readsBefore = remote.reads.length;
      let closing: Promise<void> | undefined;
      let closeDone = false;
      const close = (): void => {
        closing ??= reader.close().then(() => {
          closeDone = true;
        });
      };
      const held = { reached: new Deferred<void>(), gate: new Gate() };
      closeWaits = new Deferred<number>();
      try {
        if (order === 'before-start') {
          close();
          const results = await within(Promise.all([0, 1 * MiB, 3 * MiB].map((o) => settle(reader.read(o, 4 * KiB)))), T, `${order}: reads to settle`);
          results.forEach((r, i) => assert.ok(isClosed(r), `${order} read ${i}: ${describeResult(r)}`));
          assert.equal(remote.reads.length, readsBefore, `${order}: no request reached the remote`);
        } else if (order === 'in-window') {
          const seen: { inFlightReads: number; waiters: number }[] = [];
          onWindow = () => {
            if (closing) return;
            const s = cache.stats();
            seen.push({ inFlightReads: s.inFlightReads, waiters: s.waiters });
            close();
          };
          const r0 = settle(reader.read(0, 64 * KiB)); // the hook runs (and closes) inside this call
          onWindow = undefined;
          assert.deepEqual(seen, [{ inFlightReads: 1, waiters: 0 }], `${order}: closed while read 0 was in the gate and not registered`);
          const r1 = settle(reader.read(1 * MiB, 4 * KiB));
          const results = await within(Promise.all([r0, r1]), T, `${order}: read 0 (closed inside its look-then-register step) and read 1 to settle`);
          results.forEach((r, i) => assert.ok(isClosed(r), `${order} read ${i}: ${describeResult(r)}`));
        } else if (order === 'waiting') {
          const rs = [0, 1 * MiB, 3 * MiB].map((o) => settle(reader.read(o, 4 * KiB)));
          const s = cache.stats();
          assert.deepEqual({ inFlightReads: s.inFlightReads, waiters: s.waiters }, { inFlightReads: 3, waiters: 3 }, `${order}: three reads registered`);
          await within(remote.readsReached(readsBefore + 3), T, `${order}: the three downloads to reach the remote`);
          close();
          const results = await within(Promise.all(rs), T, `${order}: reads waiting on stalled downloads to see the close`);
          results.forEach((r, i) => assert.ok(isClosed(r), `${order} read ${i}: ${describeResult(r)}`));
          const mine = remote.reads.slice(readsBefore);
          await within(Promise.all(mine.map((r) => r.whenClosed)), T, `${order}: the stalled requests to be aborted`);
          assert.ok(mine.every((r) => r.aborted), `${order}: every stalled request was aborted`);
        } else {
          onCopyOut = (start) => {
            if (start !== 0) return undefined;
            held.reached.resolve();
            return held.gate.wait();
          };
          const r0 = settle(reader.read(0, 64 * KiB));
          const r1 = settle(reader.read(2 * MiB, 4 * KiB));
          await within(remote.readsReached(readsBefore + 2), T, `${order}: the downloads of read 0 and read 1 to reach the remote`);
          const first = remote.reads.slice(readsBefore).find((r) => r.offset === 0);
          assert.ok(first, `${order}: a download of read 0's bytes`);
          first.deliver();
          await within(held.reached.promise, T, `${order}: read 0 to have its bytes and be held before copying them out`);
          close();
          const res1 = await within(r1, T, `${order}: read 1, waiting on a stalled download, to see the close while read 0 is held`);
          assert.ok(isClosed(res1), `${order} read 1: ${describeResult(res1)}`);
          // Close must wait for read 0: it says so when it starts waiting (a close that does not
          // wait never does, and this bounded wait fails naming it), and cannot finish before
          // read 0 leaves, which the gate holds.
          const waiting = await within(closeWaits.promise, T, `${order}: close to start waiting for read 0, held before copying its bytes out`);
          assert.ok(waiting >= 1, `${order}: close waits for ${waiting} reads`);
          assert.equal(closeDone, false, `${order}: close finished while read 0 was held before copying its bytes out`);
          held.gate.open();
          const res0 = await within(r0, T, `${order}: read 0 to copy its bytes out after the close started`);
          assert.ok(res0.status === 'fulfilled', `${order} read 0: ${describeResult(res0)}`);
          assertRamp(res0.value, 0, seed, `${order} read 0`);
        }
        close();
        await within(closing ?? Promise.resolve(), T, `${order}: the reader to close`);
      } finally {
        onWindow = undefined;
        onCopyOut = undefined;
        held.gate.open();
      }
      assert.equal(remote.openBodies, 0, `${order}: remote bodies left open`);
      assertGaugesZero(cache.stats(), `after ${order}`);
    }
  });

  void test('3. close while readers wait on a stalled download: all get ClosedError promptly, the request is aborted', async () => {
    const remote = new FakeRemote({ mode: 'manual', chunkBytes: 64 * KiB });
    const fp = remote.setObject('f', 4 * MiB, 3);
    const waiting = { n: 0, d: new Deferred<void>() };
    const hooks: DataHooks = {
      onSawMissing: () => {
        if (++waiting.n === 4) waiting.d.resolve();
      },
    };
    const cache = await track(openCache({ remote, dir: bed.dir, hooks }));
    const reader = await cache.openFile('f', fp, 4 * MiB);
    const first = reader.read(0, 64 * KiB);
    await within(remote.readsReached(1), T, 'the first download to reach the remote');
    const dl = remote.reads[0];
    assert.ok(dl);
    dl.deliver(64 * KiB); // the first chunk, then the server stalls
    assertRamp(await within(first, T, 'the first chunk to be served'), 0, 3, 'first chunk');
    const later = [100 * KiB, 300 * KiB, 900 * KiB].map((o) => settle(reader.read(o, 4 * KiB)));
    await within(waiting.d.promise, T, 'three later readers to register their waiters');
    assert.equal(cache.stats().waiters, 3);
    await within(reader.close(), T, 'close to return while readers wait on a stalled download');
    const results = await within(Promise.all(later), T, 'waiting readers to see the closed error');
    for (const r of results) assert.ok(r.status === 'rejected' && r.reason instanceof ClosedError, r.status);
    await within(dl.whenClosed, T, 'the stalled remote request to be aborted');
    assert.ok(dl.aborted, 'the stalled body was aborted, not completed');
    assert.equal(remote.openBodies, 0);
    assertGaugesZero(cache.stats(), 'after close');
  });

  void test('4. five cache files in parallel with mixed readers: no cross-contamination', async () => {
    const remote = new FakeRemote({ chunkBytes: 48 * KiB });
    const sizes = [3 * MiB + 17, 2 * MiB, 5 * MiB - 3, 1 * MiB + 1, 4 * MiB];
    const fps = sizes.map((s, i) => remote.setObject(`obj${i}`, s, 10 + i));
    const cache = await track(openCache({ remote, dir: bed.dir, config: { chunkSizeBytes: 256 * KiB, maxRequestBytes: 1 * MiB } }));
    const rnd = prng(4);
    const jobs: Promise<void>[] = [];
    for (let f = 0; f < 5; f++) {
      for (let h = 0; h < 3; h++) {
        jobs.push(
          (async () => {
            const size = sizes[f] ?? 0;
            const reader = await cache.openFile(`obj${f}`, fps[f] ?? { size }, size);
            try {
              for (let i = 0; i < 25; i++) {
                const off = h === 0 ? Math.min(i * 128 * KiB, size - 1) : Math.floor(rnd() * size);
                const len = 1 + Math.floor(rnd() * 300 * KiB);
                const buf = await reader.read(off, len);
                assert.equal(buf.length, Math.min(len, size - off));
                assertRamp(buf, off, 10 + f, `file ${f} handle ${h} read ${i}`);
              }
            } finally {
              await reader.close();
            }
          })(),
        );
      }
    }
    await within(Promise.all(jobs), 60_000, 'readers of five files to finish');
    assertGaugesZero(cache.stats(), 'after all readers closed');
  });

  void test('5. closing file A while file B is opened and read concurrently: no deadlock, no interference', async () => {
    const remote = new FakeRemote({ chunkBytes: 64 * KiB });
    remote.manualPaths.add('a');
    const fa = remote.setObject('a', 2 * MiB, 21);
    const fb = remote.setObject('b', 3 * MiB, 22);
    const cache = await track(openCache({ remote, dir: bed.dir }));
    const a = await cache.openFile('a', fa, 2 * MiB);
    const aReads = [0, 512 * KiB, 1536 * KiB].map((o) => settle(a.read(o, 8 * KiB)));
    await within(remote.readsReached(1), T, 'file A to start its (stalled) download');
    const bJob = (async () => {
      const b = await cache.openFile('b', fb, 3 * MiB);
      try {
        for (let off = 0; off < 3 * MiB; off += 256 * KiB) assertRamp(await b.read(off, 256 * KiB), off, 22, `b at ${off}`);
      } finally {
        await b.close();
      }
    })();
    const aClose = a.close();
    await within(Promise.all([aClose, bJob]), T, 'closing A and reading B concurrently to finish');
    for (const r of await Promise.all(aReads)) assert.ok(r.status === 'rejected' && r.reason instanceof ClosedError);
    assert.equal(remote.openBodies, 0);
    assertGaugesZero(cache.stats(), 'after A and B closed');
  });

  void test('7. a download landing exactly while a reader is about to wait never loses the wakeup', async () => {
    // The window: a reader sees its bytes missing and must register a waiter; if data could
    // land between the look and the registration, nobody would ever wake it. The data layer
    // looks and registers in one synchronous step (CacheFile.addWaiter looks again as it
    // registers), so an arrival is either seen by the look or settles the waiter.
    //
    // We reproduce every ordering around that window deterministically:
    // (a) the beforeLanded hook holds the only download between "written" and "present";
    //     a second reader of the same bytes starts k microtask turns after the hold is
    //     released, for k = 0..30, so its look falls before, at and after the moment the
    //     bytes become present (landing takes a few turns after release);
    // (b) k = 31: the bytes land *inside* the window. The onSawMissing hook runs after the
    //     reader's look saw them missing and before its waiter is registered; there it calls
    //     the held chunk's land(), which marks the bytes present and wakes the waiters
    //     registered so far, synchronously, right there. A registration that does not look
    //     again (or that happens after a yield without looking again) misses that arrival and
    //     hangs until `within` names the missed wakeup.
    // In each case the read must return the right bytes from the one download (no second
    // request: it joined the download rather than fetching again), and no waiter is left.
    // Neither read starts at 0, so neither starts read-ahead: the one download is reader 1's
    // (random reads aligned to the whole 1 MiB object), whatever order planning happens in.
    const remote = new FakeRemote({ chunkBytes: 1 * MiB });
    let hold: { reached: Deferred<void>; gate: Gate; land?: () => void } | undefined;
    let inWindow: (() => void) | undefined;
    let landedChunks = 0;
    const hooks: DataHooks = {
      beforeLanded: async ({ land }) => {
        const h = hold;
        if (!h) return;
        h.land = land;
        h.reached.resolve();
        await h.gate.wait();
      },
      afterChunkLanded: () => {
        landedChunks++;
      },
      onSawMissing: () => inWindow?.(),
    };
    const cache = await track(
      openCache({ remote, dir: bed.dir, hooks, config: { chunkSizeBytes: 1 * MiB, randomAlignBytes: 1 * MiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB } }),
    );
    for (let k = 0; k <= 31; k++) {
      const path = `w${k}`;
      const fp = remote.setObject(path, 1 * MiB, k);
      const readsBefore = remote.reads.length;
      const h: NonNullable<typeof hold> = { reached: new Deferred<void>(), gate: new Gate() };
      hold = h;
      const r1 = await cache.openFile(path, fp, 1 * MiB);
      const r2 = await cache.openFile(path, fp, 1 * MiB);
      const first = r1.read(8 * KiB, 4 * KiB);
      try {
        await within(h.reached.promise, T, `download of ${path} to be written and held before landing`);
        let second: Promise<Buffer>;
        let what = `reader 2 of ${path} to be woken, its look ${k} turns after the landing was released (a hang here is a missed wakeup)`;
        if (k === 31) {
          // (b): land the held chunk from inside the reader's look-then-register step.
          const seen: { landedBefore: number; landedAfter: number; waitersBefore: number; waitersAfter: number }[] = [];
          inWindow = () => {
            if (seen.length > 0) return;
            const landedBefore = landedChunks;
            const waitersBefore = cache.stats().waiters; // reader 1's waiter, on the held download
            assert.ok(h.land, 'the held chunk offers land()');
            h.land();
            seen.push({ landedBefore, landedAfter: landedChunks, waitersBefore, waitersAfter: cache.stats().waiters });
          };
          second = r2.read(512 * KiB, 4 * KiB);
          inWindow = undefined;
          assert.deepEqual(
            seen,
            [{ landedBefore: 0, landedAfter: 1, waitersBefore: 1, waitersAfter: 0 }],
            'the bytes landed inside the window: after reader 2 looked, before it registered (only reader 1 was woken by the landing)',
          );
          h.gate.open(); // the download goes on; it does not land the chunk twice
          what = `reader 2 of ${path} to be woken although its bytes landed between its look and its registration (a hang here is the missed wakeup)`;
        } else {
          h.gate.open();
          for (let i = 0; i < k; i++) await Promise.resolve();
          second = r2.read(512 * KiB, 4 * KiB);
        }
        assertRamp(await within(second, T, what), 512 * KiB, k, `reader 2 k=${k}`);
        assertRamp(await within(first, T, `reader 1 of ${path}`), 8 * KiB, k, `reader 1 k=${k}`);
        assert.equal(remote.reads.length - readsBefore, 1, `k=${k}: one download served both readers`);
        assert.equal(cache.stats().waiters, 0);
      } finally {
        h.gate.open(); // a failed check must not leave the download held (teardown would hang)
        inWindow = undefined;
      }
      hold = undefined;
      landedChunks = 0;
      await within(r1.close(), T, `reader 1 of ${path} to close`);
      await within(r2.close(), T, `reader 2 of ${path} to close`);
    }
    assertGaugesZero(cache.stats(), 'after the window sweep');
    assert.equal(cache.stats().cacheBytes, 32 * MiB, 'each of the 32 objects landed exactly once (no double accounting)');
  });

  void test('8. eviction under concurrent reads and fills: cap honoured at every chunk, no open object evicted, sizes add up', async () => {
    const remote = new FakeRemote({ chunkBytes: 32 * KiB });
    const objects = Array.from({ length: 8 }, (_, i) => ({ path: `e${i}`, size: 1 * MiB - i * 1000, seed: 50 + i }));
    objects.push({ path: 'big', size: 4 * MiB, seed: 60 });
    const fps = objects.map((o) => remote.setObject(o.path, o.size, o.seed));
    const violations: string[] = [];
    const openIds = new Map<number, number>();
    let chunks = 0;
    let evictions = 0;
    const hooks: DataHooks = {
      afterChunkLanded: (i) => {
        chunks++;
        if (i.usedBytes + i.reservedBytes > i.capBytes) violations.push(`cap crossed: ${i.usedBytes}+${i.reservedBytes} > ${i.capBytes}`);
        if (i.fileBytes > i.perFileCapBytes) violations.push(`per-file cap crossed by ${i.debugId}: ${i.fileBytes}`);
      },
      onEvicted: ({ objectId }) => {
        evictions++;
        if (openIds.has(objectId)) violations.push(`evicted object ${objectId} while a reader had it open`);
      },
    };
    const cap = 3 * MiB;
    const cache = await track(
      openCache({
        remote,
        dir: bed.dir,
        hooks,
        config: {
          cacheCapBytes: cap,
          perFileCapBytes: 2 * MiB,
          chunkSizeBytes: 128 * KiB,
          maxRequestBytes: 256 * KiB,
          readAheadInitialBytes: 32 * KiB,
          readAheadMaxBytes: 256 * KiB,
          readAheadBudgetBytes: 512 * KiB,
        },
      }),
    );
    const rnd = prng(8);
    const workers = Array.from({ length: 6 }, async (_, w) => {
      for (let round = 0; round < 12; round++) {
        const k = Math.floor(rnd() * objects.length);
        const o = objects[k];
        const fp = fps[k];
        if (!o || !fp) continue;
        const reader = await cache.openFile(o.path, fp, o.size);
        openIds.set(reader.objectId, (openIds.get(reader.objectId) ?? 0) + 1);
        try {
          for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n; i++) {
            const off = Math.floor(rnd() * o.size);
            const len = 1 + Math.floor(rnd() * 400 * KiB);
            const buf = await reader.read(off, len);
            assert.equal(buf.length, Math.min(len, o.size - off));
            assertRamp(buf, off, o.seed, `worker ${w} round ${round} ${o.path}@${off}`);
          }
        } finally {
          const left = (openIds.get(reader.objectId) ?? 1) - 1;
          if (left > 0) openIds.set(reader.objectId, left);
          else openIds.delete(reader.objectId);
          await reader.close();
        }
      }
    });
    await within(Promise.all(workers), 60_000, 'six workers to finish their open/read/close rounds');
    assert.deepEqual(violations, []);
    assert.ok(chunks > 0 && evictions > 0, `the workload filled (${chunks} chunks) and evicted (${evictions})`);
    await cache.flush();
    const s = cache.stats();
    assertGaugesZero(s, 'after the eviction workload');
    // Sizes add up: in-memory accounting == store total == sum of stored ranges == on disk.
    const store = cache.store;
    const listed = store.listObjects();
    let rangesTotal = 0;
    let diskTotal = 0;
    for (const obj of listed) {
      const present = store.loadRanges(obj.id);
      assert.equal(present.size, obj.presentBytes, `object ${obj.id}: present_bytes matches its ranges`);
      rangesTotal += present.size;
      const st = statSync(join(cache.objectsDir, obj.cacheFileName));
      const allocated = st.blocks * 512;
      // Only bytes we wrote are allocated (sparse file), rounded to 4 KiB blocks per range.
      let upper = 0;
      for (const r of present) upper += Math.ceil(r.end / 4096) * 4096 - Math.floor(r.start / 4096) * 4096;
      // st_blocks also counts ext4 extent-tree blocks of a fragmented file: a little slack.
      const metadataSlack = 16 * KiB;
      assert.ok(
        allocated >= Math.floor(present.size / 4096) * 4096 && allocated <= upper + metadataSlack,
        `object ${obj.id}: ${allocated} bytes allocated for ${present.size} present (at most ${upper} + metadata)`,
      );
      diskTotal += allocated;
    }
    assert.equal(store.totalPresentBytes(), s.cacheBytes, 'store total == in-memory accounting');
    assert.equal(rangesTotal, s.cacheBytes, 'sum of stored ranges == accounting');
    assert.ok(s.cacheBytes <= cap, `cache holds ${s.cacheBytes} <= cap ${cap}`);
    assert.ok(diskTotal <= cap + listed.length * (4096 + 16 * KiB), `on disk ${diskTotal} <= cap (+ block rounding and metadata)`);
    const files = readdirSync(cache.objectsDir).sort();
    assert.deepEqual(files, listed.map((o) => o.cacheFileName).sort(), 'no orphan cache files, no missing ones');
  });

  void test('invalidate drops a cached object; an open reader keeps its version until it closes', async () => {
    const remote = new FakeRemote();
    const fp = remote.setObject('inv', 2 * MiB, 70);
    const cache = await track(openCache({ remote, dir: bed.dir }));
    assert.equal(statSync(cache.cacheDir).mode & 0o777, 0o700, 'cache bed.dir is 0700');
    assert.equal(statSync(cache.objectsDir).mode & 0o777, 0o700, 'objects bed.dir is 0700');
    const r1 = await cache.openFile('inv', fp, 2 * MiB);
    assertRamp(await r1.read(0, 2 * MiB), 0, 70, 'first read');
    const [file] = readdirSync(cache.objectsDir);
    assert.ok(file !== undefined);
    assert.equal(statSync(join(cache.objectsDir, file)).mode & 0o777, 0o600, 'cache file is 0600');
    // Invalidated while open: the reader keeps serving its (still consistent) version...
    await cache.invalidate('inv');
    assertRamp(await r1.read(1000, 1000), 1000, 70, 'open reader after invalidate');
    assert.equal(cache.stats().cacheBytes, 2 * MiB);
    await r1.close();
    // ...and its bytes leave the cache when it closes.
    assert.equal(cache.stats().cacheBytes, 0);
    assert.deepEqual(readdirSync(cache.objectsDir), []);
    const before = remote.reads.length;
    const r2 = await cache.openFile('inv', fp, 2 * MiB);
    assertRamp(await r2.read(0, 100), 0, 70, 'after invalidate');
    assert.ok(remote.reads.length > before, 'fetched again');
    await r2.close();
    await cache.invalidate('inv');
    assert.equal(cache.stats().cacheBytes, 0);
    assert.deepEqual(readdirSync(cache.objectsDir), []);
  });

  void test('9. restart serves cached ranges without requests; a changed object never serves stale bytes', async () => {
    const size = 3 * MiB + 123;
    const remote1 = new FakeRemote();
    const fp1 = remote1.setObject('r', size, 31);
    const c1 = await openCache({ remote: remote1, dir: bed.dir });
    const r = await c1.openFile('r', fp1, size);
    assertRamp(await within(r.read(0, size), T, 'the first full read'), 0, 31, 'first read');
    await r.close();
    await within(c1.close(), T, 'first cache instance to close');
    assertGaugesZero(c1.stats(), 'first instance');

    const remote2 = new FakeRemote();
    remote2.setObject('r', size, 31, fp1.etag);
    const c2 = await track(openCache({ remote: remote2, dir: bed.dir }));
    const r2 = await c2.openFile('r', fp1, size);
    const rnd = prng(9);
    for (let i = 0; i < 20; i++) {
      const off = Math.floor(rnd() * size);
      assertRamp(await r2.read(off, 64 * KiB), off, 31, `cached read ${i}`);
    }
    assert.equal(remote2.reads.length, 0, 'cached ranges were served without remote reads');
    assert.equal(c2.stats().cacheBytes, size);

    // The object changes on the remote (new content and ETag).
    const fp2 = remote2.setObject('r', size, 32, '"v2"');
    // A handle on the old version keeps reading old cached bytes (its version), but...
    assertRamp(await r2.read(1000, 100), 1000, 31, 'old handle, cached');
    await r2.close();
    // ...a handle on the new version never sees them.
    const r3 = await c2.openFile('r', fp2, size);
    for (let i = 0; i < 10; i++) {
      const off = Math.floor(rnd() * size);
      assertRamp(await r3.read(off, 64 * KiB), off, 32, `new version read ${i}`);
    }
    await r3.close();
    // A handle that still names the old version, on a cache that lost those bytes, gets
    // ChangedError for missing bytes rather than new-version bytes.
    remote2.setObject('s', 2 * MiB, 40, '"s1"');
    const s1 = await c2.openFile('s', { etag: '"s1"', size: 2 * MiB }, 2 * MiB);
    assertRamp(await s1.read(0, 10), 0, 40, 's v1');
    remote2.setObject('s', 2 * MiB, 41, '"s2"');
    await assert.rejects(s1.read(1536 * KiB, 10), (e) => e instanceof ChangedError);
    await s1.close();
    assertGaugesZero(c2.stats(), 'after restart checks');
  });
});

export type { FileReader };
