// CacheStore: migrations, fingerprint replacement, ranges across reopen, LRU order,
// present_bytes consistency (property), and two handles on one WAL database.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../src/base/clock.js';
import { RangeSet } from '../../src/base/range-set.js';
import { CacheStore, MIGRATIONS } from '../../src/store/cache-store.js';
import { MigrationError, migrate, openDatabase } from '../../src/store/database.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'fusestream-store-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const name = (id: number): string => `${id}.bin`;

describe('CacheStore', () => {
  test('migrates an empty database and reopens idempotently', () => {
    withDir((dir) => {
      const db = join(dir, 'c.db');
      CacheStore.open(db).close();
      const s = CacheStore.open(db);
      assert.deepEqual(s.listObjects(), []);
      s.close();
      s.close(); // idempotent
    });
  });

  test('a failing migration rolls back and leaves user_version unchanged', () => {
    withDir((dir) => {
      const db = openDatabase(join(dir, 'c.db'));
      migrate(db, MIGRATIONS);
      const bad = { version: 2, description: 'broken', up: (d: typeof db) => d.exec('CREATE TABLE t (x); SELECT no_such_function();') };
      assert.throws(() => migrate(db, [...MIGRATIONS, bad]), MigrationError);
      assert.equal(db.pragma('user_version', { simple: true }), 1);
      assert.deepEqual(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get(), { n: 0 }, 'the half-done migration left nothing');
      db.close();
    });
  });

  test('a newer schema is refused with a clear error', () => {
    withDir((dir) => {
      const db = openDatabase(join(dir, 'c.db'));
      db.pragma('user_version = 99');
      db.close();
      assert.throws(() => CacheStore.open(join(dir, 'c.db')), /newer than this fusestream/);
    });
  });

  test('same fingerprint keeps the record; a changed one replaces it and reports the stale file', () => {
    withDir((dir) => {
      const s = CacheStore.open(join(dir, 'c.db'));
      const a = s.upsertObject('r', 'p', 'etag:1', 100, name);
      assert.equal(a.stale, undefined);
      s.addRanges(a.object.id, [{ start: 0, end: 50 }]);
      const again = s.upsertObject('r', 'p', 'etag:1', 100, name);
      assert.equal(again.object.id, a.object.id);
      assert.equal(again.object.presentBytes, 50);
      const changed = s.upsertObject('r', 'p', 'etag:2', 100, name);
      assert.deepEqual(changed.stale, { cacheFileName: a.object.cacheFileName, presentBytes: 50 });
      assert.notEqual(changed.object.id, a.object.id);
      assert.equal(s.loadRanges(changed.object.id).size, 0, 'stale ranges dropped');
      assert.equal(s.totalPresentBytes(), 0);
      s.close();
    });
  });

  test('ranges merge and persist across close/reopen', () => {
    withDir((dir) => {
      const db = join(dir, 'c.db');
      const s = CacheStore.open(db);
      const { object } = s.upsertObject('r', 'p', 'f', 1000, name);
      s.addRanges(object.id, [{ start: 0, end: 10 }]);
      s.addRanges(object.id, [{ start: 10, end: 20 }, { start: 30, end: 40 }]);
      s.removeRanges(object.id, [{ start: 35, end: 40 }]);
      s.close();
      const t = CacheStore.open(db);
      assert.deepEqual(t.loadRanges(object.id).toJSON(), [[0, 20], [30, 35]]);
      assert.equal(t.getObjectById(object.id)?.presentBytes, 25);
      t.close();
    });
  });

  test('eviction candidates: LRU order, never excluded or dirty objects', () => {
    withDir((dir) => {
      const clock = new ManualClock();
      const s = CacheStore.open(join(dir, 'c.db'), { clock });
      const ids = ['a', 'b', 'c', 'd'].map((p) => {
        clock.advance(10);
        return s.upsertObject('r', p, 'f', 10, name).object.id;
      });
      const [a, b, c, d] = ids as [number, number, number, number];
      clock.advance(10);
      s.touch(a); // a becomes the most recent
      s.addRanges(d, [{ start: 0, end: 5 }], 'dirty');
      assert.deepEqual(s.evictionCandidates(10, [c]).map((o) => o.id), [b, a]);
      assert.deepEqual(s.evictionCandidates(1, []).map((o) => o.id), [b]);
      s.close();
    });
  });

  test('present_bytes always equals the stored ranges (property)', () => {
    withDir((dir) => {
      const s = CacheStore.open(join(dir, 'c.db'));
      const { object } = s.upsertObject('r', 'p', 'f', 1000, name);
      const model = new RangeSet();
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(300), fc.nat(300)), { maxLength: 15 }), (ops) => {
          for (const [add, x, y] of ops) {
            const r = { start: Math.min(x, y), end: Math.max(x, y) };
            if (add) {
              s.addRanges(object.id, [r]);
              model.add(r.start, r.end);
            } else {
              s.removeRanges(object.id, [r]);
              model.remove(r.start, r.end);
            }
          }
          assert.ok(s.loadRanges(object.id).equals(model));
          assert.equal(s.getObjectById(object.id)?.presentBytes, model.size);
          assert.equal(s.totalPresentBytes(), model.size);
        }),
        { numRuns: 50 },
      );
      s.close();
    });
  });

  test('two stores on one database (WAL) see each other', () => {
    withDir((dir) => {
      const db = join(dir, 'c.db');
      const s1 = CacheStore.open(db);
      const s2 = CacheStore.open(db);
      const { object } = s1.upsertObject('r', 'p', 'f', 100, name);
      s2.addRanges(object.id, [{ start: 0, end: 100 }]);
      assert.equal(s1.getObject('r', 'p')?.presentBytes, 100);
      s1.close();
      s2.close();
    });
  });
});
