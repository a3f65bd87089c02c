// Catalogue and the migration runner: migrations from empty, re-open, rollback of a failing
// migration, fingerprint replacement, ranges across reopen (checked row by row, not through a
// normalising RangeSet), LRU order, present_bytes/dirty consistency against a model (property),
// and sharing one database between connections, threads and concurrent migrations.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { RangeSet } from '../../src/base/range-set.js';
import { Catalogue, StoreClosedError, type RangeKind } from '../../src/store/catalogue.js';
import { MIGRATIONS } from '../../src/store/schema.js';
import { MigrationError, StoreError, migrate, openDatabase, schemaVersion, type Db, type Migration } from '../../src/store/database.js';

const name = (id: number): string => `${id}.bin`;
/** The schema version a fresh catalogue ends at. */
const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

let dir = '';
const cleanups: (() => void)[] = [];
/** Registers a resource to release after the test, even when it fails. */
function own<T extends { close(): unknown }>(x: T): T {
  cleanups.push(() => {
    x.close();
  });
  return x;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-store-'));
});
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
  rmSync(dir, { recursive: true, force: true });
});

/** The stored rows of one object and kind, exactly as in the table. */
function rawRanges(db: Db, objectId: number, kind: RangeKind = 'present'): [number, number][] {
  return db
    .prepare<[number, string], { start: number; end: number }>('SELECT start, "end" FROM ranges WHERE object_id = ? AND kind = ? ORDER BY start')
    .all(objectId, kind)
    .map((r) => [r.start, r.end]);
}

/**
 * Runs `body` (module source, with `Catalogue`, `migrate`, `MIGRATIONS`, `openDatabase` and
 * `workerData` (plus `workerData.index`) in scope) in `n` separate processes — several
 * processes opening one cache dir is the case this guards — that start it together after a
 * barrier: each child says "ready" and waits for the parent's "go", sent once all are ready.
 * (Processes, not worker threads: better-sqlite3 12 aborts on Node 24 when a worker thread
 * that used it is torn down, WiseLibs/better-sqlite3#1515.)
 */
