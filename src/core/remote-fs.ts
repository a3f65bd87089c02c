// RemoteFs: the filesystem itself, callable without a kernel. It maps inodes to remote paths,
// caches directory listings (with TTL and negative answers), decides attributes and cache
// validity, and serves reads through the data layer. The bridge turns kernel requests into
// calls here and results into replies.
//
// Invariants:
// - One listing request per directory per dirTtl: concurrent lookups/readdirs of the same
//   directory share one request (single flight), and a fresh listing answers lookups of
//   missing names negatively without a request.
// - A file's cache identity is (remote, path, fingerprint). open() confirms the fingerprint
//   with a stat when the known attributes are not exact or older than attrTtl; a changed
//   fingerprint gives a new cache file and no FOPEN_KEEP_CACHE (the kernel drops its pages).
// - Every handle is closed exactly once (release, or close() at unmount).
// - Never awaits remote I/O while holding a lock: there are no locks here; shared state is
//   only touched in synchronous sections, and single-flight maps are checked and filled in
//   the same synchronous step.
import { raceAbort } from '../base/async.js';
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { asFh, ROOT_INO, type Fh, type Ino } from '../base/ids.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import { fingerprintKey, type Fingerprint, type Remote, type RemoteEntry } from '../remote/remote.js';
import { RemoteError } from '../remote/remote-error.js';
import type { DataCache, FileReader } from '../data/data-cache.js';
import { ChangedError } from '../data/errors.js';
import { DEFAULT_CORE_CONFIG, type CoreConfig } from './config.js';
import { InodeTable, type Inode, type InodeAttrs } from './inode-table.js';

interface Listing {
  entries: Map<string, RemoteEntry>;
  /** Names in listing order, for stable readdir offsets. */
  names: string[];
  at: number;
}

interface Handle {
  fh: Fh;
  inode: Inode;
  reader: FileReader;
}

export interface OpenResult {
  fh: Fh;
  /** The cached pages of this file are still valid (same fingerprint as the last open). */
  keepCache: boolean;
}

export interface DirEntry {
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
}

export interface RemoteFsOptions {
  remote: Remote;
  data: DataCache;
  config?: Partial<CoreConfig>;
  logger: Logger;
  clock?: Clock;
}

const joinPath = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

export class RemoteFs {
  readonly config: CoreConfig;
  readonly inodes: InodeTable;
  readonly #remote: Remote;
  readonly #data: DataCache;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #listings = new Map<string, Listing>();
  readonly #listingsInFlight = new Map<string, Promise<Listing>>();
  readonly #statsInFlight = new Map<string, Promise<InodeAttrs>>();
  readonly #handles = new Map<Fh, Handle>();
  readonly #dirHandles = new Map<Fh, DirHandle>();
  /** Fingerprint key of the last open per path, for FOPEN_KEEP_CACHE. */
  readonly #lastOpened = new Map<string, string>();
  #nextFh = 1n;

