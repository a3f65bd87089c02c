// ListingStore (persisted listings and attributes, migration 4): round trips that keep exactly
// the fields saved, replacement, remotes kept apart, survival across close/reopen and a
// migration from a version-2 catalogue, unreadable rows read as absent, closed-store errors, and
// a 10,000-entry listing saved as one row in one write.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue, StoreClosedError } from '../../src/store/catalogue.js';
import { MIGRATIONS } from '../../src/store/schema.js';
import { migrate, openDatabase, schemaVersion } from '../../src/store/database.js';
import type { StoredEntry } from '../../src/store/listing-store.js';

let dir = '';
let dbPath = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-listings-'));
  dbPath = join(dir, 'cache.db');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function withCatalogue<T>(fn: (c: Catalogue) => T): T {
  const c = Catalogue.open(dbPath);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

const R = 'http://127.0.0.1:1/';
const entries: StoredEntry[] = [
  { name: 'a.bin', type: 'file', size: 10, mtimeMs: 1_700_000_000_000, etag: '"e1"' },
  { name: 'sub', type: 'dir' },
  { name: 'link', type: 'symlink', size: 3 },
  { name: 'rounded.txt', type: 'file', approxMtimeMs: 1_700_000_040_000 },
  { name: 'frac.bin', type: 'file', size: 0, mtimeMs: 1_712_345_678_901.234 },
];

describe('ListingStore', () => {
  test('a listing round-trips with exactly its fields and order, and survives a reopen', () => {
    withCatalogue((c) => {
      assert.equal(c.listings.loadListing(R, ''), undefined);
      assert.equal(c.listings.countListings(R), 0);
      c.listings.saveListing(R, '', entries, 1234.4);
      c.listings.saveListing(R, 'sub', [], 99);
    });
    withCatalogue((c) => {
      assert.deepEqual(c.listings.loadListing(R, ''), { entries, fetchedAtMs: 1234 });
      assert.deepEqual(c.listings.loadListing(R, 'sub'), { entries: [], fetchedAtMs: 99 });
      assert.equal(c.listings.countListings(R), 2);
    });
  });

  test('a new listing of a directory replaces the old one; remotes and directories are kept apart', () => {
    withCatalogue((c) => {
      const other = 'http://127.0.0.1:2/';
      c.listings.saveListing(R, 'd', entries, 1);
      c.listings.saveListing(other, 'd', [{ name: 'x', type: 'file', size: 1 }], 2);
      c.listings.saveListing(R, 'd', entries.slice(0, 1), 3);
      assert.deepEqual(c.listings.loadListing(R, 'd'), { entries: entries.slice(0, 1), fetchedAtMs: 3 });
      assert.deepEqual(c.listings.loadListing(other, 'd')?.entries, [{ name: 'x', type: 'file', size: 1 }]);
      assert.equal(c.listings.loadListing(R, ''), undefined);
      assert.equal(c.listings.countListings(R), 1);
      assert.equal(c.listings.countListings(other), 1);
    });
  });

  test("extra properties of a caller's entries never reach the disk", () => {
    withCatalogue((c) => {
      const withExtra = [{ name: 'a', type: 'file' as const, size: 1, secret: 'x' }];
      c.listings.saveListing(R, '', withExtra, 1);
      assert.deepEqual(c.listings.loadListing(R, '')?.entries, [{ name: 'a', type: 'file', size: 1 }]);
    });
  });

  test('attributes are kept per source, replaced, and forgotten for every source at once', () => {
    withCatalogue((c) => {
      const ls = c.listings;
      ls.saveAttrs(R, 'a.bin', 'stat', { type: 'file', size: 10, mtimeMs: 5, etag: '"e1"', fetchedAtMs: 7 });
      ls.saveAttrs(R, 'a.bin', 'open', { type: 'file', size: 10, mtimeMs: 5, fetchedAtMs: 8 });
      assert.deepEqual(ls.loadAttrs(R, 'a.bin', 'stat'), { type: 'file', size: 10, mtimeMs: 5, etag: '"e1"', fetchedAtMs: 7 });
      assert.deepEqual(ls.loadAttrs(R, 'a.bin', 'open'), { type: 'file', size: 10, mtimeMs: 5, fetchedAtMs: 8 }, 'no etag invented');
      ls.saveAttrs(R, 'a.bin', 'stat', { type: 'file', size: 11, fetchedAtMs: 9 });
      assert.deepEqual(ls.loadAttrs(R, 'a.bin', 'stat'), { type: 'file', size: 11, fetchedAtMs: 9 }, 'replaced, old mtime and etag gone');
      assert.equal(ls.loadAttrs('other', 'a.bin', 'stat'), undefined);
      assert.throws(() => ls.saveAttrs(R, 'b', 'stat', { type: 'file', size: -1, fetchedAtMs: 0 }), RangeError);
      ls.forgetAttrs(R, 'a.bin');
      assert.equal(ls.loadAttrs(R, 'a.bin', 'stat'), undefined);
      assert.equal(ls.loadAttrs(R, 'a.bin', 'open'), undefined);
    });
  });

  test('a row that is not what we wrote reads as absent, not as an error', () => {
    withCatalogue((c) => c.listings.saveListing(R, '', entries, 1));
    const db = openDatabase(dbPath);
    try {
      const put = db.prepare<[string, string]>('UPDATE listings SET entries = ? WHERE dir = ?');
      put.run('{not json', '');
      put.run(JSON.stringify([{ name: 'x', type: 'socket' }]), '');
    } finally {
      db.close();
    }
    withCatalogue((c) => assert.equal(c.listings.loadListing(R, ''), undefined));
  });

  test('a version 2 catalogue migrates to the latest, keeping its objects; the tables start empty', () => {
    const db = openDatabase(dbPath);
    try {
      migrate(db, MIGRATIONS.filter((m) => m.version <= 2));
      assert.equal(schemaVersion(db), 2);
      db.prepare("INSERT INTO objects (remote, path, fingerprint, size, cache_file, last_used_ms, created_ms) VALUES ('r', 'p', 'f', 1, 'x.bin', 0, 0)").run();
    } finally {
      db.close();
    }
    withCatalogue((c) => {
      assert.equal(c.listObjects().length, 1);
      assert.equal(c.listings.countListings('r'), 0);
      c.listings.saveListing('r', '', entries, 1);
      assert.equal(c.listings.countListings('r'), 1);
    });
  });

  test('after the catalogue closes, every call throws StoreClosedError', () => {
    const c = Catalogue.open(dbPath);
    const ls = c.listings;
    c.close();
    assert.throws(() => ls.loadListing(R, ''), StoreClosedError);
    assert.throws(() => ls.saveListing(R, '', [], 0), StoreClosedError);
    assert.throws(() => ls.saveAttrs(R, 'a', 'open', { type: 'file', size: 1, fetchedAtMs: 0 }), StoreClosedError);
    assert.throws(() => ls.countListings(R), StoreClosedError);
  });

  test('a 10,000-entry listing is one row written in one statement (no per-entry write)', () => {
    withCatalogue((c) => {
      const big: StoredEntry[] = Array.from({ length: 10_000 }, (_, i) => ({ name: `file-${i}.bin`, type: 'file', size: i, mtimeMs: 1_700_000_000_000 + i, etag: `"${i}"` }));
      const db = openDatabase(dbPath);
      try {
        const started = performance.now();
        c.listings.saveListing(R, 'big', big, 1);
        const loaded = c.listings.loadListing(R, 'big');
        const ms = performance.now() - started;
        assert.equal(loaded?.entries.length, 10_000);
        assert.deepEqual(loaded?.entries[9_999], big[9_999]);
        assert.equal(db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM listings').get()?.n, 1, 'one row for the whole listing');
        // Generous: one JSON row, committed without fsync (synchronous=NORMAL, database.ts). A
        // write per entry with an fsync each would take seconds.
        assert.ok(ms < 1000, `saving and loading 10,000 entries took ${ms.toFixed(0)} ms`);
      } finally {
        db.close();
      }
    });
  });
});
