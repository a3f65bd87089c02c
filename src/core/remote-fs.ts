// RemoteFs: the filesystem over a Remote, callable without a kernel (it implements the core's
// FileSystem). It maps inodes to remote paths, caches directory listings (with TTL and negative
// answers), decides attributes, modes and cache validity, hands out readdir cookies and counts
// the kernel's lookup references, and serves reads through the data layer. The bridge only
// translates: kernel requests into calls here, results and errors into replies.
//
// Read-write when built with `upload` (the write path: see "Writes" below and
// docs/SEMANTICS.md); otherwise every op that would change something answers EROFS, and so
// does an open for writing (the kernel asks before any WRITE).
//
// Invariants:
// - One listing request per directory per dirTtl: concurrent lookups/readdirs of the same
//   directory share one request (single flight), and a fresh listing answers lookups of
//   missing names negatively without a request.
// - Offline (the remote's health state says unreachable): listings and attributes seen before
//   keep answering, stale; an open of a file whose version is known proceeds, so its cached
//   bytes are served and only missing ones fail (at once: the remote's guard refuses).
// - Seen before includes earlier mounts: every listing fetched, every exact stat and the
//   attributes every open used are saved in the cache dir's store (data.listings). Offline, a
//   directory with no listing in memory is served from its saved listing (stale: its entries'
//   attributes count as unconfirmed, so the first stat once online asks the remote), and an
//   open uses the attributes the last open of that path saved when the known ones do not
//   contradict them: its fingerprint is then the one the data cache keyed the bytes under.
//   Persistence is best effort: a store that fails is logged, never fails a request.
// - Exact attributes before the kernel caches them: a file whose listing gave no exact size
//   (python's http.server, Apache's "1.2M", any page of links) is stat'ed (HEAD; single flight
//   per path, at most STAT_CONCURRENCY at once per directory) before LOOKUP or READDIRPLUS
//   hands out its attributes; an entry that cannot be completed goes out in READDIRPLUS with
//   nodeid 0 (the kernel then asks LOOKUP, which answers the error). A listing that knows less
//   than we do (no size, or the same size with a rounded mtime) never overwrites exact
//   attributes. Unknown mtimes show the mount time, never 1970.
// - A file's cache identity is (remote, path, fingerprint). open() confirms the fingerprint
//   with a stat when the known attributes are not exact or older than attrTtl; a changed
//   fingerprint gives a new cache file.
// - The kernel's page cache never mixes versions: KEEP_CACHE only when the inode's pages can
//   hold nothing but the opened version; an open while another version is still open reads
//   with direct I/O (see #pageCacheOnOpen).
// - Every handle is closed exactly once (release, or close() at unmount).
// - Lookup references: +1 for every positive EntryOut returned by lookup and for every
//   READDIRPLUS entry the sink accepted (never for "." and "..", which carry nodeid 0);
//   forget gives them back (inode-table.ts keeps the counts).
// - Readdir cookies: 1 = after ".", 2 = after "..", i + 3 = after the i-th entry of the open
//   directory's snapshot, so a listing that pages through many READDIRPLUS calls sees one
//   consistent set of names.
// - Never awaits remote I/O while holding a lock: there are no locks here; shared state is
//   only touched in synchronous sections, and single-flight maps are checked and filled in
//   the same synchronous step.
import { linkSync, promises as fsp, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Mutex, anySignal, raceAbort } from '../base/async.js';
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import type { Attr, AttrOut, DirentSink, EntryOut, StatfsOut } from '../base/fs-types.js';
import { asFh, asIno, ROOT_INO, type Fh, type Ino } from '../base/ids.js';
import { DT, O_ACCMODE, O_APPEND, O_EXCL, O_RDONLY, O_TRUNC, RENAME_EXCHANGE, RENAME_NOREPLACE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, W_OK } from '../base/posix.js';
import type { SetattrIn } from '../base/fs-types.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import { fingerprintChange, fingerprintKey, sameVersion, type Fingerprint } from '../remote/fingerprint.js';
import type { EntryType, Remote, RemoteEntry } from '../remote/remote.js';
import { RemoteError } from '../remote/remote-error.js';
import type { DataCache, FileReader } from '../data/data-cache.js';
import { ChangedError } from '../data/errors.js';
import { WorkingFile } from '../data/write/working-file.js';
import { UploadFailedError, UploadQueue } from '../data/upload/upload-queue.js';
import type { Base, Journal, JournalRow, Outcome, Priority } from '../store/journal.js';
import { LocalTree, nameOf, parentOf, type LocalEntry, type LocalFile } from './local-tree.js';
import { StoreClosedError } from '../store/catalogue.js';
import type { AttrSource } from '../store/listing-store.js';
import { DEFAULT_CORE_CONFIG, type CoreConfig } from './config.js';
import type { FileSystem, KernelCache, OpContext, OpenReply } from './filesystem.js';
import { InodeTable, type Inode, type InodeAttrs } from './inode-table.js';

/** What one poll round did (for the poller's counters and logs). */
export interface PollRound {
  dirs: number;
  requests: number;
  added: number;
  removed: number;
  changed: number;
  failed: number;
}

/** The listing says the same of an entry as before (type, size, mtime, ETag). */
function sameEntry(a: RemoteEntry, b: RemoteEntry): boolean {
  return a.type === b.type && a.size === b.size && a.mtimeMs === b.mtimeMs && a.etag === b.etag;
}

interface Listing {
  entries: Map<string, RemoteEntry>;
  /** Names in listing order, for stable readdir offsets. */
  names: string[];
  at: number;
  /** Loaded from the store while offline (at = -Infinity): its attributes are unconfirmed. */
  stale?: true;
}

/** A listing of `entries` (in their order) fetched at `at`. */
function toListing(entries: readonly RemoteEntry[], at: number): Listing {
  return { entries: new Map(entries.map((e) => [e.name, e])), names: entries.map((e) => e.name), at };
}

/** Two listings name the same entries in the same order and say the same of each. */
function sameListing(a: Listing, b: Listing): boolean {
  if (a.names.length !== b.names.length) return false;
  return a.names.every((name, i) => {
    const x = a.entries.get(name);
    const y = b.entries.get(name);
    return b.names[i] === name && x !== undefined && y !== undefined && sameEntry(x, y);
  });
}

/**
 * Exact attributes from what the remote said of one object (a stat, or saved attributes);
 * `shownMtimeMs` is shown when it gave no time.
 */
function exactAttrs(s: { type: EntryType; size: number; mtimeMs?: number; etag?: string }, shownMtimeMs: number): InodeAttrs {
  const attrs: InodeAttrs = { type: s.type, size: s.size, sizeKnown: true, mtimeMs: s.mtimeMs ?? shownMtimeMs, exact: true };
  if (s.mtimeMs !== undefined) attrs.remoteMtimeMs = s.mtimeMs;
  if (s.etag !== undefined) attrs.etag = s.etag;
  return attrs;
}

/** The version `attrs` name (the data cache keys a file's bytes by it). */
function fingerprintOf(attrs: InodeAttrs): Fingerprint {
  const fp: Fingerprint = { size: attrs.size };
  if (attrs.remoteMtimeMs !== undefined) fp.mtimeMs = attrs.remoteMtimeMs;
  if (attrs.etag !== undefined) fp.etag = attrs.etag;
  return fp;
}

interface Handle {
  fh: Fh;
  inode: Inode;
  /** Reads of a remote version (undefined for a local file's handle). */
  reader: FileReader | undefined;
  /** Where `reader` reads on the remote (a renamed file's bytes stay at its source until the rename is applied). */
  source: string;
  /**
   * The local file this handle reads and writes (undefined for a remote version's; a remote
   * version's handle joins the local file when the file becomes local, see #makeLocal).
   */
  local: LocalFile | undefined;
  /** The open(2) flags. */
  flags: number;
  /** A write of this mount replaced the version `reader` reads: reopen at the inode's version. */
  outdated?: boolean;
  /** fingerprintKey of the version this handle reads. */
  version: string;
}

/** The write path's settings (RemoteFsOptions.upload). */
export interface UploadOptions {
  /** The journal of this cache dir (opened on the store's database). */
  journal: Journal;
  /** Uploads at once. */
  concurrency: number;
  writeBackDelayMs: number;
  /** fsync waits for the local snapshot ('local') or for the upload ('remote'). */
  fsync: 'local' | 'remote';
  /** Unmount waits this long for pending uploads (what is left stays journaled). */
  drainTimeoutMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/**
 * What the kernel's page cache of one inode can hold. The page cache is per inode, not per
 * handle: every handle's reads fill it. `version` is the only version whose pages it can hold,
 * or MIXED once two versions were open at the same time; `open` counts open handles per
 * version. Kept in a WeakMap on the Inode object, so it goes when the kernel forgets the
 * inode (and with it the inode's pages).
 */
interface PageCacheState {
  version: string | undefined;
  open: Map<string, number>;
}

const MIXED = 'mixed';

interface DirEntry {
  name: string;
  inode: Inode;
}

/**
 * An open directory: the entries it lists, taken once (at the first read, and again on a
 * rewind) so that the kernel's many READDIRPLUS calls of one `ls` page through one snapshot
 * instead of rebuilding the whole listing for every page.
 */
interface DirHandle {
  ino: Ino;
  entries: DirEntry[] | undefined;
  /** The snapshot's file sizes were completed (once, for the first READDIRPLUS). */
  completed: boolean;
}

export interface RemoteFsOptions {
  remote: Remote;
  data: DataCache;
  /** The remote's health state (the circuit breaker); while offline, what was seen is served. */
  health?: { readonly offline: boolean };
  /**
   * Paths with local changes the remote does not have yet: a poll never invalidates them from
   * the remote (the write path's journal answers this; nothing has local changes before it).
   */
  hasLocalChanges?: (path: string) => boolean;
  config?: Partial<CoreConfig>;
  logger: Logger;
  clock?: Clock;
  /** Makes the mount read-write (the remote must be writable). */
  upload?: UploadOptions;
}

const joinPath = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

/** Longest name in bytes (Linux NAME_MAX). */
const NAME_MAX = 255;

/** Stats run at once to complete one directory's attributes (the remote bounds connections too). */
const STAT_CONCURRENCY = 8;

/** The listing entry of `path` for a version of it (what the remote lists there now). */
function listedAs(path: string, type: RemoteEntry['type'], v: { size: number; mtimeMs?: number | undefined; etag?: string | undefined }): RemoteEntry {
  return { name: nameOf(path), type, size: v.size, ...(v.mtimeMs !== undefined ? { mtimeMs: v.mtimeMs } : {}), ...(v.etag !== undefined ? { etag: v.etag } : {}) };
}

const isNotFound = (err: unknown): boolean => err instanceof RemoteError && err.kind === 'not-found';

/** The page-cache version key of a local file's bytes (see #pageCacheOnOpen). */
const LOCAL_VERSION = 'local';
/** Bytes read at a time when the rest of a file is fetched before the remote replaces it. */
const FETCH_REST_CHUNK = 4 << 20;
/** Renames applied on the remote that a read of a working file's base bytes follows. */
const BASE_FOLLOW_ATTEMPTS = 8;

/**
 * Flushes `path` to disk by path: its data (a file: fdatasync) or, for a directory, its
 * entries (fsync: a new or renamed file in it survives a power loss).
 */
async function syncPath(path: string, what: 'data' | 'entries'): Promise<void> {
  const fh = await fsp.open(path, 'r');
  try {
    await (what === 'data' ? fh.datasync() : fh.sync());
  } finally {
    await fh.close();
  }
}

export class RemoteFs implements FileSystem {
  readonly #config: CoreConfig;
  readonly #inodes: InodeTable;
  readonly #remote: Remote;
  readonly #data: DataCache;
  readonly #health: { readonly offline: boolean } | undefined;
  readonly #hasLocalChanges: (path: string) => boolean;
  #kernel: KernelCache | undefined;
  #pollCursor = 0;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** Cached listings, oldest first (re-inserted when refreshed); see #keepListing. */
  readonly #listings = new Map<string, Listing>();
  #listedEntries = 0;
  readonly #listingsInFlight = new Map<string, Promise<Listing>>();
  readonly #statsInFlight = new Map<string, Promise<InodeAttrs>>();
  readonly #handles = new Map<Fh, Handle>();
  readonly #dirHandles = new Map<Fh, DirHandle>();
  readonly #pageCache = new WeakMap<Inode, PageCacheState>();
  /** The size of the version last opened on an inode (a change of it may leave the kernel's size behind). */
  readonly #openedSizes = new WeakMap<Inode, number>();
  /** The size last handed to the kernel for an inode (it clamps buffered reads at it). */
  readonly #kernelSizes = new WeakMap<Inode, number>();
  #nextFh = 1n;
  #dirSnapshots = 0;
  /** Shown for times the remote does not give (never 1970). */
  readonly #mountedAtMs: number;
  // ---- the write path (undefined/empty on a read-only mount) ----
  readonly #queue: UploadQueue | undefined;
  readonly #journal: Journal | undefined;
  readonly #fsyncMode: 'local' | 'remote';
  readonly #drainTimeoutMs: number;
  /** What was still pending when the mount closed (journaled for the next mount). */
  #leftPending: JournalRow[] = [];
  readonly #tree = new LocalTree();
  /** Serialises changes of the tree's names (create, mkdir, unlink, rmdir, rename, symlink). */
  readonly #names = new Mutex();
  /** Snapshot files journaled, with their sizes (dirty bytes until the queue deletes them). */
  readonly #snapshotBytes = new Map<string, number>();
  /** The local file each journaled snapshot was made of. */
  readonly #snapshotOwner = new Map<string, LocalFile>();
  /** Bumped when a local change of a directory completes: a listing fetched across it is refetched. */
  readonly #dirEpochs = new Map<string, number>();
  /** Remote files removed while open for reading: their delete is journaled at the last close. */
  readonly #deferredDeletes = new Map<Inode, { path: string; entry: LocalEntry }>();
  /** The local file an inode's handles read and write (also after it was removed or renamed). */
  readonly #localByInode = new WeakMap<Inode, LocalFile>();

