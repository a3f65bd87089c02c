// ListingStore: what the remote said of its directories and files, kept in the catalogue's
// database so that a mount started while the remote is unreachable can still browse and open
// what it saw before (served stale; see docs/SEMANTICS.md, "When the remote fails").
//
// Two tables (schema.ts, migration 4):
// - listings: one row per (remote, directory), the whole listing as one JSON array. Saving a
//   listing is one statement (one transaction) whatever its size: a 10,000-entry directory
//   costs one write, never one per entry. The database runs synchronous=NORMAL (database.ts),
//   so a commit is a WAL append without fsync.
// - attributes: per (remote, path, source) the exact attributes of one file, as the last stat
//   ('stat') or the last open ('open') learnt them. The open's row is what the data cache keyed
//   the file's bytes under (its fingerprint), so an open while offline finds the bytes again.
//
// Invariants:
// - Nothing here is authoritative: rows are a stale copy of the remote, replaced whenever it
//   answers again. A row that cannot be parsed reads as absent (a relist fixes it), never as
//   an error.
// - Loads never invent fields: an entry has exactly the optional fields that were saved.
//
// Ownership and concurrency: a ListingStore is created by its Catalogue on the Catalogue's own
// database handle and dies with it (after Catalogue.close every call throws StoreClosedError).
// All methods are synchronous (better-sqlite3): each call is atomic within the process.
import type { Db } from './database.js';

export type StoredEntryType = 'file' | 'dir' | 'symlink';

/** One entry of a listing, with the same fields as the remote layer's RemoteEntry. */
export interface StoredEntry {
  name: string;
  type: StoredEntryType;
  size?: number;
  mtimeMs?: number;
  approxMtimeMs?: number;
  etag?: string;
}

export interface StoredListing {
  entries: StoredEntry[];
  /** Wall-clock ms of the fetch. */
  fetchedAtMs: number;
}

/** Where a file's persisted attributes came from (see the file header). */
export type AttrSource = 'stat' | 'open';

export interface StoredAttrs {
  type: StoredEntryType;
  size: number;
  /** The remote's own mtime, when it gave one (part of the fingerprint). */
  mtimeMs?: number;
  etag?: string;
  /** Wall-clock ms of the stat or open. */
  fetchedAtMs: number;
}

interface AttrRow {
  type: string;
  size: number;
  mtime_ms: number | null;
  etag: string | null;
  fetched_at_ms: number;
}

const TYPES: ReadonlySet<string> = new Set<StoredEntryType>(['file', 'dir', 'symlink']);

const isType = (t: unknown): t is StoredEntryType => typeof t === 'string' && TYPES.has(t);
const isOptNumber = (v: unknown): v is number | undefined => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/** One parsed JSON entry, or undefined when it is not one we wrote. */
function toEntry(raw: unknown): StoredEntry | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.name !== 'string' || r.name === '' || !isType(r.type)) return undefined;
  if (!isOptNumber(r.size) || !isOptNumber(r.mtimeMs) || !isOptNumber(r.approxMtimeMs)) return undefined;
  if (r.etag !== undefined && typeof r.etag !== 'string') return undefined;
  const e: StoredEntry = { name: r.name, type: r.type };
  if (r.size !== undefined) e.size = r.size;
  if (r.mtimeMs !== undefined) e.mtimeMs = r.mtimeMs;
  if (r.approxMtimeMs !== undefined) e.approxMtimeMs = r.approxMtimeMs;
  if (r.etag !== undefined) e.etag = r.etag;
  return e;
}

