// Journal: the durable record of changes the remote does not have yet (the write path's
// promise to the user). A row exists from the moment a change is acknowledged (close/fsync
// returned) until the remote has it; nothing but a successful remote write (or a change that
// cancels it, see the resolution rules) ever deletes a row.
//
// Rows (table `journal`, migration 3 in schema.ts), one per pending change:
//   kind     put (of a frozen snapshot file: `snapshot` name in the snapshot dir, `size`,
//            `mtime_ms`), delete, mkdir, rmdir, rename (`from_path` → `path`)
//   base     what the change was made against: 'absent' (the remote had nothing: create-only),
//            'version' (If-Match etag/size/mtime), 'any' (unconditional), 'inherit' (the row
//            waits behind an earlier row of the same path; that row's completion sets it)
//   state    queued → uploading (a worker owns it) → deleted on success; or back to queued
//            (retryable error, superseded, interrupted) or failed (a permanent error: kept,
//            visible with its error, retried later), or conflict (terminal: the remote changed
//            meanwhile; ours was kept under `conflict_path`)
//   priority 0 foreground (fsync, drain), 1 background; `due_ms` wall-clock ms; attempts,
//            last_error; `generation` moves at every rewrite of the row.
//
// Resolution rules (each one transaction, each unit-tested). A row once handed to a worker
// (`tried`) may have reached the remote even if its attempt failed, so only untried rows cancel:

// - put after put of one path coalesces into the row (new snapshot, generation + 1), also while
//   it uploads: the worker sees the new generation and re-queues (the old snapshot file stays
//   until the worker lets go of it). A delete row of the path becomes a put the same way.
// - delete of a path whose pending put was never sent (base 'absent', untried) deletes the row:
//   no request at all. Otherwise the put row becomes a delete of the base version.
// - rmdir of a directory whose mkdir is still pending (and nothing pending below it): both go.
// - rename of a file that exists only in the journal (a put with base 'absent', untried)
//   rewrites the put's path (and takes over the base of whatever was pending at the target).
// - Everything else appends a row; `seq` orders it after every earlier row, and a row is only
//   handed out once no earlier row touches the same path, an ancestor or a descendant of it
//   (mkdir before the put inside, the put before the rename that moves it).
//
// Durability: opened with synchronous=FULL (database.ts): a committed row survives power loss.
// `relaxed(fn)` runs fn's transactions with synchronous=NORMAL instead (WAL: the row survives
// the process being killed, not a power loss) until `sync()` makes everything committed so
// far durable: the core journals a close relaxed and an fsync durable, as a local filesystem
// treats close and fsync.
// `synced(fn)` runs fn's transactions with synchronous=NORMAL too, and `durable()` then makes
// them durable off the event loop: one fdatasync of the WAL file on the thread pool (what a
// FULL commit does inline, ~1 ms on the main thread here), shared by every commit made before
// it. The upload queue's own steps (take, noteSent, complete: three per upload) commit this
// way and await `durable()` before the step that relies on them (any byte moving to the remote,
// a snapshot file deleted), so what survives a power loss is unchanged. Without WAL (a
// filesystem without shared memory) `synced` commits with FULL and `durable()` has nothing to do.
// The caller fdatasyncs a snapshot file before the row naming it commits, and deletes a
// snapshot file only after the commit that released it (methods return released names), so a
// crash leaves at worst an orphan file, never a row without its bytes.
//
// Concurrency: synchronous (better-sqlite3): every method is one BEGIN IMMEDIATE transaction,
// atomic within the process. One UploadQueue owns the journal of a cache dir (the cache dir's
// owner lock); rows in state 'uploading' belong to that queue's workers and are handed back to
// 'queued' by `requeueInterrupted` when a new owner starts.
import { promises as fsp } from 'node:fs';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import { migrate, openDatabase, type Db } from './database.js';
import { MIGRATIONS } from './schema.js';
import { StoreClosedError } from './catalogue.js';

export type ChangeKind = 'put' | 'delete' | 'mkdir' | 'rmdir' | 'rename';
export type ChangeState = 'queued' | 'uploading' | 'failed' | 'conflict';
export type Priority = 'foreground' | 'background';

/** A remote version as the journal keeps it (same fields as remote/fingerprint.ts). */
export interface BaseVersion {
  etag?: string;
  size: number;
  mtimeMs?: number;
}

export type Base = { kind: 'absent' } | { kind: 'any' } | { kind: 'inherit' } | { kind: 'version'; version: BaseVersion };

export interface Snapshot {
  /** File name inside the snapshot dir; fdatasync'ed before it is journaled. */
  name: string;
  sizeBytes: number;
  /** The file's mtime (epoch ms) to give the remote object. */
  mtimeMs: number;
}