  constructor(o: RemoteFsOptions) {
    // A writable mount shows writable modes (no remote keeps modes: capabilities.modes).
    this.#config = { ...DEFAULT_CORE_CONFIG, ...(o.upload !== undefined ? { fileMode: 0o644, dirMode: 0o755 } : {}), ...o.config };
    this.#remote = o.remote;
    this.#data = o.data;
    this.#health = o.health;
    const outside = o.hasLocalChanges ?? (() => false);
    this.#hasLocalChanges = (path) => this.#tree.has(path) || outside(path);
    this.#log = o.logger;
    this.#clock = o.clock ?? systemClock;
    this.#mountedAtMs = this.#clock.wallNow();
    this.#inodes = new InodeTable({ type: 'dir', size: 0, sizeKnown: true, mtimeMs: this.#mountedAtMs, exact: true }, this.#clock.now(), o.logger);
    this.#fsyncMode = o.upload?.fsync ?? 'local';
    this.#drainTimeoutMs = o.upload?.drainTimeoutMs ?? 0;
    if (o.upload !== undefined) {
      if (!o.remote.capabilities.writable) throw new Error(`remote ${o.remote.id} is not writable`);
      const u = o.upload;
      this.#journal = u.journal;
      this.#queue = new UploadQueue({
        journal: u.journal,
        remote: o.remote,
        snapshotDir: this.#data.snapshotDir,
        clock: this.#clock,
        logger: o.logger,
        concurrency: u.concurrency,
        writeBackDelayMs: u.writeBackDelayMs,
        ...(u.retryBaseMs !== undefined ? { retryBaseMs: u.retryBaseMs } : {}),
        ...(u.retryMaxMs !== undefined ? { retryMaxMs: u.retryMaxMs } : {}),
        // The owner of the snapshot is looked up now: the queue deletes the snapshot (and with
        // it our record of whose it was) right after this, before the microtask runs.
        onUploaded: (row, outcome) => {
          const owner = row.snapshot !== undefined ? this.#snapshotOwner.get(row.snapshot.name) : undefined;
          this.#remoteNowHas(row, outcome);
          queueMicrotask(() => this.#afterUpload(row, outcome, owner));
        },
        onConflict: (row, conflictPath) => queueMicrotask(() => this.#afterConflict(row, conflictPath)),
        onSnapshotDeleted: (name) => this.#releaseSnapshot(name),
      });
      this.#recover();
      this.#queue.start();
    }
  }

  /** The mount accepts changes. */
  get writable(): boolean {
    return this.#queue !== undefined;
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  #inode(ino: Ino): Inode {
    const node = this.#inodes.get(ino);
    if (!node) throw new FsError(Errno.ESTALE, `unknown inode ${ino}`);
    return node;
  }

  #dirInode(ino: Ino): Inode {
    const node = this.#inode(ino);
    if (node.attrs.type !== 'dir') throw new FsError(Errno.ENOTDIR);
    return node;
  }

  /** The listing of a directory, from cache when fresh; one request for concurrent callers. */
  async #listing(path: string, signal: AbortSignal): Promise<Listing> {
    // A directory made here and not on the remote yet has nothing there to list.
    if (this.#tree.createdHere(path)) return { entries: new Map(), names: [], at: this.#clock.now() };
    const cached = this.#listings.get(path);
    if (cached && this.#clock.now() - cached.at < this.#config.dirTtlMs) return cached;
    let pending = this.#listingsInFlight.get(path);
    if (!pending) {
      // Not the caller's signal: the request is shared, so one caller's abort must not fail
      // the others. It is bounded by the remote's own timeouts and the data deadline.
      const shared = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
      pending = this.#fetchListing(path, shared).finally(() => this.#listingsInFlight.delete(path));
      this.#listingsInFlight.set(path, pending);
    }
    try {
      return await raceAbort(pending, signal);
    } catch (err) {
      // Unreachable remote: what we saw is still the best answer (stale, never "deleted"),
      // in this mount or, failing that, in an earlier one.
      if (this.#offline) {
        const seen = cached ?? this.#listings.get(path) ?? this.#storedListing(path);
        if (seen !== undefined) return seen;
      }
      throw err;
    }
  }

  /**
   * Fetches and keeps the listing of `path`. A local change of the directory that completed
   * while the request ran (an upload that the answer may predate) makes it ask again, so a
   * listing never hides what an upload just put there.
   */
  async #fetchListing(path: string, signal: AbortSignal): Promise<Listing> {
    for (let attempt = 1; ; attempt++) {
      const epoch = this.#dirEpochs.get(path) ?? 0;
      const entries = await this.#remote.list(path, signal);
      if ((this.#dirEpochs.get(path) ?? 0) !== epoch && attempt < 3) continue;
      const listing = toListing(entries, this.#clock.now());
      this.#saveListing(path, listing, this.#listings.get(path));
      this.#keepListing(path, listing);
      return listing;
    }
  }

  /** The remote's id, as the store keys its rows. */
  get #remoteId(): string {
    return this.#remote.id;
  }

  /** Runs a store write or read; a failing store is logged (persistence is best effort). */
  #persisted<T>(what: string, path: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      // After unmount the store is closed while late answers still arrive: not worth a warning.
      if (err instanceof StoreClosedError) this.#log.debug({ path, what }, 'store closed: not persisted');
      else this.#log.warn({ err, path, what }, 'persisted listings: store failed');
      return undefined;
    }
  }

