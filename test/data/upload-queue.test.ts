// UploadQueue against MemoryRemote on a ManualClock: write-back delay and coalescing, the
// concurrency bound, foreground before background, retries with capped backoff that never drop
// a change, conflicts that keep both versions, a rewrite during an upload (frozen snapshots,
// re-queued, never mixed), fsync (waitFor), drain and close at unmount, restart from the same
// journal. No sleeps: holds and failNext on the remote, whenQuiet on the queue, `within` on
// every wait.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { Journal, type Base, type JournalRow, type Outcome, type Snapshot } from '../../src/store/journal.js';
import { UploadFailedError, UploadQueue, conflictName, type UploadQueueOptions } from '../../src/data/upload/upload-queue.js';
import { rampBuffer } from '../support/ramp.js';

const DELAY = 5000;
const ABSENT: Base = { kind: 'absent' };
const MS = 5000;

let dir = '';
let snapDir = '';
let clock: ManualClock;
let remote: MemoryRemote;
let journal: Journal;
const queues: UploadQueue[] = [];
const uploaded: [string, Outcome][] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-upload-'));
  snapDir = join(dir, 'snapshots');
  mkdirSync(snapDir);
  clock = new ManualClock();
  remote = new MemoryRemote({ clock });
  journal = Journal.open(join(dir, 'cache.db'), { remote: remote.id, clock });
  uploaded.length = 0;
});
afterEach(async () => {
  for (const q of queues.splice(0)) await within(q.close(), MS, 'the queue to close');
  journal.close();
  await remote.close();
  rmSync(dir, { recursive: true, force: true });
});

function startQueue(opts: Partial<UploadQueueOptions> = {}): UploadQueue {
  const q = new UploadQueue({
    journal,
    remote,
    snapshotDir: snapDir,
    clock,
    writeBackDelayMs: DELAY,
    retryBaseMs: 1000,
    retryMaxMs: 300_000,
    random: () => 0.5,
    host: 'testhost',
    onUploaded: (row: JournalRow, outcome: Outcome) => uploaded.push([row.path, outcome]),
    ...opts,
  });
  queues.push(q);
  q.start();
  return q;
}

let snapCounter = 0;
/** Writes a snapshot file of ramp bytes (the core fdatasyncs; a test needs no power-loss safety). */
function snapshot(q: UploadQueue, size: number, seed: number): Snapshot {
  const name = q.newSnapshotName() + `-${++snapCounter}`;
  writeFileSync(q.snapshotPath(name), rampBuffer(0, size, seed));
  return { name, sizeBytes: size, mtimeMs: clock.wallNow() };
}

const quiet = (q: UploadQueue, what = 'the queue to go quiet'): Promise<void> => within(q.whenQuiet(), MS, what);
const signal = (): AbortSignal => new AbortController().signal;

