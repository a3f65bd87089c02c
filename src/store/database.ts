// Opening a SQLite database (better-sqlite3) and migrating its schema.
//
// Sharing: one database file per cache dir, opened in WAL mode so several connections can share
// it (one DataCache owns a cache dir, see data/cache/owner-lock.ts; a `status` reader, threads
// and tests open more): readers never block the writer and see a consistent snapshot, and
// busy_timeout makes a writer wait for another process's write instead of failing with
// SQLITE_BUSY. Writers that read first use BEGIN IMMEDIATE (`tx.immediate()`), so two processes
// never both hold a read lock and then deadlock upgrading it.
//
// Durability: synchronous=NORMAL by default. In WAL mode that can lose the last transactions on
// power loss (not on a process crash), never consistency. That is right for the cache catalogue:
// ranges are recorded only after their bytes were fdatasync'ed, so a lost record costs a
// re-download, never wrong bytes. A store whose rows promise something to the user (the upload
// journal: "queued" means close() may return) opens with `synchronous: 'FULL'`.
//
// Migrations: `user_version` holds the schema version. Migrations run in version order, each in
// its own BEGIN IMMEDIATE transaction together with its version bump, and the current version
// is read inside that transaction, so two processes opening a fresh cache dir at once apply each
// migration exactly once. A failing migration rolls back and leaves user_version as it was.
// A database newer than the code is refused rather than misread.
import Database from 'better-sqlite3';
import type { Logger } from '../observability/logger.js';

export type Db = Database.Database;

export interface Migration {
  /** Positive integer, unique; the schema version once this migration has run. */
  readonly version: number;
  readonly description: string;
  /** Runs inside the migration's transaction; throw to roll it back. */
  up(db: Db): void;
}

export interface OpenDatabaseOptions {
  /** 'FULL' for stores whose commits must survive power loss (see the file header). */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a writer waits for another connection's write lock. Default 5000. */
  busyTimeoutMs?: number;
  logger?: Logger;
}

/** Opening or migrating a store failed; `cause` holds the SQLite error. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
  readonly code: string = 'STORE_OPEN';
}

export class MigrationError extends StoreError {
  override readonly name = 'MigrationError';
  override readonly code = 'STORE_MIGRATION';
}

/** Opens (creating if needed) the database at `path` with the pragmas described above. */
export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): Db {
  const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new RangeError(`bad busyTimeoutMs ${busyTimeoutMs}`);
  let db: Db | undefined;
  try {
    db = new Database(path);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const mode = enableWal(db, performance.now() + busyTimeoutMs);
    if (mode.toLowerCase() !== 'wal') {
      // E.g. a filesystem without shared memory support: still correct, but readers and the
      // writer block each other.
      opts.logger?.warn({ path, journalMode: mode }, 'store: WAL mode unavailable, sharing this cache dir will be slower');
    }
    db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (cause) {
    db?.close();
    throw new StoreError(`cannot open the database ${path}`, { cause });
  }
}

/**
 * Switches to WAL. While another connection is switching the same new file, SQLite answers
 * SQLITE_BUSY at once instead of calling the busy handler (it cannot wait there without risking
 * a deadlock), so this retries with a short synchronous backoff until `deadline` (ms on the
 * performance.now() scale). Only the first opens of a fresh file ever get here twice.
 */
function enableWal(db: Db, deadline: number): string {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    try {
      return db.pragma('journal_mode = WAL', { simple: true }) as string;
    } catch (err) {
      const busy = err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_BUSY');
      if (!busy || performance.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, Math.min(2 ** attempt, 50));
    }
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Applies the migrations newer than the database's user_version (see the file header) and
 * returns the resulting version. Throws MigrationError if one fails, or if the database is
 * newer than the newest migration, or if the list itself is malformed.
 */
export function migrate(db: Db, migrations: readonly Migration[], logger?: Logger): number {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (!Number.isSafeInteger(m.version) || m.version < 1 || (i > 0 && sorted[i - 1]?.version === m.version)) {
      throw new MigrationError(`bad migration list: version ${m.version} (${m.description}) is not a unique positive integer`);
    }
  });
  const latest = sorted.at(-1)?.version ?? 0;
  const tooNew = (current: number): MigrationError =>
    new MigrationError(`database schema ${current} is newer than this fusestream (${latest}); use a newer fusestream or another cache dir`);
  const initial = schemaVersion(db);
  if (initial > latest) throw tooNew(initial);
  for (const m of sorted) {
    if (m.version <= initial) continue;
    const step = db.transaction((): boolean => {
      const current = schemaVersion(db);
      if (current > latest) throw tooNew(current);
      if (current >= m.version) return false; // another process got here first
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
      return true;
    });
    let applied: boolean;
    try {
      applied = step.immediate();
    } catch (cause) {
      if (cause instanceof MigrationError) throw cause;
      throw new MigrationError(`database migration ${m.version} (${m.description}) failed`, { cause });
    }
    if (applied) logger?.info({ version: m.version, description: m.description }, 'store: migration applied');
  }
  return schemaVersion(db);
}
