// Journal: the resolution rules (put+delete cancel, rename of a local-only file moves its put,
// repeated puts coalesce, mkdir+rmdir cancel, and none of them once a row was tried), the
// order in which rows are handed out (foreground first, due time, related paths wait for
// earlier rows), completion by generation, and durability (synchronous=FULL, rows survive a
// reopen, interrupted uploads go back to queued).
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/base/clock.js';
import { Journal, related, type Base, type Snapshot } from '../../src/store/journal.js';
import { openDatabase } from '../../src/store/database.js';

const ABSENT: Base = { kind: 'absent' };
const V1: Base = { kind: 'version', version: { etag: '"e1"', size: 3, mtimeMs: 1000 } };
const snap = (name: string, sizeBytes = 3): Snapshot => ({ name, sizeBytes, mtimeMs: 5000 });

let dir = '';
let clock: ManualClock;
let journal: Journal;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-journal-'));
  clock = new ManualClock();
  journal = Journal.open(join(dir, 'cache.db'), { remote: 'memory://t/', clock });
});
afterEach(() => {
  journal.close();
  rmSync(dir, { recursive: true, force: true });
});

const now = (): number => clock.wallNow();

void describe('journal resolution rules', () => {
  void test('a put of a path the remote never had, then its delete: both rows vanish, no request', () => {
    journal.recordPut('a.txt', snap('s1'), ABSENT, 'background', now());
    const r = journal.recordDelete('a.txt', ABSENT, 'background', now());
    assert.equal(r.id, undefined);
    assert.deepEqual(r.released, ['s1']);
    assert.deepEqual(journal.list(), []);
  });

  void test('a put of a file the remote has, then its delete: one delete of the base version', () => {
    journal.recordPut('a.txt', snap('s1'), V1, 'background', now());
    const r = journal.recordDelete('a.txt', ABSENT, 'background', now());
    assert.deepEqual(r.released, ['s1']);
    const rows = journal.list();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.kind, 'delete');
    assert.deepEqual(rows[0]?.base, V1);
    assert.equal(rows[0]?.snapshot, undefined);
  });

  void test('a put that was already handed to a worker does not cancel (the remote may have it)', () => {
    journal.recordPut('a.txt', snap('s1'), ABSENT, 'background', now());
    const [t] = journal.take(1, now());
    assert.ok(t);
    journal.retryLater(t.id, t.generation, 'timeout', now() + 100, false);
    journal.recordDelete('a.txt', ABSENT, 'background', now());
    const rows = journal.list();
    assert.equal(rows.length, 1, 'a delete stays');
    assert.equal(rows[0]?.kind, 'delete');
  });

  void test('repeated puts of one path coalesce into the latest generation, keeping the base', () => {
    const a = journal.recordPut('a.txt', snap('s1'), V1, 'background', now());
    const b = journal.recordPut('a.txt', snap('s2', 7), { kind: 'any' }, 'background', now() + 10);
    const c = journal.recordPut('a.txt', snap('s3', 9), { kind: 'any' }, 'background', now() + 20);
    assert.equal(a.id, b.id);
    assert.equal(b.id, c.id);
    assert.deepEqual(b.released, ['s1']);
    assert.deepEqual(c.released, ['s2']);
    const [row] = journal.list();
    assert.equal(journal.list().length, 1);
    assert.equal(row?.generation, 3);
    assert.deepEqual(row?.snapshot, snap('s3', 9));
    assert.deepEqual(row?.base, V1, 'the base is what the remote has, not the later calls');
    assert.equal(row?.dueMs, now() + 20, 'write-back delay counts from the last change');
  });

  void test('a put coalesces even while uploading; completing the old generation keeps the row against the new remote version', () => {
    journal.recordPut('a.txt', snap('s1'), ABSENT, 'background', now());
    const [t] = journal.take(1, now());
    assert.ok(t);
    const r = journal.recordPut('a.txt', snap('s2'), ABSENT, 'background', now());
    assert.deepEqual(r.released, ['s1'], 'released: the caller must not delete it while a worker reads it');
    const v = { etag: '"m1"', size: 3, mtimeMs: 7 };
    assert.deepEqual(journal.complete(t.id, t.generation, { kind: 'written', version: v }), []);
    const [row] = journal.list();
    assert.equal(row?.state, 'queued');
    assert.equal(row?.generation, 2);
    assert.deepEqual(row?.base, { kind: 'version', version: v });
    const [t2] = journal.take(1, now());
    assert.ok(t2);
    assert.deepEqual(journal.complete(t2.id, t2.generation, { kind: 'written', version: v }), ['s2']);
    assert.deepEqual(journal.list(), []);
  });

  void test('a rename of a not-yet-uploaded file rewrites the pending put\'s target', () => {
    journal.recordPut('a.tmp', snap('s1'), ABSENT, 'background', now());
    const r = journal.recordRename('a.tmp', 'a.txt', V1, 'background', now());
    const rows = journal.list();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.id, r.id);
    assert.equal(rows[0]?.kind, 'put');
    assert.equal(rows[0]?.path, 'a.txt');
    assert.deepEqual(rows[0]?.base, V1, 'If-Match what was at the target');
  });

  void test('a rename onto a path with a pending put replaces that put and takes its base', () => {
    journal.recordPut('a.txt', snap('old'), V1, 'background', now());
    journal.recordPut('a.tmp', snap('new'), ABSENT, 'background', now());
    const r = journal.recordRename('a.tmp', 'a.txt', ABSENT, 'background', now());
    assert.deepEqual(r.released, ['old']);
    const rows = journal.list();
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]?.snapshot, snap('new'));
    assert.deepEqual(rows[0]?.base, V1);
  });

  void test('a rename of a file the remote has is a rename row, after the put of its source', () => {
    journal.recordPut('a', snap('s1'), V1, 'background', now());
    journal.recordRename('a', 'b', ABSENT, 'background', now());
    const rows = journal.list();
    assert.deepEqual(
      rows.map((r) => [r.kind, r.fromPath, r.path]),
      [
        ['put', undefined, 'a'],
        ['rename', 'a', 'b'],
      ],
    );
    // A new file at the old name is a new row behind the rename, and the remote will have nothing there.
    journal.recordPut('a', snap('s2'), V1, 'background', now());
    assert.equal(journal.list().length, 3);
    assert.deepEqual(journal.list()[2]?.base, ABSENT);
  });

  void test('mkdir then rmdir of the same directory: both vanish; not with something pending inside', () => {
    journal.recordMkdir('d', 'background', now());
    assert.equal(journal.recordRmdir('d', 'background', now()).id, undefined);
    assert.deepEqual(journal.list(), []);
    journal.recordMkdir('d', 'background', now());
    journal.recordMkdir('d/e', 'background', now());
    journal.recordRmdir('d', 'background', now());
    assert.equal(journal.list().length, 3);
  });
});