void describe('upload queue: scheduling', () => {
  void test('a background put waits for the write-back delay, then reaches the remote and leaves the journal', async () => {
    const q = startQueue();
    const s = snapshot(q, 1000, 1);
    q.put('a.bin', s, ABSENT);
    clock.advance(DELAY - 1);
    await quiet(q);
    assert.equal(remote.calls('put'), 0);
    clock.advance(1);
    await quiet(q);
    assert.deepEqual(remote.fileBytes('a.bin'), rampBuffer(0, 1000, 1));
    assert.deepEqual(journal.list(), []);
    assert.equal(existsSync(q.snapshotPath(s.name)), false, 'the snapshot is deleted after the commit');
    assert.equal(uploaded.length, 1);
    assert.equal(uploaded[0]?.[1].kind, 'written');
  });

  void test('rapid saves coalesce: one upload of the latest bytes, due after the last save', async () => {
    const q = startQueue();
    const s1 = snapshot(q, 100, 1);
    q.put('a', s1, ABSENT);
    clock.advance(3000);
    q.put('a', snapshot(q, 200, 2), ABSENT);
    assert.equal(existsSync(q.snapshotPath(s1.name)), false, 'the superseded snapshot goes at once');
    clock.advance(3000);
    await quiet(q);
    assert.equal(remote.calls('put'), 0, 'not due: 3 s after the last save');
    clock.advance(2000);
    await quiet(q);
    assert.equal(remote.calls('put'), 1);
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 200, 2));
  });

  void test('at most `concurrency` uploads at once; foreground rows first', async () => {
    const q = startQueue({ concurrency: 2 });
    const hold = remote.hold('put');
    for (const n of ['b1', 'b2', 'b3']) q.put(n, snapshot(q, 10, 3), ABSENT, 'background');
    clock.advance(DELAY);
    q.put('f1', snapshot(q, 10, 4), ABSENT, 'foreground');
    await within(hold.reached(2), MS, 'two puts at the hold');
    assert.equal(q.running, 2);
    assert.equal(hold.waiting, 2);
    const taken = journal.list().filter((r) => r.state === 'uploading').map((r) => r.path);
    assert.ok(taken.includes('f1'), `the foreground row is among the first taken: ${taken.join(',')}`);
    hold.open();
    await quiet(q);
    assert.equal(remote.calls('put'), 4);
    assert.deepEqual(journal.list(), []);
  });

  void test('a put inside a new directory runs after its mkdir; a put then delete of a new file costs no request', async () => {
    const q = startQueue();
    q.mkdir('d');
    q.put('d/f', snapshot(q, 50, 5), ABSENT);
    const s = snapshot(q, 50, 6);
    q.put('tmp', s, ABSENT);
    q.delete('tmp', ABSENT);
    assert.equal(existsSync(q.snapshotPath(s.name)), false);
    clock.advance(DELAY);
    await quiet(q);
    assert.deepEqual(remote.fileBytes('d/f'), rampBuffer(0, 50, 5));
    assert.equal(remote.calls('delete'), 0);
    assert.equal(remote.calls('put'), 1);
    assert.deepEqual(journal.list(), []);
  });
});

void describe('upload queue: deletes, directories, renames', () => {
  void test('delete, rename, mkdir and rmdir reach the remote in order; a delete of a changed file keeps theirs', async () => {
    const va = remote.setFile('a', Buffer.from('a'));
    const vb = remote.setFile('b', Buffer.from('b0'));
    remote.setFile('x', Buffer.from('x'));
    remote.setDir('old');
    const q = startQueue();
    q.delete('a', { kind: 'version', version: va });
    q.rename('x', 'y', ABSENT);
    q.mkdir('new');
    q.rmdir('old');
    remote.setFile('b', Buffer.from('theirs'));
    q.delete('b', { kind: 'version', version: vb });
    await assert.rejects(within(q.waitFor(undefined, signal()), MS, 'all changes'), UploadFailedError);
    await quiet(q);
    const names = (await remote.list('', signal())).map((e) => e.name).sort();
    assert.deepEqual(names, ['b', 'new', 'y']);
    assert.deepEqual(remote.fileBytes('b'), Buffer.from('theirs'), 'their newer file is not deleted');
    assert.deepEqual(journal.list().map((r) => [r.path, r.state]), [['b', 'conflict']]);
  });

  void test('after a crash, a mkdir that finds its directory and a rename that finds its target done are successes', async () => {
    remote.setDir('d');
    remote.setFile('to', Buffer.from('moved'));
    const q = startQueue();
    q.mkdir('d', 'foreground');
    q.rename('from', 'to', ABSENT, 'foreground');
    await within(q.waitFor(undefined, signal()), MS, 'both');
    assert.deepEqual(journal.list(), []);
  });
});

