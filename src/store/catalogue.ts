// Catalogue: the only record of what the on-disk cache holds. One row per cached object
// (remote, path) with its fingerprint, size and sparse cache file name, plus its byte ranges
// (kind 'present': downloaded and fdatasync'ed; kind 'dirty': written locally, not uploaded),
// so the cache survives a restart and a changed fingerprint drops the stale bytes.
//
// API (all synchronous; better-sqlite3):
//   Catalogue.open(dbPath, { logger?, clock? })        creates/migrates the database
//   getObject(remote, path) / getObjectById(id)         → CachedObject | undefined
//   upsertObject(remote, path, fingerprint, sizeBytes, cacheFileName: (id) => string)
//                                                       → { object, stale?: { cacheFileName, presentBytes } }
//   loadRanges(id, kind = 'present')                    → RangeSet
//   addRanges / removeRanges(id, ranges, kind = 'present')
//   touch(id, nowMs = clock.wallNow())                  LRU clock (callers batch: once per flush)
//   setFileIdentity(id, identity)                       records the identity of a newly created cache file
//   setFingerprint(id, fingerprint)                     the same version, named more fully (keeps the bytes)
//   forgetFile(id)                                      the file is not trusted: drops every range and the identity
//   totalPresentBytes()                                 sum over all objects
//   evictionCandidates(limit, exclude)                  LRU first, never dirty, never excluded
//   deleteObject(id), listObjects(), close() (idempotent; later calls throw StoreClosedError)
//   listings                                            the ListingStore on the same handle (listing-store.ts)
//
// Invariants:
// - Object ids are never reused (AUTOINCREMENT): the data layer pins the ids of open files, and
//   a write for an id that was deleted or replaced meanwhile is ignored, never misapplied.
// - (remote, path) is unique: one version of an object is cached at a time. upsertObject with
//   another fingerprint or size replaces the row (its ranges go by ON DELETE CASCADE) and
//   reports the stale file, which the caller deletes.
// - Stored ranges of one (object, kind) are in RangeSet normal form (sorted, disjoint, touching
//   ranges merged), objects.present_bytes is the total length of the 'present' ranges, and
//   objects.dirty is 1 iff 'dirty' ranges exist. Every change that keeps these is one
//   transaction, and touches only the rows it merges or cuts (O(log n + k), via the primary
//   key), never a rewrite of all of an object's ranges.
// - Ranges are not clipped to the object's size: the write path may extend a file before the
//   size is updated.
// - A row's ranges describe the file whose identity the row records (objects.file_identity);
//   with no identity recorded they are never trusted. forgetFile drops the ranges and the
//   identity in one transaction, so no row keeps ranges for a file it does not name.
//
// Concurrency: no method awaits, so within a process each call is atomic and no lock is taken.
// One DataCache owns a cache dir at a time (its owner lock, data/cache/owner-lock.ts), so one
// process writes the catalogue; WAL and busy_timeout still let other connections (a `status`
// reader, a test) read while it writes, and every read-modify-write runs in BEGIN IMMEDIATE.
import { RangeSet, type Range } from '../base/range-set.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import { migrate, openDatabase, type Db } from './database.js';
import { MIGRATIONS } from './schema.js';
import { ListingStore } from './listing-store.js';

export type RangeKind = 'present' | 'dirty';

export interface CachedObject {
  id: number;
  remote: string;
  path: string;
  fingerprint: string;
  size: number;
  /** Name of the sparse cache file, relative to the cache's objects dir. */
  cacheFileName: string;
  presentBytes: number;
  dirty: boolean;
  lastUsedMs: number;
  /** Identity of the cache file the ranges describe; undefined when none was recorded. */
  fileIdentity: string | undefined;
}

/** What forgetFile dropped. */
export interface ForgottenRanges {
  presentBytes: number;
  dirtyBytes: number;
}

export interface StaleObject {
  /** The replaced object's cache file: the caller deletes it. */
  cacheFileName: string;
  presentBytes: number;
}

export interface CatalogueOptions {
  logger?: Logger;
  /** Source of wall-clock time for created_ms and default touches. */
  clock?: Clock;
}

/** A Catalogue method was called after close(). */
export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError';
  readonly code = 'STORE_CLOSED';
}


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
  file_identity: string | null;
}

interface RangeRow {
  start: number;
  end: number;
}

const OBJECT_COLUMNS = 'id, remote, path, fingerprint, size, cache_file, present_bytes, dirty, last_used_ms, file_identity';

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
  fileIdentity: r.file_identity ?? undefined,
});

