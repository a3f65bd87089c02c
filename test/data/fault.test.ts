// The data layer against a fault-injecting HTTP server through the real HttpRemote: stalls,
// trickles, resets, 5xx with Retry-After, truncated bodies, a wrong Content-Range and an ETag
// that changes between requests. Each case ends with correct bytes or a clear error, never
// wrong bytes, and with every gauge, socket and fd back to zero.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import type { DataConfig } from '../../src/data/config.js';
import type { DataCache } from '../../src/data/data-cache.js';
import { ChangedError, ClosedError, DeadlineError } from '../../src/data/errors.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import type { Fingerprint } from '../../src/remote/remote.js';
import { startFaultServer, type FaultServer, type RequestInfo } from '../fakes/fault-server.js';
import { checkRamp } from '../support/ramp.js';
import { KiB, MiB, assertGaugesZero, openCache, openFds, removeDir, tempDir } from '../support/cache-harness.js';

const T = 10_000;

/** Observes a promise at once (no unhandled rejection) and reports how it settled. */
function settle<V>(p: Promise<V>): Promise<PromiseSettledResult<V>> {
  return p.then(
    (value) => ({ status: 'fulfilled', value }) as const,
    (reason: unknown) => ({ status: 'rejected', reason }) as const,
  );
}

/** fds of this process that point into `dir` (cache files, the store). */
function fdsUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // the fd closed while we looked
    }
  }
  return n;
}