export interface JournalRow {
  id: number;
  seq: number;
  path: string;
  fromPath: string | undefined;
  kind: ChangeKind;
  snapshot: Snapshot | undefined;
  generation: number;
  base: Base;
  state: ChangeState;
  priority: Priority;
  dueMs: number;
  attempts: number;
  lastError: string | undefined;
  conflictPath: string | undefined;
  changedMs: number;
  /**
   * Digests ("<size>:<sha256 hex>") of the contents this row handed to a remote put, oldest
   * first: after a crash, a remote file with one of them is ours, not someone else's.
   */
  sent: string[];
}

/** What a record* call did: the snapshot files it released (delete them after the call). */
export interface RecordResult {
  /** The row now carrying the change, or undefined when the change cancelled out. */
  id: number | undefined;
  released: string[];
}

/** How an uploaded change ended on the remote, for `complete`. */
export type Outcome = { kind: 'written'; version: BaseVersion } | { kind: 'gone' } | { kind: 'dir' } | { kind: 'moved'; version: BaseVersion | undefined };

export interface JournalOptions {
  /** The remote id this journal's rows belong to (as the catalogue keys objects). */
  remote: string;
  clock?: Clock;
  logger?: Logger;
}

interface Row {
  id: number;
  seq: number;
  path: string;
  from_path: string | null;
  kind: ChangeKind;
  snapshot: string | null;
  size: number | null;
  mtime_ms: number | null;
  generation: number;
  base_kind: Base['kind'];
  base_etag: string | null;
  base_size: number | null;
  base_mtime_ms: number | null;
  state: ChangeState;
  priority: number;
  due_ms: number;
  attempts: number;
  last_error: string | null;
  conflict_path: string | null;
  changed_ms: number;
  tried: number;
  sent: string | null;
}

const PRIO = { foreground: 0, background: 1 } as const;
/** Digests kept per row: more generations than this sent and lost is a conflict copy, never a loss. */
const MAX_SENT = 16;

function toBase(r: Row): Base {
  if (r.base_kind !== 'version') return { kind: r.base_kind };
  const version: BaseVersion = { size: r.base_size ?? 0 };
  if (r.base_etag !== null) version.etag = r.base_etag;
  if (r.base_mtime_ms !== null) version.mtimeMs = r.base_mtime_ms;
  return { kind: 'version', version };
}

function baseColumns(b: Base): [string, string | null, number | null, number | null] {
  if (b.kind !== 'version') return [b.kind, null, null, null];
  return ['version', b.version.etag ?? null, b.version.size, b.version.mtimeMs ?? null];
}

function toRow(r: Row): JournalRow {
  return {
    id: r.id,
    seq: r.seq,
    path: r.path,
    fromPath: r.from_path ?? undefined,
    kind: r.kind,
    snapshot: r.snapshot !== null ? { name: r.snapshot, sizeBytes: r.size ?? 0, mtimeMs: r.mtime_ms ?? 0 } : undefined,
    generation: r.generation,
    base: toBase(r),
    state: r.state,
    priority: r.priority === 0 ? 'foreground' : 'background',
    dueMs: r.due_ms,
    attempts: r.attempts,
    lastError: r.last_error ?? undefined,
    conflictPath: r.conflict_path ?? undefined,
    changedMs: r.changed_ms,
    sent: r.sent !== null ? (JSON.parse(r.sent) as string[]) : [],
  };
}

/** `a` is `b` or a directory above it ('' is the root, above everything). */
export function isSelfOrAncestor(a: string, b: string): boolean {
  return a === b || a === '' || b.startsWith(`${a}/`);
}

function pathsOf(r: { path: string; fromPath: string | undefined }): string[] {
  return r.fromPath !== undefined ? [r.path, r.fromPath] : [r.path];
}

/** The two rows touch the same path, or one's path is above the other's. */
export function related(a: { path: string; fromPath: string | undefined }, b: { path: string; fromPath: string | undefined }): boolean {
  for (const x of pathsOf(a)) for (const y of pathsOf(b)) if (isSelfOrAncestor(x, y) || isSelfOrAncestor(y, x)) return true;
  return false;
}

const parentOf = (p: string): string => {
  const slash = p.lastIndexOf('/');
  return slash < 0 ? '' : p.slice(0, slash);
};

/**
 * The paths a set of rows touches, kept so that "is this row related to any of them" costs
 * O(depth), not O(rows): each path, and every directory above one.
 */
class PathSet {
  readonly #paths = new Set<string>();
  readonly #above = new Set<string>();

