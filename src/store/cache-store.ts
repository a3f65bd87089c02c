// CacheStore: the only record of what the on-disk cache holds. One row per cached object
// (remote, path) with its fingerprint and cache file name, and its present byte ranges, so
// the cache survives a restart and a changed fingerprint drops the stale bytes.
//
// Invariants:
// - Object ids are never reused (AUTOINCREMENT): the data layer pins ids of open files.
// - (remote, path) is unique: one version of an object is cached at a time. upsertObject
//   with a new fingerprint replaces the row (and its ranges) and reports the stale file.
// - objects.present_bytes always equals the total length of that object's 'present' ranges,
//   and stored ranges are in normal form (merged); both are maintained in one transaction.
// - Statements are prepared once. All methods are synchronous (better-sqlite3): no await
//   inside a read-modify-write, so no lock is needed within a process; across processes
//   SQLite's own locking (WAL, busy_timeout) serialises writers.
import { RangeSet, type Range } from '../base/range-set.js';
import { systemClock, type Clock } from '../base/clock.js';
import { migrate, openDatabase, type Db, type Migration } from './database.js';

export type RangeKind = 'present' | 'dirty';

export interface CachedObject {
  id: number;
  remote: string;
  path: string;
  fingerprint: string;
  size: number;
  cacheFileName: string;
  presentBytes: number;
  dirty: boolean;
  lastUsedMs: number;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'objects and ranges',
    up: (db) => {
      db.exec(`
        CREATE TABLE objects (
          id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids are pinned by open cache files
          remote TEXT NOT NULL,
          path TEXT NOT NULL,
          fingerprint TEXT NOT NULL,
          size INTEGER NOT NULL,
          cache_file TEXT NOT NULL,
          present_bytes INTEGER NOT NULL DEFAULT 0,
          dirty INTEGER NOT NULL DEFAULT 0,
          last_used_ms INTEGER NOT NULL,
          created_ms INTEGER NOT NULL,
          UNIQUE (remote, path)
        );
        CREATE INDEX objects_lru ON objects (dirty, last_used_ms);
        CREATE TABLE ranges (
          object_id INTEGER NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
          kind TEXT NOT NULL CHECK (kind IN ('present', 'dirty')),
          start INTEGER NOT NULL,
          end INTEGER NOT NULL CHECK (end > start),
          PRIMARY KEY (object_id, kind, start)
        );
      `);
    },
  },
];

interface ObjectRow {
  id: number;
  remote: string;
  path: string;
  fingerprint: string;
  size: number;
  cache_file: string;
  present_bytes: number;
  dirty: number;
  last_used_ms: number;
}

const toObject = (r: ObjectRow): CachedObject => ({
  id: r.id,
  remote: r.remote,
  path: r.path,
  fingerprint: r.fingerprint,
  size: r.size,
  cacheFileName: r.cache_file,
  presentBytes: r.present_bytes,
  dirty: r.dirty !== 0,
  lastUsedMs: r.last_used_ms,
});

export class CacheStore {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #q;
  #closed = false;

  private constructor(db: Db, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#q = {
      get: db.prepare<[string, string], ObjectRow>('SELECT * FROM objects WHERE remote = ? AND path = ?'),
      getById: db.prepare<[number], ObjectRow>('SELECT * FROM objects WHERE id = ?'),
      insert: db.prepare<[string, string, string, number, string, number, number]>(
        'INSERT INTO objects (remote, path, fingerprint, size, cache_file, last_used_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      setFile: db.prepare<[string, number]>('UPDATE objects SET cache_file = ? WHERE id = ?'),
      delete: db.prepare<[number]>('DELETE FROM objects WHERE id = ?'),
      ranges: db.prepare<[number, string], { start: number; end: number }>('SELECT start, end FROM ranges WHERE object_id = ? AND kind = ? ORDER BY start'),
      clearRanges: db.prepare<[number, string]>('DELETE FROM ranges WHERE object_id = ? AND kind = ?'),
      insertRange: db.prepare<[number, string, number, number]>('INSERT INTO ranges (object_id, kind, start, end) VALUES (?, ?, ?, ?)'),
      setPresent: db.prepare<[number, number]>('UPDATE objects SET present_bytes = ? WHERE id = ?'),
      setDirty: db.prepare<[number, number]>('UPDATE objects SET dirty = ? WHERE id = ?'),
      touch: db.prepare<[number, number]>('UPDATE objects SET last_used_ms = ? WHERE id = ?'),
      total: db.prepare<[], { total: number | null }>('SELECT SUM(present_bytes) AS total FROM objects'),
      lru: db.prepare<[], ObjectRow>('SELECT * FROM objects WHERE dirty = 0 ORDER BY last_used_ms, id'),
      all: db.prepare<[], ObjectRow>('SELECT * FROM objects ORDER BY id'),
    };
  }

