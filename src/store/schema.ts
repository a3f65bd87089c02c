// The SQLite schema of a cache dir's catalogue, and every migration that built it, in one
// place. database.ts applies them (each in its own transaction with its version bump); the
// stores that read and write the tables (catalogue.ts; the upload journal to come) name
// columns only as created here.
//
// Rules for a new migration: append it with the next version, never edit a released one (a
// catalogue written by an older fusestream must migrate forward), and keep each one runnable
// inside a single transaction.
import type { Migration } from './database.js';

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
  {
    version: 2,
    description: 'cache file identity',
    up: (db) => {
      // The identity (inode and birth time, see data/cache/file-identity.ts) of the cache file
      // the row's ranges describe, recorded when the data layer created the file. NULL: none
      // recorded (rows of version 1, or a file not created yet), so the file is not trusted and
      // its ranges are dropped when it is next opened or at the start-up reconcile.
      db.exec('ALTER TABLE objects ADD COLUMN file_identity TEXT');
    },
  },
];
