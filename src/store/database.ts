// Opening the SQLite database and migrating it. One file per cache dir; WAL so several
// processes (mounts) can share a cache dir: readers never block the writer, and busy_timeout
// makes concurrent writers wait instead of failing.
// Durability: synchronous=NORMAL in WAL mode loses at most the last transactions on power
// loss, never consistency. The cache only records ranges after their bytes were fdatasync'ed,
// so a lost record means a re-download, never wrong bytes. (The upload journal, when it comes,
// will use synchronous=FULL for its own transactions.)
import Database from 'better-sqlite3';

export type Db = Database.Database;

export interface Migration {
  version: number;
  description: string;
  up(db: Db): void;
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  readonly code = 'STORE_MIGRATION';
}

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Applies the migrations newer than the database's user_version, each in its own transaction
 * together with the version bump: a failing migration rolls back and leaves the version as it
 * was. Refuses a database newer than the code.
 */
export function migrate(db: Db, migrations: readonly Migration[]): number {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  const latest = sorted.at(-1)?.version ?? 0;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > latest) {
    throw new MigrationError(`cache database schema ${current} is newer than this fusestream (${latest}); use a newer fusestream or another --cache-dir`);
  }
  for (const m of sorted) {
    if (m.version <= current) continue;
    const step = db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step.immediate();
    } catch (cause) {
      throw new MigrationError(`cache database migration ${m.version} (${m.description}) failed`, { cause });
    }
  }
  return latest;
}
