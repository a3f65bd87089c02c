// The SQLite schema of a cache dir's catalogue, and every migration that built it, in one
// place. database.ts applies them (each in its own transaction with its version bump); the
// stores that read and write the tables (catalogue.ts, journal.ts, listing-store.ts) name
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
  {
    version: 3,
    description: 'upload journal',
    up: (db) => {
      // The changes the remote does not have yet (store/journal.ts says what each column
      // promises). An ordered log: `seq` orders changes that touch related paths; a row's
      // `generation` moves at every rewrite, so an upload of an older generation never deletes
      // the row of a newer one. base_kind: 'absent' (the remote had nothing: create-only),
      // 'version' (If-Match base_etag/base_size/base_mtime_ms), 'any' (unconditional),
      // 'inherit' (decided when the earlier row of the same path completes).
      db.exec(`
        CREATE TABLE journal (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          seq INTEGER NOT NULL UNIQUE,
          remote TEXT NOT NULL,
          path TEXT NOT NULL,
          from_path TEXT,
          kind TEXT NOT NULL CHECK (kind IN ('put', 'delete', 'mkdir', 'rmdir', 'rename')),
          snapshot TEXT,
          size INTEGER,
          mtime_ms INTEGER,
          generation INTEGER NOT NULL,
          base_kind TEXT NOT NULL CHECK (base_kind IN ('absent', 'version', 'any', 'inherit')),
          base_etag TEXT,
          base_size INTEGER,
          base_mtime_ms INTEGER,
          state TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'failed', 'conflict')),
          priority INTEGER NOT NULL CHECK (priority IN (0, 1)),
          due_ms INTEGER NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          last_error TEXT,
          conflict_path TEXT,
          changed_ms INTEGER NOT NULL,
          tried INTEGER NOT NULL DEFAULT 0, -- 1 once handed to a worker: the remote may have seen it
          sent TEXT, -- JSON ["<size>:<sha256 hex>", ...]: content of generations handed to a remote put
          CHECK ((kind = 'put') = (snapshot IS NOT NULL) OR state = 'conflict'),
          CHECK ((kind = 'rename') = (from_path IS NOT NULL))
        );
        CREATE INDEX journal_path ON journal (remote, path, seq);
        CREATE INDEX journal_from ON journal (remote, from_path, seq) WHERE from_path IS NOT NULL;
        CREATE INDEX journal_due ON journal (remote, state, priority, due_ms);
      `);
    },
  },
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
  {
    version: 5,
    description: 'journal order index',
    up: (db) => {
      // Journal.take walks pending rows in seq order and stops early (the oldest due rows are
      // enough): an index in that order makes it read only what it needs, not sort them all;
      // every new row takes MAX(seq) + 1, which without an index on seq reads every row.
      // One index serves both (a journal holds one remote's rows in practice; every index is
      // one more page written per change).
      db.exec('CREATE INDEX journal_seq ON journal (seq)');
    },
  },
  {
    version: 6,
    description: 'one index on journal seq',
    up: (db) => {
      // `seq ... UNIQUE` (version 3) is an index on seq already: journal_seq duplicated it,
      // one more page written by every change. The planner walks the unique index instead.
      db.exec('DROP INDEX journal_seq');
    },
  },
];