void describe('upload queue: failures never drop a change', () => {
  void test('retryable errors: the row stays queued with its error, retried after backoff on the clock', async () => {
    const q = startQueue();
    remote.failNext('put', 'unavailable', 2);
    q.put('a', snapshot(q, 100, 1), ABSENT, 'foreground');
    await quiet(q);
    let [row] = journal.list();
    assert.equal(row?.state, 'queued');
    assert.equal(row?.attempts, 1);
    assert.match(row?.lastError ?? '', /unavailable/);
    assert.equal(row?.dueMs, clock.wallNow() + 1000);
    clock.advance(999);
    await quiet(q);
    assert.equal(remote.calls('put'), 1);
    clock.advance(1);
    await quiet(q);
    [row] = journal.list();
    assert.equal(row?.attempts, 2);
    clock.advance(row ? row.dueMs - clock.wallNow() : 0);
    await quiet(q);
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 100, 1));
    assert.deepEqual(journal.list(), []);
  });

  void test('a permanent error keeps the row (failed, visible), retried with backoff capped at 5 min; fsync reports it', async () => {
    const q = startQueue({ random: () => 0.999 });
    remote.failNext('put', 'permission', 1000);
    q.put('a', snapshot(q, 100, 1), ABSENT, 'foreground');
    await quiet(q);
    await assert.rejects(within(q.waitFor('a', signal()), MS, 'fsync to report the failure'), UploadFailedError);
    for (let i = 0; i < 15; i++) {
      const [row] = journal.list();
      assert.ok(row, 'the row is never dropped');
      assert.equal(row.state, 'failed');
      assert.ok(row.dueMs - clock.wallNow() <= 300_000, `backoff ${row.dueMs - clock.wallNow()} ms is capped`);
      clock.advance(row.dueMs - clock.wallNow());
      await quiet(q);
    }
    const [row] = journal.list();
    assert.ok(row && row.attempts >= 15);
    assert.ok(row.dueMs - clock.wallNow() >= 299_000, 'the cap is reached');
    assert.match(row.lastError ?? '', /permission/);
    remote.failNext('put', 'permission', 0);
    clock.advance(300_000);
    await quiet(q);
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 100, 1));
  });

  void test('conflict: the remote changed since our base; theirs stays, ours is kept under the conflict name', async () => {
    const base = remote.setFile('doc.txt', Buffer.from('v0'));
    remote.setFile('doc.txt', Buffer.from('theirs'));
    const conflicts: string[] = [];
    const q = startQueue({ onConflict: (_row, p) => conflicts.push(p) });
    q.put('doc.txt', snapshot(q, 64, 7), { kind: 'version', version: base }, 'foreground');
    await assert.rejects(within(q.waitFor('doc.txt', signal()), MS, 'fsync to report the conflict'), UploadFailedError);
    await quiet(q);
    const expectName = conflictName('doc.txt', clock.wallNow(), 'testhost');
    assert.equal(expectName, 'doc.txt.conflict-20260101T000000Z-testhost');
    assert.deepEqual(conflicts, [expectName]);
    assert.deepEqual(remote.fileBytes('doc.txt'), Buffer.from('theirs'));
    assert.deepEqual(remote.fileBytes(expectName), rampBuffer(0, 64, 7));
    const [row] = journal.list();
    assert.equal(row?.state, 'conflict');
    assert.equal(row?.conflictPath, expectName);
    assert.deepEqual(journal.pending(), []);
  });

  void test('a create that finds exactly our bytes (an attempt committed before a crash) is a success, not a conflict', async () => {
    const q = startQueue();
    const s = snapshot(q, 300, 8);
    remote.setFile('a', rampBuffer(0, 300, 8));
    q.put('a', s, ABSENT, 'foreground');
    await within(q.waitFor('a', signal()), MS, 'the put');
    assert.deepEqual(readdirSync(snapDir), []);
    assert.equal(remote.calls('put'), 1, 'the create-only put found it; no conflict copy');
  });

  void test('an earlier generation an attempt committed before a crash is ours: replaced by the new one, no conflict copy', async () => {
    const q = startQueue();
    const hold = remote.hold('put');
    q.put('a', snapshot(q, 300, 1), ABSENT, 'foreground');
    await within(hold.reached(1), MS, 'generation 1 at its commit');
    await within(q.close(), MS, 'close (the held put is aborted)');
    remote.release('put');
    // As if generation 1 had committed and the answer was lost in the crash.
    remote.setFile('a', rampBuffer(0, 300, 1));
    const q2 = startQueue();
    q2.put('a', snapshot(q2, 400, 2), ABSENT, 'foreground');
    await within(q2.waitFor('a', signal()), MS, 'generation 2');
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 400, 2));
    assert.deepEqual((await remote.list('', signal())).map((e) => e.name), ['a'], 'no conflict copy');
  });

  void test('a create that finds someone else\'s file keeps both', async () => {
    const q = startQueue();
    remote.setFile('a', rampBuffer(0, 300, 9));
    q.put('a', snapshot(q, 300, 8), ABSENT, 'foreground');
    await assert.rejects(within(q.waitFor('a', signal()), MS, 'the put'), UploadFailedError);
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 300, 9));
    assert.deepEqual(remote.fileBytes(conflictName('a', clock.wallNow(), 'testhost')), rampBuffer(0, 300, 8));
  });
});

