// HttpRemote against the fault-injecting server: correct ranges, and every fault turns into
// the right RemoteError kind — never wrong or short bytes.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Gate, within } from '../../src/base/async.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import { startFaultServer, type FaultServer } from '../fakes/fault-server.js';
import { checkRamp } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';

const SIZE = 1024 * 1024 + 1000;

void describe('HttpRemote against the fault server', () => {
  let server: FaultServer;
  let remote: HttpRemote;
  let ac: AbortController;

  before(async () => {
    server = await startFaultServer();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    server.clearFaults();
    server.changeEtagEvery(0);
    server.refuseHead(false);
    server.onRequest = undefined;
    server.addObject('/obj.bin', SIZE);
    server.addObject('/dir one/ünï 100%#?.bin', 5000);
    server.addObject('/empty', 0);
    remote = new HttpRemote({ baseUrl: server.url, connections: 4, timeouts: { bodyTimeoutMs: 5000, headersTimeoutMs: 5000 } });
    ac = new AbortController();
  });
  afterEach(async () => {
    ac.abort();
    await remote.close();
  });

  void test('ranged reads return exactly the ramp bytes, clamped at EOF', async () => {
    const cases: [number, number][] = [
      [0, 4096],
      [12345, 100_000],
      [SIZE - 10, 100],
      [0, SIZE],
      [SIZE - 1, 1],
    ];
    for (const [offset, length] of cases) {
      const r = await remote.read('obj.bin', offset, length, { signal: ac.signal });
      const buf = await within(collect(r.body), 5000, `read ${offset}+${length}`);
      assert.equal(buf.length, Math.min(length, SIZE - offset));
      assert.equal(checkRamp(buf, offset), -1, `ramp mismatch at ${offset}+${length}`);
      assert.equal(r.fingerprint.etag, server.etagOf('/obj.bin'));
      assert.equal(r.fingerprint.size, SIZE);
      assert.equal(r.fingerprint.mtimeMs, server.lastModifiedOf('/obj.bin'));
    }
  });

  void test('names are percent-encoded per segment', async () => {
    const st = await remote.stat('dir one/ünï 100%#?.bin', ac.signal);
    assert.equal(st.size, 5000);
    assert.equal(st.name, 'ünï 100%#?.bin');
    const r = await remote.read('dir one/ünï 100%#?.bin', 100, 200, { signal: ac.signal });
    assert.equal(checkRamp(await collect(r.body), 100), -1);
  });

  void test('stat via HEAD, and via a range probe when HEAD is refused', async () => {
    const st = await remote.stat('obj.bin', ac.signal);
    assert.deepEqual(st, { name: 'obj.bin', type: 'file', size: SIZE, etag: server.etagOf('/obj.bin'), mtimeMs: server.lastModifiedOf('/obj.bin') });
    server.refuseHead(true);
    const before = server.stats.requests;
    assert.deepEqual(await remote.stat('obj.bin', ac.signal), st);
    assert.equal(server.stats.requests - before, 2, 'HEAD then GET bytes=0-0');
    assert.equal((await remote.stat('empty', ac.signal)).size, 0, '416 bytes */0 gives size 0');
    await rejectsKind(remote.stat('missing', ac.signal), 'not-found', 'stat of a missing object');
  });

  void test('keep-alive: sequential reads and 404s reuse one connection', async () => {
    await remote.close();
    remote = new HttpRemote({ baseUrl: server.url, connections: 1 });
    const connectionsBefore = server.stats.connections;
    for (let i = 0; i < 20; i++) {
      const r = await remote.read('obj.bin', i * 1000, 1000, { signal: ac.signal });
      await collect(r.body);
      await rejectsKind(remote.stat('nope', ac.signal), 'not-found', '404');
      await remote.stat('obj.bin', ac.signal);
    }
    assert.equal(server.stats.connections - connectionsBefore, 1, 'one connection for 60 requests');
  });

  void test('HTTP statuses map to kinds, with Retry-After', async () => {
    server.status(503, { retryAfter: 7 });
    const e1 = await rejectsKind(remote.read('obj.bin', 0, 10, { signal: ac.signal }), 'unavailable', '503');
    assert.equal(e1.retryAfterMs, 7000);
    assert.equal(e1.status, 503);
    assert.equal(e1.retryable, true);
    server.status(429, { retryAfter: new Date(Date.now() + 60_000).toUTCString() });
    const e2 = await rejectsKind(remote.read('obj.bin', 0, 10, { signal: ac.signal }), 'unavailable', '429');
    assert.ok(e2.retryAfterMs !== undefined && e2.retryAfterMs > 50_000 && e2.retryAfterMs <= 60_000, String(e2.retryAfterMs));
    server.status(403);
    await rejectsKind(remote.read('obj.bin', 0, 10, { signal: ac.signal }), 'permission', '403');
    server.status(401);
    await rejectsKind(remote.stat('obj.bin', ac.signal), 'permission', '401');
    server.status(410);
    await rejectsKind(remote.read('obj.bin', 0, 10, { signal: ac.signal }), 'not-found', '410');
    await rejectsKind(remote.read('obj.bin', SIZE + 5, 10, { signal: ac.signal }), 'invalid', '416');
    const empty = await remote.read('empty', 0, 10, { signal: ac.signal });
    assert.equal((await collect(empty.body)).length, 0, 'reading at EOF is empty, not an error');
  });

  void test('abort during a stall ends promptly and the server sees the socket close', async () => {
    const stall = server.stallAfter(10_000);
    const r = await remote.read('obj.bin', 0, 500_000, { signal: ac.signal });
    let got = 0;
    const reading = (async () => {
      for await (const c of r.body) got += c.length;
    })();
    await within(stall.reached, 5000, 'the server to stall after 10000 bytes');
    ac.abort(new Error('interrupted'));
    const err = await rejectsKind(reading, 'aborted', 'the stalled read to end on abort', 2000);
    assert.ok(err.cause !== undefined);
    await within(stall.closed, 2000, 'the server to see the client socket close');
    assert.ok(got <= 10_000);
  });

  void test('a stall released by its gate completes with correct bytes', async () => {
    const gate = new Gate();
    const stall = server.stallAfter(1000, { gate });
    const r = await remote.read('obj.bin', 777, 300_000, { signal: ac.signal });
    const reading = collect(r.body);
    await within(stall.reached, 5000, 'stall');
    gate.open();
    const buf = await within(reading, 5000, 'the released read');
    assert.equal(buf.length, 300_000);
    assert.equal(checkRamp(buf, 777), -1);
  });

  void test('a body stall longer than bodyTimeout is a timeout', async () => {
    await remote.close();
    remote = new HttpRemote({ baseUrl: server.url, timeouts: { bodyTimeoutMs: 150 } });
    const stall = server.stallAfter(100);
    const r = await remote.read('obj.bin', 0, 100_000, { signal: ac.signal });
    const e = await rejectsKind(collect(r.body), 'timeout', 'body timeout');
    assert.equal(e.retryable, true);
    await within(stall.closed, 2000, 'the timed-out socket to close');
  });

  void test('no response headers within headersTimeout is a timeout', async () => {
    await remote.close();
    remote = new HttpRemote({ baseUrl: server.url, timeouts: { headersTimeoutMs: 150 } });
    const gate = new Gate();
    server.onRequest = () => gate.wait();
    try {
      await rejectsKind(remote.stat('obj.bin', ac.signal), 'timeout', 'headers timeout');
    } finally {
      gate.open();
    }
  });

  void test('trickled body arrives intact', async () => {
    server.trickle(40_000);
    const r = await remote.read('obj.bin', 5, 6000, { signal: ac.signal });
    const buf = await within(collect(r.body), 5000, 'the trickled body');
    assert.equal(checkRamp(buf, 5), -1);
    assert.equal(buf.length, 6000);
  });

  void test('reset mid-body is a retryable error; bytes before it are right', async () => {
    server.resetAfter(20_000);
    const r = await remote.read('obj.bin', 100, 200_000, { signal: ac.signal });
    const parts: Buffer[] = [];
    let caught: unknown;
    try {
      await within(
        (async () => {
          for await (const c of r.body) parts.push(Buffer.from(c));
        })(),
        5000,
        'the reset read to fail',
      );
    } catch (err) {
      caught = err;
    }
    // Whether the client sees ECONNRESET ('unavailable') or an early end ('protocol') depends
    // on whether the RST arrives before the FIN is read; both are retryable and lose no bytes.
    assert.ok(caught instanceof RemoteError, String(caught));
    assert.ok(caught.kind === 'unavailable' || caught.kind === 'protocol', caught.message);
    assert.equal(caught.retryable, true);
    const got = Buffer.concat(parts);
    assert.ok(got.length <= 20_000);
    assert.equal(checkRamp(got, 100), -1);
  });

  void test('truncated body is a protocol error', async () => {
    server.truncate(5000);
    const r = await remote.read('obj.bin', 0, 100_000, { signal: ac.signal });
    const e = await rejectsKind(collect(r.body), 'protocol', 'truncated body');
    assert.equal(e.retryable, true);
  });

  void test('wrong Content-Range is a protocol error', async () => {
    server.wrongContentRange();
    await rejectsKind(remote.read('obj.bin', 1000, 1000, { signal: ac.signal }), 'protocol', 'shifted Content-Range');
  });

  void test('a 200 to a range request: whole-object read accepted, otherwise protocol', async () => {
    server.ignoreRange({ count: 2 });
    await rejectsKind(remote.read('obj.bin', 10, 100, { signal: ac.signal }), 'unsupported', 'ignored range');
    const r = await remote.read('obj.bin', 0, SIZE, { signal: ac.signal });
    const buf = await collect(r.body);
    assert.equal(buf.length, SIZE);
    assert.equal(checkRamp(buf, 0), -1);
  });

  void test('If-Range with the expected ETag; a changed object is "changed"', async () => {
    const st = await remote.stat('obj.bin', ac.signal);
    const seen: (string | string[] | undefined)[] = [];
    server.onRequest = (info) => {
      seen.push(info.headers['if-range']);
    };
    const ok = await remote.read('obj.bin', 10, 10, { signal: ac.signal, expect: st });
    assert.equal(checkRamp(await collect(ok.body), 10), -1);
    assert.deepEqual(seen, [st.etag]);
    // the next request sees a new version: If-Range fails, the server answers 200 full
    server.changeEtagEvery(1);
    await rejectsKind(remote.read('obj.bin', 10, 10, { signal: ac.signal, expect: st }), 'changed', 'etag changed (If-Range → 200)');
    // a whole-object read of a changed object is also refused
    await rejectsKind(remote.read('obj.bin', 0, SIZE, { signal: ac.signal, expect: st }), 'changed', 'whole read of changed object');
    server.changeEtagEvery(0);
    // ETag in a 206 that differs from expect (server without If-Range support)
    server.setEtag('/obj.bin', '"other"');
    server.onRequest = undefined;
    await rejectsKind(remote.read('obj.bin', 10, 10, { signal: ac.signal, expect: { ...st, etag: 'W/"weak"' } }), 'changed', '206 with another etag');
    // size mismatch with the same etag
    await rejectsKind(remote.read('obj.bin', 10, 10, { signal: ac.signal, expect: { etag: '"other"', size: 5 } }), 'changed', 'size differs');
  });

  void test('weak ETag: If-Range falls back to the Last-Modified date', async () => {
    const seen: (string | string[] | undefined)[] = [];
    server.onRequest = (info) => {
      seen.push(info.headers['if-range']);
    };
    const mtimeMs = server.lastModifiedOf('/obj.bin');
    // the server's strong ETag differs from the weak one expected, so the read itself is 'changed'
    await rejectsKind(remote.read('obj.bin', 0, 10, { signal: ac.signal, expect: { etag: 'W/"x"', size: SIZE, mtimeMs } }), 'changed', 'weak etag');
    assert.deepEqual(seen, [new Date(mtimeMs).toUTCString()]);
  });

  void test('a consumer that stops early releases the connection', async () => {
    const r = await remote.read('obj.bin', 0, SIZE, { signal: ac.signal });
    for await (const c of r.body) {
      assert.ok(c.length > 0);
      break;
    }
    const again = await remote.read('obj.bin', 3, 3000, { signal: ac.signal });
    assert.equal(checkRamp(await within(collect(again.body), 5000, 'a read after an early stop'), 3), -1);
  });

  void test('credentials are sent but never part of the id', async () => {
    await remote.close();
    remote = new HttpRemote({ baseUrl: server.url.replace('http://', 'http://alice:s%3Acret@') });
    assert.equal(remote.id, server.url);
    const auth: (string | undefined)[] = [];
    server.onRequest = (info) => {
      auth.push(info.headers.authorization);
    };
    await remote.stat('obj.bin', ac.signal);
    assert.deepEqual(auth, [`Basic ${Buffer.from('alice:s:cret').toString('base64')}`]);
  });

  void test('bad arguments and aborted signals', async () => {
    await rejectsKind(remote.read('obj.bin', -1, 10, { signal: ac.signal }), 'invalid', 'negative offset');
    await rejectsKind(remote.read('../x', 0, 10, { signal: ac.signal }), 'invalid', 'traversal');
    const dead = new AbortController();
    dead.abort();
    await rejectsKind(remote.read('obj.bin', 0, 10, { signal: dead.signal }), 'aborted', 'pre-aborted read');
  });

  void test('connection refused is unavailable', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
    const r = new HttpRemote({ baseUrl: `http://127.0.0.1:${port}/` });
    try {
      const e = await rejectsKind(r.stat('x', ac.signal), 'unavailable', 'refused');
      assert.ok(e.cause !== undefined);
      assert.ok(e instanceof RemoteError && e.retryable);
    } finally {
      await r.close();
    }
  });
});