  add(r: { path: string; fromPath: string | undefined }): void {
    for (const p of pathsOf(r)) {
      this.#paths.add(p);
      for (let a = p; a !== ''; ) {
        a = parentOf(a);
        if (this.#above.has(a)) break; // and everything above it already
        this.#above.add(a);
      }
    }
  }

  /** Some row of the set touches a path of `r`, a directory above one, or something below one. */
  relatedTo(r: { path: string; fromPath: string | undefined }): boolean {
    for (const y of pathsOf(r)) {
      if (this.#paths.has(y) || this.#above.has(y)) return true;
      for (let a = y; a !== ''; ) {
        a = parentOf(a);
        if (this.#paths.has(a)) return true;
      }
    }
    return false;
  }
}

/** take() bounds its scan by the last due row when there are at most this many due rows. */
const DUE_SCAN_MAX = 64;

/** MIN(due_ms) of queued and failed rows (`extra`: a further condition), one index seek per (state, priority). */
function minDueSql(extra: string): string {
  const one = (state: string, priority: number): string =>
    `SELECT MIN(due_ms) AS due FROM journal WHERE remote = @remote AND state = '${state}' AND priority = ${priority} ${extra}`;
  return `SELECT MIN(due) AS due FROM (${[one('queued', 0), one('queued', 1), one('failed', 0), one('failed', 1)].join(' UNION ALL ')})`;
}

function checkPath(p: string): void {
  if (p.startsWith('/') || p.endsWith('/') || p.includes('\0')) throw new RangeError(`bad journal path ${JSON.stringify(p)}`);
}

export class Journal {
  readonly #db: Db;
  readonly #remote: string;
  readonly #clock: Clock;
  readonly #q: ReturnType<Journal['prepare']>;
  /** The WAL file, when the database is in WAL mode (what `durable()` syncs). */
  readonly #walPath: string | undefined;
  /** Commits made by `synced` and not yet covered by a started sync. */
  #unsynced = 0;
  /** The sync running now, and the one that will cover commits made meanwhile. */
  #syncing: Promise<void> | undefined;
  #nextSync: Promise<void> | undefined;
  #closed = false;
  /** Inside `relaxed`: transactions commit with synchronous=NORMAL. */
  #relaxedDepth = 0;
  /** The connection's synchronous level now (1 NORMAL, 2 FULL), set lazily by #tx. */
  #level = 2;

  private constructor(db: Db, remote: string, clock: Clock, walPath: string | undefined) {
    this.#db = db;
    this.#remote = remote;
    this.#clock = clock;
    this.#walPath = walPath;
    this.#q = this.prepare(db);
  }

  /** Opens (creating and migrating) the database at `dbPath` with synchronous=FULL. */
  static open(dbPath: string, opts: JournalOptions): Journal {
    const db = openDatabase(dbPath, opts.logger ? { synchronous: 'FULL', logger: opts.logger } : { synchronous: 'FULL' });
    try {
      migrate(db, MIGRATIONS, opts.logger);
      const wal = String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
      return new Journal(db, opts.remote, opts.clock ?? systemClock, wal ? `${db.name}-wal` : undefined);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private prepare(db: Db) {
    const cols = '*';
    return {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      byId: db.prepare<[number], Row>(`SELECT ${cols} FROM journal WHERE id = ?`),
      // Two indexed probes (journal_path, journal_from), not a scan: an OR of the two columns
      // would read every row, and this runs for every change.
      tail: db.prepare<[string, string, string, string], Row>(
        `SELECT * FROM (SELECT ${cols} FROM journal WHERE remote = ? AND path = ? AND state != 'conflict' ORDER BY seq DESC LIMIT 1)
         UNION ALL
         SELECT * FROM (SELECT ${cols} FROM journal WHERE remote = ? AND from_path = ? AND state != 'conflict' ORDER BY seq DESC LIMIT 1)
         ORDER BY seq DESC LIMIT 1`,
      ),
      all: db.prepare<[string], Row>(`SELECT ${cols} FROM journal WHERE remote = ? ORDER BY seq`),
      // In seq order straight from the unique index on seq (`+remote` keeps the planner off journal_path,
      // which would sort every row into a temp b-tree before the first one): take() reads
      // only as far as it needs.
      active: db.prepare<[string], Row>(`SELECT ${cols} FROM journal WHERE +remote = ? AND state != 'conflict' ORDER BY seq`),
      uploading: db.prepare<[string], Row>(`SELECT ${cols} FROM journal WHERE remote = ? AND state = 'uploading'`),
      // Due-time queries run at every change (the scheduler's take and its next wake-up), so
      // each is a seek in journal_due (remote, state, priority, due_ms), never a scan of the
      // pending rows: `priority IN (0, 1)` lets the range on due_ms use the index, and a MIN
      // is one per (state, priority), the first entry of its range. Scans cost ~0.1 ms per
      // 1,000 pending rows, per change: quadratic in an untar of many files.
      anyDue: db.prepare<[string, number], { one: number }>(
        "SELECT 1 AS one FROM journal WHERE remote = ? AND state IN ('queued', 'failed') AND priority IN (0, 1) AND due_ms <= ? LIMIT 1",
      ),
      // The last due row in seq order, when there are at most DUE_SCAN_MAX due rows (else n
      // says there are more and `seq` is not the last): take() reads no row past it.
      lastDue: db.prepare<[string, number], { n: number; seq: number | null }>(
        `SELECT COUNT(*) AS n, MAX(seq) AS seq FROM (SELECT seq FROM journal WHERE remote = ? AND state IN ('queued', 'failed')
           AND priority IN (0, 1) AND due_ms <= ? LIMIT ${DUE_SCAN_MAX + 1})`,
      ),
      anyForegroundDue: db.prepare<[string, number], { one: number }>(
        "SELECT 1 AS one FROM journal WHERE remote = ? AND state IN ('queued', 'failed') AND priority = 0 AND due_ms <= ? LIMIT 1",
      ),
      nextTouching: db.prepare<[string, number, string, string, number, string], Row>(
        `SELECT * FROM (SELECT ${cols} FROM journal WHERE remote = ? AND seq > ? AND path = ? AND state != 'conflict' ORDER BY seq LIMIT 1)
         UNION ALL
         SELECT * FROM (SELECT ${cols} FROM journal WHERE remote = ? AND seq > ? AND from_path = ? AND state != 'conflict' ORDER BY seq LIMIT 1)
         ORDER BY seq LIMIT 1`,
      ),
      nextSeq: db.prepare<[], { next: number }>('SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM journal'),
      insert: db.prepare(
        `INSERT INTO journal (seq, remote, path, from_path, kind, snapshot, size, mtime_ms, generation, base_kind, base_etag, base_size,
           base_mtime_ms, state, priority, due_ms, changed_ms)
         VALUES (@seq, @remote, @path, @from_path, @kind, @snapshot, @size, @mtime_ms, 1, @base_kind, @base_etag, @base_size,
           @base_mtime_ms, 'queued', @priority, @due_ms, @changed_ms)`,
      ),
      // A rewrite: new content or kind, generation + 1, a fresh start for retries.
      rewrite: db.prepare(
        `UPDATE journal SET kind = @kind, path = @path, seq = @seq, snapshot = @snapshot, size = @size, mtime_ms = @mtime_ms,
           generation = generation + 1, base_kind = @base_kind, base_etag = @base_etag, base_size = @base_size,
           base_mtime_ms = @base_mtime_ms, state = CASE WHEN state = 'uploading' THEN 'uploading' ELSE 'queued' END,
           priority = MIN(priority, @priority), due_ms = @due_ms, attempts = 0, last_error = NULL, changed_ms = @changed_ms
         WHERE id = @id`,
      ),
      delete: db.prepare<[number]>('DELETE FROM journal WHERE id = ?'),
      // Once handed to a worker, the remote may have seen the change (an attempt can commit and
      // still fail): `tried` is never reset, and the cancelling rules require tried = 0.
      take: db.prepare<[number]>("UPDATE journal SET state = 'uploading', tried = 1 WHERE id = ?"),
      setSent: db.prepare<[string, number]>('UPDATE journal SET sent = ? WHERE id = ?'),
      setState: db.prepare<[string, number]>('UPDATE journal SET state = ? WHERE id = ?'),
      setBase: db.prepare<[string, string | null, number | null, number | null, number]>(
        'UPDATE journal SET base_kind = ?, base_etag = ?, base_size = ?, base_mtime_ms = ? WHERE id = ?',
      ),
      retry: db.prepare<[string, number, string, number]>(
        'UPDATE journal SET state = ?, due_ms = ?, attempts = attempts + 1, last_error = ? WHERE id = ?',
      ),
      conflict: db.prepare<[string, string, number]>(
        "UPDATE journal SET state = 'conflict', snapshot = NULL, conflict_path = ?, last_error = ? WHERE id = ?",
      ),
      bumpOne: db.prepare<[number, number]>('UPDATE journal SET priority = 0, due_ms = MIN(due_ms, ?) WHERE id = ?'),
      bumpAll: db.prepare<[number, string]>("UPDATE journal SET priority = 0, due_ms = MIN(due_ms, ?) WHERE remote = ? AND state != 'conflict'"),
      requeueAll: db.prepare<[string]>("UPDATE journal SET state = 'queued' WHERE remote = ? AND state = 'uploading'"),
      nextDue: db.prepare<[{ remote: string; after: number }], { due: number | null }>(minDueSql('AND due_ms > @after')),
      minDue: db.prepare<[{ remote: string; after: number }], { due: number | null }>(minDueSql('')),
      snapshots: db.prepare<[], { snapshot: string }>('SELECT snapshot FROM journal WHERE snapshot IS NOT NULL'),
    };
  }

  #open(): ReturnType<Journal['prepare']> {
    if (this.#closed) throw new StoreClosedError('the journal is closed');
    return this.#q;
  }

  /**
   * `fn` as one BEGIN IMMEDIATE transaction, committed with the synchronous level `relaxed`
   * asks for. Prepared BEGIN/COMMIT statements, not better-sqlite3's `transaction()` (which
   * builds a wrapper per call: every change pays it). Nested in another transaction, `fn`
   * runs in a savepoint (better-sqlite3's wrapper), so its failure undoes only its own
   * writes, as before. The pragma is set only when the level changes (each set is a
   * statement of its own).
   */
  #tx<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const db = this.#db;
      if (db.inTransaction) return db.transaction(fn)(...args);
      this.#setLevel();
      this.#q.begin.run();
      let r: R;
      try {
        r = fn(...args);
      } catch (err) {
        if (db.inTransaction) this.#q.rollback.run();
        throw err;
      }
      this.#q.commit.run();
      return r;
    };
  }

  /** Sets the connection's synchronous level to what a commit now promises (see #tx). */
  #setLevel(): void {
    const level = this.#relaxedDepth > 0 ? 1 : 2;
    if (this.#level === level) return;
    this.#db.pragma(`synchronous = ${level === 1 ? 'NORMAL' : 'FULL'}`);
    this.#level = level;
  }

  #now(): number {
    return Math.round(this.#clock.wallNow());
  }

  #insert(fields: { path: string; fromPath?: string; kind: ChangeKind; snapshot?: Snapshot; base: Base; priority: Priority; dueMs: number }): number {
    const q = this.#q;
    const info = q.insert.run({
      seq: q.nextSeq.get()?.next ?? 1,
      remote: this.#remote,
      path: fields.path,
      from_path: fields.fromPath ?? null,
      kind: fields.kind,
      ...this.#contentColumns(fields),
    });
    return Number(info.lastInsertRowid);
  }

  #rewrite(row: Row, fields: { path?: string; kind: ChangeKind; snapshot?: Snapshot; base: Base; priority: Priority; dueMs: number; newSeq?: boolean }): void {
    const q = this.#q;
    q.rewrite.run({
      id: row.id,
      kind: fields.kind,
      path: fields.path ?? row.path,
      seq: fields.newSeq === true ? (q.nextSeq.get()?.next ?? 1) : row.seq,
      ...this.#contentColumns(fields),
    });
  }

  /** The columns an insert and a rewrite both set: content, base, priority, due and change times. */
  #contentColumns(fields: { snapshot?: Snapshot; base: Base; priority: Priority; dueMs: number }) {
    const [base_kind, base_etag, base_size, base_mtime_ms] = baseColumns(fields.base);
    return {
      snapshot: fields.snapshot?.name ?? null,
      size: fields.snapshot?.sizeBytes ?? null,
      mtime_ms: fields.snapshot?.mtimeMs ?? null,
      base_kind,
      base_etag,
      base_size,
      base_mtime_ms,
      priority: PRIO[fields.priority],
      due_ms: Math.round(fields.dueMs),
      changed_ms: this.#now(),
    };
  }