/** MemoryRemote without atomic conditional puts: the queue stats before it puts. */
function withoutConditionalPut(m: MemoryRemote): Remote {
  return {
    id: m.id,
    capabilities: { ...m.capabilities, conditionalPut: false },
    stat: (p, s) => m.stat(p, s),
    list: (p, s) => m.list(p, s),
    read: (p, o, l, opts) => m.read(p, o, l, opts),
    put: (p, src, opts) => m.put(p, src, opts),
    delete: (p, opts) => m.delete(p, opts),
    rename: (f, t, opts) => m.rename(f, t, opts),
    mkdir: (p, opts) => m.mkdir(p, opts),
    rmdir: (p, opts) => m.rmdir(p, opts),
    close: () => Promise.resolve(),
  };
}

void describe('upload queue: frozen snapshots', () => {
  void test('a rewrite while the old generation uploads: the old one commits whole, the new one follows against it', async () => {
    const q = startQueue();
    const hold = remote.hold('put');
    const s1 = snapshot(q, 500, 1);
    q.put('a', s1, ABSENT, 'foreground');
    await within(hold.reached(1), MS, 'the first put at its commit');
    const s2 = snapshot(q, 700, 2);
    q.put('a', s2, ABSENT, 'foreground');
    assert.equal(existsSync(q.snapshotPath(s1.name)), true, 'a snapshot a worker reads is not deleted');
    remote.release('put');
    await within(q.waitFor('a', signal()), MS, 'both generations');
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 700, 2));
    assert.equal(remote.calls('put'), 2, 'the second put replaced the first by If-Match (no conflict copy)');
    assert.deepEqual(readdirSync(snapDir), []);
  });

  void test('an old generation failing permanently does not hold back the new one', async () => {
    const q = startQueue();
    const hold = remote.hold('put');
    q.put('a', snapshot(q, 100, 1), ABSENT, 'foreground');
    await within(hold.reached(1), MS, 'generation 1 at its commit');
    q.put('a', snapshot(q, 120, 2), ABSENT, 'foreground');
    remote.failNext('put', 'permission', 1);
    remote.release('put');
    await within(q.waitFor('a', signal()), MS, 'generation 2, with no backoff');
    assert.equal(clock.now(), 0);
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 120, 2));
  });

  void test('a generation that changed before the bytes were read is re-queued, never uploaded', async () => {
    remote.setFile('a', Buffer.from('old'));
    const base = { kind: 'version', version: { ...(await remote.stat('a', signal())) } } as const;
    const q = startQueue({ remote: withoutConditionalPut(remote) });
    const hold = remote.hold('stat');
    q.put('a', snapshot(q, 100, 1), base, 'foreground');
    await within(hold.reached(1), MS, 'the pre-put stat');
    q.put('a', snapshot(q, 150, 2), base, 'foreground');
    remote.release('stat');
    await within(q.waitFor('a', signal()), MS, 'the upload');
    assert.equal(remote.calls('put'), 2, 'one put refused by its source, one of generation 2');
    assert.deepEqual(
      uploaded.map(([p, o]) => [p, o.kind === 'written' ? o.version.size : o.kind]),
      [['a', 150]],
      'generation 1 never reached the remote',
    );
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 150, 2));
  });
});