async function inWorkers(n: number, body: string, data: Record<string, unknown>): Promise<void> {
  const code = `
    const workerData = JSON.parse(process.env.STORE_TEST_DATA);
    const { Catalogue } = await import(workerData.storeUrl);
    const { MIGRATIONS } = await import(workerData.schemaUrl);
    const { migrate, openDatabase } = await import(workerData.dbUrl);
    process.stdout.write('ready\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    process.stdin.destroy();
    try {
      ${body}
    } catch (e) {
      process.stderr.write(String(e && e.stack || e) + (e && e.cause ? '\\ncause: ' + String(e.cause.stack || e.cause) + ' ' + e.cause.code : ''));
      process.exit(1);
    }
  `;
  const base = {
    ...data,
    storeUrl: new URL('../../src/store/catalogue.js', import.meta.url).href,
    dbUrl: new URL('../../src/store/database.js', import.meta.url).href,
    schemaUrl: new URL('../../src/store/schema.js', import.meta.url).href,
  };
  const children = Array.from({ length: n }, (_, index) =>
    spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...process.env, STORE_TEST_DATA: JSON.stringify({ ...base, index }) },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const exits = children.map(
    (c) =>
      new Promise<string>((resolve, reject) => {
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.once('error', reject);
        c.once('close', (code) => resolve(code === 0 ? 'ok' : `exit ${code}: ${err}`));
      }),
  );
  // Ready, or gone before getting there (then its exit says why).
  const ready = children.map(
    (c, i) =>
      new Promise<void>((resolve, reject) => {
        let out = '';
        c.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        void (exits[i] as Promise<string>).then((r) => reject(new Error(`store process ${i} ended before the barrier: ${r}`)), reject);
      }),
  );
  try {
    await within(Promise.all(ready), 30_000, `${n} store processes to reach the barrier`);
    for (const c of children) c.stdin.write('go\n');
    const results = await within(Promise.all(exits), 30_000, `${n} store processes to finish`);
    assert.deepEqual(results, Array<string>(n).fill('ok'));
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

describe('migrations', () => {
  test('an empty database is migrated to the latest version; reopening is a no-op', () => {
    const path = join(dir, 'c.db');
    Catalogue.open(path).close();
    const db = own(openDatabase(path));
    assert.equal(schemaVersion(db), LATEST);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(migrate(db, MIGRATIONS), LATEST, 'nothing left to apply');
    const s = own(Catalogue.open(path));
    assert.deepEqual(s.listObjects(), []);
    s.close();
    s.close(); // idempotent
    assert.throws(() => s.listObjects(), StoreClosedError);
  });

  test('a failing migration rolls back and leaves user_version unchanged', () => {
    const db = own(openDatabase(join(dir, 'c.db')));
    migrate(db, MIGRATIONS);
    const bad: Migration = { version: LATEST + 1, description: 'broken', up: (d) => d.exec('CREATE TABLE t (x); SELECT no_such_function();') };
    assert.throws(() => migrate(db, [...MIGRATIONS, bad]), MigrationError);
    assert.equal(schemaVersion(db), LATEST);
    assert.deepEqual(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get(), { n: 0 }, 'the half-done migration left nothing');
    const good: Migration = { version: LATEST + 1, description: 'fixed', up: (d) => d.exec('CREATE TABLE t (x)') };
    assert.equal(migrate(db, [good, ...MIGRATIONS]), LATEST + 1, 'order of the list does not matter');
  });

  test('a failing first migration leaves an empty database at version 0', () => {
    const db = own(openDatabase(join(dir, 'c.db')));
    const bad: Migration = { version: 1, description: 'broken', up: () => { throw new Error('boom'); } };
    assert.throws(() => migrate(db, [bad]), (e: unknown) => e instanceof MigrationError && e.cause instanceof Error && e.cause.message === 'boom');
    assert.equal(schemaVersion(db), 0);
  });

  test('duplicate or non-positive versions are refused before anything runs', () => {
    const db = own(openDatabase(join(dir, 'c.db')));
    let ran = false;
    const m = (version: number): Migration => ({ version, description: `m${version}`, up: () => { ran = true; } });
    assert.throws(() => migrate(db, [m(1), m(1)]), MigrationError);
    assert.throws(() => migrate(db, [m(0)]), MigrationError);
    assert.throws(() => migrate(db, [m(1.5)]), MigrationError);
    assert.equal(ran, false);
  });

  test('a newer schema is refused with a clear error', () => {
    const path = join(dir, 'c.db');
    const db = openDatabase(path);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(() => Catalogue.open(path), /newer than this fusestream/);
  });

  test('a file that is not a database is a StoreError, not a crash later', () => {
    const path = join(dir, 'c.db');
    writeFileSync(path, Buffer.alloc(4096, 0x5a));
    assert.throws(() => Catalogue.open(path), (e: unknown) => e instanceof StoreError && e.cause !== undefined);
  });

  test('threads opening one fresh database at once apply each migration exactly once', async () => {
    for (let round = 0; round < 5; round++) {
      const path = join(dir, `race-${round}.db`);
      await inWorkers(4, 'Catalogue.open(workerData.path).close();', { path });
      const db = openDatabase(path);
      assert.equal(schemaVersion(db), LATEST);
      db.close();
    }
  });
});

describe('Catalogue', () => {
  test('same fingerprint keeps the record; a changed one replaces it and reports the stale file', () => {
    const clock = new ManualClock();
    const s = own(Catalogue.open(join(dir, 'c.db'), { clock }));
    const a = s.upsertObject('r', 'p', 'etag:1', 100, name);
    assert.equal(a.stale, undefined);
    assert.deepEqual(a.object, {
      id: a.object.id,
      remote: 'r',
      path: 'p',
      fingerprint: 'etag:1',
      size: 100,
      cacheFileName: name(a.object.id),
      presentBytes: 0,
      dirty: false,
      lastUsedMs: clock.wallNow(),
      fileIdentity: undefined,
    });
    s.addRanges(a.object.id, [{ start: 0, end: 50 }]);
    const again = s.upsertObject('r', 'p', 'etag:1', 100, name);
    assert.equal(again.stale, undefined);
    assert.equal(again.object.id, a.object.id);
    assert.equal(again.object.presentBytes, 50);
    const changed = s.upsertObject('r', 'p', 'etag:2', 100, name);
    assert.deepEqual(changed.stale, { cacheFileName: a.object.cacheFileName, presentBytes: 50 });
    assert.notEqual(changed.object.id, a.object.id);
    assert.equal(s.loadRanges(changed.object.id).size, 0, 'stale ranges dropped');
    assert.equal(s.loadRanges(a.object.id).size, 0, 'the old id has no ranges left');
    assert.equal(s.getObjectById(a.object.id), undefined);
    assert.equal(s.totalPresentBytes(), 0);
    const resized = s.upsertObject('r', 'p', 'etag:2', 200, name);
    assert.ok(resized.stale, 'a changed size also replaces the record');
    assert.deepEqual(s.listObjects().map((o) => o.id), [resized.object.id]);
  });

  test('upsert: a throwing file-name factory changes nothing; ids are never reused', () => {
    const s = own(Catalogue.open(join(dir, 'c.db')));
    const a = s.upsertObject('r', 'p', 'f1', 10, name).object;
    assert.throws(
      () => s.upsertObject('r', 'p', 'f2', 10, () => { throw new Error('no name'); }),
      /no name/,
    );
    assert.deepEqual(s.getObject('r', 'p'), a, 'the old record survives');
    s.deleteObject(a.id);
    const b = s.upsertObject('r', 'p', 'f1', 10, name).object;
    assert.ok(b.id > a.id, 'a deleted id is not handed out again');
    assert.throws(() => s.upsertObject('r', 'q', 'f', -1, name), RangeError);
    assert.throws(() => s.upsertObject('r', 'q', 'f', 1.5, name), RangeError);
  });

  test('ranges merge (adjacent rows become one) and persist across close/reopen', () => {
    const path = join(dir, 'c.db');
    const s = Catalogue.open(path);
    const { object } = s.upsertObject('r', 'p', 'f', 1000, name);
    s.addRanges(object.id, [{ start: 0, end: 10 }]);
    s.addRanges(object.id, [{ start: 10, end: 20 }, { start: 30, end: 40 }]);
    s.addRanges(object.id, [{ start: 50, end: 60 }, { start: 45, end: 50 }, { start: 60, end: 61 }]);
    s.removeRanges(object.id, [{ start: 35, end: 40 }]);
    s.close();
    const raw = own(openDatabase(path));
    assert.deepEqual(rawRanges(raw, object.id), [[0, 20], [30, 35], [45, 61]], 'stored rows are in normal form');
    const t = own(Catalogue.open(path));
    assert.deepEqual(t.loadRanges(object.id).toJSON(), [[0, 20], [30, 35], [45, 61]]);
    assert.equal(t.getObjectById(object.id)?.presentBytes, 41);
    t.addRanges(object.id, [{ start: 15, end: 50 }]);
    assert.deepEqual(rawRanges(raw, object.id), [[0, 61]], 'one range bridging three merges them');
    t.removeRanges(object.id, [{ start: 10, end: 11 }, { start: 60, end: 100 }]);
    assert.deepEqual(rawRanges(raw, object.id), [[0, 10], [11, 60]]);
    assert.equal(t.getObjectById(object.id)?.presentBytes, 59);
  });

  test('a version 1 catalogue migrates with no file identity; forgetFile drops every range and the identity', () => {
    const path = join(dir, 'c.db');
    const v1 = openDatabase(path);
    migrate(v1, MIGRATIONS.filter((m) => m.version === 1));
    v1.prepare("INSERT INTO objects (remote, path, fingerprint, size, cache_file, last_used_ms, created_ms) VALUES ('r', 'old', 'f', 100, 'o.bin', 1, 1)").run();
    v1.close();
    const s = own(Catalogue.open(path));
    const old = s.getObject('r', 'old');
    assert.equal(old?.fileIdentity, undefined, 'a row written before identities is never trusted');
    const { object } = s.upsertObject('r', 'p', 'f', 100, name);
    s.setFileIdentity(object.id, '12:34');
    assert.equal(s.getObjectById(object.id)?.fileIdentity, '12:34');
    s.addRanges(object.id, [{ start: 0, end: 40 }, { start: 50, end: 60 }]);
    s.addRanges(object.id, [{ start: 70, end: 75 }], 'dirty');
    assert.deepEqual(s.forgetFile(object.id), { presentBytes: 50, dirtyBytes: 5 });
    const after = s.getObjectById(object.id);
    assert.deepEqual(
      { presentBytes: after?.presentBytes, dirty: after?.dirty, fileIdentity: after?.fileIdentity },
      { presentBytes: 0, dirty: false, fileIdentity: undefined },
    );
    assert.equal(s.loadRanges(object.id).size + s.loadRanges(object.id, 'dirty').size, 0);
    assert.equal(s.totalPresentBytes(), 0);
    assert.deepEqual(s.forgetFile(object.id + 100), { presentBytes: 0, dirtyBytes: 0 }, 'unknown id');
  });

  test('bad ranges throw RangeError and change nothing; unknown ids are ignored', () => {
    const s = own(Catalogue.open(join(dir, 'c.db')));
    const { object } = s.upsertObject('r', 'p', 'f', 100, name);
    assert.throws(() => s.addRanges(object.id, [{ start: 0, end: 10 }, { start: 5, end: 2 }]), RangeError);
    assert.throws(() => s.removeRanges(object.id, [{ start: -1, end: 2 }]), RangeError);
    assert.equal(s.loadRanges(object.id).size, 0, 'the valid part of a rejected batch was not applied');
    s.addRanges(object.id + 100, [{ start: 0, end: 10 }]);
    s.removeRanges(object.id + 100, [{ start: 0, end: 10 }]);
    s.addRanges(object.id, [{ start: 4, end: 4 }]);
    assert.equal(s.totalPresentBytes(), 0);
  });

  test('dirty ranges set and clear the dirty flag and are kept apart from present ones', () => {
    const path = join(dir, 'c.db');
    const s = own(Catalogue.open(path));
    const { object } = s.upsertObject('r', 'p', 'f', 100, name);
    s.addRanges(object.id, [{ start: 0, end: 10 }], 'dirty');
    assert.equal(s.getObjectById(object.id)?.dirty, true);
    assert.equal(s.getObjectById(object.id)?.presentBytes, 0, 'dirty bytes are not counted as present');
    s.addRanges(object.id, [{ start: 0, end: 100 }]);
    s.removeRanges(object.id, [{ start: 0, end: 5 }], 'dirty');
    assert.deepEqual(s.loadRanges(object.id, 'dirty').toJSON(), [[5, 10]]);
    assert.equal(s.getObjectById(object.id)?.dirty, true);
    s.removeRanges(object.id, [{ start: 0, end: 100 }], 'dirty');
    assert.equal(s.getObjectById(object.id)?.dirty, false);
    assert.equal(s.loadRanges(object.id).size, 100);
  });

  test('eviction candidates: LRU order, never excluded or dirty objects', () => {
    const clock = new ManualClock();
    const s = own(Catalogue.open(join(dir, 'c.db'), { clock }));
    const ids = ['a', 'b', 'c', 'd', 'e'].map((p) => {
      clock.advance(10);
      return s.upsertObject('r', p, 'f', 10, name).object.id;
    });
    const [a, b, c, d, e] = ids as [number, number, number, number, number];
    clock.advance(10);
    s.touch(a); // a becomes the most recent
    s.touch(e, clock.wallNow() - 1000); // e becomes the oldest
    s.addRanges(d, [{ start: 0, end: 5 }], 'dirty');
    assert.deepEqual(s.evictionCandidates(10, new Set([c])).map((o) => o.id), [e, b, a]);
    assert.deepEqual(s.evictionCandidates(10, [c, e]).map((o) => o.id), [b, a], 'any iterable of ids');
    assert.deepEqual(s.evictionCandidates(1, new Set()).map((o) => o.id), [e]);
    assert.deepEqual(s.evictionCandidates(0, new Set()), [], 'limit 0 gives nothing');
    assert.equal(s.evictionCandidates(10).length, 4);
    s.removeRanges(d, [{ start: 0, end: 5 }], 'dirty');
    assert.deepEqual(s.evictionCandidates(10).map((o) => o.id), [e, b, c, d, a], 'clean again, d is a candidate');
    s.deleteObject(e);
    assert.deepEqual(s.evictionCandidates(1).map((o) => o.id), [b]);
  });

  test('stored rows, present_bytes, dirty and totals always match a model (property)', () => {
    const path = join(dir, 'c.db');
    const s = own(Catalogue.open(path));
    const raw = own(openDatabase(path));
    const opArb = fc.record({
      obj: fc.nat(2),
      kind: fc.constantFrom<RangeKind>('present', 'dirty'),
      add: fc.boolean(),
      spans: fc.array(fc.tuple(fc.nat(300), fc.nat(300)), { minLength: 1, maxLength: 4 }),
    });
    let run = 0;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        run++;
        for (const o of s.listObjects()) s.deleteObject(o.id);
        const ids = [0, 1, 2].map((i) => s.upsertObject('r', `run${run}/${i}`, 'f', 1000, name).object.id);
        const models = ids.map(() => ({ present: new RangeSet(), dirty: new RangeSet() }));
        for (const op of ops) {
          const id = ids[op.obj] as number;
          const model = models[op.obj]?.[op.kind] as RangeSet;
          const ranges = op.spans.map(([x, y]) => ({ start: Math.min(x, y), end: Math.max(x, y) }));
          if (op.add) s.addRanges(id, ranges, op.kind);
          else s.removeRanges(id, ranges, op.kind);
          for (const r of ranges) {
            if (op.add) model.add(r.start, r.end);
            else model.remove(r.start, r.end);
          }
        }
        let total = 0;
        ids.forEach((id, i) => {
          const m = models[i] as { present: RangeSet; dirty: RangeSet };
          assert.deepEqual(rawRanges(raw, id, 'present'), m.present.toJSON(), 'present rows in normal form');
          assert.deepEqual(rawRanges(raw, id, 'dirty'), m.dirty.toJSON(), 'dirty rows in normal form');
          const o = s.getObjectById(id);
          assert.equal(o?.presentBytes, m.present.size);
          assert.equal(o.dirty, !m.dirty.isEmpty());
          total += m.present.size;
        });
        assert.equal(s.totalPresentBytes(), total);
      }),
      { numRuns: 150 },
    );
  });

  test('two stores on one database (WAL) see each other’s writes', () => {
    const path = join(dir, 'c.db');
    const s1 = own(Catalogue.open(path));
    const s2 = own(Catalogue.open(path));
    const { object } = s1.upsertObject('r', 'p', 'f', 100, name);
    assert.equal(s2.getObject('r', 'p')?.id, object.id);
    s2.addRanges(object.id, [{ start: 0, end: 60 }]);
    assert.equal(s1.getObject('r', 'p')?.presentBytes, 60);
    s1.addRanges(object.id, [{ start: 60, end: 100 }]);
    assert.deepEqual(s2.loadRanges(object.id).toJSON(), [[0, 100]]);
    const replaced = s2.upsertObject('r', 'p', 'g', 100, name);
    assert.equal(replaced.stale?.presentBytes, 100);
    s1.addRanges(object.id, [{ start: 0, end: 10 }]);
    assert.equal(s1.totalPresentBytes(), 0, 'a write for the replaced id is ignored, not misapplied');
  });

  test('concurrent writers in several threads serialise without losing a range', async () => {
    const path = join(dir, 'c.db');
    const s = own(Catalogue.open(path));
    const { object } = s.upsertObject('r', 'p', 'f', 1 << 20, name);
    // Worker w adds byte i*4 + w for i < 100, one transaction each: together they cover [0, 400).
    await inWorkers(
      4,
      `const s = Catalogue.open(workerData.path);
       const w = workerData.index;
       for (let i = 0; i < 100; i++) s.addRanges(workerData.id, [{ start: i * 4 + w, end: i * 4 + w + 1 }]);
       s.close();`,
      { path, id: object.id },
    );
    const raw = own(openDatabase(path));
    assert.deepEqual(rawRanges(raw, object.id), [[0, 400]]);
    assert.equal(s.getObjectById(object.id)?.presentBytes, 400);
  });
});