function prepareStatements(db: Db) {
  return {
    putListing: db.prepare<[string, string, string, number]>(
      'INSERT INTO listings (remote, dir, entries, fetched_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (remote, dir) DO UPDATE SET entries = excluded.entries, fetched_at_ms = excluded.fetched_at_ms',
    ),
    getListing: db.prepare<[string, string], { entries: string; fetched_at_ms: number }>('SELECT entries, fetched_at_ms FROM listings WHERE remote = ? AND dir = ?'),
    countListings: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM listings WHERE remote = ?'),
    putAttrs: db.prepare<[string, string, string, string, number, number | null, string | null, number]>(
      'INSERT INTO attributes (remote, path, source, type, size, mtime_ms, etag, fetched_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (remote, path, source) DO UPDATE SET type = excluded.type, size = excluded.size, mtime_ms = excluded.mtime_ms, etag = excluded.etag, fetched_at_ms = excluded.fetched_at_ms',
    ),
    getAttrs: db.prepare<[string, string, string], AttrRow>('SELECT type, size, mtime_ms, etag, fetched_at_ms FROM attributes WHERE remote = ? AND path = ? AND source = ?'),
    deleteAttrs: db.prepare<[string, string]>('DELETE FROM attributes WHERE remote = ? AND path = ?'),
  };
}

export class ListingStore {
  readonly #q: ReturnType<typeof prepareStatements>;
  readonly #checkOpen: () => void;

  /** @internal created by Catalogue on its own handle; `checkOpen` throws once it is closed. */
  constructor(db: Db, checkOpen: () => void) {
    this.#q = prepareStatements(db);
    this.#checkOpen = checkOpen;
  }

  /** Replaces the stored listing of `dir` ('' for the root) of `remote`: one statement. */
  saveListing(remote: string, dir: string, entries: readonly StoredEntry[], fetchedAtMs: number): void {
    this.#checkOpen();
    // Only the known fields: a caller's extra properties never reach the disk.
    const json = JSON.stringify(entries.map((e) => ({ name: e.name, type: e.type, size: e.size, mtimeMs: e.mtimeMs, approxMtimeMs: e.approxMtimeMs, etag: e.etag })));
    this.#q.putListing.run(remote, dir, json, Math.round(fetchedAtMs));
  }

  /** The stored listing of `dir`, or undefined (never saved, or unreadable). */
  loadListing(remote: string, dir: string): StoredListing | undefined {
    this.#checkOpen();
    const row = this.#q.getListing.get(remote, dir);
    if (row === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(row.entries);
    } catch {
      return undefined;
    }
    if (!Array.isArray(raw)) return undefined;
    const entries: StoredEntry[] = [];
    for (const r of raw) {
      const e = toEntry(r);
      if (e === undefined) return undefined; // not what we wrote: the whole row is suspect
      entries.push(e);
    }
    return { entries, fetchedAtMs: row.fetched_at_ms };
  }

  /** How many directories of `remote` have a stored listing. */
  countListings(remote: string): number {
    this.#checkOpen();
    return this.#q.countListings.get(remote)?.n ?? 0;
  }

  /** Records the exact attributes of `path` as `source` learnt them. */
  saveAttrs(remote: string, path: string, source: AttrSource, attrs: StoredAttrs): void {
    this.#checkOpen();
    if (!Number.isSafeInteger(attrs.size) || attrs.size < 0) throw new RangeError(`bad size ${attrs.size} for ${path}`);
    this.#q.putAttrs.run(remote, path, source, attrs.type, attrs.size, attrs.mtimeMs ?? null, attrs.etag ?? null, Math.round(attrs.fetchedAtMs));
  }

  loadAttrs(remote: string, path: string, source: AttrSource): StoredAttrs | undefined {
    this.#checkOpen();
    const r = this.#q.getAttrs.get(remote, path, source);
    if (r === undefined || !isType(r.type)) return undefined;
    const a: StoredAttrs = { type: r.type, size: r.size, fetchedAtMs: r.fetched_at_ms };
    if (r.mtime_ms !== null) a.mtimeMs = r.mtime_ms;
    if (r.etag !== null) a.etag = r.etag;
    return a;
  }

  /** The remote says `path` is gone: its attributes (every source) are forgotten. */
  forgetAttrs(remote: string, path: string): void {
    this.#checkOpen();
    this.#q.deleteAttrs.run(remote, path);
  }
}