void describe('upload queue: fsync, drain, close, restart', () => {
  void test('waitFor makes a background row foreground and due now', async () => {
    const q = startQueue();
    q.put('a', snapshot(q, 10, 1), ABSENT);
    await within(q.waitFor('a', signal()), MS, 'fsync of a');
    assert.equal(clock.now(), 0, 'no time passed');
    assert.deepEqual(remote.fileBytes('a'), rampBuffer(0, 10, 1));
  });

  void test('fsync of a file in a new directory also makes the mkdir it waits for due now', async () => {
    const q = startQueue();
    q.mkdir('d');
    q.put('d/f', snapshot(q, 10, 1), ABSENT);
    q.put('other', snapshot(q, 10, 2), ABSENT);
    await within(q.waitFor('d/f', signal()), MS, 'fsync of d/f');
    assert.equal(clock.now(), 0, 'no time passed');
    assert.deepEqual(remote.fileBytes('d/f'), rampBuffer(0, 10, 1));
    assert.equal(journal.pending()[0]?.path, 'other', 'an unrelated row keeps its write-back delay');
  });

  void test('drain returns what could not be uploaded in time; close aborts the running upload and keeps it journaled; a new queue resumes it', async () => {
    const q = startQueue();
    q.put('ok', snapshot(q, 10, 1), ABSENT);
    const hold = remote.hold('put');
    const draining = q.drain(1000);
    await within(hold.reached(1), MS, 'an upload at the hold');
    remote.release('put');
    const hold2 = remote.hold('put');
    q.put('stuck', snapshot(q, 10, 2), ABSENT, 'foreground');
    await within(hold2.reached(1), MS, 'the second upload at the hold');
    clock.advance(1000);
    const left = await within(draining, MS, 'drain to time out');
    assert.deepEqual(left.map((r) => r.path), ['stuck']);
    await within(q.close(), MS, 'close');
    assert.equal(journal.list()[0]?.state, 'queued', 'handed back, not lost');
    remote.release('put');
    const q2 = startQueue();
    await within(q2.waitFor(undefined, signal()), MS, 'the restarted queue to upload');
    assert.deepEqual(remote.fileBytes('stuck'), rampBuffer(0, 10, 2));
    assert.deepEqual(remote.fileBytes('ok'), rampBuffer(0, 10, 1));
  });

  void test('drain returns early when the rest only fails and its next try is past the deadline', async () => {
    const q = startQueue();
    remote.failNext('put', 'permission', 100);
    q.put('a', snapshot(q, 10, 1), ABSENT);
    // The first retry is due 1000 ms after the failure, past the drain's 500 ms.
    const left = await within(q.drain(500), MS, 'drain');
    assert.equal(clock.now(), 0, 'no time passed: it did not wait for its deadline');
    assert.equal(left.length, 1);
    assert.equal(left[0]?.state, 'failed');
  });

  void test('a start deletes snapshot files no row references; a rename of a local-only file uploads once, to the new name', async () => {
    writeFileSync(join(snapDir, 'snap-orphan'), 'x');
    const q = startQueue();
    assert.equal(existsSync(join(snapDir, 'snap-orphan')), false);
    q.put('x.tmp', snapshot(q, 40, 3), ABSENT);
    q.rename('x.tmp', 'x', ABSENT);
    await within(q.waitFor(undefined, signal()), MS, 'the upload');
    assert.deepEqual(remote.fileBytes('x'), rampBuffer(0, 40, 3));
    assert.equal(remote.calls('rename'), 0);
    assert.equal(remote.calls('put'), 1);
  });
});