void describe('DataCache against a fault-injecting HTTP server', () => {
  let dir: string;
  let server: FaultServer;
  let remote: HttpRemote;
  let cache: DataCache | undefined;
  let fdsBefore: number;
  const ranges: string[] = [];

  beforeEach(async () => {
    fdsBefore = openFds();
    dir = tempDir();
    server = await startFaultServer();
    ranges.length = 0;
    server.onRequest = (info: RequestInfo) => {
      if (info.method === 'GET') ranges.push(String(info.headers.range));
    };
    remote = new HttpRemote({ baseUrl: server.url, timeouts: { bodyTimeoutMs: 60_000 } });
  });

  afterEach(async () => {
    try {
      if (cache) {
        await within(cache.close(), T, 'the data cache to close at teardown');
        assertGaugesZero(cache.stats(), 'after cache close');
        cache = undefined;
      }
      await within(remote.close(), T, 'the http remote to close');
      await within(server.stop(), T, 'the fault server to stop');
      assert.equal(openFds(), fdsBefore, 'file descriptors leaked');
    } finally {
      removeDir(dir);
    }
  });

  async function setup(path: string, size: number, config: Partial<DataConfig> = {}, clock?: ManualClock): Promise<Fingerprint> {
    server.addObject(`/${path}`, size);
    cache = await openCache({
      remote,
      dir,
      config: { retryBaseMs: 1, retryMaxMs: 5, chunkSizeBytes: 256 * KiB, ...config },
      ...(clock ? { clock } : {}),
    });
    const st = await remote.stat(path, new AbortController().signal);
    return { size: st.size, ...(st.etag !== undefined ? { etag: st.etag } : {}), ...(st.mtimeMs !== undefined ? { mtimeMs: st.mtimeMs } : {}) };
  }

  function c(): DataCache {
    if (!cache) throw new Error('no cache');
    return cache;
  }

  void test('6. early close against a server sending ~1 byte per tick aborts the request promptly and releases the fd', async () => {
    const fp = await setup('slow.bin', 1 * MiB);
    server.trickle(1, { count: 100 });
    const reader = await c().openFile('slow.bin', fp, 1 * MiB);
    assert.equal(fdsUnder(c().objectsDir), 1, 'the cache file is open');
    const socketsClosedBefore = server.stats.socketsClosed;
    const read = settle(reader.read(0, 4 * KiB));
    // Wait until the server is really trickling (it has sent something).
    while (server.stats.bytesSent === 0) await within(new Promise<void>((r) => setImmediate(r)), T, 'the server to start trickling');
    const t0 = performance.now();
    await within(reader.close(), 2000, 'close to return while the download trickles');
    const r = await within(read, 2000, 'the trickling read to fail');
    assert.ok(r.status === 'rejected' && r.reason instanceof ClosedError);
    while (server.stats.socketsClosed === socketsClosedBefore) {
      await within(new Promise<void>((r) => setImmediate(r)), 2000, 'the server to see its socket close');
      if (performance.now() - t0 > 2000) assert.fail('the server did not see the socket close within 2 s');
    }
    assert.ok(performance.now() - t0 < 2000, 'aborted promptly');
    assert.equal(fdsUnder(c().objectsDir), 0, 'the cache file fd is released');
    assertGaugesZero(c().stats(), 'after early close');
  });

  test('stall after N bytes: the stall detector fires, the download resumes after the landed bytes, exact bytes', async () => {
    await remote.close();
    remote = new HttpRemote({ baseUrl: server.url, timeouts: { bodyTimeoutMs: 200 } });
    const fp = await setup('stall1.bin', 1 * MiB, { chunkSizeBytes: 1 * MiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.stallAfter(128 * KiB);
    const reader = await c().openFile('stall1.bin', fp, 1 * MiB);
    const buf = await within(reader.read(0, 1 * MiB), T, 'the read across a stalled response');
    assert.equal(checkRamp(buf, 0), -1);
    const resumed = ranges.map((r) => /^bytes=(\d+)-1048575$/.exec(r)).find((m) => m !== null && Number(m[1]) > 0);
    assert.ok(resumed, `a request resumed the download after the landed bytes: ${ranges.join(', ')}`);
    await reader.close();
  });

  void test('stall for good: early bytes are served, a late reader gets DeadlineError, the unwanted request is aborted', async () => {
    const clock = new ManualClock();
    const fp = await setup(
      'stall.bin',
      1 * MiB,
      { operationDeadlineMs: 5_000, chunkSizeBytes: 1 * MiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB },
      clock,
    );
    const stall = server.stallAfter(128 * KiB);
    const reader = await c().openFile('stall.bin', fp, 1 * MiB);
    const early = settle(reader.read(0, 64 * KiB));
    const late = settle(reader.read(512 * KiB, 4 * KiB));
    const e = await within(early, T, 'bytes before the stall to be served');
    assert.ok(e.status === 'fulfilled' && checkRamp(e.value, 0) === -1);
    await within(stall.reached, T, 'the server to stall');
    clock.advance(5_000);
    const l = await within(late, T, 'the late read to hit its deadline');
    assert.ok(l.status === 'rejected' && l.reason instanceof DeadlineError, String(l.status === 'rejected' ? l.reason : 'data'));
    await within(stall.closed, T, 'the stalled request to be aborted (nobody waits for it)');
    await reader.close();
  });

  void test('trickle: a slow but steady body still yields exact bytes', async () => {
    const fp = await setup('trickle.bin', 64 * KiB, { chunkSizeBytes: 4 * KiB, maxRequestBytes: 4 * KiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.trickle(80 * KiB, { count: 1 });
    const reader = await c().openFile('trickle.bin', fp, 64 * KiB);
    const buf = await within(reader.read(100, 3000), T, 'the trickled read');
    assert.equal(checkRamp(buf, 100), -1);
    await reader.close();
  });

  void test('reset mid-body: retried from the last byte that landed, exact bytes', async () => {
    // One chunk, all of it read: no read-ahead request can take the reset meant for the read.
    const fp = await setup('reset.bin', 1 * MiB, { chunkSizeBytes: 1 * MiB, maxRequestBytes: 2 * MiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.resetAfter(300 * KiB);
    const reader = await c().openFile('reset.bin', fp, 1 * MiB);
    const buf = await within(reader.read(0, 1 * MiB), T, 'the read across a connection reset');
    assert.equal(checkRamp(buf, 0), -1);
    assert.ok(ranges.includes('bytes=0-1048575'), `the first attempt asked for the whole chunk: ${ranges.join(', ')}`);
    const resumed = ranges.map((r) => /^bytes=(\d+)-1048575$/.exec(r)).find((m) => m !== null && Number(m[1]) > 0);
    assert.ok(resumed, `a request resumed the download after the landed bytes: ${ranges.join(', ')}`);
    await reader.close();
  });

  void test('503 with Retry-After, then success: retried inside the deadline', async () => {
    const fp = await setup('busy.bin', 512 * KiB);
    server.status(503, { retryAfter: 0, count: 2 });
    const reader = await c().openFile('busy.bin', fp, 512 * KiB);
    const buf = await within(reader.read(1000, 10_000), T, 'the read after two 503s');
    assert.equal(checkRamp(buf, 1000), -1);
    await reader.close();
  });

  void test('persistent 500: a clear error after the retries, no bytes', async () => {
    const fp = await setup('broken.bin', 512 * KiB, { retryMaxAttempts: 3 });
    server.status(500, { count: 100 });
    const reader = await c().openFile('broken.bin', fp, 512 * KiB);
    await assert.rejects(within(reader.read(0, 100), T, 'the read against a broken server'), (e) => {
      return e instanceof RemoteError && e.kind === 'unavailable' && e.status === 500;
    });
    assert.equal(ranges.length, 3, 'three attempts');
    await reader.close();
  });

  void test('truncated body: retried, exact bytes', async () => {
    const fp = await setup('trunc.bin', 1 * MiB, { chunkSizeBytes: 1 * MiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.truncate(200 * KiB);
    const reader = await c().openFile('trunc.bin', fp, 1 * MiB);
    const buf = await within(reader.read(0, 1 * MiB), T, 'the read across a truncated body');
    assert.equal(checkRamp(buf, 0), -1);
    assert.ok(ranges.length >= 2);
    await reader.close();
  });

  void test('wrong Content-Range: never stored; retried, then exact bytes', async () => {
    const fp = await setup('cr.bin', 1 * MiB, { chunkSizeBytes: 256 * KiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.wrongContentRange({ count: 2 });
    const reader = await c().openFile('cr.bin', fp, 1 * MiB);
    const buf = await within(reader.read(10, 200 * KiB), T, 'the read after wrong Content-Ranges');
    assert.equal(checkRamp(buf, 10), -1);
    assert.equal(ranges.length, 3);
    await reader.close();
  });

  void test('persistent wrong Content-Range: a protocol error, never wrong bytes', async () => {
    const fp = await setup('cr2.bin', 1 * MiB, { retryMaxAttempts: 2, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    server.wrongContentRange({ count: 100 });
    const reader = await c().openFile('cr2.bin', fp, 1 * MiB);
    await assert.rejects(within(reader.read(10, 100), T, 'the read against a lying server'), (e) => e instanceof RemoteError && e.kind === 'protocol');
    await reader.close();
  });

  void test('ETag changes between requests: ChangedError, never bytes of another version', async () => {
    const fp = await setup('moving.bin', 2 * MiB, { chunkSizeBytes: 256 * KiB, readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    const reader = await c().openFile('moving.bin', fp, 2 * MiB);
    assert.equal(checkRamp(await within(reader.read(0, 1000), T, 'the first read'), 0), -1);
    server.setEtag('/moving.bin', '"someone-else-wrote-it"');
    await assert.rejects(within(reader.read(1 * MiB, 1000), T, 'a read after the change'), (e) => e instanceof ChangedError);
    // Bytes cached for this version stay readable for this handle.
    assert.equal(checkRamp(await reader.read(0, 1000), 0), -1);
    await reader.close();
  });

  void test('a reader aborted by its signal leaves; the download it alone wanted is cancelled', async () => {
    const fp = await setup('abort.bin', 1 * MiB, { readAheadInitialBytes: 4 * KiB, readAheadMaxBytes: 4 * KiB });
    const stall = server.stallAfter(0);
    const reader = await c().openFile('abort.bin', fp, 1 * MiB);
    const ac = new AbortController();
    const read = settle(reader.read(0, 4 * KiB, ac.signal));
    await within(stall.reached, T, 'the server to hold the response');
    const reason = new Error('interrupted');
    ac.abort(reason);
    const r = await within(read, T, 'the aborted read');
    assert.ok(r.status === 'rejected' && r.reason === reason);
    await within(stall.closed, T, 'the unwanted download to be aborted');
    await reader.close();
  });
});
