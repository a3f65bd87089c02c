// RemoteFs: the filesystem over a Remote, callable without a kernel (it implements the core's
// FileSystem). It maps inodes to remote paths, caches directory listings (with TTL and negative
// answers), decides attributes, modes and cache validity, hands out readdir cookies and counts
// the kernel's lookup references, and serves reads through the data layer. The bridge only
// translates: kernel requests into calls here, results and errors into replies.
//
// The mount is read-only until the write path lands: every op that would change something
// answers EROFS, and so does an open for writing (the kernel asks before any WRITE).
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
import { raceAbort } from '../base/async.js';
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import type { Attr, AttrOut, DirentSink, EntryOut, StatfsOut } from '../base/fs-types.js';
import { asFh, asIno, ROOT_INO, type Fh, type Ino } from '../base/ids.js';
import { DT, O_ACCMODE, O_RDONLY, S_IFDIR, S_IFLNK, S_IFREG, W_OK } from '../base/posix.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import { fingerprintChange, fingerprintKey, sameVersion, type Fingerprint } from '../remote/fingerprint.js';
import type { EntryType, Remote, RemoteEntry } from '../remote/remote.js';
import { RemoteError } from '../remote/remote-error.js';
import type { DataCache, FileReader } from '../data/data-cache.js';
import { ChangedError } from '../data/errors.js';
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
  reader: FileReader;
  /** fingerprintKey of the version this handle reads. */
  version: string;
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
}

const joinPath = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

/** Longest name in bytes (Linux NAME_MAX). */
const NAME_MAX = 255;

/** Stats run at once to complete one directory's attributes (the remote bounds connections too). */
const STAT_CONCURRENCY = 8;