  #tail(path: string): Row | undefined {
    return this.#q.tail.get(this.#remote, path, this.#remote, path);
  }

  /**
   * A put of `snapshot` to `path`, made against `base` (what the caller last knew of the
   * remote object). `dueMs` (wall clock): when it may start (now + write-back delay).
   */
  recordPut(path: string, snapshot: Snapshot, base: Base, priority: Priority, dueMs: number): RecordResult {
    checkPath(path);
    this.#open();
    return this.#tx((): RecordResult => {
      const t = this.#tail(path);
      if (t && t.path === path && (t.kind === 'put' || t.kind === 'delete')) {
        // Coalesce: the row's base is still what the remote has (or will have been told).
        this.#rewrite(t, { kind: 'put', snapshot, base: toBase(t), priority, dueMs });
        return { id: t.id, released: t.snapshot !== null && t.snapshot !== snapshot.name ? [t.snapshot] : [] };
      }
      // Behind a rename away from `path`, the remote will have nothing there; behind any other
      // change of the path, the earlier row's completion says what it will have.
      const b: Base = !t ? base : t.from_path === path ? { kind: 'absent' } : { kind: 'inherit' };
      return { id: this.#insert({ path, kind: 'put', snapshot, base: b, priority, dueMs }), released: [] };
    })();
  }

  /** A delete of the file at `path`, made against `base`. */
  recordDelete(path: string, base: Base, priority: Priority, dueMs: number): RecordResult {
    checkPath(path);
    this.#open();
    return this.#tx((): RecordResult => {
      const t = this.#tail(path);
      if (t && t.path === path && t.kind === 'put') {
        const released = t.snapshot !== null ? [t.snapshot] : [];
        if (t.base_kind === 'absent' && t.tried === 0 && t.state !== 'uploading') {
          // Never sent to the remote: the put and the delete cancel out, no request at all.
          this.#q.delete.run(t.id);
          return { id: undefined, released };
        }
        // The remote has (or may get, from the running upload) a version: delete that one.
        this.#rewrite(t, { kind: 'delete', base: toBase(t), priority, dueMs });
        return { id: t.id, released };
      }
      if (t && t.path === path && t.kind === 'delete') return { id: t.id, released: [] };
      const b: Base = t ? { kind: 'inherit' } : base;
      return { id: this.#insert({ path, kind: 'delete', base: b, priority, dueMs }), released: [] };
    })();
  }

  recordMkdir(path: string, priority: Priority, dueMs: number): RecordResult {
    checkPath(path);
    this.#open();
    return this.#tx((): RecordResult => {
      const t = this.#tail(path);
      if (t && t.path === path && t.kind === 'rmdir' && t.tried === 0 && t.state !== 'uploading') {
        // The directory is still on the remote (its contents' deletes are rows of their own).
        this.#q.delete.run(t.id);
        return { id: undefined, released: [] };
      }
      return { id: this.#insert({ path, kind: 'mkdir', base: { kind: 'any' }, priority, dueMs }), released: [] };
    })();
  }

  recordRmdir(path: string, priority: Priority, dueMs: number): RecordResult {
    checkPath(path);
    this.#open();
    return this.#tx((): RecordResult => {
      const t = this.#tail(path);
      const below = this.#q.active.all(this.#remote).some((r) => r.id !== t?.id && pathsOf(toRow(r)).some((p) => p !== path && isSelfOrAncestor(path, p)));
      if (t && t.path === path && t.kind === 'mkdir' && t.tried === 0 && t.state !== 'uploading' && !below) {
        this.#q.delete.run(t.id);
        return { id: undefined, released: [] };
      }
      return { id: this.#insert({ path, kind: 'rmdir', base: { kind: 'any' }, priority, dueMs }), released: [] };
    })();
  }

  /**
   * A rename of `from` to `to`. `targetBase`: what the caller knew to be at `to` on the remote
   * (used when a pending put of `from` is moved to `to` instead of recording a rename).
   */
  recordRename(from: string, to: string, targetBase: Base, priority: Priority, dueMs: number): RecordResult {
    checkPath(from);
    checkPath(to);
    if (from === to) throw new RangeError(`rename of ${from} onto itself`);
    this.#open();
    return this.#tx((): RecordResult => {
      const t = this.#tail(from);
      if (t && t.path === from && t.kind === 'put' && t.base_kind === 'absent' && t.tried === 0 && t.state !== 'uploading') {
        // The file exists only here: move the pending put instead of renaming on the remote.
        const target = this.#tail(to);
        let base = targetBase;
        const released: string[] = [];
        if (target && target.path === to && (target.kind === 'put' || target.kind === 'delete') && target.state !== 'uploading') {
          // The pending change at `to` is replaced; its base is what the remote has at `to`.
          base = toBase(target);
          if (target.snapshot !== null) released.push(target.snapshot);
          this.#q.delete.run(target.id);
        } else if (target) {
          base = { kind: 'inherit' };
        }
        const snapshot = toRow(t).snapshot as Snapshot;
        this.#rewrite(t, { path: to, kind: 'put', snapshot, base, priority: t.priority === 0 ? 'foreground' : priority, dueMs, newSeq: true });
        return { id: t.id, released };
      }
      return { id: this.#insert({ path: to, fromPath: from, kind: 'rename', base: { kind: 'any' }, priority, dueMs }), released: [] };
    })();
  }

  /** Hands every row a dead worker left in 'uploading' back to 'queued' (start of an owner). */
  requeueInterrupted(): number {
    return this.#open().requeueAll.run(this.#remote).changes;
  }

  /**
   * Takes up to `limit` due rows (state queued or failed, due_ms <= nowMs, no earlier row
   * related to them, none related to a row being uploaded), foreground first, then by due
   * time; marks them 'uploading' and returns them.
   */
  take(limit: number, nowMs: number = this.#now()): JournalRow[] {
    this.#open();
    if (limit <= 0) return [];
    // The common case costs one read, no write transaction: nothing is due yet (write-back delay).
    if (this.#q.anyDue.get(this.#remote, nowMs) === undefined) return [];
    return this.#tx((): JournalRow[] => {
      const foregroundDue = this.#q.anyForegroundDue.get(this.#remote, nowMs) !== undefined;
      // Rows being uploaded hold every related path; earlier rows (by seq) come first.
      const held = new PathSet();
      for (const u of this.#q.uploading.all(this.#remote)) held.add(toRow(u));
      const earlier = new PathSet();
      const candidates: JournalRow[] = [];
      let foreground = 0;
      // No row after the last due one can be a candidate: stop there rather than read every
      // row still in its write-back delay (each take would cost O(pending rows)).
      const due = this.#q.lastDue.get(this.#remote, nowMs);
      const lastDueSeq = due !== undefined && due.n <= DUE_SCAN_MAX && due.seq !== null ? due.seq : Number.POSITIVE_INFINITY;
      for (const raw of this.#q.active.iterate(this.#remote)) {
        if (raw.seq > lastDueSeq) break;
        const r = toRow(raw);
        if (r.state !== 'uploading' && r.dueMs <= nowMs && !held.relatedTo(r) && !earlier.relatedTo(r)) {
          candidates.push(r);
          if (r.priority === 'foreground') foreground++;
        }
        earlier.add(r);
        // The oldest due rows of the best priority are enough: foreground ones when any is due
        // (they may be anywhere), else background ones.
        if ((foregroundDue ? foreground : candidates.length) >= limit) break;
      }
      candidates.sort((a, b) => (a.priority === b.priority ? a.dueMs - b.dueMs || a.seq - b.seq : a.priority === 'foreground' ? -1 : 1));
      const taken: JournalRow[] = [];
      for (const r of candidates) {
        if (taken.length >= limit) break;
        if (taken.some((o) => related(o, r))) continue;
        this.#q.take.run(r.id);
        taken.push({ ...r, state: 'uploading' });
      }
      return taken;
    })();
  }

  /** The row now (undefined once it is gone). */
  get(id: number): JournalRow | undefined {
    const r = this.#open().byId.get(id);
    return r ? toRow(r) : undefined;
  }

  /** The current generation of a row (undefined once it is gone). */
  generation(id: number): number | undefined {
    return this.#open().byId.get(id)?.generation;
  }

  /**
   * The remote now has the change of row `id` at `generation`. If the row still is that
   * generation it is deleted, in the same transaction as `record(row, outcome)` (the caller's
   * own bookkeeping, e.g. the new fingerprint, on this journal's connection: `db`). If it was
   * rewritten meanwhile, it stays, queued, against what the remote has now. Either way the
   * next row of the same path waiting with base 'inherit' learns what the remote has.
   * Returns the released snapshot files.
   */
  complete(id: number, generation: number, outcome: Outcome, record?: (row: JournalRow, outcome: Outcome, db: Db) => void): string[] {
    this.#open();
    return this.#tx((): string[] => {
      const r = this.#q.byId.get(id);
      if (!r) return [];
      const nowBase = baseAfter(outcome, r);
      if (r.generation !== generation) {
        const [k, e, s, m] = baseColumns(nowBase);
        this.#q.setBase.run(k, e, s, m, id);
        this.#q.setState.run('queued', id);
        record?.(toRow(r), outcome, this.#db);
        return [];
      }
      this.#q.delete.run(id);
      record?.(toRow(r), outcome, this.#db);
      // The next change of this path now knows what it was made against: the next row touching
      // the path, if it waits to inherit (a rename onto the path in between decides instead).
      const next = this.#q.nextTouching.get(this.#remote, r.seq, r.path, this.#remote, r.seq, r.path);
      const waiting = next !== undefined && next.path === r.path && next.base_kind === 'inherit' ? next : undefined;
      if (waiting) {
        const [k, e, s, m] = baseColumns(nowBase);
        this.#q.setBase.run(k, e, s, m, waiting.id);
      }
      return r.snapshot !== null ? [r.snapshot] : [];
    })();
  }

  /**
   * Notes, before a put of row `id` starts, the digest of the content it will send, so a later
   * owner recognises that content on the remote as ours. Keeps the last MAX_SENT digests.
   */
  noteSent(id: number, digest: string): void {
    const q = this.#open();
    this.#tx(() => {
      const r = q.byId.get(id);
      if (!r) return;
      const sent = toRow(r).sent.filter((d) => d !== digest);
      sent.push(digest);
      q.setSent.run(JSON.stringify(sent.slice(-MAX_SENT)), id);
    })();
  }

  /**
   * The attempt at `generation` failed; the change stays, to be tried again from `dueMs`
   * ('failed': a permanent error). If the row was rewritten meanwhile, the newer content
   * deserves its own first try: it only goes back to 'queued', its due time untouched.
   */
  retryLater(id: number, generation: number, error: string, dueMs: number, permanent: boolean): void {
    const q = this.#open();
    this.#tx(() => {
      const r = q.byId.get(id);
      if (!r) return;
      if (r.generation !== generation) q.setState.run('queued', id);
      else q.retry.run(permanent ? 'failed' : 'queued', Math.round(dueMs), error, id);
    })();
  }

  /** A worker gives a row back without a verdict (superseded, shutting down). */
  requeue(id: number): void {
    const q = this.#open();
    this.#tx(() => {
      const r = q.byId.get(id);
      if (r?.state === 'uploading') q.setState.run('queued', id);
    })();
  }

  /**
   * The remote changed since the row's base: ours (generation `generation`) was kept under
   * `conflictPath` (or, for a delete, not applied). Terminal and visible; the snapshot is
   * released (returned). A row rewritten meanwhile is not terminal: its newer content goes back
   * to 'queued' (and will keep both in its turn), its snapshot kept.
   */
  markConflict(id: number, generation: number, conflictPath: string, message: string): string[] {
    const q = this.#open();
    return this.#tx((): string[] => {
      const r = q.byId.get(id);
      if (!r) return [];
      if (r.generation !== generation) {
        q.setState.run('queued', id);
        return [];
      }
      q.conflict.run(conflictPath, message, id);
      return r.snapshot !== null ? [r.snapshot] : [];
    })();
  }

  /**
   * Makes every row of `path` (or all rows) foreground and due by `nowMs`, and with them every
   * earlier row they wait for (the mkdir of a parent, the put a rename moves), so an fsync never
   * waits out a write-back delay of another row.
   */
  bump(path: string | undefined, nowMs: number = this.#now()): void {
    const q = this.#open();
    if (path === undefined) {
      q.bumpAll.run(Math.round(nowMs), this.#remote);
      return;
    }
    this.#tx(() => {
      const rows = q.active.all(this.#remote).map(toRow);
      const wanted = rows.filter((r) => r.path === path || r.fromPath === path);
      // Walk back in seq order: a row is needed if a needed later row waits for it.
      const needed = [...wanted];
      for (let i = rows.length - 1; i >= 0; i--) {
        const r = rows[i] as JournalRow;
        if (!needed.includes(r) && needed.some((n) => n.seq > r.seq && related(n, r))) needed.push(r);
      }
      for (const r of needed) q.bumpOne.run(Math.round(nowMs), r.id);
    })();
  }

  /**
   * Earliest due time after `afterMs` of a row waiting to be taken, or undefined. (Rows due
   * already but not taken are waiting for a related row: its completion is the next event.)
   */
  /** The earliest due time of any pending row not being uploaded (undefined: none). */
  minDueMs(): number | undefined {
    return this.#open().minDue.get({ remote: this.#remote, after: 0 })?.due ?? undefined;
  }

  nextDueMs(afterMs: number): number | undefined {
    return this.#open().nextDue.get({ remote: this.#remote, after: Math.round(afterMs) })?.due ?? undefined;
  }

  /** The latest pending change of `path` (to it, or a rename from it). */
  tailOf(path: string): JournalRow | undefined {
    this.#open();
    const r = this.#tail(path);
    return r === undefined ? undefined : toRow(r);
  }

  /** A change of `path` (to it, or a rename from it) is pending. */
  touches(path: string): boolean {
    this.#open();
    return this.#tail(path) !== undefined;
  }

  /** Every row, in seq order (conflicts included). */
  list(): JournalRow[] {
    return this.#open().all.all(this.#remote).map(toRow);
  }

  /** Rows still to be applied (not conflicts). */
  pending(): JournalRow[] {
    return this.#open().active.all(this.#remote).map(toRow);
  }

  /** Every snapshot file name any row (of any remote) references. */
  referencedSnapshots(): Set<string> {
    return new Set(this.#open().snapshots.all().map((r) => r.snapshot));
  }

  /** Runs `fn` with commits that survive a crash of the process, not a power loss (see header). */
  relaxed<T>(fn: () => T): T {
    this.#open();
    this.#relaxedDepth++;
    try {
      return fn();
    } finally {
      this.#relaxedDepth--;
    }
  }

  /**
   * Runs `fn` with commits that survive a crash of the process; `durable()` makes them survive
   * a power loss, off the event loop (see the header).
   */
  synced<T>(fn: () => T): T {
    if (this.#walPath === undefined) return fn();
    const r = this.relaxed(fn);
    this.#unsynced++;
    return r;
  }

  /**
   * Resolves once every commit made before the call survives a power loss (an fdatasync of
   * the WAL on the thread pool; concurrent callers share one). Rejects if the sync fails.
   */
  durable(): Promise<void> {
    if (this.#unsynced === 0) return this.#syncing ?? Promise.resolve();
    if (this.#syncing === undefined) return this.#startSync();
    // A sync is running but started before some of these commits: the next one covers them.
    this.#nextSync ??= this.#syncing.catch(() => undefined).then(() => {
      this.#nextSync = undefined;
      return this.#startSync();
    });
    return this.#nextSync;
  }

  #startSync(): Promise<void> {
    this.#unsynced = 0;
    const path = this.#walPath as string;
    const run = (async () => {
      try {
        const fh = await fsp.open(path, 'r');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        this.#unsynced++; // not durable: the next durable() syncs again
        throw err;
      }
    })().finally(() => {
      if (this.#syncing === run) this.#syncing = undefined;
    });
    this.#syncing = run;
    return run;
  }

  /** Makes every commit so far durable (a WAL checkpoint syncs the log first). */
  sync(): void {
    this.#open();
    this.#db.pragma('wal_checkpoint(PASSIVE)');
  }

  /** The connection's `synchronous` level (2 = FULL) that a commit made now uses: what it promises. */
  synchronousLevel(): number {
    this.#open();
    this.#setLevel();
    return this.#db.pragma('synchronous', { simple: true }) as number;
  }

  /** Closes the database. Idempotent; later calls throw StoreClosedError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function baseAfter(outcome: Outcome, r: Row): Base {
  switch (outcome.kind) {
    case 'written':
      return { kind: 'version', version: outcome.version };
    case 'gone':
      return { kind: 'absent' };
    case 'dir':
      return { kind: 'any' };
    case 'moved':
      return r.kind === 'rename' && outcome.version !== undefined ? { kind: 'version', version: outcome.version } : { kind: 'any' };
  }
}
