// Unit tests of the data layer's small parts: config checks, the download pool's bounds, the
// read-ahead budget and window policy, and the evictor's accounting.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { RangeSet } from '../../src/base/range-set.js';
import { CacheFile } from '../../src/data/cache/cache-file.js';
import { within } from '../../src/base/async.js';
import { DataConfigError, resolveDataConfig } from '../../src/data/config.js';
import { DownloadPool } from '../../src/data/fetch/download-pool.js';
import { CacheFullError, ClosedError } from '../../src/data/errors.js';
import { Evictor } from '../../src/data/cache/eviction.js';
import { ReadAhead, ReadAheadBudget, type PrefetchHandle } from '../../src/data/fetch/read-ahead.js';
import { silentLogger } from '../../src/observability/logger.js';
const KiB = 1024;
const MiB = 1024 * KiB;

const T = 5000;

void describe('DataConfig', () => {
  void test('defaults are valid and a cache cap alone also caps each file', () => {
    const c = resolveDataConfig();
    assert.equal(c.chunkSizeBytes, 1 * MiB);
    const small = resolveDataConfig({ cacheCapBytes: 8 * MiB });
    assert.equal(small.perFileCapBytes, 8 * MiB);
  });

  void test('bad values are refused with a named field', () => {
    assert.throws(() => resolveDataConfig({ downloadConcurrency: 0 }), DataConfigError);
    assert.throws(() => resolveDataConfig({ readAheadInitialBytes: 4 * MiB, readAheadMaxBytes: 1 * MiB }), /readAheadInitialBytes/);
    assert.throws(() => resolveDataConfig({ cacheCapBytes: 1 * MiB, perFileCapBytes: 2 * MiB }), /perFileCapBytes/);
  });
});

void describe('DownloadPool', () => {
  void test('bounds running and queued requests; a full queue makes callers wait; aborts give places back', async () => {
    const pool = new DownloadPool(2, 1);
    const never = new AbortController().signal;
    const a = await pool.acquire(never);
    const b = await pool.acquire(never);
    assert.equal(pool.inFlight, 2);
    const c = pool.acquire(never); // takes the one queue place
    await Promise.resolve();
    assert.equal(pool.queued, 1);
    const ac = new AbortController();
    const d = pool.acquire(ac.signal); // waits for queue space
    await Promise.resolve();
    assert.equal(pool.blocked, 1);
    assert.equal(pool.queued, 1, 'the queue did not grow past its bound');
    const reason = new Error('gone');
    ac.abort(reason);
    await assert.rejects(d, (e) => e === reason);
    assert.equal(pool.blocked, 0);
    a.release();
    a.release(); // idempotent
    const cs = await within(c, T, 'the queued caller to get the freed slot');
    assert.equal(pool.inFlight, 2);
    assert.equal(pool.queued, 0);
    b.release();
    cs.release();
    assert.equal(pool.inFlight, 0);
    const e = await pool.acquire(never);
    e.release();
  });
});

void describe('ReadAhead', () => {
  function harness(budgetBytes = 64 * MiB) {
    const budget = new ReadAheadBudget(budgetBytes);
    const started: { start: number; end: number; cancelled: boolean; finish: () => void }[] = [];
    const ra = new ReadAhead({
      initialBytes: 128 * KiB,
      maxBytes: 1 * MiB,
      sizeBytes: 100 * MiB,
      budget,
      saturated: () => false,
      start: (start, end): PrefetchHandle => {
        const { promise, resolve } = (() => {
          let r!: () => void;
          const p = new Promise<void>((res) => (r = res));
          return { promise: p, resolve: r };
        })();
        const rec = { start, end, cancelled: false, finish: resolve };
        started.push(rec);
        return {
          done: promise,
          cancel: () => {
            rec.cancelled = true;
            resolve();
          },
        };
      },
    });
    return { ra, budget, started };
  }

  void test('the window doubles on sequential reads up to the cap and resets on a seek', async () => {
    const { ra, started } = harness();
    ra.onRead(0, 64 * KiB);
    assert.equal(ra.windowBytes, 128 * KiB);
    assert.deepEqual(started.map((s) => [s.start, s.end]), [[64 * KiB, 192 * KiB]]);
    let off = 64 * KiB;
    for (let i = 0; i < 6; i++, off += 64 * KiB) ra.onRead(off, off + 64 * KiB);
    assert.equal(ra.windowBytes, 1 * MiB, 'capped');
    const before = started.length;
    ra.onRead(50 * MiB, 50 * MiB + 4 * KiB);
    assert.equal(ra.windowBytes, 128 * KiB, 'reset on seek');
    assert.ok(started.every((s) => s.cancelled), 'the seek cancelled the old prefetches');
    assert.equal(started.length, before, 'a seek prefetches nothing (random access fetches only what it reads)');
    ra.onRead(50 * MiB + 4 * KiB, 50 * MiB + 8 * KiB);
    assert.equal(started.length, before + 1, 'a read continuing the seek is sequential again and prefetches');
    assert.equal(started.at(-1)?.start, 50 * MiB + 8 * KiB);
    ra.close();
    for (const s of started) s.finish();
    await within(ra.settled(), T, 'prefetches to end');
  });

  void test('a first read at offset 0 counts as sequential; a first read elsewhere does not prefetch', async () => {
    const a = harness();
    assert.equal(a.ra.isSequential(0), true);
    assert.equal(a.ra.isSequential(4096), false);
    a.ra.onRead(4096, 8192);
    assert.equal(a.started.length, 0, 'a first read in the middle is treated as random');
    assert.equal(a.ra.isSequential(8192), true, 'the next read continuing it is sequential');
    a.ra.close();
    await within(a.ra.settled(), T, 'prefetches to end');
  });

  void test('the global budget trims and refuses, and every grant is given back', async () => {
    const { ra, budget, started } = harness(100 * KiB);
    ra.onRead(0, 4 * KiB);
    assert.equal(started[0]?.end, 4 * KiB + 100 * KiB, 'trimmed to the budget');
    assert.equal(budget.usedBytes, 100 * KiB);
    const other = harness(100 * KiB);
    assert.equal(other.budget.take(200 * KiB), 100 * KiB);
    assert.equal(other.budget.take(1), 0, 'refused when full');
    ra.close();
    for (const s of started) s.finish();
    await within(ra.settled(), T, 'prefetches to end');
    await Promise.resolve();
    assert.equal(budget.usedBytes, 0);
  });
});