const readOnly = (..._args: unknown[]): Promise<never> => Promise.reject(new FsError(Errno.EROFS));

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
  /** The size last handed to the kernel for an inode (it clamps buffered reads at it). */
  readonly #kernelSizes = new WeakMap<Inode, number>();
  #nextFh = 1n;
  #dirSnapshots = 0;
  /** Shown for times the remote does not give (never 1970). */
  readonly #mountedAtMs: number;

  constructor(o: RemoteFsOptions) {
    this.#config = { ...DEFAULT_CORE_CONFIG, ...o.config };
    this.#remote = o.remote;
    this.#data = o.data;
    this.#health = o.health;
    this.#hasLocalChanges = o.hasLocalChanges ?? (() => false);
    this.#log = o.logger;
    this.#clock = o.clock ?? systemClock;
    this.#mountedAtMs = this.#clock.wallNow();
    this.#inodes = new InodeTable({ type: 'dir', size: 0, sizeKnown: true, mtimeMs: this.#mountedAtMs, exact: true }, this.#clock.now(), o.logger);
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
    const cached = this.#listings.get(path);
    if (cached && this.#clock.now() - cached.at < this.#config.dirTtlMs) return cached;
    let pending = this.#listingsInFlight.get(path);
    if (!pending) {
      // Not the caller's signal: the request is shared, so one caller's abort must not fail
      // the others. It is bounded by the remote's own timeouts and the data deadline.
      const shared = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
      pending = this.#remote.list(path, shared).then(
        (entries) => {
          const listing = toListing(entries, this.#clock.now());
          this.#saveListing(path, listing, this.#listings.get(path));
          this.#keepListing(path, listing);
          return listing;
        },
      ).finally(() => this.#listingsInFlight.delete(path));
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
    const listing = await this.#listing(dir.path, signal);
    const e = listing.entries.get(name);
    if (!e) return undefined;
    const node = this.#fromListing(joinPath(dir.path, name), e, listing.stale ? -Infinity : this.#clock.now());
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
    // A directory's links (2 + subdirectories) are not known without listing it: 1 is the
    // convention for "not counted" (find then skips its leaf optimisation), never a wrong 2.
    return { ino: node.ino, size: a.size, atimeMs: a.mtimeMs, mtimeMs: a.mtimeMs, ctimeMs: a.mtimeMs, mode, nlink: 1, uid: c.uid, gid: c.gid };
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

  /** Entries of a directory in listing order. */
  async #list(ino: Ino, signal: AbortSignal): Promise<DirEntry[]> {
    const dir = this.#dirInode(ino);
    const listing = await this.#listing(dir.path, signal);
    const now = listing.stale ? -Infinity : this.#clock.now();
    const out: DirEntry[] = [];
    for (const name of listing.names) {
      const e = listing.entries.get(name);
      if (!e) continue;
      out.push({ name, inode: this.#fromListing(joinPath(dir.path, name), e, now) });
    }
    return out;
  }

  /** A symlink's target text; EINVAL for anything else (as readlink(2)). */
  async readlink(op: OpContext, ino: Ino): Promise<string> {
    const node = this.#inode(ino);
    if (node.attrs.type !== 'symlink' || !this.#remote.readlink) throw new FsError(Errno.EINVAL);
    return this.#remote.readlink(node.path, op.signal);
  }

  async open(op: OpContext, ino: Ino, flags: number): Promise<OpenReply> {
    if ((flags & O_ACCMODE) !== O_RDONLY) throw new FsError(Errno.EROFS);
    const node = this.#inode(ino);
    if (node.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
    if (node.attrs.type === 'symlink') throw new FsError(Errno.ELOOP, 'symlinks are not followed');
    if (!node.attrs.exact || this.#clock.now() - node.attrsAt >= this.#config.attrTtlMs) await this.#refreshFile(node, op.signal);
    if (this.#offline) {
      // The last open's attributes name the version whose bytes the cache holds (a listing
      // may know the same version without its ETag, which would key another cache file).
      const opened = this.#storedAttrs(node, 'open');
      if (opened !== undefined) node.attrs = opened;
    }
    const fp = fingerprintOf(node.attrs);
    const reader = await this.#data.openFile(node.path, fp, node.attrs.size);
    this.#saveAttrs(node.path, 'open', node.attrs);
    // The version as the cache names it (the same version may be named more fully there).
    const version = fingerprintKey(reader.fingerprint);
    const pages = this.#pageCacheOnOpen(node, version);
    let directIo = pages.directIo;
    const keepCache = pages.keepCache;
    const told = this.#kernelSizes.get(node);
    if (told !== undefined && told !== node.attrs.size) {
      // The kernel still believes the old size and would cut buffered reads of this version
      // at it (a truncated file): this handle reads past the page cache, and the kernel is
      // told to drop the old attributes (off the request path) for everyone after it.
      directIo = true;
      this.#kernel?.invalidateInode(node.ino);
    }
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, { fh, inode: node, reader, version });
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
    try {
      return await h.reader.read(offset, size, op.signal);
    } catch (err) {
      if (err instanceof ChangedError) {
        // The remote object changed under this handle: its next open must stat again.
        h.inode.attrsAt = -Infinity;
        const st = this.#pageCache.get(h.inode);
        if (st !== undefined) st.version = MIXED;
      }
      throw err;
    }
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
    await h.reader.close();
  }

  async flush(): Promise<void> {
    // Nothing to write back on a read-only mount.
  }

  async statfs(): Promise<StatfsOut> {
    return { blocks: 0, bfree: 0, bavail: 0, files: this.#inodes.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async access(_op: OpContext, ino: Ino, mask: number): Promise<void> {
    this.#inode(ino);
    if (mask & W_OK) throw new FsError(Errno.EROFS);
  }

  // Read-only until the write path lands: each op that would change the tree answers EROFS.
  readonly setattr = readOnly;
  readonly mknod = readOnly;
  readonly mkdir = readOnly;
  readonly unlink = readOnly;
  readonly rmdir = readOnly;
  readonly rename = readOnly;
  readonly link = readOnly;
  readonly symlink = readOnly;
  readonly create = readOnly;
  readonly write = readOnly;
  readonly setxattr = readOnly;
  readonly removexattr = readOnly;
  readonly fallocate = readOnly;

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

  /** Closes every open handle (unmount). */
  async close(): Promise<void> {
    await Promise.all([...this.#handles.keys()].map((fh) => this.#closeHandle(fh)));
  }
}