  static open(dbPath: string, opts: { clock?: Clock } = {}): CacheStore {
    const db = openDatabase(dbPath);
    try {
      migrate(db, MIGRATIONS);
    } catch (err) {
      db.close();
      throw err;
    }
    return new CacheStore(db, opts.clock ?? systemClock);
  }

  getObject(remote: string, path: string): CachedObject | undefined {
    const r = this.#q.get.get(remote, path);
    return r ? toObject(r) : undefined;
  }

  getObjectById(id: number): CachedObject | undefined {
    const r = this.#q.getById.get(id);
    return r ? toObject(r) : undefined;
  }

  /**
   * The record for (remote, path) at `fingerprint`. If a record with another fingerprint (or
   * size) exists, it and its ranges are replaced and `stale` names the file to delete.
   */
  upsertObject(
    remote: string,
    path: string,
    fingerprint: string,
    size: number,
    cacheFileName: (id: number) => string,
  ): { object: CachedObject; stale?: { cacheFileName: string; presentBytes: number } } {
    return this.#db.transaction(() => {
      const existing = this.#q.get.get(remote, path);
      if (existing && existing.fingerprint === fingerprint && existing.size === size) return { object: toObject(existing) };
      let stale: { cacheFileName: string; presentBytes: number } | undefined;
      if (existing) {
        stale = { cacheFileName: existing.cache_file, presentBytes: existing.present_bytes };
        this.#q.delete.run(existing.id);
      }
      const now = Math.round(this.#clock.wallNow());
      const id = Number(this.#q.insert.run(remote, path, fingerprint, size, '', now, now).lastInsertRowid);
      this.#q.setFile.run(cacheFileName(id), id);
      const object = toObject(this.#q.getById.get(id) as ObjectRow);
      return stale ? { object, stale } : { object };
    }).immediate();
  }

  loadRanges(objectId: number, kind: RangeKind = 'present'): RangeSet {
    return new RangeSet(this.#q.ranges.all(objectId, kind));
  }

  #rewrite(objectId: number, kind: RangeKind, set: RangeSet): void {
    this.#q.clearRanges.run(objectId, kind);
    for (const r of set) this.#q.insertRange.run(objectId, kind, r.start, r.end);
    if (kind === 'present') this.#q.setPresent.run(set.size, objectId);
    else this.#q.setDirty.run(set.isEmpty() ? 0 : 1, objectId);
  }

  /** Merges `ranges` into the stored ones (one transaction). Unknown object ids are ignored. */
  addRanges(objectId: number, ranges: Iterable<Range>, kind: RangeKind = 'present'): void {
    this.#db.transaction(() => {
      if (!this.#q.getById.get(objectId)) return;
      const set = this.loadRanges(objectId, kind);
      for (const r of ranges) set.add(r.start, r.end);
      this.#rewrite(objectId, kind, set);
    }).immediate();
  }

  removeRanges(objectId: number, ranges: Iterable<Range>, kind: RangeKind = 'present'): void {
    this.#db.transaction(() => {
      if (!this.#q.getById.get(objectId)) return;
      const set = this.loadRanges(objectId, kind);
      for (const r of ranges) set.remove(r.start, r.end);
      this.#rewrite(objectId, kind, set);
    }).immediate();
  }

  touch(objectId: number, nowMs: number = this.#clock.wallNow()): void {
    this.#q.touch.run(Math.round(nowMs), objectId);
  }

  totalPresentBytes(): number {
    return this.#q.total.get()?.total ?? 0;
  }

  /** Least recently used first; never dirty objects, never ids in `exclude`. */
  evictionCandidates(limit: number, exclude: Iterable<number>): CachedObject[] {
    const skip = new Set(exclude);
    const out: CachedObject[] = [];
    for (const r of this.#q.lru.iterate()) {
      if (skip.has(r.id)) continue;
      out.push(toObject(r));
      if (out.length >= limit) break;
    }
    return out;
  }

  deleteObject(objectId: number): void {
    this.#q.delete.run(objectId);
  }

  listObjects(): CachedObject[] {
    return this.#q.all.all().map(toObject);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
