// The SQLite schema of a cache dir's catalogue, and every migration that built it, in one
// place. database.ts applies them (each in its own transaction with its version bump); the
// stores that read and write the tables (catalogue.ts, listing-store.ts; the upload journal
// to come) name columns only as created here.
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
  // Version 3 is the upload journal's (developed in parallel); this one must not take it.
  {
    version: 4,
    description: 'persisted listings and attributes',
    up: (db) => {
      // What the remote said, kept so a mount started while it is unreachable can browse and
      // open what it saw before (listing-store.ts). Rewritten whenever the remote answers
      // again; losing the newest rows (power loss, synchronous=NORMAL) only costs a relist.
      // - listings: one row per listed directory ('' is the root); `entries` is a JSON array
      //   of {name, type, size?, mtimeMs?, approxMtimeMs?, etag?}, so a 10,000-entry listing
      //   is one row and one write.
      // - attributes: the exact attributes of one file, by source: 'stat' (the last stat, e.g.
      //   a HEAD) and 'open' (the attributes the last open used: its fingerprint is the one
      //   the data cache keyed the file's bytes under).
      // fetched_at_ms is wall-clock ms.
      db.exec(`
        CREATE TABLE listings (
          remote TEXT NOT NULL,
          dir TEXT NOT NULL,
          entries TEXT NOT NULL,
          fetched_at_ms INTEGER NOT NULL,
          PRIMARY KEY (remote, dir)
        );
        CREATE TABLE attributes (
          remote TEXT NOT NULL,
          path TEXT NOT NULL,
          source TEXT NOT NULL CHECK (source IN ('stat', 'open')),
          type TEXT NOT NULL CHECK (type IN ('file', 'dir', 'symlink')),
          size INTEGER NOT NULL,
          mtime_ms INTEGER,
          etag TEXT,
          fetched_at_ms INTEGER NOT NULL,
          PRIMARY KEY (remote, path, source)
        );
      `);
    },
  },
];