void describe('Evictor', () => {
  void test('reservations keep used + reserved under the cap; eviction frees LRU first; nothing evictable → CacheFullError', async () => {
    const objects = new Map<number, number>([
      [1, 300],
      [2, 300],
    ]);
    const evicted: number[] = [];
    const ev = new Evictor({
      capBytes: 1000,
      perFileCapBytes: 500,
      targetRatio: 0.5,
      initialUsedBytes: 600,
      logger: silentLogger(),
      catalog: {
        candidates: (limit) => [...objects.entries()].slice(0, limit).map(([objectId, bytes]) => ({ objectId, bytes })),
        evict: async (id) => {
          const b = objects.get(id) ?? 0;
          objects.delete(id);
          evicted.push(id);
          return b;
        },
      },
    });
    const never = new AbortController().signal;
    assert.ok(ev.tryReserve(9, 0, 300));
    assert.ok(!ev.tryReserve(9, 0, 200), 'would cross the cap');
    await ev.reserve(9, 0, 200, never);
    assert.deepEqual(evicted, [1]);
    assert.ok(ev.usedBytes + ev.reservedBytes <= 1000);
    ev.settle(9, 300, 300);
    ev.settle(9, 200, 200);
    assert.equal(ev.usedBytes, 800);
    await assert.rejects(ev.reserve(9, 500, 1, never), CacheFullError, 'per-file cap');
    await ev.reserve(7, 0, 400, never);
    assert.deepEqual(evicted, [1, 2]);
    ev.settle(7, 400, 400);
    await assert.rejects(ev.reserve(8, 0, 200, never), CacheFullError, 'nothing left to evict');
    assert.equal(ev.reservedBytes, 0);
  });
});

void describe('CacheFile', () => {
  void test('close shuts the gate, fails waiters, waits for in-flight reads, then closes the fd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fusestream-cf-'));
    try {
      const fdsBefore = readdirSync('/proc/self/fd').length;
      const cf = await CacheFile.open({
        debugId: 'cf-test',
        remotePath: 'x',
        objectId: 1,
        fingerprint: { size: 8192 },
        sizeBytes: 8192,
        filePath: join(dir, 'x.bin'),
        record: { identity: undefined, loadPresent: () => new RangeSet(), forget: () => undefined, created: () => undefined },
        logger: silentLogger(),
        persist: () => undefined,
      });
      assert.equal(statSync(join(dir, 'x.bin')).mode & 0o777, 0o600);
      await cf.writeAt(0, [Buffer.alloc(4096, 7)]);
      assert.equal(cf.landed(0, 4096), 4096);
      const covered = cf.addWaiter(0, 100);
      assert.ok(covered.settled, 'a covered waiter is woken at registration');
      const w = cf.addWaiter(4000, 5000);
      assert.ok(!w.settled);
      cf.enter(); // a read in flight
      let closed = false;
      const closing = cf.close().then(() => (closed = true));
      assert.equal(cf.close(), cf.close(), 'idempotent');
      await assert.rejects(w.promise, ClosedError);
      assert.throws(() => cf.enter(), ClosedError);
      for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      assert.equal(closed, false, 'close waits for the in-flight read');
      const buf = await cf.readAt(0, 4096); // the fd is still open for it
      assert.equal(buf[4095], 7);
      cf.leave();
      await within(closing, T, 'close to finish once the read left');
      assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'the fd is closed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