  constructor(o: RemoteFsOptions) {
    this.config = { ...DEFAULT_CORE_CONFIG, ...o.config };
    this.#remote = o.remote;
    this.#data = o.data;
    this.#log = o.logger;
    this.#clock = o.clock ?? systemClock;
    this.inodes = new InodeTable({ type: 'dir', size: 0, mtimeMs: this.#clock.wallNow(), exact: true }, this.#clock.now(), o.logger);
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  #inode(ino: Ino): Inode {
    const node = this.inodes.get(ino);
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
    if (cached && this.#clock.now() - cached.at < this.config.dirTtlMs) return cached;
    let pending = this.#listingsInFlight.get(path);
    if (!pending) {
      // Not the caller's signal: the request is shared, so one caller's abort must not fail
      // the others. It is bounded by the remote's own timeouts and the data deadline.
      const shared = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
      pending = this.#remote.list(path, shared).then(
        (entries) => {
          const listing: Listing = { entries: new Map(entries.map((e) => [e.name, e])), names: entries.map((e) => e.name), at: this.#clock.now() };
          this.#listings.set(path, listing);
          return listing;
        },
      ).finally(() => this.#listingsInFlight.delete(path));
      this.#listingsInFlight.set(path, pending);
    }
    return raceAbort(pending, signal);
  }

  #attrsFromEntry(e: RemoteEntry, exactListing: boolean): InodeAttrs {
    const exact = exactListing && e.size !== undefined && e.mtimeMs !== undefined;
    const attrs: InodeAttrs = { type: e.type, size: e.size ?? 0, mtimeMs: e.mtimeMs ?? e.approxMtimeMs ?? 0, exact: e.type === 'dir' || exact };
    if (e.etag !== undefined) attrs.etag = e.etag;
    return attrs;
  }

  /** Resolves `name` in directory `parent`; undefined means it does not exist (negative). */
  async lookup(parent: Ino, name: string, signal: AbortSignal): Promise<Inode | undefined> {
    const dir = this.#dirInode(parent);
    if (name === '.') return dir;
    const listing = await this.#listing(dir.path, signal);
    const e = listing.entries.get(name);
    if (!e) return undefined;
    return this.inodes.upsert(joinPath(dir.path, name), this.#mergeAttrs(joinPath(dir.path, name), this.#attrsFromEntry(e, this.#remote.capabilities.exactListing)), this.#clock.now());
  }

  /**
   * Keeps exact attributes learnt from a stat when a later, inexact listing would only
   * repeat them less precisely (an HTML listing gives sizes but minute-rounded mtimes).
   */
  #mergeAttrs(path: string, fromListing: InodeAttrs): InodeAttrs {
    const known = this.inodes.byPath(path);
    if (known && known.attrs.exact && !fromListing.exact && known.attrs.size === fromListing.size && known.attrs.type === fromListing.type) {
      return known.attrs;
    }
    return fromListing;
  }

  /** Current attributes; refreshed from the remote when older than attrTtl. */
  async getattr(ino: Ino, signal: AbortSignal): Promise<Inode> {
    const node = this.#inode(ino);
    if (node.ino === ROOT_INO || this.#clock.now() - node.attrsAt < this.config.attrTtlMs) return node;
    if (node.attrs.type === 'dir') {
      node.attrsAt = this.#clock.now();
      return node;
    }
    await this.#refreshFile(node, signal);
    return node;
  }

  async #refreshFile(node: Inode, signal: AbortSignal): Promise<void> {
    let pending = this.#statsInFlight.get(node.path);
    if (!pending) {
      const shared = AbortSignal.timeout(this.#data.config.operationDeadlineMs);
      pending = this.#remote.stat(node.path, shared).then((s) => {
        const attrs: InodeAttrs = { type: s.type, size: s.size, mtimeMs: s.mtimeMs ?? node.attrs.mtimeMs, exact: true };
        if (s.etag !== undefined) attrs.etag = s.etag;
        return attrs;
      }).finally(() => this.#statsInFlight.delete(node.path));
      this.#statsInFlight.set(node.path, pending);
    }
    try {
      node.attrs = await raceAbort(pending, signal);
      node.attrsAt = this.#clock.now();
    } catch (err) {
      if (err instanceof RemoteError && err.kind === 'not-found') this.#forgetListingOf(node.path);
      throw err;
    }
  }

  #forgetListingOf(path: string): void {
    const slash = path.lastIndexOf('/');
    this.#listings.delete(slash < 0 ? '' : path.slice(0, slash));
  }

  /** Entries of a directory in a stable order (offset i = after the i-th entry). */
  /** Opens directory `ino` for reading; pair with releasedir. */
  opendir(ino: Ino): Fh {
    this.#dirInode(ino);
    const fh = asFh(this.#nextFh++);
    this.#dirHandles.set(fh, { ino, entries: undefined });
    return fh;
  }

  /**
   * The entries of an open directory: its snapshot, taken at the first call and retaken when
   * `rewind` (a read from offset 0). A handle the core does not know (fh 0 from a kernel that
   * skipped opendir) reads the directory afresh.
   */
  async readdirHandle(fh: Fh, ino: Ino, rewind: boolean, signal: AbortSignal): Promise<DirEntry[]> {
    const h = this.#dirHandles.get(fh);
    if (h === undefined || h.ino !== ino) return this.readdir(ino, signal);
    if (h.entries === undefined || rewind) h.entries = await this.readdir(ino, signal);
    return h.entries;
  }

  releasedir(fh: Fh): void {
    this.#dirHandles.delete(fh);
  }

  get openDirs(): number {
    return this.#dirHandles.size;
  }

  async readdir(ino: Ino, signal: AbortSignal): Promise<DirEntry[]> {
    const dir = this.#dirInode(ino);
    const listing = await this.#listing(dir.path, signal);
    const now = this.#clock.now();
    const exact = this.#remote.capabilities.exactListing;
    const out: DirEntry[] = [];
    for (const name of listing.names) {
      const e = listing.entries.get(name);
      if (!e) continue;
      const path = joinPath(dir.path, name);
      out.push({ name, inode: this.inodes.upsert(path, this.#mergeAttrs(path, this.#attrsFromEntry(e, exact)), now) });
    }
    return out;
  }

  /** A symlink's target text; EINVAL for anything else (as readlink(2)). */
  async readlink(ino: Ino, signal: AbortSignal): Promise<string> {
    const node = this.#inode(ino);
    if (node.attrs.type !== 'symlink' || !this.#remote.readlink) throw new FsError(Errno.EINVAL);
    return this.#remote.readlink(node.path, signal);
  }

  async open(ino: Ino, signal: AbortSignal): Promise<OpenResult> {
    const node = this.#inode(ino);
    if (node.attrs.type === 'dir') throw new FsError(Errno.EISDIR);
    if (node.attrs.type === 'symlink') throw new FsError(Errno.ELOOP, 'symlinks are not followed');
    if (!node.attrs.exact || this.#clock.now() - node.attrsAt >= this.config.attrTtlMs) await this.#refreshFile(node, signal);
    const fp: Fingerprint = { size: node.attrs.size, mtimeMs: node.attrs.mtimeMs };
    if (node.attrs.etag !== undefined) fp.etag = node.attrs.etag;
    const reader = await this.#data.openFile(node.path, fp, node.attrs.size);
    const key = fingerprintKey(fp);
    const keepCache = this.#lastOpened.get(node.path) === key;
    this.#lastOpened.set(node.path, key);
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, { fh, inode: node, reader });
    this.inodes.handleOpened(node);
    this.#log.debug({ fh, path: node.path, debugId: reader.debugId, keepCache }, 'opened');
    return { fh, keepCache };
  }

  async read(fh: Fh, offset: number, size: number, signal: AbortSignal): Promise<Buffer> {
    const h = this.#handles.get(fh);
    if (!h) throw new FsError(Errno.EBADF, `unknown file handle ${fh}`);
    try {
      return await h.reader.read(offset, size, signal);
    } catch (err) {
      if (err instanceof ChangedError) {
        // The remote object changed under this handle: its next open must stat again.
        h.inode.attrsAt = -Infinity;
        this.#lastOpened.delete(h.inode.path);
      }
      throw err;
    }
  }

  async release(fh: Fh): Promise<void> {
    const h = this.#handles.get(fh);
    if (!h) return;
    this.#handles.delete(fh);
    this.inodes.handleClosed(h.inode);
    await h.reader.close();
  }

  forget(ino: Ino, nlookup: bigint): void {
    this.inodes.forget(ino, nlookup);
  }

  /** Closes every open handle (unmount). */
  async close(): Promise<void> {
    const handles = [...this.#handles.keys()];
    await Promise.all(handles.map((fh) => this.release(fh)));
  }
}