  /** Saves a fetched listing unless it says exactly what the one it replaces said. */
  #saveListing(path: string, listing: Listing, old: Listing | undefined): void {
    if (old !== undefined && old.stale !== true && sameListing(old, listing)) return;
    const entries = listing.names.flatMap((n) => listing.entries.get(n) ?? []);
    this.#persisted('save listing', path, () => this.#data.listings.saveListing(this.#remoteId, path, entries, this.#clock.wallNow()));
  }

  /** The listing an earlier mount saved of `path`, kept in memory as stale; undefined if none. */
  #storedListing(path: string): Listing | undefined {
    const stored = this.#persisted('load listing', path, () => this.#data.listings.loadListing(this.#remoteId, path));
    if (stored === undefined) return undefined;
    const listing: Listing = { ...toListing(stored.entries, -Infinity), stale: true };
    this.#keepListing(path, listing);
    this.#log.debug({ dir: path, entries: listing.names.length, fetchedAt: new Date(stored.fetchedAtMs).toISOString() }, 'offline: serving a saved listing');
    return listing;
  }

  #saveAttrs(path: string, source: AttrSource, attrs: InodeAttrs): void {
    if (!attrs.sizeKnown) return;
    const saved = { type: attrs.type, size: attrs.size, fetchedAtMs: this.#clock.wallNow(), ...(attrs.remoteMtimeMs !== undefined ? { mtimeMs: attrs.remoteMtimeMs } : {}), ...(attrs.etag !== undefined ? { etag: attrs.etag } : {}) };
    this.#persisted(`save ${source} attributes`, path, () => this.#data.listings.saveAttrs(this.#remoteId, path, source, saved));
  }

  /**
   * The attributes `source` saved for `node`'s path, as exact attributes, when what we know
   * does not contradict them (the one fingerprint rule): undefined otherwise.
   */
  #storedAttrs(node: Inode, source: AttrSource): InodeAttrs | undefined {
    const s = this.#persisted(`load ${source} attributes`, node.path, () => this.#data.listings.loadAttrs(this.#remoteId, node.path, source));
    if (s === undefined || s.type !== node.attrs.type) return undefined;
    const attrs = exactAttrs(s, node.attrs.mtimeMs);
    if (node.attrs.sizeKnown && !sameVersion(fingerprintOf(node.attrs), fingerprintOf(attrs))) return undefined;
    return attrs;
  }

  /** The remote is unreachable (its health state says so). */
  get #offline(): boolean {
    return this.#health?.offline === true;
  }

  /** Caches `listing` as the newest, then drops the oldest ones past the entry budget. */
  #keepListing(path: string, listing: Listing): void {
    this.#dropListing(path);
    this.#listings.set(path, listing);
    this.#listedEntries += listing.names.length;
    for (const [oldest] of this.#listings) {
      if (this.#listedEntries <= this.#config.listingCacheMaxEntries || oldest === path) break;
      this.#dropListing(oldest);
    }
  }

  #dropListing(path: string): void {
    const old = this.#listings.get(path);
    if (old === undefined) return;
    this.#listings.delete(path);
    this.#listedEntries -= old.names.length;
  }

  /** Listings cached and the entries they hold (memory bound: listingCacheMaxEntries). */
  get listingCache(): { listings: number; entries: number } {
    return { listings: this.#listings.size, entries: this.#listedEntries };
  }

  #attrsFromEntry(e: RemoteEntry, exactListing: boolean): InodeAttrs {
    const exact = exactListing && e.size !== undefined && e.mtimeMs !== undefined;
    const attrs: InodeAttrs = {
      type: e.type,
      size: e.size ?? 0,
      sizeKnown: e.type !== 'file' || e.size !== undefined,
      mtimeMs: e.mtimeMs ?? e.approxMtimeMs ?? this.#mountedAtMs,
      exact: e.type === 'dir' || exact,
    };
    if (e.mtimeMs !== undefined) attrs.remoteMtimeMs = e.mtimeMs;
    if (e.etag !== undefined) attrs.etag = e.etag;
    return attrs;
  }

  /** Records what a listing says of `path`, keeping what we know better (see #merge). */
  #fromListing(path: string, e: RemoteEntry, now: number): Inode {
    const fromListing = this.#attrsFromEntry(e, this.#remote.capabilities.exactListing);
    const known = this.#inodes.byPath(path);
    if (known !== undefined && this.#knowsBetter(known.attrs, fromListing)) {
      // The listing confirms nothing new: keep the attributes and when they were confirmed
      // (so their TTL still runs), unless it at least repeats the exact size.
      return this.#inodes.upsert(path, known.attrs, fromListing.sizeKnown ? now : known.attrsAt);
    }
    return this.#inodes.upsert(path, fromListing, now);
  }

  /**
   * True when `known` is more precise than an inexact listing's `listed` and not contradicted
   * by it: an exact stat against a listing that gives no size, or the same size with a rounded
   * mtime (an HTML index).
   */
  #knowsBetter(known: InodeAttrs, listed: InodeAttrs): boolean {
    if (listed.exact || known.type !== listed.type) return false;
    if (!listed.sizeKnown) return known.sizeKnown;
    return known.exact && known.size === listed.size;
  }

  /** Resolves `name` in directory `parent`; undefined means it does not exist. */
  async #resolve(parent: Ino, name: string, signal: AbortSignal): Promise<Inode | undefined> {
    const dir = this.#dirInode(parent);
    if (name === '.') return dir;
    const path = joinPath(dir.path, name);
    const local = this.#tree.get(path);
    if (local !== undefined) return this.#localNode(path, local, signal);
    const listing = await this.#listing(dir.path, signal);
    const e = listing.entries.get(name);
    if (!e) return undefined;
    const node = this.#fromListing(path, e, listing.stale ? -Infinity : this.#clock.now());
    if (node.attrs.sizeKnown) return node;
    try {
      await this.#refreshFile(node, signal);
    } catch (err) {
      if (err instanceof RemoteError && err.kind === 'not-found') return undefined; // listed, but gone
      throw err;
    }
    return node;
  }

  /**
   * Stats the files of `entries` whose size is not known, STAT_CONCURRENCY at a time. Failures
   * leave an entry incomplete (readdir then hands it out without attributes).
   */
  async #complete(entries: readonly DirEntry[], signal: AbortSignal): Promise<void> {
    const todo = entries.filter((e) => !e.inode.attrs.sizeKnown);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length && !signal.aborted) {
        const e = todo[next++] as DirEntry;
        await this.#refreshFile(e.inode, signal).catch((err: unknown) => this.#log.debug({ err, path: e.inode.path }, 'could not complete attributes'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, todo.length) }, worker));
  }

  /** What `stat` shows for an inode: the remote's size and mtime, our owner and modes. */
  #attr(node: Inode): Attr {
    this.#kernelSizes.set(node, node.attrs.size);
    const c = this.#config;
    const a = node.attrs;
    const mode = a.type === 'dir' ? S_IFDIR | c.dirMode : a.type === 'symlink' ? S_IFLNK | 0o777 : S_IFREG | c.fileMode;
    const nlink = a.type === 'dir' ? this.#dirLinks(node) : 1;
    return { ino: node.ino, size: a.size, atimeMs: a.mtimeMs, mtimeMs: a.mtimeMs, ctimeMs: a.mtimeMs, mode, nlink, uid: c.uid, gid: c.gid };
  }

  /**
   * A directory's links: 2 + its subdirectories, counted from its listing while that is fresh
   * (or it exists only here). Otherwise 1, the convention for "not counted" (find then skips
   * its leaf optimisation), never a wrong count.
   */
  #dirLinks(node: Inode): number {
    if (node.unlinked === true) return 0;
    const here = this.#tree.createdHere(node.path);
    const listing = here ? undefined : this.#listings.get(node.path);
    if (!here && (listing === undefined || this.#clock.now() - listing.at >= this.#config.dirTtlMs)) return 1;
    const local = this.#tree.children(node.path);
    let n = 2;
    if (listing !== undefined) {
      for (const name of listing.names) if (!local.has(name) && listing.entries.get(name)?.type === 'dir') n++;
    }
    for (const e of local.values()) if (e.kind === 'dir' || (e.kind === 'moved' && e.attrs?.type === 'dir')) n++;
    return n;
  }

  /** An entry for `node`; the caller hands it out, so it counts one kernel reference. */
  #entry(node: Inode): EntryOut {
    this.#inodes.ref(node);
    return { nodeid: node.ino, generation: 0n, entryTtlMs: this.#config.entryTtlMs, attrTtlMs: this.#config.attrTtlMs, attr: this.#attr(node) };
  }

  async lookup(op: OpContext, parent: Ino, name: string): Promise<EntryOut> {
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
    const node = await this.#resolve(parent, name, op.signal);
    if (node) return this.#entry(node);
    // A negative entry: the kernel caches "no such name" for negativeTtl.
    const ttl = this.#config.negativeTtlMs;
    if (ttl <= 0) throw new FsError(Errno.ENOENT);
    const none = asIno(0n);
    return { nodeid: none, generation: 0n, entryTtlMs: ttl, attrTtlMs: 0, attr: { ino: none, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, mode: 0, nlink: 0, uid: 0, gid: 0 } };
  }

  forget(ino: Ino, nlookup: bigint): void {
    this.#inodes.forget(ino, nlookup);
  }

  /** Current attributes; refreshed from the remote when older than attrTtl. */
  async getattr(op: OpContext, ino: Ino, _fh?: Fh): Promise<AttrOut> {
    const node = this.#inode(ino);
    const local = this.#localFileOf(node);
    if (local !== undefined) node.attrs = this.#localAttrs(local);
    // Local entries (and removed ones) are what we say they are: the remote does not know them yet.
    if (local !== undefined || node.unlinked === true || this.#tree.has(node.path)) return { attrTtlMs: this.#config.attrTtlMs, attr: this.#attr(node) };
    const fresh = node.ino === ROOT_INO || (node.attrs.sizeKnown && this.#clock.now() - node.attrsAt < this.#config.attrTtlMs);
    if (!fresh && node.attrs.type === 'dir') node.attrsAt = this.#clock.now();
    else if (!fresh) await this.#refreshFile(node, op.signal);
    return { attrTtlMs: this.#config.attrTtlMs, attr: this.#attr(node) };
  }

  async #refreshFile(node: Inode, signal: AbortSignal): Promise<void> {
    let pending = this.#statsInFlight.get(node.path);
    if (!pending) {
      const shared = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
      pending = this.#remote.stat(node.path, shared).then((s) => {
        const attrs = exactAttrs(s, node.attrs.mtimeMs);
        this.#saveAttrs(node.path, 'stat', attrs); // once per stat, not once per waiter
        return attrs;
      }).finally(() => this.#statsInFlight.delete(node.path));
      this.#statsInFlight.set(node.path, pending);
    }
    try {
      node.attrs = await raceAbort(pending, signal);
      node.attrsAt = this.#clock.now();
    } catch (err) {
      if (err instanceof RemoteError && err.kind === 'not-found') {
        this.#forgetListingOf(node.path);
        this.#persisted('forget attributes', node.path, () => this.#data.listings.forgetAttrs(this.#remoteId, node.path));
      }
      if (this.#offline) {
        // Unreachable remote: the last stat (of this mount or an earlier one) or the
        // attributes known are the answer (stale, not unknown).
        const stored = this.#storedAttrs(node, 'stat');
        if (stored !== undefined) node.attrs = stored;
        if (node.attrs.sizeKnown) return;
      }
      throw err;
    }
  }

  #forgetListingOf(path: string): void {
    const slash = path.lastIndexOf('/');
    this.#dropListing(slash < 0 ? '' : path.slice(0, slash));
  }

  /** Opens directory `ino` for reading; pair with releasedir. */
  async opendir(_op: OpContext, ino: Ino): Promise<OpenReply> {
    this.#dirInode(ino);
    const fh = asFh(this.#nextFh++);
    this.#dirHandles.set(fh, { ino, entries: undefined, completed: false });
    return { fh };
  }

  /**
   * The entries of an open directory: its snapshot, taken at the first call and retaken on a
   * rewind (a read from offset 0). A handle the core does not know (fh 0 from a kernel that
   * skipped opendir) reads the directory afresh.
   */
  async #dirEntries(fh: Fh, ino: Ino, rewind: boolean, plus: boolean, signal: AbortSignal): Promise<DirEntry[]> {
    let h = this.#dirHandles.get(fh);
    if (h === undefined || h.ino !== ino) h = { ino, entries: undefined, completed: false }; // not kept
    if (h.entries === undefined || rewind) {
      h.entries = await this.#list(ino, signal);
      h.completed = false;
      this.#dirSnapshots++;
    }
    if (plus && !h.completed) {
      await this.#complete(h.entries, signal);
      h.completed = true;
    }
    return h.entries;
  }

  /** Directory snapshots taken so far (one per opendir and rewind, never one per page). */
  get dirSnapshots(): number {
    return this.#dirSnapshots;
  }

  async readdir(op: OpContext, ino: Ino, fh: Fh, offset: bigint, sink: DirentSink): Promise<void> {
    const entries = await this.#dirEntries(fh, ino, offset === 0n, sink.plus, op.signal);
    let off = Number(offset);
    if (off === 0) {
      if (!sink.add({ name: '.', ino, type: DT.DIR, offset: 1n })) return;
      off = 1;
    }
    if (off === 1) {
      if (!sink.add({ name: '..', ino, type: DT.DIR, offset: 2n })) return;
      off = 2;
    }
    for (let i = off - 2; i < entries.length; i++) {
      const e = entries[i];
      if (!e) break;
      const type = e.inode.attrs.type === 'dir' ? DT.DIR : e.inode.attrs.type === 'symlink' ? DT.LNK : DT.REG;
      const dirent = { name: e.name, ino: e.inode.ino, type, offset: BigInt(i + 3) };
      if (!sink.plus || !e.inode.attrs.sizeKnown) {
        // Without a known size no attributes go out: nodeid 0 makes the kernel LOOKUP it.
        if (!sink.add(dirent)) return;
        continue;
      }
      // The snapshot may hold an inode that FORGET dropped since: hand out the live one.
      const node = this.#inodes.revive(e.inode);
      const entry: EntryOut = { nodeid: node.ino, generation: 0n, entryTtlMs: this.#config.entryTtlMs, attrTtlMs: this.#config.attrTtlMs, attr: this.#attr(node) };
      if (!sink.add(dirent, entry)) return;
      this.#inodes.ref(node); // only entries the kernel accepted take a reference
    }
  }

  async releasedir(_op: OpContext, _ino: Ino, fh: Fh): Promise<void> {
    this.#dirHandles.delete(fh);
  }

  get openDirs(): number {
    return this.#dirHandles.size;
  }

  /** Entries of a directory in listing order, then the ones made here. */
  async #list(ino: Ino, signal: AbortSignal): Promise<DirEntry[]> {
    const dir = this.#dirInode(ino);
    const listing = await this.#listing(dir.path, signal);
    const now = listing.stale ? -Infinity : this.#clock.now();
    const local = this.#tree.children(dir.path);
    const out: DirEntry[] = [];
    for (const name of listing.names) {
      const e = listing.entries.get(name);
      if (!e || local.has(name)) continue;
      out.push({ name, inode: this.#fromListing(joinPath(dir.path, name), e, now) });
    }
    for (const [name, e] of local) {
      const node = await this.#localNode(joinPath(dir.path, name), e, signal).catch((err: unknown) => {
        this.#log.debug({ err, path: joinPath(dir.path, name) }, 'readdir: local entry without attributes');
        return undefined;
      });
      if (node !== undefined) out.push({ name, inode: node });
    }
    return out;
  }

  /** A symlink's target text; EINVAL for anything else (as readlink(2)). */
  async readlink(op: OpContext, ino: Ino): Promise<string> {
    const node = this.#inode(ino);
    if (node.attrs.type !== 'symlink' || !this.#remote.readlink) throw new FsError(Errno.EINVAL);
    return this.#remote.readlink(this.#remoteLocation(node), op.signal);
  }

  async open(op: OpContext, ino: Ino, flags: number): Promise<OpenReply> {
    const writes = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    if (writes && !this.writable) throw new FsError(Errno.EROFS);
    const node = this.#inode(ino);
    if (node.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
    if (node.attrs.type === 'symlink') throw new FsError(Errno.ELOOP, 'symlinks are not followed');
    const local = this.#localFileOf(node) ?? (writes ? await this.#makeLocal(node, op.signal) : undefined);
    if (local !== undefined) return this.#openLocal(node, local, flags, op.signal);
    const moved = this.#tree.get(node.path);
    const source = this.#remoteLocation(node);
    if (moved === undefined && (!node.attrs.exact || this.#clock.now() - node.attrsAt >= this.#config.attrTtlMs)) await this.#refreshFile(node, op.signal);
    if (this.#offline) {
      // The last open's attributes name the version whose bytes the cache holds (a listing
      // may know the same version without its ETag, which would key another cache file).
      const opened = this.#storedAttrs(node, 'open');
      if (opened !== undefined) node.attrs = opened;
    }
    const fp = fingerprintOf(node.attrs);
    const reader = await this.#data.openFile(source, fp, node.attrs.size);
    if (moved === undefined) this.#saveAttrs(node.path, 'open', node.attrs);
    // The version as the cache names it (the same version may be named more fully there).
    const version = fingerprintKey(reader.fingerprint);
    const pages = this.#pageCacheOnOpen(node, version);
    let directIo = pages.directIo;
    const keepCache = pages.keepCache;
    const told = this.#kernelSizes.get(node);
    const before = this.#openedSizes.get(node);
    this.#openedSizes.set(node, node.attrs.size);
    if ((told !== undefined && told !== node.attrs.size) || (before !== undefined && before !== node.attrs.size)) {
      // The kernel may still believe the old size and would cut buffered reads of this version
      // at it (a truncated file): this handle reads past the page cache, and the kernel is
      // told to drop the old attributes (off the request path) for everyone after it. Not
      // only when we know we told it the old size: the kernel drops the attributes of a reply
      // that raced an invalidation (its attr_version), so what we sent is not what it holds.
      directIo = true;
      this.#kernel?.invalidateInode(node.ino);
    }
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, { fh, inode: node, reader, source, local: undefined, flags, version });
    this.#inodes.handleOpened(node);
    this.#log.debug({ fh, path: node.path, debugId: reader.debugId, keepCache, directIo }, 'opened');
    return directIo ? { fh, directIo } : { fh, keepCache };
  }

  /**
   * Decides how an open of `version` may use the kernel's page cache, so that no read ever
   * returns pages of another version:
   * - another version is still open (a slow reader of the old one): this handle bypasses the
   *   page cache (direct I/O), and the cache is MIXED from now on;
   * - the cache can hold only this version: KEEP_CACHE;
   * - otherwise the open drops the inode's pages (no KEEP_CACHE) and the cache holds only this
   *   version from now on.
   */
  #pageCacheOnOpen(node: Inode, version: string): { keepCache: boolean; directIo: boolean } {
    let st = this.#pageCache.get(node);
    if (st === undefined) {
      st = { version: undefined, open: new Map() };
      this.#pageCache.set(node, st);
    }
    st.open.set(version, (st.open.get(version) ?? 0) + 1);
    if ([...st.open.keys()].some((v) => v !== version)) {
      st.version = MIXED;
      return { keepCache: false, directIo: true };
    }
    if (st.version === version) return { keepCache: true, directIo: false };
    st.version = version;
    return { keepCache: false, directIo: false };
  }

  #pageCacheOnClose(node: Inode, version: string): void {
    const st = this.#pageCache.get(node);
    if (st === undefined) return;
    const n = (st.open.get(version) ?? 0) - 1;
    if (n > 0) st.open.set(version, n);
    else st.open.delete(version);
  }

  async read(op: OpContext, _ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer> {
    const h = this.#handles.get(fh);
    if (!h) throw new FsError(Errno.EBADF, `unknown file handle ${fh}`);
    // A handle of the remote version reads the local one once there is one (your own writes).
    const local = h.local ?? this.#localFileOf(h.inode);
    if (local !== undefined) return (await this.#working(local, op.signal)).read(offset, size, op.signal);
    if (h.reader === undefined) throw new FsError(Errno.EBADF, `file handle ${fh} has nothing to read`);
    if (h.outdated === true) {
      // Our own write replaced the version this handle opened (POSIX: every handle sees it).
      const old = h.reader;
      h.reader = await this.#data.openFile(h.inode.path, fingerprintOf(h.inode.attrs), h.inode.attrs.size);
      h.source = h.inode.path;
      h.outdated = false;
      await old.close();
    }
    try {
      return await h.reader.read(offset, size, op.signal);
    } catch (err) {
      // Renames applied on the remote moved this version's bytes (another file may have their
      // old name by now).
      if ((isNotFound(err) || (err instanceof ChangedError && this.#remoteLocation(h.inode) !== h.source)) && h.inode.unlinked !== true) return this.#readMoved(h, offset, size, op.signal, err);
      if (err instanceof ChangedError) {
        // The remote object changed under this handle: its next open must stat again.
        h.inode.attrsAt = -Infinity;
        const st = this.#pageCache.get(h.inode);
        if (st !== undefined) st.version = MIXED;
      }
      throw err;
    }
  }

  /**
   * `h`'s bytes are gone from where its reader read them: renames applied on the remote moved
   * them (the same version), one or several in a row, maybe one being applied right now. Reads
   * on where they are now: the source of the file's pending rename, or its own name once that
   * is applied.
   */
  async #readMoved(h: Handle, offset: number, size: number, signal: AbortSignal, first: unknown): Promise<Buffer> {
    let err = first;
    let tried: string | undefined = h.source;
    for (let attempt = 1; attempt <= BASE_FOLLOW_ATTEMPTS; attempt++) {
      let where = this.#remoteLocation(h.inode);
      if (where === tried) {
        // Not moved as far as we know: a rename of it may be being applied right now.
        if (this.#queue === undefined || !(await this.#queue.settledAt(where, signal))) break;
        where = this.#remoteLocation(h.inode);
      }
      if (h.reader === undefined) break;
      tried = where;
      const old = h.reader;
      try {
        let reader = await this.#openMoved(where, old.sizeBytes, signal);
        if (h.reader === old) {
          h.reader = reader;
          h.source = where;
          await old.close();
        } else {
          // A concurrent read of this handle moved it first: its reader is the one kept.
          await reader.close();
          reader = h.reader ?? reader;
        }
        return await reader.read(offset, size, signal);
      } catch (next) {
        if (!(isNotFound(next) || next instanceof ChangedError)) throw next;
        err = next;
      }
    }
    throw err;
  }

  /** Where the remote has `node`'s bytes now: the source of its pending rename, else its name. */
  #remoteLocation(node: Inode): string {
    const e = this.#tree.get(node.path);
    return e?.kind === 'moved' ? e.source : node.path;
  }

  async release(_op: OpContext, _ino: Ino, fh: Fh): Promise<void> {
    await this.#closeHandle(fh);
  }

  async #closeHandle(fh: Fh): Promise<void> {
    const h = this.#handles.get(fh);
    if (!h) return;
    this.#handles.delete(fh);
    this.#pageCacheOnClose(h.inode, h.version);
    this.#inodes.handleClosed(h.inode);
    if (h.local === undefined) {
      this.#deleteIfLast(h.inode);
      await h.reader?.close();
      return;
    }
    await h.reader?.close(); // a handle of the remote version that joined the local file
    const lf = h.local;
    lf.handles--;
    if ((h.flags & O_ACCMODE) !== O_RDONLY) lf.writers--;
    if (lf.dirty && lf.writers === 0) {
      // close(2) saw flush's answer already; this catches a release without a flush.
      await this.#commit(lf, 'background', this.#deadlineSignal()).catch((err: unknown) => this.#log.error({ err, path: lf.path }, 'close: the file could not be saved for upload; it stays in memory until unmount'));
    }
    await this.#settle(lf);
  }

  /**
   * The file `old` read was renamed to `path` on the remote (its source is gone): reads go on
   * there. A remote may give the moved object a new version name (an ETag): the one there
   * now is taken if it has the same size, else the handle's file changed (ESTALE).
   */
  async #openMoved(path: string, size: number, signal: AbortSignal): Promise<FileReader> {
    const st = await this.#remote.stat(path, signal);
    if (st.type !== 'file' || st.size !== size) throw new FsError(Errno.ESTALE, `${path} changed while it was being renamed`);
    return this.#data.openFile(path, fingerprintOf(exactAttrs(st, this.#mountedAtMs)), st.size);
  }

  /** The last handle of a remote file removed while open closed: its delete is journaled now. */
  #deleteIfLast(node: Inode): void {
    const d = this.#deferredDeletes.get(node);
    if (d === undefined || node.openHandles > 0) return;
    this.#deferredDeletes.delete(node);
    const e = this.#tree.get(d.path);
    // Journaled already: something new took the name meanwhile (#journalDeferredDelete).
    if (e !== d.entry || e.kind !== 'gone' || e.pendingDelete === undefined || this.#queue === undefined) return;
    this.#queue.delete(d.path, e.pendingDelete);
    this.#tree.set(d.path, { kind: 'gone' });
  }

  /**
   * Something new takes `path`: a delete still waiting for a last close is journaled first,
   * once the handles still open on the removed file have the bytes they have not read yet
   * (the new file replaces the old one on the remote). Called holding `#names`.
   */
  async #journalDeferredDelete(path: string, signal: AbortSignal): Promise<void> {
    const waiting = (): Base | undefined => {
      const e = this.#tree.get(path);
      return e?.kind === 'gone' ? e.pendingDelete : undefined;
    };
    if (waiting() === undefined || this.#queue === undefined) return;
    for (const [node, d] of [...this.#deferredDeletes]) if (d.path === path) await this.#fetchRestForOpenHandles(node, signal);
    const base = waiting(); // the last handle may have closed meanwhile (and journaled it)
    if (base === undefined) return;
    this.#queue.delete(path, base);
    this.#tree.set(path, { kind: 'gone' });
    for (const [node, d] of this.#deferredDeletes) if (d.path === path) this.#deferredDeletes.delete(node);
  }

  // ---- Writes --------------------------------------------------------------------------
  //
  // A file being written is a LocalFile (local-tree.ts) with a WorkingFile: writes land there
  // at once and reads see them. close (flush), fsync and a truncate or utimens without an
  // open handle freeze it into a snapshot (fdatasync'ed, its directory fsync'ed) and journal
  // a put of it, in one transaction: from then on a crash loses nothing (docs/SEMANTICS.md).
  // The upload queue applies the journal in the background (write-back delay) or at once
  // (fsync with --fsync remote, unmount). Names (create, mkdir, unlink, rmdir, rename of a
  // file) are journaled changes too and show at once through the LocalTree laid over the
  // listings; a rename of a directory and a symlink are made on the remote synchronously.
  // Each LocalFile goes when its last handle closed and the journal has nothing of its path:
  // its path is then the remote's again, with the version the upload made.

  #writableOrThrow(): { queue: UploadQueue; journal: Journal } {
    if (this.#queue === undefined || this.#journal === undefined) throw new FsError(Errno.EROFS);
    return { queue: this.#queue, journal: this.#journal };
  }

  /** Bounded by the data deadline, so a writer waiting for room gets ENOSPC before the kernel gives up. */
  #deadlineSignal(signal?: AbortSignal): AbortSignal {
    const deadline = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
    return signal === undefined ? deadline : anySignal([signal, deadline]);
  }

  #checkName(name: string): void {
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
  }

  /** The local file `node` reads and writes, if its bytes are local. */
  #localFileOf(node: Inode): LocalFile | undefined {
    const bound = this.#localByInode.get(node);
    if (bound !== undefined && (node.unlinked === true || bound.path === node.path)) return bound;
    if (node.unlinked === true) return undefined;
    const e = this.#tree.get(node.path);
    if (e?.kind !== 'file') return undefined;
    this.#localByInode.set(node, e.file);
    return e.file;
  }

  #localAttrs(lf: LocalFile): InodeAttrs {
    return { type: 'file', size: lf.wf?.size ?? lf.size, sizeKnown: true, mtimeMs: lf.mtimeMs, exact: true };
  }

  /** The inode of a local entry of the tree (undefined for a tombstone). */
  async #localNode(path: string, e: LocalEntry, signal: AbortSignal): Promise<Inode | undefined> {
    const now = this.#clock.now();
    const known = this.#inodes.byPath(path);
    switch (e.kind) {
      case 'gone':
        return undefined;
      case 'file': {
        const attrs = this.#localAttrs(e.file);
        const node = known ?? this.#inodes.upsert(path, attrs, now);
        node.attrs = attrs;
        node.attrsAt = now;
        this.#localByInode.set(node, e.file);
        return node;
      }
      case 'dir':
        if (known !== undefined && known.attrs.type === 'dir') return known;
        return this.#inodes.upsert(path, { type: 'dir', size: 0, sizeKnown: true, mtimeMs: this.#clock.wallNow(), exact: true }, now);
      case 'moved': {
        if (e.attrs === undefined) {
          // After a restart: the bytes are at the source until the rename is applied, then here.
          const st = await this.#remote.stat(e.source, signal).catch(async (err: unknown) => {
            if (err instanceof RemoteError && err.kind === 'not-found') return this.#remote.stat(path, signal);
            throw err;
          });
          e.attrs = exactAttrs(st, this.#mountedAtMs);
        }
        if (known !== undefined) {
          known.attrs = e.attrs;
          known.attrsAt = now;
          return known;
        }
        return this.#inodes.upsert(path, e.attrs, now);
      }
    }
  }

  #newLocalFile(path: string, base: Base, onRemote: boolean, size: number, mtimeMs: number): LocalFile {
    return { path, wf: undefined, opening: undefined, snapshot: undefined, kept: undefined, size, mtimeMs, base, onRemote, dirty: false, contentDirty: false, unsynced: false, handles: 0, writers: 0, busy: 0, unlinked: false, committing: Promise.resolve(), baseReader: undefined, source: undefined };
  }

  /** Makes the remote file `node` local (a write is coming): its bytes are fetched as needed. */
  async #makeLocal(node: Inode, signal: AbortSignal): Promise<LocalFile> {
    this.#writableOrThrow();
    const moved = this.#tree.get(node.path);
    const source = this.#remoteLocation(node);
    if (moved === undefined && (!node.attrs.exact || this.#clock.now() - node.attrsAt >= this.#config.attrTtlMs)) await this.#refreshFile(node, signal);
    const again = this.#localFileOf(node); // another open made it meanwhile
    if (again !== undefined) return again;
    const fp = fingerprintOf(node.attrs);
    const base: Base = moved?.kind === 'moved' ? { kind: 'any' } : { kind: 'version', version: fp };
    const lf = this.#newLocalFile(node.path, base, true, node.attrs.size, node.attrs.mtimeMs);
    lf.source = { path: source, fingerprint: fp, size: node.attrs.size };
    this.#tree.set(node.path, { kind: 'file', file: lf });
    this.#localByInode.set(node, lf);
    // Handles opened for reading before read the local file from now on (your own writes),
    // and count as its handles: it is neither retired nor closed under them. (Their readers
    // close with them: a read of one may be running now.)
    for (const h of this.#handles.values()) {
      if (h.inode !== node || h.local !== undefined) continue;
      h.local = lf;
      lf.handles++;
    }
    return lf;
  }

  /**
   * The working file of `lf`, opened on first need. `truncateTo`: the caller truncates it to
   * this length next, so bytes past it are neither fetched nor counted (an O_TRUNC of a file
   * larger than the cache needs no room for its old bytes).
   */
  async #working(lf: LocalFile, signal: AbortSignal, truncateTo?: number): Promise<WorkingFile> {
    if (lf.wf !== undefined) return lf.wf;
    if (truncateTo !== undefined && lf.opening === undefined && truncateTo < lf.size) {
      lf.size = truncateTo;
      if (truncateTo === 0) lf.snapshot = undefined; // nothing of it is needed
    }
    lf.opening ??= this.#openWorking(lf).then(
      (wf) => {
        lf.wf = wf;
        lf.opening = undefined;
        return wf;
      },
      (err: unknown) => {
        lf.opening = undefined;
        throw err;
      },
    );
    return raceAbort(lf.opening, signal);
  }

  async #openWorking(lf: LocalFile): Promise<WorkingFile> {
    const queue = this.#writableOrThrow().queue;
    const space = { reserve: (bytes: number, signal: AbortSignal) => this.#data.reserveDirty(bytes, signal), release: (bytes: number) => this.#data.releaseDirty(bytes) };
    const signal = this.#deadlineSignal();
    if (lf.snapshot !== undefined) {
      try {
        return await WorkingFile.ofSnapshot({ dir: this.#data.workDir, space, size: lf.size }, lf.kept?.name === lf.snapshot ? lf.kept.path : queue.snapshotPath(lf.snapshot));
      } catch (err) {
        // Uploaded and deleted since: the remote version it made is the base now.
        if ((err as { code?: unknown }).code !== 'ENOENT' || lf.source === undefined) throw err;
        lf.snapshot = undefined;
      }
    }
    const src = lf.source;
    if (src === undefined || lf.size === 0) return WorkingFile.create({ dir: this.#data.workDir, space, size: lf.size, baseBytes: 0 }, signal);
    return WorkingFile.create(
      {
        dir: this.#data.workDir,
        space,
        size: lf.size,
        baseBytes: Math.min(src.size, lf.size),
        base: async (offset, length, sig) => {
          // Where the version is now: each rename of it applied on the remote moves lf.source along.
          const tracked = (): string => (lf.source?.fingerprint === src.fingerprint ? lf.source.path : src.path);
          let missingAt: string | undefined;
          for (let attempt = 1; ; attempt++) {
            // Not found where it was tracked: the rename to lf.path may be applied and not reported yet.
            const where = tracked() === missingAt ? lf.path : tracked();
            let at = lf.baseReader;
            if (at === undefined || at.path !== where) {
              const old = at;
              // Moved: the object there now, if it is as large (a remote may give it a new ETag).
              at = { path: where, reader: old === undefined && attempt === 1 ? this.#data.openFile(where, src.fingerprint, src.size) : this.#openMoved(where, src.size, sig) };
              lf.baseReader = at;
              if (old !== undefined) void old.reader.then((r) => r.close(), () => undefined);
            }
            try {
              return await (await at.reader).read(offset, length, sig);
            } catch (err) {
              // A chain of renames applied on the remote meanwhile (another file may have the
              // old name by now): follow it a few steps.
              const movedOn = tracked() !== at.path;
              if (!(isNotFound(err) || (err instanceof ChangedError && movedOn)) || attempt >= BASE_FOLLOW_ATTEMPTS) throw err;
              if (lf.baseReader === at) {
                lf.baseReader = undefined;
                void at.reader.then((r) => r.close(), () => undefined);
              }
              // Not moved as far as we know: a rename of it may be being applied right now.
              if (!movedOn && this.#queue !== undefined && (await this.#queue.settledAt(at.path, sig))) continue;
              missingAt = at.path;
            }
          }
        },
      },
      signal,
    );
  }

  #openLocal(node: Inode, lf: LocalFile, flags: number, signal: AbortSignal): Promise<OpenReply> {
    return this.#withHandle(node, lf, flags, async () => {
      // Opened now: an open handle keeps its bytes (the snapshot's fd) whatever uploads do.
      const truncate = (flags & O_TRUNC) !== 0 && (flags & O_ACCMODE) !== O_RDONLY;
      const wf = await this.#working(lf, signal, truncate ? 0 : undefined);
      if (truncate) {
        await wf.truncate(0, this.#deadlineSignal(signal));
        this.#changed(lf, node);
      }
    });
  }

  /** Counts a handle on `lf` while `prepare` runs (so nothing retires it meanwhile), then opens it. */
  async #withHandle(node: Inode, lf: LocalFile, flags: number, prepare: () => Promise<void>): Promise<OpenReply> {
    const writer = (flags & O_ACCMODE) !== O_RDONLY;
    lf.handles++;
    if (writer) lf.writers++;
    try {
      await prepare();
    } catch (err) {
      lf.handles--;
      if (writer) lf.writers--;
      await this.#settle(lf);
      throw err;
    }
    this.#localByInode.set(node, lf);
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, { fh, inode: node, reader: undefined, source: node.path, local: lf, flags, version: LOCAL_VERSION });
    this.#inodes.handleOpened(node);
    const pages = this.#pageCacheOnOpen(node, LOCAL_VERSION);
    this.#log.debug({ fh, path: node.path, flags }, 'opened for local I/O');
    return pages.directIo ? { fh, directIo: true } : { fh, keepCache: pages.keepCache };
  }

  /** `lf` changed: it needs a new snapshot, and stat shows its new size and time. */
  #changed(lf: LocalFile, node: Inode | undefined, contentChanged = true): void {
    lf.dirty = true;
    if (contentChanged) {
      lf.contentDirty = true;
      lf.mtimeMs = this.#clock.wallNow();
    }
    if (node !== undefined) {
      node.attrs = this.#localAttrs(lf);
      node.attrsAt = this.#clock.now();
    }
  }

  async write(op: OpContext, _ino: Ino, fh: Fh, offset: number, data: Buffer, _writeFlags?: number, _flags?: number): Promise<number> {
    this.#writableOrThrow();
    const h = this.#handles.get(fh);
    if (h?.local === undefined || (h.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF, `file handle ${fh} is not open for writing`);
    const lf = h.local;
    const wf = await this.#working(lf, op.signal);
    const signal = this.#deadlineSignal(op.signal);
    await wf.write((h.flags & O_APPEND) !== 0 ? wf.size : offset, data, signal);
    this.#changed(lf, h.inode);
    return data.length;
  }

  async flush(op: OpContext, _ino: Ino, fh: Fh): Promise<void> {
    const lf = this.#handles.get(fh)?.local;
    if (lf !== undefined && lf.dirty) await this.#commit(lf, 'background', this.#deadlineSignal(op.signal));
  }

  /**
   * fsync: the file's bytes are in a journaled snapshot when it returns (durable in the cache);
   * with --fsync remote it also waits for the upload and reports its failure.
   */
  async fsync(op: OpContext, _ino: Ino, fh: Fh): Promise<void> {
    const h = this.#handles.get(fh);
    if (h === undefined) throw new FsError(Errno.EBADF);
    if (this.#queue === undefined) return;
    const remote = this.#fsyncMode === 'remote';
    const lf = h.local ?? this.#localFileOf(h.inode);
    if (lf !== undefined && !lf.unlinked) await this.#commit(lf, remote ? 'foreground' : 'background', this.#deadlineSignal(op.signal), true);
    else this.#queue.sync(); // names changed before (a rename onto this file) survive a power loss too
    if (!remote || h.inode.unlinked === true) return;
    try {
      await this.#queue.waitFor(h.inode.path, op.signal);
    } catch (err) {
      if (err instanceof UploadFailedError) throw new FsError(Errno.EIO, `upload of ${err.path} failed: ${err.message}`, { cause: err, level: 'warn' });
      throw err;
    }
  }

  /** The directory's changes (journaled when each op returned) survive a power loss. */
  async fsyncdir(): Promise<void> {
    this.#queue?.sync();
  }

  /** Freezes `lf` into a snapshot and journals its put; one at a time per file. */
  #commit(lf: LocalFile, priority: Priority, signal: AbortSignal, durable = false): Promise<void> {
    lf.busy++;
    const run = lf.committing.then(() => this.#snapshot(lf, priority, signal, durable)).finally(() => lf.busy--);
    lf.committing = run.catch(() => undefined);
    return run;
  }

  /** Nothing holds `lf` (no handle, no snapshot being made, no unsaved change). */
  #idle(lf: LocalFile): boolean {
    return lf.handles === 0 && lf.busy === 0 && lf.opening === undefined && !lf.dirty;
  }

  /**
   * Freezes `lf` (when dirty) into a snapshot and journals its put. `durable` (fsync, unmount):
   * the snapshot, its directory entry and the journal survive a power loss when this returns;
   * otherwise (close) they survive the process being killed, and a later durable call syncs
   * them (`lf.unsynced`).
   */
  async #snapshot(lf: LocalFile, priority: Priority, signal: AbortSignal, durable: boolean): Promise<void> {
    if (lf.unlinked) return;
    const { queue, journal } = this.#writableOrThrow();
    if (!lf.dirty) {
      if (durable && lf.unsynced) {
        const last = lf.kept?.path ?? (lf.snapshot !== undefined ? queue.snapshotPath(lf.snapshot) : undefined);
        if (last !== undefined) await syncPath(last, 'data');
        await syncPath(this.#data.snapshotDir, 'entries');
        queue.sync();
        lf.unsynced = false;
      }
      return;
    }
    const tail = journal.tailOf(lf.path);
    if (!lf.contentDirty && lf.snapshot !== undefined && tail?.kind === 'put' && tail.snapshot?.name === lf.snapshot && tail.state !== 'uploading') {
      // Only the time changed and the pending put still holds these bytes: journal it again.
      lf.dirty = false;
      if (durable && lf.unsynced) await this.#snapshot(lf, priority, signal, true); // syncs the bytes first
      queue.put(lf.path, { name: lf.snapshot, sizeBytes: tail.snapshot.sizeBytes, mtimeMs: lf.mtimeMs }, lf.base, priority, durable);
      return;
    }
    const wf = await this.#working(lf, signal);
    lf.dirty = false;
    lf.contentDirty = false;
    const name = queue.newSnapshotName();
    const path = queue.snapshotPath(name);
    let size: number;
    try {
      // By move, never by copy: a handle still open for writing copies it back (thaw) only if it
      // writes again, where a copy here would cost every close a second copy of the file.
      size = await wf.freeze(path, true, signal, durable);
      this.#snapshotBytes.set(name, size);
      if (durable) await syncPath(this.#data.snapshotDir, 'entries');
    } catch (err) {
      lf.dirty = true;
      lf.contentDirty = true;
      if (this.#snapshotBytes.has(name)) this.#releaseSnapshot(name);
      await fsp.rm(path, { force: true });
      throw err;
    }
    if (lf.unlinked) {
      // Removed while it was frozen: nothing to upload.
      this.#releaseSnapshot(name);
      await fsp.rm(path, { force: true });
      return;
    }
    // Linked before it is journaled: once journaled, the queue may upload and delete it.
    const previous = lf.kept;
    await this.#keep(lf, name, path, size);
    try {
      queue.put(lf.path, { name, sizeBytes: size, mtimeMs: lf.mtimeMs }, lf.base, priority, durable);
    } catch (err) {
      const kept = lf.kept;
      lf.kept = previous;
      if (kept !== previous) await this.#dropKept(kept);
      this.#releaseSnapshot(name);
      await fsp.rm(path, { force: true });
      throw err;
    }
    this.#snapshotOwner.set(name, lf);
    lf.snapshot = name;
    lf.unsynced = !durable;
    if (previous !== lf.kept) await this.#dropKept(previous);
    lf.size = size;
    lf.onRemote = true;
  }

  #releaseSnapshot(name: string): void {
    const bytes = this.#snapshotBytes.get(name);
    if (bytes === undefined) return;
    this.#snapshotBytes.delete(name);
    const owner = this.#snapshotOwner.get(name);
    this.#snapshotOwner.delete(name);
    // Still on disk through the owner's own link: counted until that goes.
    if (owner?.kept?.name === name) owner.kept.ownsBytes = true;
    else this.#data.releaseDirty(bytes);
  }

  /** Links snapshot `name` into the work dir for `lf` (the caller drops the older link). */
  async #keep(lf: LocalFile, name: string, snapshotPath: string, bytes: number): Promise<void> {
    const path = join(this.#data.workDir, `k-${name}`);
    try {
      linkSync(snapshotPath, path); // sync: a pool round trip costs more than the link (working-file.ts)
    } catch (err) {
      // Without the link the bytes are read from the snapshot, or once uploaded from the remote.
      this.#log.debug({ err, path: lf.path }, 'could not link the snapshot');
      return;
    }
    lf.kept = { name, path, ownsBytes: false, bytes };
  }

  async #dropKept(kept: LocalFile['kept']): Promise<void> {
    if (kept === undefined) return;
    rmSync(kept.path, { force: true });
    if (kept.ownsBytes) this.#data.releaseDirty(kept.bytes);
  }

  /**
   * After a handle closed: a local file nobody has open goes, or parks (its working file
   * closed, its bytes in the journaled snapshot) while its upload is pending.
   */
  async #settle(lf: LocalFile): Promise<void> {
    if (lf.handles > 0 || lf.busy > 0 || lf.opening !== undefined) return;
    if (lf.unlinked) {
      await this.#closeLocal(lf);
      return;
    }
    if (lf.dirty) return; // a snapshot failed: kept (in memory) for the next close, fsync or unmount
    if (this.#journal?.touches(lf.path) === true) {
      const wf = lf.wf;
      if (wf === undefined) return;
      lf.wf = undefined;
      lf.size = wf.size;
      if (!wf.frozen && lf.snapshot === undefined) lf.size = lf.source?.size ?? lf.size;
      await wf.close();
      return;
    }
    await this.#retire(lf);
  }

  async #closeLocal(lf: LocalFile): Promise<void> {
    const wf = lf.wf;
    lf.wf = undefined;
    const kept = lf.kept;
    lf.kept = undefined;
    await this.#dropKept(kept);
    const reader = lf.baseReader;
    lf.baseReader = undefined;
    await wf?.close();
    if (reader !== undefined) await reader.reader.then((r) => r.close(), () => undefined);
  }

  /**
   * `lf`'s path is the remote's again: the version its last upload made (or its base). The
   * tree entry, the inode and the listing change in one synchronous step (a lookup in between
   * would find the name nowhere); the files are closed after.
   */
  async #retire(lf: LocalFile): Promise<void> {
    const e = this.#tree.get(lf.path);
    if (e?.kind === 'file' && e.file === lf) this.#tree.delete(lf.path);
    const node = this.#inodes.byPath(lf.path);
    if (node !== undefined) this.#localByInode.delete(node);
    if (lf.base.kind === 'version') {
      const v = lf.base.version;
      const attrs = exactAttrs({ type: 'file', ...v }, lf.mtimeMs);
      if (node !== undefined) {
        node.attrs = attrs;
        node.attrsAt = this.#clock.now();
        // Handles of the remote version opened before the write read the uploaded one now.
        for (const h of this.#handles.values()) if (h.inode === node && h.local === undefined) h.outdated = true;
      }
      this.#patchListing(lf.path, listedAs(lf.path, 'file', v));
    } else {
      // What the remote holds now is not known here (a rename applied there): listed afresh.
      if (node !== undefined) node.attrsAt = -Infinity;
      this.#dropListing(parentOf(lf.path));
      this.#bumpDir(parentOf(lf.path));
    }
    await this.#closeLocal(lf);
  }

  /** A local change of `dir` completed: a listing of it fetched across that is fetched again. */
  #bumpDir(dir: string): void {
    this.#dirEpochs.set(dir, (this.#dirEpochs.get(dir) ?? 0) + 1);
  }

  /** Sets (or with undefined removes) one name in the cached listing of its directory. */
  #patchListing(path: string, entry: RemoteEntry | undefined): void {
    const dir = parentOf(path);
    this.#bumpDir(dir);
    const listing = this.#listings.get(dir);
    if (listing === undefined) return;
    const name = nameOf(path);
    const had = listing.entries.has(name);
    if (entry === undefined) {
      if (!had) return;
      listing.entries.delete(name);
      listing.names = listing.names.filter((n) => n !== name);
      this.#listedEntries--;
      return;
    }
    listing.entries.set(name, entry);
    if (!had) {
      listing.names.push(name);
      this.#listedEntries++;
    }
  }

  /**
   * Inside the transaction that completes `row`: the local files at its paths learn what the
   * remote has there now, which is what their next put is made against once no row of the
   * path is pending (while one is, the journal's own base decides). Synchronous, so no put
   * journaled after this commit can take an older base.
   */
  #remoteNowHas(row: JournalRow, outcome: Outcome): void {
    const set = (path: string, base: Base): void => {
      const e = this.#tree.get(path);
      if (e?.kind === 'file' && !e.file.unlinked) e.file.base = base;
    };
    switch (outcome.kind) {
      case 'written':
        set(row.path, { kind: 'version', version: outcome.version });
        return;
      case 'gone':
        if (row.kind === 'delete') set(row.path, { kind: 'absent' });
        return;
      case 'moved':
        set(row.path, outcome.version !== undefined ? { kind: 'version', version: outcome.version } : { kind: 'any' });
        if (row.fromPath !== undefined) set(row.fromPath, { kind: 'absent' });
        return;
      case 'dir':
        return;
    }
  }

  /** What the queue reports done: the local entry of the path goes once nothing of it is pending. */
  #afterUpload(row: JournalRow, outcome: Outcome, owner: LocalFile | undefined): void {
    try {
      this.#afterUploadUnsafe(row, outcome, owner);
    } catch (err) {
      this.#log.error({ err, path: row.path, change: row.kind }, 'bookkeeping after an upload failed');
    }
  }

  // The cached listings say what the remote has: each completed row patches them at once,
  // whatever the local tree lays over them (a later local change of the name hides it there,
  // and once that goes, the listing must already be right). The tree's entry of a path goes
  // when nothing of the path is pending any more.
  #afterUploadUnsafe(row: JournalRow, outcome: Outcome, owner: LocalFile | undefined): void {
    const journal = this.#journal;
    if (journal === undefined) return;
    const path = row.path;
    const e = this.#tree.get(path);
    switch (row.kind) {
      case 'put': {
        if (outcome.kind !== 'written') return;
        const version = outcome.version;
        this.#patchListing(path, listedAs(path, 'file', version));
        // The file these bytes came from (it may have moved or been removed since).
        const lf = owner ?? (e?.kind === 'file' ? e.file : undefined);
        if (lf !== undefined) {
          lf.source = { path, fingerprint: version, size: version.size };
          if (this.#idle(lf) && !lf.unlinked && !journal.touches(lf.path)) void this.#retire(lf);
        }
        return;
      }
      case 'delete':
      case 'rmdir':
        this.#patchListing(path, undefined);
        if (row.kind === 'rmdir') this.#dropListing(path);
        if (e?.kind === 'gone' && !journal.touches(path)) this.#tree.delete(path);
        return;
      case 'mkdir':
        this.#patchListing(path, { name: nameOf(path), type: 'dir' });
        if (e?.kind === 'dir') {
          e.created = false;
          if (!this.#listings.has(path)) this.#keepListing(path, toListing([], this.#clock.now()));
          if (!journal.touches(path)) this.#tree.delete(path);
        }
        return;
      case 'rename': {
        const from = row.fromPath;
        if (from === undefined) return;
        const settled: LocalFile[] = [];
        for (const entry of this.#tree.values()) {
          if (entry.kind === 'moved' && entry.source === from) entry.source = path;
          if (entry.kind === 'file' && entry.file.source?.path === from) {
            const lf = entry.file;
            const src = lf.source as NonNullable<LocalFile['source']>;
            lf.source = { ...src, path };
            settled.push(lf);
          }
        }
        // Nothing at `from` now; the moved object at `path`, as far as we know its attributes.
        this.#patchListing(from, undefined);
        const attrs = e?.kind === 'moved' ? e.attrs : undefined;
        const version = outcome.kind === 'moved' ? outcome.version : undefined;
        const size = version?.size ?? attrs?.size;
        if (size !== undefined) {
          const mtimeMs = version?.mtimeMs ?? attrs?.remoteMtimeMs;
          const etag = version?.etag ?? attrs?.etag;
          this.#patchListing(path, listedAs(path, attrs?.type ?? 'file', { size, mtimeMs, etag }));
        } else {
          this.#dropListing(parentOf(path));
          this.#bumpDir(parentOf(path));
        }
        if (e?.kind === 'moved' && !journal.touches(path)) this.#tree.delete(path);
        const f = this.#tree.get(from);
        if (f?.kind === 'gone' && !journal.touches(from)) this.#tree.delete(from);
        for (const lf of settled) if (this.#idle(lf) && !lf.unlinked && !journal.touches(lf.path)) void this.#retire(lf);
        return;
      }
    }
  }

  /** A put lost to a newer remote version: theirs stays at the path, ours went to `conflictPath`. */
  #afterConflict(row: JournalRow, conflictPath: string): void {
    this.#log.warn({ path: row.path, conflictPath }, 'the remote changed while a local change was pending: both kept, ours under the conflict name');
    const e = this.#tree.get(row.path);
    if (e?.kind === 'file' && this.#idle(e.file) && this.#journal?.touches(row.path) !== true) {
      this.#tree.delete(row.path);
      void this.#closeLocal(e.file);
    }
    this.#dropListing(parentOf(row.path));
    this.#bumpDir(parentOf(row.path));
    const node = this.#inodes.byPath(row.path);
    if (node !== undefined) {
      node.attrsAt = -Infinity;
      this.#localByInode.delete(node);
      this.#kernel?.invalidateInode(node.ino);
    }
    const dir = this.#inodes.byPath(parentOf(row.path));
    if (dir !== undefined) this.#kernel?.invalidateEntry(dir.ino, nameOf(conflictPath));
  }

  /** Rebuilds the local tree from the journal: what a previous mount had not uploaded yet. */
  #recover(): void {
    const journal = this.#journal;
    if (journal === undefined) return;
    for (const row of journal.pending()) {
      switch (row.kind) {
        case 'put': {
          const snap = row.snapshot;
          if (snap === undefined) break;
          const lf = this.#newLocalFile(row.path, row.base, true, snap.sizeBytes, snap.mtimeMs);
          lf.snapshot = snap.name;
          const keep = join(this.#data.workDir, `k-${snap.name}`);
          try {
            linkSync(this.#writableOrThrow().queue.snapshotPath(snap.name), keep);
            lf.kept = { name: snap.name, path: keep, ownsBytes: false, bytes: snap.sizeBytes };
          } catch (err) {
            this.#log.warn({ err, path: row.path }, 'a journaled snapshot is missing: its upload will fail and say so');
          }
          this.#tree.set(row.path, { kind: 'file', file: lf });
          this.#snapshotBytes.set(snap.name, snap.sizeBytes);
          this.#snapshotOwner.set(snap.name, lf);
          this.#data.adoptDirty(snap.sizeBytes);
          break;
        }
        case 'delete':
        case 'rmdir':
          this.#tree.set(row.path, { kind: 'gone' });
          break;
        case 'mkdir':
          this.#tree.set(row.path, { kind: 'dir', created: true });
          break;
        case 'rename': {
          const from = row.fromPath;
          if (from === undefined) break;
          const e = this.#tree.get(from);
          if (e?.kind === 'file') {
            e.file.path = row.path;
            this.#tree.set(row.path, e);
          } else if (e?.kind === 'moved') this.#tree.set(row.path, { kind: 'moved', source: e.source, attrs: e.attrs });
          else this.#tree.set(row.path, { kind: 'moved', source: from, attrs: undefined });
          this.#tree.set(from, { kind: 'gone' });
          break;
        }
      }
    }
    if (this.#tree.size > 0) this.#log.info({ localEntries: this.#tree.size, snapshots: this.#snapshotBytes.size }, 'resuming local changes not uploaded yet');
  }

  async create(op: OpContext, parent: Ino, name: string, _mode: number, flags: number, _umask?: number): Promise<{ entry: EntryOut; open: OpenReply }> {
    this.#writableOrThrow();
    this.#checkName(name);
    const unlock = await this.#names.lock(op.signal);
    try {
      const dir = this.#dirInode(parent);
      if (dir.unlinked === true) throw new FsError(Errno.ENOENT, 'the directory was removed');
      const existing = await this.#resolve(parent, name, op.signal);
      if (existing !== undefined) {
        if ((flags & O_EXCL) !== 0) throw new FsError(Errno.EEXIST);
        if (existing.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
        const open = await this.open(op, existing.ino, flags);
        return { entry: this.#entry(existing), open };
      }
      await this.#journalDeferredDelete(joinPath(dir.path, name), op.signal);
      const node = this.#createFile(dir, name);
      const lf = this.#localFileOf(node) as LocalFile;
      const open = await this.#openLocal(node, lf, flags & ~O_TRUNC, op.signal);
      return { entry: this.#entry(node), open };
    } finally {
      unlock();
    }
  }

  /**
   * After the pending changes of `path`, the remote will have something there (a put or a
   * rename onto it is pending; not a delete, an rmdir or a rename away).
   */
  #remoteWillHave(path: string): boolean {
    const tail = this.#journal?.tailOf(path);
    return tail !== undefined && tail.kind !== 'delete' && tail.kind !== 'rmdir' && !(tail.kind === 'rename' && tail.fromPath === path);
  }

  /**
   * A new empty local file `name` in `dir` (to be journaled at its first snapshot). A delete
   * of the name waiting for a last close is journaled before (#journalDeferredDelete).
   */
  #createFile(dir: Inode, name: string): Inode {
    this.#writableOrThrow();
    const path = joinPath(dir.path, name);
    // Behind a pending change of the path (a delete), the journal knows the remote's version.
    // "On the remote" only if the remote will have something at the path: not behind a pending
    // delete, rmdir or rename away (a rename of this new file must not move the deleted one).
    const lf = this.#newLocalFile(path, { kind: 'absent' }, this.#remoteWillHave(path), 0, this.#clock.wallNow());
    this.#changed(lf, undefined);
    this.#tree.set(path, { kind: 'file', file: lf });
    this.#inodes.detach(path);
    const node = this.#inodes.upsert(path, this.#localAttrs(lf), this.#clock.now());
    this.#localByInode.set(node, lf);
    this.#touchDir(dir);
    return node;
  }

  #touchDir(dir: Inode): void {
    if (dir.ino !== ROOT_INO) dir.attrs = { ...dir.attrs, mtimeMs: this.#clock.wallNow() };
  }

  async mknod(op: OpContext, parent: Ino, name: string, mode: number): Promise<EntryOut> {
    this.#writableOrThrow();
    if ((mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.EPERM, 'only regular files can be made here');
    this.#checkName(name);
    const unlock = await this.#names.lock(op.signal);
    let node: Inode;
    try {
      const dir = this.#dirInode(parent);
      if ((await this.#resolve(parent, name, op.signal)) !== undefined) throw new FsError(Errno.EEXIST);
      await this.#journalDeferredDelete(joinPath(dir.path, name), op.signal);
      node = this.#createFile(dir, name);
    } finally {
      unlock();
    }
    const lf = this.#localFileOf(node) as LocalFile;
    await this.#commit(lf, 'background', this.#deadlineSignal(op.signal));
    await this.#settle(lf);
    return this.#entry(node);
  }

  async mkdir(op: OpContext, parent: Ino, name: string, _mode?: number, _umask?: number): Promise<EntryOut> {
    const { queue, journal } = this.#writableOrThrow();
    this.#checkName(name);
    const unlock = await this.#names.lock(op.signal);
    try {
      const dir = this.#dirInode(parent);
      if (dir.unlinked === true) throw new FsError(Errno.ENOENT, 'the directory was removed');
      if ((await this.#resolve(parent, name, op.signal)) !== undefined) throw new FsError(Errno.EEXIST);
      const path = joinPath(dir.path, name);
      await this.#journalDeferredDelete(path, op.signal);
      queue.mkdir(path);
      // A pending rmdir that never ran cancels out: the remote still has the directory.
      if (journal.touches(path)) this.#tree.set(path, { kind: 'dir', created: true });
      else this.#tree.delete(path);
      this.#inodes.detach(path);
      const node = this.#inodes.upsert(path, { type: 'dir', size: 0, sizeKnown: true, mtimeMs: this.#clock.wallNow(), exact: true }, this.#clock.now());
      this.#touchDir(dir);
      return this.#entry(node);
    } finally {
      unlock();
    }
  }

  async unlink(op: OpContext, parent: Ino, name: string): Promise<void> {
    const { queue, journal } = this.#writableOrThrow();
    const unlock = await this.#names.lock(op.signal);
    try {
      const dir = this.#dirInode(parent);
      const node = await this.#resolve(parent, name, op.signal);
      if (node === undefined) throw new FsError(Errno.ENOENT);
      if (node.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
      const path = node.path;
      const lf = this.#localFileOf(node);
      // An open handle keeps reading the file after the remote lost it: the bytes it has not
      // fetched yet are fetched first (as a rename does).
      if (lf !== undefined) await this.#fetchRestForOpenHandles(node, op.signal);
      const e = this.#tree.get(path);
      const base: Base = lf !== undefined ? lf.base : e?.kind === 'moved' || node.attrs.type !== 'file' ? { kind: 'any' } : { kind: 'version', version: fingerprintOf(node.attrs) };
      if (lf === undefined && node.openHandles > 0 && e === undefined) {
        // A remote file still open for reading: its handles read it from the remote, so the
        // delete is journaled when the last one closes (a crash before that keeps the file).
        const gone: LocalEntry = { kind: 'gone', pendingDelete: base };
        this.#tree.set(path, gone);
        this.#deferredDeletes.set(node, { path, entry: gone });
      } else {
        if (lf === undefined || lf.onRemote || journal.touches(path)) queue.delete(path, base);
        if (lf !== undefined) {
          lf.unlinked = true;
          lf.dirty = false;
        }
        if (journal.touches(path)) this.#tree.set(path, { kind: 'gone' });
        else this.#tree.delete(path);
      }
      this.#inodes.detach(path);
      this.#touchDir(dir);
      if (lf !== undefined && lf.handles === 0) await this.#closeLocal(lf);
    } finally {
      unlock();
    }
  }

  async rmdir(op: OpContext, parent: Ino, name: string): Promise<void> {
    const { queue, journal } = this.#writableOrThrow();
    if (name === '.') throw new FsError(Errno.EINVAL);
    if (name === '..') throw new FsError(Errno.ENOTEMPTY);
    const unlock = await this.#names.lock(op.signal);
    try {
      const dir = this.#dirInode(parent);
      const node = await this.#resolve(parent, name, op.signal);
      if (node === undefined) throw new FsError(Errno.ENOENT);
      if (node.attrs.type !== 'dir') throw new FsError(Errno.ENOTDIR);
      const path = node.path;
      // Empty as the remote has it now, not as a listing of dirTtl ago.
      if (!this.#tree.createdHere(path)) this.#dropListing(path);
      if ((await this.#list(node.ino, op.signal)).length > 0) throw new FsError(Errno.ENOTEMPTY);
      queue.rmdir(path);
      if (journal.touches(path)) this.#tree.set(path, { kind: 'gone' });
      else this.#tree.delete(path);
      this.#dropListing(path);
      this.#inodes.detach(path);
      this.#touchDir(dir);
    } finally {
      unlock();
    }
  }

  async rename(op: OpContext, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    const { queue, journal } = this.#writableOrThrow();
    if ((flags & RENAME_EXCHANGE) !== 0) throw new FsError(Errno.EINVAL, 'RENAME_EXCHANGE cannot be atomic on a remote');
    if ((flags & ~RENAME_NOREPLACE) !== 0) throw new FsError(Errno.EINVAL, 'unsupported rename flags');
    this.#checkName(newName);
    const unlock = await this.#names.lock(op.signal);
    try {
      const fromDir = this.#dirInode(parent);
      const toDir = this.#dirInode(newParent);
      if (toDir.unlinked === true) throw new FsError(Errno.ENOENT, 'the target directory was removed');
      const src = await this.#resolve(parent, name, op.signal);
      if (src === undefined) throw new FsError(Errno.ENOENT);
      const from = src.path;
      const to = joinPath(toDir.path, newName);
      if (from === to) return;
      const dst = await this.#resolve(newParent, newName, op.signal);
      if (dst !== undefined && (flags & RENAME_NOREPLACE) !== 0) throw new FsError(Errno.EEXIST);
      const srcDir = src.attrs.type === 'dir';
      if (srcDir && to.startsWith(`${from}/`)) throw new FsError(Errno.EINVAL, 'cannot move a directory into itself');
      if (dst === undefined) await this.#journalDeferredDelete(to, op.signal);
      if (dst !== undefined) {
        const dstDir = dst.attrs.type === 'dir';
        if (srcDir && !dstDir) throw new FsError(Errno.ENOTDIR);
        if (!srcDir && dstDir) throw new FsError(Errno.EISDIR);
        if (dstDir && (await this.#list(dst.ino, op.signal)).length > 0) throw new FsError(Errno.ENOTEMPTY);
        if (!dstDir) await this.#fetchRestForOpenHandles(dst, op.signal);
      }
      if (srcDir) {
        await this.#renameDir(from, to, (flags & RENAME_NOREPLACE) !== 0, op.signal);
      } else {
        const lf = this.#localFileOf(src);
        const dstLf = dst !== undefined ? this.#localFileOf(dst) : undefined;
        const targetBase: Base = dst === undefined ? { kind: 'absent' } : dstLf !== undefined ? dstLf.base : this.#tree.get(to)?.kind === 'moved' || dst.attrs.type !== 'file' ? { kind: 'any' } : { kind: 'version', version: fingerprintOf(dst.attrs) };
        const srcEntry = this.#tree.get(from);
        if (lf !== undefined && !lf.onRemote && !this.#remoteWillHave(from)) {
          // Never saved: nothing on the remote moves; it replaces what is at `to` when saved.
          lf.base = targetBase;
          lf.onRemote = dst !== undefined && (dstLf === undefined || dstLf.onRemote || this.#remoteWillHave(to));
        } else {
          // The bytes not fetched yet must be fetched before the remote moves them away.
          if (lf?.wf !== undefined && lf.wf.missingBytes > 0) await lf.wf.complete(this.#deadlineSignal(op.signal));
          queue.rename(from, to, targetBase);
        }
        // The tree follows the journal in the same synchronous step (no await in between: the
        // queue may apply the rename and report it at the next turn).
        if (dstLf !== undefined) {
          dstLf.unlinked = true;
          dstLf.dirty = false;
        }
        this.#inodes.move(from, to);
        this.#tree.delete(to);
        if (lf !== undefined) {
          lf.path = to;
          this.#tree.set(to, { kind: 'file', file: lf });
        } else {
          this.#tree.set(to, { kind: 'moved', source: srcEntry?.kind === 'moved' ? srcEntry.source : from, attrs: src.attrs });
        }
        if (journal.touches(from)) this.#tree.set(from, { kind: 'gone' });
        else this.#tree.delete(from);
        if (dstLf !== undefined && dstLf.handles === 0) await this.#closeLocal(dstLf);
      }
      this.#touchDir(fromDir);
      this.#touchDir(toDir);
    } finally {
      unlock();
    }
  }

  /**
   * `node` is about to be replaced on the remote while handles of it are open: POSIX lets them
   * go on reading the old bytes, so the bytes they have not fetched yet are fetched now (into
   * the working file, or into the cache file their reader pins).
   */
  async #fetchRestForOpenHandles(node: Inode, signal: AbortSignal): Promise<void> {
    if (node.openHandles === 0) return;
    const deadline = this.#deadlineSignal(signal);
    const lf = this.#localFileOf(node);
    if (lf !== undefined && lf.handles > 0) {
      const wf = await this.#working(lf, deadline);
      if (wf.missingBytes > 0) await wf.complete(deadline);
    }
    for (const h of [...this.#handles.values()]) {
      if (h.inode !== node || h.local !== undefined || h.reader === undefined || h.outdated === true) continue;
      const reader = h.reader;
      try {
        for (let offset = 0; offset < reader.sizeBytes; offset += FETCH_REST_CHUNK) await reader.read(offset, FETCH_REST_CHUNK, deadline);
      } catch (err) {
        // Changed on the remote already, or unreachable: the handle reports it when it reads.
        if (signal.aborted) throw err;
        this.#log.info({ err, path: node.path }, 'the rest of a file open for reading could not be fetched before it was replaced');
      }
    }
  }

  /**
   * A directory moves on the remote at once (its contents move with it there): what is
   * pending under either name is uploaded first; open or unsaved files under them are EBUSY.
   */
  async #renameDir(from: string, to: string, noReplace: boolean, signal: AbortSignal): Promise<void> {
    const queue = this.#writableOrThrow().queue;
    const localUnder = (): boolean => [from, to].some((p) => this.#tree.has(p) || this.#tree.hasBelow(p));
    if (localUnder()) {
      await queue.waitFor(undefined, this.#deadlineSignal(signal)).catch((err: unknown) => this.#log.info({ err, from, to }, 'rename of a directory: pending changes did not all reach the remote'));
      if (localUnder()) throw new FsError(Errno.EBUSY, `changes under ${from} or ${to} are not on the remote yet (open files, or uploads failing)`);
    }
    if (this.#remote.rename === undefined) throw new FsError(Errno.EROFS);
    await this.#remote.rename(from, to, { signal: this.#deadlineSignal(signal), noReplace });
    this.#inodes.move(from, to);
    for (const p of [...this.#listings.keys()]) {
      if (p === from || p === to || p.startsWith(`${from}/`) || p.startsWith(`${to}/`)) this.#dropListing(p);
    }
    for (const p of [from, to]) {
      this.#dropListing(parentOf(p));
      this.#bumpDir(parentOf(p));
    }
  }

  async symlink(op: OpContext, parent: Ino, name: string, target: string): Promise<EntryOut> {
    const queue = this.#writableOrThrow().queue;
    if (this.#remote.capabilities.symlinks !== true || this.#remote.symlink === undefined) throw new FsError(Errno.EPERM, `${this.#remote.id} has no symlinks`);
    this.#checkName(name);
    if (target === '') throw new FsError(Errno.ENOENT);
    const unlock = await this.#names.lock(op.signal);
    try {
      const dir = this.#dirInode(parent);
      if ((await this.#resolve(parent, name, op.signal)) !== undefined) throw new FsError(Errno.EEXIST);
      const path = joinPath(dir.path, name);
      await this.#journalDeferredDelete(path, op.signal);
      // Made on the remote at once: what is pending there (its directory, a delete of the name) goes first.
      if (this.#tree.createdHere(dir.path) || this.#tree.has(path)) await queue.waitFor(undefined, this.#deadlineSignal(op.signal));
      await this.#remote.symlink(target, path, { signal: this.#deadlineSignal(op.signal) });
      this.#tree.delete(path);
      this.#inodes.detach(path);
      const attrs: InodeAttrs = { type: 'symlink', size: Buffer.byteLength(target), sizeKnown: true, mtimeMs: this.#clock.wallNow(), exact: true };
      const node = this.#inodes.upsert(path, attrs, this.#clock.now());
      this.#patchListing(path, { name, type: 'symlink', size: attrs.size });
      this.#touchDir(dir);
      return this.#entry(node);
    } finally {
      unlock();
    }
  }

  async link(): Promise<EntryOut> {
    this.#writableOrThrow();
    throw new FsError(Errno.EPERM, 'hard links are not supported');
  }

  async setattr(op: OpContext, ino: Ino, a: SetattrIn): Promise<AttrOut> {
    this.#writableOrThrow();
    const node = this.#inode(ino);
    const c = this.#config;
    if ((a.uid !== undefined && a.uid !== c.uid) || (a.gid !== undefined && a.gid !== c.gid)) throw new FsError(Errno.EPERM);
    const changes = a.size !== undefined || a.mtime !== undefined || a.atime !== undefined || a.mode !== undefined;
    if (!changes) return { attrTtlMs: c.attrTtlMs, attr: this.#attr(node) };
    const signal = this.#deadlineSignal(op.signal);
    if (a.size !== undefined) {
      if (node.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
      if (node.attrs.type !== 'file') throw new FsError(Errno.EINVAL);
      const lf = this.#localFileOf(node) ?? (await this.#makeLocal(node, op.signal));
      await this.#withLocal(lf, async () => {
        await (await this.#working(lf, signal, a.size)).truncate(a.size as number, signal);
        this.#changed(lf, node);
      }, signal);
    }
    if (a.mtime !== undefined) await this.#setMtime(node, a.mtime === 'now' ? this.#clock.wallNow() : a.mtime, signal);
    // Modes: no remote keeps them (capabilities.modes); chmod is accepted and shows no change
    // (docs/SEMANTICS.md), so tar, cp -p and rsync do not fail.
    return { attrTtlMs: c.attrTtlMs, attr: this.#attr(node) };
  }

  /**
   * Runs a change of `lf` holding a handle on it; without another handle open (truncate(2),
   * utimes(2)) the change is snapshotted and journaled before the call returns.
   */
  async #withLocal(lf: LocalFile, change: () => Promise<void>, signal: AbortSignal): Promise<void> {
    lf.handles++;
    try {
      await change();
    } finally {
      lf.handles--;
    }
    if (lf.handles === 0) {
      await this.#commit(lf, 'background', signal);
      await this.#settle(lf);
    }
  }

  async #setMtime(node: Inode, mtimeMs: number, signal: AbortSignal): Promise<void> {
    const lf = this.#localFileOf(node);
    if (lf !== undefined) {
      await this.#withLocal(lf, async () => {
        lf.mtimeMs = mtimeMs;
        this.#changed(lf, node, false);
      }, signal);
      return;
    }
    if (this.#remote.capabilities.mtimes === true && this.#remote.setMtime !== undefined && !this.#tree.has(node.path) && node.ino !== ROOT_INO) {
      const st = await this.#remote.setMtime(node.path, mtimeMs, { signal });
      node.attrs = exactAttrs(st, mtimeMs);
      node.attrsAt = this.#clock.now();
      if (node.attrs.type !== 'dir') this.#patchListing(node.path, listedAs(node.path, node.attrs.type, st));
      return;
    }
    // Not kept by the remote (or not there yet): shown until the next refresh.
    node.attrs = { ...node.attrs, mtimeMs };
  }

  async fallocate(op: OpContext, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void> {
    this.#writableOrThrow();
    if (mode !== 0) throw new FsError(Errno.EOPNOTSUPP);
    if (length <= 0 || offset < 0) throw new FsError(Errno.EINVAL);
    const h = this.#handles.get(fh);
    if (h?.local === undefined || (h.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF);
    const wf = await this.#working(h.local, op.signal);
    if (offset + length > wf.size) {
      await wf.truncate(offset + length, this.#deadlineSignal(op.signal));
      this.#changed(h.local, this.#inode(ino));
    }
  }

  async setxattr(): Promise<void> {
    this.#writableOrThrow();
    throw new FsError(Errno.EOPNOTSUPP, 'extended attributes are not kept');
  }

  async removexattr(): Promise<void> {
    this.#writableOrThrow();
    throw new FsError(Errno.EOPNOTSUPP, 'extended attributes are not kept');
  }

  async statfs(): Promise<StatfsOut> {
    const files = this.#inodes.size;
    if (!this.writable) return { blocks: 0, bfree: 0, bavail: 0, files, ffree: 0, bsize: 4096, namelen: NAME_MAX, frsize: 4096 };
    // What can be written before writers wait for uploads: the cache cap less the bytes not
    // uploaded yet (clean cached bytes are evicted for writes).
    const cap = this.#data.config.cacheCapBytes;
    const free = Math.max(0, cap - this.#data.dirtyBytes);
    return { blocks: Math.floor(cap / 4096), bfree: Math.floor(free / 4096), bavail: Math.floor(free / 4096), files, ffree: 1_000_000, bsize: 4096, namelen: NAME_MAX, frsize: 4096 };
  }

  async access(_op: OpContext, ino: Ino, mask: number): Promise<void> {
    this.#inode(ino);
    if (mask & W_OK && !this.writable) throw new FsError(Errno.EROFS);
  }

  /** Changes not on the remote yet (journal rows), for status and unmount. */
  pendingUploads(): JournalRow[] {
    return this.#queue?.pending() ?? [];
  }

  /**
   * Unmount: every dirty file is snapshotted and journaled, then the queue uploads for up to
   * `timeoutMs`; what is left stays journaled for the next mount, and is returned.
   */
  async drain(timeoutMs: number): Promise<JournalRow[]> {
    const queue = this.#queue;
    if (queue === undefined) return [];
    await this.#saveAll();
    queue.sync();
    return queue.drain(timeoutMs);
  }

  /** Snapshots every dirty file (unmount); a failure is logged: those writes are lost. */
  async #saveAll(): Promise<void> {
    await Promise.all(
      this.#tree.files().filter((lf) => lf.dirty && !lf.unlinked).map((lf) =>
        this.#commit(lf, 'foreground', this.#deadlineSignal(), true).catch((err: unknown) => this.#log.error({ err, path: lf.path }, 'unmount: a written file could not be saved for upload; its unsaved writes are lost')),
      ),
    );
  }

  /** References the kernel holds on `ino` (undefined once it is forgotten). */
  lookupCount(ino: Ino): bigint | undefined {
    return this.#inodes.get(ino)?.nlookup;
  }

  /** Where to send invalidations of what the kernel caches (the bridge's notifier). */
  attachKernel(kernel: KernelCache): void {
    this.#kernel = kernel;
  }

  /**
   * One change-detection round (the poller calls it every poll interval): relists the
   * directories whose listing is cached and whose inode the kernel holds, at most `maxRequests`
   * of them (round robin over rounds), compares each with what was seen, and tells the kernel
   * what changed: names added or removed (entry invalidation, so a cached "no such file" or a
   * deleted name goes), files whose size, mtime or ETag changed (inode invalidation: their
   * pages and attributes go, and the next stat sees the new ones). Paths with local changes
   * are left alone. Never throws for one directory's failure; returns what it did.
   */
  async poll(signal: AbortSignal, maxRequests: number): Promise<PollRound> {
    const round: PollRound = { dirs: 0, requests: 0, added: 0, removed: 0, changed: 0, failed: 0 };
    const paths = [...this.#listings.keys()].filter((p) => p === '' || this.#inodes.byPath(p) !== undefined);
    if (paths.length === 0) return round;
    const start = this.#pollCursor % paths.length;
    const todo = [...paths.slice(start), ...paths.slice(0, start)].slice(0, Math.max(1, maxRequests));
    this.#pollCursor = start + todo.length;
    // Files whose listing says nothing of their version (no size, no mtime, no ETag): the
    // kernel's ones are stat'ed after the listings, with what is left of the budget.
    const unlisted: Inode[] = [];
    for (const path of todo) {
      if (signal.aborted) break;
      round.dirs++;
      round.requests++;
      try {
        const fresh = await this.#remote.list(path, signal);
        unlisted.push(...this.#compare(path, fresh, round));
      } catch (err) {
        round.failed++;
        this.#log.debug({ err, dir: path }, 'poll: listing failed');
      }
    }
    for (const node of unlisted) {
      if (signal.aborted || round.requests >= maxRequests) break;
      round.requests++;
      await this.#recheckFile(node, signal, round);
    }
    return round;
  }

  /** Stats a file the kernel holds and invalidates it when its version changed. */
  async #recheckFile(node: Inode, signal: AbortSignal, round: PollRound): Promise<void> {
    try {
      const now = exactAttrs(await this.#remote.stat(node.path, signal), node.attrs.mtimeMs);
      if (fingerprintChange(fingerprintOf(node.attrs), fingerprintOf(now)) === undefined) return;
      round.changed++;
      node.attrs = now;
      node.attrsAt = this.#clock.now();
      this.#saveAttrs(node.path, 'stat', node.attrs);
      this.#kernel?.invalidateInode(node.ino);
    } catch (err) {
      round.failed++;
      this.#log.debug({ err, path: node.path }, 'poll: stat failed');
    }
  }

  /**
   * Diffs a fresh listing of `dir` against the cached one and invalidates what changed.
   * Returns the files the kernel holds whose listing entry cannot show a change (no size,
   * mtime or ETag): the caller stats them.
   */
  #compare(dir: string, fresh: readonly RemoteEntry[], round: PollRound): Inode[] {
    const unlisted: Inode[] = [];
    const old = this.#listings.get(dir);
    const dirNode = this.#inodes.byPath(dir);
    const listing = toListing(fresh, this.#clock.now());
    this.#saveListing(dir, listing, old);
    if (old === undefined || dirNode === undefined) {
      this.#keepListing(dir, listing);
      return unlisted;
    }
    const now = this.#clock.now();
    const kernel = this.#kernel;
    for (const [name, e] of listing.entries) {
      const path = joinPath(dir, name);
      if (this.#hasLocalChanges(path)) continue;
      const was = old.entries.get(name);
      if (was === undefined) {
        round.added++;
        kernel?.invalidateEntry(dirNode.ino, name);
        continue;
      }
      if (sameEntry(was, e)) {
        const held = e.type === 'file' && e.size === undefined && e.mtimeMs === undefined && e.etag === undefined ? this.#inodes.byPath(path) : undefined;
        if (held !== undefined && held.attrs.sizeKnown && (held.nlookup > 0n || held.openHandles > 0)) unlisted.push(held);
        continue;
      }
      round.changed++;
      const node = this.#inodes.byPath(path);
      if (was.type !== e.type) kernel?.invalidateEntry(dirNode.ino, name);
      if (node !== undefined) {
        this.#fromListing(path, e, now);
        node.attrsAt = -Infinity; // the next stat asks the remote
        kernel?.invalidateInode(node.ino);
      }
    }
    for (const name of old.names) {
      if (listing.entries.has(name)) continue;
      const path = joinPath(dir, name);
      if (this.#hasLocalChanges(path)) continue;
      round.removed++;
      const node = this.#inodes.byPath(path);
      if (node !== undefined) node.attrsAt = -Infinity;
      kernel?.invalidateEntry(dirNode.ino, name);
    }
    this.#keepListing(dir, listing);
    return unlisted;
  }

  /**
   * Forgets what is known of `paths` (remote-relative, '' for the root) so the next access asks
   * the remote: their listings (a directory's own, and the one naming it), their attributes,
   * and what the kernel caches of them (entry and inode invalidations, sent off the request
   * path). The external invalidation `fusestream invalidate` uses. Returns how many paths the
   * mount knew.
   */
  invalidate(paths: readonly string[]): number {
    let known = 0;
    for (const raw of paths) {
      const path = raw.replace(/^\/+|\/+$/g, '');
      this.#dropListing(path);
      this.#forgetListingOf(path);
      const node = this.#inodes.byPath(path);
      if (node === undefined) continue;
      known++;
      node.attrsAt = -Infinity;
      this.#kernel?.invalidateInode(node.ino);
      const slash = path.lastIndexOf('/');
      const parent = this.#inodes.byPath(slash < 0 ? '' : path.slice(0, slash));
      if (parent !== undefined && path !== '') this.#kernel?.invalidateEntry(parent.ino, path.slice(slash + 1));
    }
    return known;
  }

  /** The path of a live inode, for logs and the watchdog. */
  describe(ino: Ino): string | undefined {
    const node = this.#inodes.get(ino);
    return node === undefined ? undefined : `/${node.path}`;
  }

  /**
   * Unmount (after the kernel let go, so nothing new is written): closes every open handle
   * (saving what is dirty), uploads what is pending for up to the drain timeout, stops the
   * upload queue (what it has not uploaded stays journaled for the next mount, and is logged
   * and kept in `leftPending`) and closes the local files.
   */
  async close(): Promise<void> {
    await Promise.all([...this.#handles.keys()].map((fh) => this.#closeHandle(fh)));
    if (this.#queue !== undefined) {
      const pending = await this.drain(this.#drainTimeoutMs);
      this.#leftPending = pending;
      if (pending.length > 0) {
        this.#log.warn({ pending: pending.length, paths: pending.slice(0, 50).map((r) => `${r.kind} /${r.path}${r.lastError !== undefined ? ` (${r.lastError})` : ''}`) }, 'unmount: changes not on the remote yet stay journaled; the next mount of this remote with this cache dir uploads them');
      }
      await this.#queue.close();
    }
    await Promise.all(this.#tree.files().map((lf) => this.#closeLocal(lf)));
  }

  /** What was still pending at close (empty before close, or when everything was uploaded). */
  get leftPending(): readonly JournalRow[] {
    return this.#leftPending;
  }
}