void describe('journal order', () => {
  void test('foreground first, then background by due time; not-due rows wait', () => {
    journal.recordPut('late', snap('s1'), ABSENT, 'background', now() + 2000);
    journal.recordPut('early', snap('s2'), ABSENT, 'background', now() + 1000);
    journal.recordPut('fsynced', snap('s3'), ABSENT, 'background', now() + 3000);
    assert.deepEqual(journal.take(5, now()), []);
    assert.equal(journal.nextDueMs(now()), now() + 1000);
    journal.bump('fsynced', now());
    clock.advance(2000);
    assert.deepEqual(
      journal.take(5, now()).map((r) => r.path),
      ['fsynced', 'early', 'late'],
    );
    assert.equal(journal.nextDueMs(0), undefined, 'everything taken');
  });

  void test('due times over every state and priority: queued and failed count, uploading and conflict do not', () => {
    journal.recordPut('fg', snap('s1'), ABSENT, 'foreground', now() + 4000);
    journal.recordPut('bg', snap('s2'), ABSENT, 'background', now() + 3000);
    journal.recordPut('failing', snap('s3'), ABSENT, 'background', now());
    const [f] = journal.take(1, now());
    assert.equal(f?.path, 'failing');
    journal.retryLater(f.id, f.generation, 'unavailable', now() + 2000, false);
    journal.recordPut('busy', snap('s4'), ABSENT, 'background', now());
    assert.equal(journal.take(1, now())[0]?.path, 'busy', 'uploading now: its due time no longer counts');
    assert.equal(journal.minDueMs(), now() + 2000, 'a failed row due again counts');
    assert.equal(journal.nextDueMs(now()), now() + 2000);
    assert.equal(journal.nextDueMs(now() + 2000), now() + 3000, 'strictly after');
    assert.equal(journal.nextDueMs(now() + 3000), now() + 4000, 'a foreground row counts too');
    assert.deepEqual(journal.take(4, now()), [], 'nothing due yet');
    clock.advance(2000);
    assert.deepEqual(journal.take(4, now()).map((r) => r.path), ['failing']);
    clock.advance(2000);
    assert.deepEqual(journal.take(4, now()).map((r) => r.path), ['fg', 'bg']);
    assert.equal(journal.minDueMs(), undefined);
  });

  void test('a put inside a directory waits for the mkdir; a rename waits for the put it moves', () => {
    journal.recordMkdir('d', 'background', now());
    journal.recordPut('d/f', snap('s1'), V1, 'background', now());
    journal.recordRename('d/f', 'g', ABSENT, 'background', now());
    journal.recordPut('x', snap('s2'), ABSENT, 'background', now());
    const first = journal.take(5, now());
    assert.deepEqual(first.map((r) => r.path), ['d', 'x']);
    const mk = first[0];
    assert.ok(mk);
    journal.complete(mk.id, mk.generation, { kind: 'dir' });
    const second = journal.take(5, now());
    assert.deepEqual(second.map((r) => r.path), ['d/f']);
    assert.deepEqual(journal.take(5, now()), [], 'the rename waits while the put uploads');
  });

  void test('a row behind another of the same path inherits what the remote has once that one completes', () => {
    journal.recordRmdir('p', 'background', now());
    journal.recordPut('p', snap('s1'), V1, 'background', now());
    assert.deepEqual(journal.list()[1]?.base, { kind: 'inherit' });
    const [t] = journal.take(5, now());
    assert.equal(t?.kind, 'rmdir');
    if (t) journal.complete(t.id, t.generation, { kind: 'gone' });
    assert.deepEqual(journal.list()[0]?.base, ABSENT);
  });

  void test('related paths', () => {
    const p = (path: string, fromPath?: string): { path: string; fromPath: string | undefined } => ({ path, fromPath });
    assert.equal(related(p('a'), p('a/b')), true);
    assert.equal(related(p('a/b'), p('a')), true);
    assert.equal(related(p('a'), p('ab')), false);
    assert.equal(related(p('x', 'a/b'), p('a')), true);
    assert.equal(related(p('x'), p('y')), false);
  });
});

