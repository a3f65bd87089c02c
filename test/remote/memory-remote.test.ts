// MemoryRemote's test controls (holds, fault injection, counters), its clock and its capacity:
// what the write-path tests will lean on, so they must be exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { sameVersion } from '../../src/remote/fingerprint.js';
import type { ContentSource } from '../../src/remote/remote.js';
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import { checkRamp } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';
import { rampSource } from './contract.js';

const signal = new AbortController().signal;
const names = async (r: MemoryRemote): Promise<string[]> => (await r.list('', signal)).map((e) => e.name).sort();

void test('a held put has read its source and shows nothing until the hold opens', async () => {
  const remote = new MemoryRemote();
  const hold = remote.hold('put');
  const p = remote.put('a.bin', rampSource(100_000, 1), { signal });
  await within(hold.reached(), 5000, 'the put to reach its hold');
  assert.deepEqual(await names(remote), [], 'nothing visible while held');
  hold.open();
  const st = await within(p, 5000, 'the put after the hold opened');
  assert.deepEqual(await names(remote), ['a.bin']);
  assert.ok(sameVersion(st, await remote.stat('a.bin', signal)));
  assert.equal(remote.calls('put'), 1);
});

void test('a conditional put is decided at its commit, after the hold', async () => {
  const remote = new MemoryRemote();
  const v1 = remote.setFile('a.bin', Buffer.from('one'));
  const hold = remote.hold('put');
  const p = remote.put('a.bin', rampSource(10, 1), { signal, ifMatch: v1 });
  await within(hold.reached(), 5000, 'the put to reach its hold');
  remote.setFile('a.bin', Buffer.from('two')); // someone else, meanwhile
  hold.open();
  await rejectsKind(p, 'conflict', 'ifMatch against a version replaced while held');
  assert.equal(remote.fileBytes('a.bin').toString(), 'two');
});

void test('an abort while held changes nothing', async () => {
  const remote = new MemoryRemote();
  const hold = remote.hold('put');
  const ctl = new AbortController();
  const p = remote.put('a.bin', rampSource(10, 1), { signal: ctl.signal });
  await within(hold.reached(), 5000, 'the put to reach its hold');
  ctl.abort();
  await rejectsKind(p, 'aborted', 'aborted while held');
  hold.open();
  assert.deepEqual(await names(remote), []);
  const readHold = remote.hold('read');
  remote.setFile('b.bin', Buffer.from('b'));
  const rc = new AbortController();
  const r = remote.read('b.bin', 0, 1, { signal: rc.signal });
  await within(readHold.reached(), 5000, 'the read to reach its hold');
  rc.abort(new DOMException('deadline', 'TimeoutError'));
  await rejectsKind(r, 'timeout', 'a read whose deadline passed while held');
});

void test('failNext fails exactly the next N calls, each after re-reading the source; counters count every call', async () => {
  const remote = new MemoryRemote();
  let opens = 0;
  const inner = rampSource(50_000, 4);
  const source: ContentSource = { sizeBytes: inner.sizeBytes, open: (s) => (opens++, inner.open(s)) };
  remote.failNext('put', 'unavailable', 2);
  await rejectsKind(remote.put('a.bin', source, { signal }), 'unavailable', 'first injected failure');
  await rejectsKind(remote.put('a.bin', source, { signal }), 'unavailable', 'second injected failure');
  await remote.put('a.bin', source, { signal });
  assert.equal(opens, 3, 'every attempt read the source from the start');
  assert.equal(remote.calls('put'), 3);
  assert.equal(checkRamp(remote.fileBytes('a.bin'), 0, 4), -1);
  remote.failNext('list', 'timeout');
  await rejectsKind(remote.list('', signal), 'timeout', 'injected list timeout');
  assert.deepEqual(await names(remote), ['a.bin']);
  assert.equal(remote.calls('list'), 2);
});

void test('mtimes come from the injected clock; every put has a new ETag, even for the same bytes at the same time', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const remote = new MemoryRemote({ clock });
  const a = await remote.put('a.bin', rampSource(10, 1), { signal });
  const b = await remote.put('a.bin', rampSource(10, 1), { signal });
  assert.equal(a.mtimeMs, Date.UTC(2026, 0, 1));
  assert.equal(b.mtimeMs, a.mtimeMs);
  assert.notEqual(a.etag, b.etag);
  assert.ok(!sameVersion(a, b));
  clock.advance(1500);
  await remote.mkdir('d', { signal });
  assert.equal((await remote.stat('d', signal)).mtimeMs, Date.UTC(2026, 0, 1) + 1500);
  assert.equal((await remote.stat('', signal)).mtimeMs, Date.UTC(2026, 0, 1) + 1500, "the parent's mtime moved");
});

void test('capacity: a put that does not fit is no-space and changes nothing', async () => {
  const remote = new MemoryRemote({ capacityBytes: 1000 });
  await remote.put('a.bin', rampSource(600, 1), { signal });
  await rejectsKind(remote.put('b.bin', rampSource(600, 2), { signal }), 'no-space', 'over capacity');
  await remote.put('a.bin', rampSource(1000, 3), { signal }); // a replacement frees the old bytes
  assert.equal(remote.usedBytes, 1000);
  assert.deepEqual(await names(remote), ['a.bin']);
  const r = await remote.read('a.bin', 0, 1000, { signal });
  assert.equal(checkRamp(await collect(r.body), 0, 3), -1);
});
