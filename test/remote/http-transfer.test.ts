// HttpRemote.readToFile: the off-thread transfer path. Exact bytes land at their offsets,
// progress is ordered, flow control holds bytes past `allowTo`, and every fault gives the same
// RemoteError kind as the in-thread `read` (both use checkRangeResponse), never wrong bytes.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deferred, within } from '../../src/base/async.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { FileWriteError, RemoteError, type RemoteErrorKind } from '../../src/remote/remote-error.js';
import type { FileTransfer, Fingerprint } from '../../src/remote/remote.js';
import { startFaultServer, type FaultServer } from '../fakes/fault-server.js';
import { checkRamp } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';

const KiB = 1024;
const SIZE = 3 * 1024 * KiB + 123;
const T = 10_000;

void describe('HttpRemote.readToFile (transfer threads)', () => {
  let server: FaultServer;
  let remote: HttpRemote;
  let dir: string;
  let file: string;
  let ac: AbortController;
  let fp: Fingerprint;

  before(async () => {
    server = await startFaultServer();
    dir = await mkdtemp(join(tmpdir(), 'fusestream-transfer-'));
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    server.clearFaults();
    server.changeEtagEvery(0);
    server.addObject('/obj.bin', SIZE);
    remote = new HttpRemote({ baseUrl: server.url, timeouts: { bodyTimeoutMs: 5000, headersTimeoutMs: 5000 } });
    ac = new AbortController();
    file = join(dir, `target-${Math.random().toString(36).slice(2)}`);
    const fh = await open(file, 'w');
    await fh.truncate(SIZE);
    await fh.close();
    fp = { size: SIZE, etag: server.etagOf('/obj.bin') };
  });
  afterEach(async () => {
    ac.abort();
    await remote.close();
  });

  /** Starts a transfer that may write everything, recording its progress reports. */
  function transfer(offset: number, length: number, allowTo = offset + length): { t: FileTransfer; reports: number[] } {
    const reports: number[] = [];
    const t = remote.readToFile('obj.bin', offset, length, file, {
      signal: ac.signal,
      expect: fp,
      allowTo,
      onWritten: (to) => reports.push(to),
    });
    return { t, reports };
  }

  void test('writes exactly the requested bytes at their offsets, with ordered progress ending at the end', async () => {
    const offset = 100_000;
    const length = 2 * 1024 * KiB + 7;
    const { t, reports } = transfer(offset, length);
    const got = await within(t.done, T, 'the transfer');
    assert.equal(got.etag, fp.etag);
    assert.equal(got.size, SIZE);
    const data = await readFile(file);
    assert.equal(checkRamp(data.subarray(offset, offset + length), offset), -1);
    assert.ok(data.subarray(0, offset).every((b) => b === 0), 'nothing written before the range');
    assert.ok(data.subarray(offset + length).every((b) => b === 0), 'nothing written after the range');
    assert.ok(reports.length > 0);
    for (let i = 1; i < reports.length; i++) assert.ok((reports[i] as number) > (reports[i - 1] as number), `reports grow: ${reports.join(',')}`);
    assert.equal(reports.at(-1), offset + length);
  });

  void test('flow control: no byte at or past allowTo lands until allow() raises it', async () => {
    const allowTo = 64 * KiB;
    const reachedLimit = new Deferred<void>();
    const reports: number[] = [];
    const t = remote.readToFile('obj.bin', 0, SIZE, file, {
      signal: ac.signal,
      expect: fp,
      allowTo,
      onWritten: (to) => {
        reports.push(to);
        if (to >= allowTo) reachedLimit.resolve();
      },
    });
    await within(reachedLimit.promise, T, 'the transfer to write up to allowTo');
    // The worker holds the rest; a round trip through the server proves time has passed for
    // it to misbehave, without sleeping.
    await remote.stat('obj.bin', ac.signal);
    const held = await readFile(file);
    assert.ok(held.subarray(allowTo).every((b) => b === 0), 'bytes past allowTo were written before allow()');
    assert.ok(reports.every((r) => r <= allowTo), `reported past allowTo: ${reports.join(',')}`);
    t.allow(SIZE);
    await within(t.done, T, 'the transfer after allow()');
    assert.equal(checkRamp(await readFile(file), 0), -1);
  });

  void test('abort during a stall rejects as aborted promptly, and reports nothing afterwards', async () => {
    const stall = server.stallAfter(300 * KiB);
    const { t, reports } = transfer(0, SIZE);
    await within(stall.reached, T, 'the server to stall');
    ac.abort(new Error('interrupted'));
    await rejectsKind(t.done, 'aborted', 'the stalled transfer to end on abort', 2000);
    const n = reports.length;
    await within(stall.closed, 2000, 'the server to see the socket close');
    assert.equal(reports.length, n, 'no progress after done settled');
    assert.ok((reports.at(-1) ?? 0) <= 300 * KiB);
  });

  void test('every fault gives the same RemoteError kind as read(), and no byte past the fault is trusted', async () => {
    const faults: [string, () => void, RemoteErrorKind][] = [
      ['503', () => server.status(503, { retryAfter: 3 }), 'unavailable'],
      ['404', () => server.status(404), 'not-found'],
      ['wrong Content-Range', () => server.wrongContentRange(), 'protocol'],
      ['ignored Range', () => server.ignoreRange(), 'unsupported'],
      ['truncated body', () => server.truncate(200 * KiB), 'protocol'],
      ['reset mid-body', () => server.resetAfter(200 * KiB), 'protocol'],
    ];
    for (const [name, inject, kind] of faults) {
      inject();
      const viaRead = await rejectsKind(
        (async () => collect((await remote.read('obj.bin', 1000, 1024 * KiB, { signal: ac.signal, expect: fp })).body))(),
        kind,
        `${name} via read()`,
      );
      inject();
      const { t, reports } = transfer(1000, 1024 * KiB);
      const viaTransfer = await rejectsKind(t.done, kind, `${name} via readToFile()`);
      assert.equal(viaTransfer.retryable, viaRead.retryable, `${name}: same retryable`);
      assert.equal(viaTransfer.status, viaRead.status, `${name}: same status`);
      assert.equal(viaTransfer.retryAfterMs, viaRead.retryAfterMs, `${name}: same Retry-After`);
      const data = await readFile(file);
      const landed = reports.at(-1) ?? 1000;
      assert.equal(checkRamp(data.subarray(1000, landed), 1000), -1, `${name}: reported bytes are exact`);
    }
  });

  void test('a changed object (new ETag) fails as changed before any byte is written', async () => {
    server.setEtag('/obj.bin', '"v2"');
    const { t, reports } = transfer(0, 512 * KiB);
    await rejectsKind(t.done, 'changed', 'the transfer of a changed object');
    assert.deepEqual(reports, []);
    assert.ok((await readFile(file)).every((b) => b === 0));
  });

  void test('a target file that cannot be opened is a FileWriteError with its code, not a remote error', async () => {
    const reports: number[] = [];
    const t = remote.readToFile('obj.bin', 0, 512 * KiB, join(dir, 'no-such-dir', 'f'), {
      signal: ac.signal,
      expect: fp,
      allowTo: 512 * KiB,
      onWritten: (to) => reports.push(to),
    });
    const err = await within(
      t.done.then(
        () => undefined,
        (e: unknown) => e,
      ),
      T,
      'the transfer to a missing directory',
    );
    assert.ok(err instanceof FileWriteError, String(err));
    assert.ok(!(err instanceof RemoteError));
    assert.equal(err.code, 'ENOENT');
    assert.deepEqual(reports, []);
  });

  void test('close() ends running transfers, and later ones are refused', async () => {
    const stall = server.stallAfter(100 * KiB);
    const { t } = transfer(0, SIZE);
    await within(stall.reached, T, 'the server to stall');
    await within(remote.close(), T, 'remote.close()');
    await rejectsKind(t.done, 'unavailable', 'a transfer cut by close');
    assert.throws(() => transfer(0, 10), (e: unknown) => e instanceof RemoteError && e.kind === 'unavailable');
  });
});