function prepareStatements(db: Db) {
  // One (object_id, kind) key prefix everywhere, so every range query is a primary-key range scan.
  const key = 'object_id = ? AND kind = ?';
  return {
    get: db.prepare<[string, string], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE remote = ? AND path = ?`),
    getById: db.prepare<[number], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE id = ?`),
    exists: db.prepare<[number], { one: number }>('SELECT 1 AS one FROM objects WHERE id = ?'),
    insert: db.prepare<[string, string, string, number, string, number, number]>(
      'INSERT INTO objects (remote, path, fingerprint, size, cache_file, last_used_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    setFile: db.prepare<[string, number]>('UPDATE objects SET cache_file = ? WHERE id = ?'),
    delete: db.prepare<[number]>('DELETE FROM objects WHERE id = ?'),
    ranges: db.prepare<[number, string], RangeRow>(`SELECT start, "end" FROM ranges WHERE ${key} ORDER BY start`),
    /** The last range starting before x: the only one that can reach into [x, ...). */
    before: db.prepare<[number, string, number], RangeRow>(`SELECT start, "end" FROM ranges WHERE ${key} AND start < ? ORDER BY start DESC LIMIT 1`),
    /** Ranges starting in [lo, hi]. */
    startingIn: db.prepare<[number, string, number, number], RangeRow>(`SELECT start, "end" FROM ranges WHERE ${key} AND start >= ? AND start <= ? ORDER BY start`),
    deleteStartingIn: db.prepare<[number, string, number, number]>(`DELETE FROM ranges WHERE ${key} AND start >= ? AND start <= ?`),
    deleteRange: db.prepare<[number, string, number]>(`DELETE FROM ranges WHERE ${key} AND start = ?`),
    setRangeEnd: db.prepare<[number, number, string, number]>(`UPDATE ranges SET "end" = ? WHERE ${key} AND start = ?`),
    insertRange: db.prepare<[number, string, number, number]>('INSERT INTO ranges (object_id, kind, start, "end") VALUES (?, ?, ?, ?)'),
    addPresent: db.prepare<[number, number]>('UPDATE objects SET present_bytes = present_bytes + ? WHERE id = ?'),
    syncDirty: db.prepare<[number]>(
      "UPDATE objects SET dirty = EXISTS (SELECT 1 FROM ranges WHERE object_id = objects.id AND kind = 'dirty') WHERE id = ?",
    ),
    touch: db.prepare<[number, number]>('UPDATE objects SET last_used_ms = ? WHERE id = ?'),
    setIdentity: db.prepare<[string, number]>('UPDATE objects SET file_identity = ? WHERE id = ?'),
    setFingerprint: db.prepare<[string, number]>('UPDATE objects SET fingerprint = ? WHERE id = ?'),
    dirtyBytes: db.prepare<[number], { total: number | null }>(
      "SELECT SUM(\"end\" - start) AS total FROM ranges WHERE object_id = ? AND kind = 'dirty'",
    ),
    deleteAllRanges: db.prepare<[number]>('DELETE FROM ranges WHERE object_id = ?'),
    resetFile: db.prepare<[number]>('UPDATE objects SET present_bytes = 0, dirty = 0, file_identity = NULL WHERE id = ?'),
    total: db.prepare<[], { total: number | null }>('SELECT SUM(present_bytes) AS total FROM objects'),
    // Served in order by the objects_lru index (dirty, last_used_ms, rowid): no sort.
    lru: db.prepare<[], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE dirty = 0 ORDER BY last_used_ms, id`),
    all: db.prepare<[], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects ORDER BY id`),
  };
}

function checkRange(r: Range): void {
  if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < 0 || r.start > r.end) {
    throw new RangeError(`bad range [${r.start}, ${r.end})`);
  }
}

export class Catalogue {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #q: ReturnType<typeof prepareStatements>;
  readonly #addTx: (objectId: number, ranges: Range[], kind: RangeKind) => void;
  readonly #removeTx: (objectId: number, ranges: Range[], kind: RangeKind) => void;
  readonly #forgetTx: (objectId: number) => ForgottenRanges;
  /** Persisted listings and attributes; shares this handle and closes with it. */
  readonly listings: ListingStore;
  #closed = false;