void describe('journal durability', () => {
  void test('opens with synchronous=FULL; rows survive a reopen; interrupted uploads go back to queued', () => {
    journal.recordPut('a', snap('s1'), V1, 'foreground', now());
    const [t] = journal.take(1, now());
    assert.equal(t?.state, 'uploading');
    // A second connection (like a status reader) sees the committed row.
    const other = openDatabase(join(dir, 'cache.db'));
    try {
      assert.equal((other.prepare('SELECT COUNT(*) AS n FROM journal').get() as { n: number }).n, 1);
    } finally {
      other.close();
    }
    journal.close();
    journal = Journal.open(join(dir, 'cache.db'), { remote: 'memory://t/', clock });
    assert.equal(journal.list()[0]?.state, 'uploading');
    assert.equal(journal.requeueInterrupted(), 1);
    assert.equal(journal.list()[0]?.state, 'queued');
    assert.deepEqual(journal.referencedSnapshots(), new Set(['s1']));
  });

  void test('the journal connection commits with synchronous=FULL', () => {
    assert.equal(journal.synchronousLevel(), 2, 'FULL');
  });

  void test('synced commits without an inline fsync; durable() syncs them once, shared by every caller until the next commit', async () => {
    let inside = -1;
    journal.synced(() => {
      inside = journal.synchronousLevel();
      journal.recordPut('a', snap('s1'), ABSENT, 'background', now());
    });
    assert.equal(inside, 1, 'NORMAL while it commits');
    assert.equal(journal.synchronousLevel(), 2, 'FULL again after');
    const first = journal.durable();
    assert.equal(journal.durable(), first, 'nothing committed since: the same sync');
    journal.synced(() => journal.take(1, now()));
    const second = journal.durable();
    assert.notEqual(second, first, 'a commit after the sync started needs another one');
    assert.equal(journal.durable(), second);
    await Promise.all([first, second]);
    assert.equal(journal.list()[0]?.state, 'uploading');
    await journal.durable(); // nothing left: resolves at once
  });

  void test('a conflict of an old generation does not end a row rewritten meanwhile', () => {
    journal.recordPut('a', snap('s1'), V1, 'background', now());
    const [t] = journal.take(1, now());
    assert.ok(t);
    journal.recordPut('a', snap('s2'), V1, 'background', now());
    assert.deepEqual(journal.markConflict(t.id, t.generation, 'a.conflict-x', 'changed'), []);
    const [row] = journal.list();
    assert.equal(row?.state, 'queued');
    assert.deepEqual(row?.snapshot, snap('s2'));
    const [t2] = journal.take(1, now());
    assert.ok(t2);
    assert.deepEqual(journal.markConflict(t2.id, t2.generation, 'a.conflict-y', 'changed'), ['s2']);
    assert.equal(journal.list()[0]?.state, 'conflict');
    assert.deepEqual(journal.pending(), []);
  });

  void test('a permanently failing row stays, visible with its error, due again later', () => {
    journal.recordPut('a', snap('s1'), V1, 'background', now());
    const [t] = journal.take(1, now());
    assert.ok(t);
    journal.retryLater(t.id, t.generation, 'permission: denied', now() + 300_000, true);
    const [row] = journal.list();
    assert.equal(row?.state, 'failed');
    assert.equal(row?.lastError, 'permission: denied');
    assert.equal(row?.attempts, 1);
    assert.deepEqual(journal.take(1, now()), []);
    clock.advance(300_000);
    assert.equal(journal.take(1, now()).length, 1);
  });
});