  private constructor(db: Db, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#q = prepareStatements(db);
    this.listings = new ListingStore(db, () => {
      this.#open();
    });
    const addTx = db.transaction((objectId: number, ranges: Range[], kind: RangeKind) => {
      if (!this.#q.exists.get(objectId)) return;
      let delta = 0;
      for (const r of ranges) delta += this.#addOneLocked(objectId, kind, r.start, r.end);
      this.#finishLocked(objectId, kind, delta);
    });
    const removeTx = db.transaction((objectId: number, ranges: Range[], kind: RangeKind) => {
      if (!this.#q.exists.get(objectId)) return;
      let delta = 0;
      for (const r of ranges) delta -= this.#removeOneLocked(objectId, kind, r.start, r.end);
      this.#finishLocked(objectId, kind, delta);
    });
    const forgetTx = db.transaction((objectId: number): ForgottenRanges => {
      const row = this.#q.getById.get(objectId);
      if (!row) return { presentBytes: 0, dirtyBytes: 0 };
      const dirtyBytes = this.#q.dirtyBytes.get(objectId)?.total ?? 0;
      this.#q.deleteAllRanges.run(objectId);
      this.#q.resetFile.run(objectId);
      return { presentBytes: row.present_bytes, dirtyBytes };
    });
    this.#forgetTx = (id) => forgetTx.immediate(id);
    this.#addTx = (id, ranges, kind) => addTx.immediate(id, ranges, kind);
    this.#removeTx = (id, ranges, kind) => removeTx.immediate(id, ranges, kind);
  }

  static open(dbPath: string, opts: CatalogueOptions = {}): Catalogue {
    const db = openDatabase(dbPath, opts.logger ? { logger: opts.logger } : {});
    try {
      migrate(db, MIGRATIONS, opts.logger);
      return new Catalogue(db, opts.clock ?? systemClock);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  #open(): ReturnType<typeof prepareStatements> {
    if (this.#closed) throw new StoreClosedError('the cache store is closed');
    return this.#q;
  }

  getObject(remote: string, path: string): CachedObject | undefined {
    const r = this.#open().get.get(remote, path);
    return r ? toObject(r) : undefined;
  }

  getObjectById(id: number): CachedObject | undefined {
    const r = this.#open().getById.get(id);
    return r ? toObject(r) : undefined;
  }

  /**
   * The record for (remote, path) at `fingerprint` and `sizeBytes`, created if absent. If a
   * record with another fingerprint or size exists, it and its ranges are replaced by a new
   * record (new id) and `stale` names the old cache file, which the caller must delete.
   * `cacheFileName(id)` names the file of a new record; if it throws, nothing changes.
   */
  upsertObject(
    remote: string,
    path: string,
    fingerprint: string,
    sizeBytes: number,
    cacheFileName: (id: number) => string,
  ): { object: CachedObject; stale?: StaleObject } {
    const q = this.#open();
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`bad object size ${sizeBytes}`);
    return this.#db
      .transaction(() => {
        const existing = q.get.get(remote, path);
        if (existing && existing.fingerprint === fingerprint && existing.size === sizeBytes) return { object: toObject(existing) };
        let stale: StaleObject | undefined;
        if (existing) {
          stale = { cacheFileName: existing.cache_file, presentBytes: existing.present_bytes };
          q.delete.run(existing.id);
        }
        const now = Math.round(this.#clock.wallNow());
        const id = Number(q.insert.run(remote, path, fingerprint, sizeBytes, '', now, now).lastInsertRowid);
        q.setFile.run(cacheFileName(id), id);
        const object = toObject(q.getById.get(id) as ObjectRow);
        return stale ? { object, stale } : { object };
      })
      .immediate();
  }

  /** The stored ranges of one kind (empty for an unknown id). */
  loadRanges(objectId: number, kind: RangeKind = 'present'): RangeSet {
    return new RangeSet(this.#open().ranges.all(objectId, kind));
  }

  /** Merges `ranges` into the stored ones, in one transaction. Unknown ids are ignored. */
  addRanges(objectId: number, ranges: Iterable<Range>, kind: RangeKind = 'present'): void {
    this.#open();
    const list = [...ranges];
    list.forEach(checkRange);
    this.#addTx(objectId, list, kind);
  }

  /** Cuts `ranges` out of the stored ones, in one transaction. Unknown ids are ignored. */
  removeRanges(objectId: number, ranges: Iterable<Range>, kind: RangeKind = 'present'): void {
    this.#open();
    const list = [...ranges];
    list.forEach(checkRange);
    this.#removeTx(objectId, list, kind);
  }

  /** Adds [start, end) to the stored ranges; returns how many bytes became present. */
  #addOneLocked(id: number, kind: RangeKind, start: number, end: number): number {
    if (start === end) return 0;
    const q = this.#q;
    let newStart = start;
    let newEnd = end;
    let removed = 0;
    const prev = q.before.get(id, kind, start);
    if (prev && prev.end >= start) {
      if (prev.end >= end) return 0; // already covered
      newStart = prev.start;
      removed += prev.end - prev.start;
      q.deleteRange.run(id, kind, prev.start);
    }
    // Ranges starting inside [start, end] overlap or touch it; only the last can reach past end.
    const merged = q.startingIn.all(id, kind, start, end);
    for (const r of merged) {
      removed += r.end - r.start;
      newEnd = Math.max(newEnd, r.end);
    }
    if (merged.length > 0) q.deleteStartingIn.run(id, kind, start, end);
    q.insertRange.run(id, kind, newStart, newEnd);
    return newEnd - newStart - removed;
  }

  /** Cuts [start, end) out of the stored ranges; returns how many bytes were removed. */
  #removeOneLocked(id: number, kind: RangeKind, start: number, end: number): number {
    if (start === end) return 0;
    const q = this.#q;
    let removed = 0;
    const prev = q.before.get(id, kind, start);
    if (prev && prev.end > start) {
      // [prev.start, start) stays; a tail past `end` becomes its own range.
      removed += Math.min(prev.end, end) - start;
      q.setRangeEnd.run(start, id, kind, prev.start);
      if (prev.end > end) {
        q.insertRange.run(id, kind, end, prev.end);
        return removed;
      }
    }
    const cut = q.startingIn.all(id, kind, start, end - 1);
    for (const r of cut) removed += Math.min(r.end, end) - r.start;
    if (cut.length > 0) {
      q.deleteStartingIn.run(id, kind, start, end - 1);
      const last = cut[cut.length - 1] as RangeRow;
      if (last.end > end) q.insertRange.run(id, kind, end, last.end);
    }
    return removed;
  }

  #finishLocked(id: number, kind: RangeKind, presentDelta: number): void {
    if (kind === 'present') {
      if (presentDelta !== 0) this.#q.addPresent.run(presentDelta, id);
    } else {
      this.#q.syncDirty.run(id);
    }
  }

  /** Records a use for LRU eviction. One small write: callers batch (e.g. once per flush). */
  touch(objectId: number, nowMs: number = this.#clock.wallNow()): void {
    this.#open().touch.run(Math.round(nowMs), objectId);
  }

  /**
   * Renames the version an object's bytes are filed under, keeping them: for a fingerprint that
   * names the same version more fully (a HEAD's ETag added to a listing's size and mtime). The
   * caller decides that it is the same version. Unknown ids are ignored.
   */
  setFingerprint(objectId: number, fingerprint: string): void {
    this.#open().setFingerprint.run(fingerprint, objectId);
  }

  /** Records the identity of the object's newly created cache file. Unknown ids are ignored. */
  setFileIdentity(objectId: number, identity: string): void {
    this.#open().setIdentity.run(identity, objectId);
  }

  /**
   * The object's cache file cannot be trusted (missing, wrong size, replaced): drops all its
   * ranges (present and dirty) and its recorded identity in one transaction, keeping the row.
   * Returns what was dropped (zeros for an unknown id).
   */
  forgetFile(objectId: number): ForgottenRanges {
    this.#open();
    return this.#forgetTx(objectId);
  }

  totalPresentBytes(): number {
    return this.#open().total.get()?.total ?? 0;
  }

  /** Up to `limit` objects, least recently used first; never dirty ones, never ids in `exclude`. */
  evictionCandidates(limit: number, exclude: Iterable<number> = []): CachedObject[] {
    const q = this.#open();
    const out: CachedObject[] = [];
    if (!(limit >= 1)) return out;
    const skip = exclude instanceof Set ? (exclude as ReadonlySet<number>) : new Set(exclude);
    for (const r of q.lru.iterate()) {
      if (skip.has(r.id)) continue;
      out.push(toObject(r));
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Deletes the record and its ranges (not the cache file: that is the caller's). */
  deleteObject(objectId: number): void {
    this.#open().delete.run(objectId);
  }

  listObjects(): CachedObject[] {
    return this.#open().all.all().map(toObject);
  }

  /** Closes the database. Idempotent; any later call throws StoreClosedError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
