// DataCache: the data layer's facade for the core layer. It owns the cache directory, the
// store (SQLite), the download pool, the read-ahead budget, the evictor and the background
// loop; it opens one CacheFile per (remote, path, fingerprint) and pins it while any
// FileReader has it open.
//
// Ownership:
// - DataCache owns: the cache dir's owner lock (cache/owner-lock.ts: taken first in open(),
//   released last in close(); a second DataCache on the dir, in any process, is refused with
//   CacheDirBusyError), the store handle (opened here, closed in close()), every CacheFile (via
//   `#files`, closed when its last reader closes or at cache close), the TaskGroup of the
//   background loop. The Remote is the caller's: DataCache never closes it.
// - FileReader owns: its read-ahead state and the AbortController of its in-flight reads.
//
// Invariants:
// - A CacheFile is in `#files` from the moment it is opened until its last reader closed; an
//   object id is in `#pinned` until its CacheFile has fully closed (so eviction never deletes
//   a file that has an fd, a waiter or a download).
// - A new CacheFile for a key is not opened while the previous one for that key is still
//   closing (no two fds write the same cache file; accounting never counts bytes twice).
// - Every read returns exactly min(length, size - offset) bytes of the version named by the
//   fingerprint, or throws.
// - The cache never vouches for bytes it does not hold: open() reconciles the dir with the
//   store before anything is read (cache/reconcile.ts) and counts the used bytes from what
//   remains; every CacheFile.open verifies its file against its row (cache/file-identity.ts);
//   a store row (or its ranges) is always deleted, committed, before its file is unlinked.
//
// Lock order (see docs/LOCKING.md): owner lock (inter-process, held from open() to close()) →
// Evictor mutex → `#catalogMutex` → CacheFile flush mutex.
// `#catalogMutex` is held while opening a cache file (local fs and store only) and while
// deleting an evicted object; never across remote I/O and never while waiting for a
// CacheFile to close.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, Deferred, Mutex, TaskGroup, anySignal, raceAbort } from '../base/async.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Range } from '../base/range-set.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { fingerprintKey, mergeFingerprints, parseFingerprintKey, sameVersion, type Fingerprint } from '../remote/fingerprint.js';
import type { Remote } from '../remote/remote.js';
import { Catalogue } from '../store/catalogue.js';
import type { ListingStore } from '../store/listing-store.js';
import { CacheFile } from './cache/cache-file.js';
import { resolveDataConfig, type DataConfig } from './config.js';
import { DownloadPool } from './fetch/download-pool.js';
import { CacheFullError, ClosedError, DeadlineError } from './errors.js';
import { Evictor, type EvictionCandidate } from './cache/eviction.js';
import { reconcileCacheDir } from './cache/reconcile.js';
import { OwnerLock } from './cache/owner-lock.js';
import type { DataHooks } from './hooks.js';
import { RangeFetcher } from './fetch/range-fetcher.js';
import { ReadAhead, ReadAheadBudget } from './fetch/read-ahead.js';

export interface DataCacheOptions {
  /** Created 0700 if missing. Cache files live in `<cacheDir>/objects/`. */
  cacheDir: string;
  /** SQLite database; default `<cacheDir>/cache.db`. */
  storePath?: string;
  remote: Remote;
  config?: Partial<DataConfig>;
  logger?: Logger;
  clock?: Clock;
  hooks?: DataHooks;
}

/** Gauges and counters. Gauges (first group) are all zero when nothing is open or running. */
export interface DataStats {
  openFiles: number;
  openReaders: number;
  inFlightReads: number;
  waiters: number;
  downloadsActive: number;
  downloadsInFlight: number;
  downloadsQueued: number;
  readAheadBytes: number;
  reservedBytes: number;
  // counters and levels
  cacheBytes: number;
  cacheCapBytes: number;
  bytesFetched: number;
  bytesServed: number;
  remoteRequests: number;
  downloadsStarted: number;
  downloadsCancelled: number;
  uncachedReads: number;
  evictedObjects: number;
}

interface FileEntry {
  key: string;
  cf: CacheFile;
  readers: Set<FileReader>;
}

let nextCacheFileId = 1;

/** The evictor's object id for dirty data (never an object row: ids start at 1). */
const DIRTY_OBJECT = -1;

export class DataCache {
  readonly config: DataConfig;
  readonly remote: Remote;
  readonly #cacheDir: string;
  readonly #objectsDir: string;
  readonly #store: Catalogue;
  readonly #ownerLock: OwnerLock;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #hooks: DataHooks;
  readonly #pool: DownloadPool;
  readonly #budget: ReadAheadBudget;
  readonly #evictor: Evictor;
  readonly #fetcher: RangeFetcher;
  readonly #tasks: TaskGroup;
  readonly #catalogMutex = new Mutex();
  readonly #files = new Map<string, FileEntry>();
  readonly #closingFiles = new Map<string, Promise<void>>();
  /** Object ids with an open (or closing) CacheFile; a count because versions may overlap. */
  readonly #pinned = new Map<number, number>();
  /** Pinned objects whose store row was replaced; their file goes when they close. */
  readonly #detached = new Map<number, string>();
  #bytesServed = 0;
  #uncachedReads = 0;
  /** Dirty bytes (working files and snapshots of the write path) counted in the cap. */
  #dirtyBytes = 0;
  /** Resolved (and replaced) whenever dirty bytes leave the cache: writers waiting for room retry. */
  #dirtyFreed = new Deferred<void>();
  #closePromise: Promise<void> | undefined;
  #closed = false;

  private constructor(o: DataCacheOptions, config: DataConfig, store: Catalogue, lock: OwnerLock) {
    this.config = config;
    this.#ownerLock = lock;
    this.remote = o.remote;
    this.#cacheDir = o.cacheDir;
    this.#objectsDir = join(o.cacheDir, 'objects');
    this.#store = store;
    this.#log = (o.logger ?? silentLogger()).child({ component: 'data' });
    this.#clock = o.clock ?? systemClock;
    this.#hooks = o.hooks ?? {};
    this.#pool = new DownloadPool(config.downloadConcurrency, config.downloadQueueMax);
    this.#budget = new ReadAheadBudget(config.readAheadBudgetBytes);
    this.#evictor = new Evictor({
      capBytes: config.cacheCapBytes,
      perFileCapBytes: config.perFileCapBytes,
      targetRatio: config.cleanupTargetRatio,
      initialUsedBytes: store.totalPresentBytes(),
      logger: this.#log,
      catalog: {
        candidates: (limit) => this.#candidates(limit),
        evict: (id) => this.#evictObject(id),
      },
    });
    this.#fetcher = new RangeFetcher({
      remote: o.remote,
      pool: this.#pool,
      evictor: this.#evictor,
      clock: this.#clock,
      config,
      logger: this.#log,
      hooks: this.#hooks,
    });
    this.#tasks = new TaskGroup((err, name) => this.#log.error({ err, task: name }, 'data cache task failed'));
  }

  static async open(o: DataCacheOptions): Promise<DataCache> {
    const config = resolveDataConfig(o.config);
    // 0700 even if the directories already existed with wider modes: cached bytes are private.
    for (const d of [o.cacheDir, join(o.cacheDir, 'objects')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700);
    }
    // One owner per cache dir, taken before anything in it is read or changed (LOCKING.md).
    const lock = await OwnerLock.acquire(o.cacheDir);
    // Working files of a previous owner hold writes that were never closed or fsynced: by
    // the write path's contract they are not kept (what was closed is in a snapshot).
    await rm(join(o.cacheDir, 'work'), { recursive: true, force: true });
    await mkdir(join(o.cacheDir, 'work'), { mode: 0o700 });
    let store: Catalogue;
    try {
      store = Catalogue.open(o.storePath ?? join(o.cacheDir, 'cache.db'), o.clock ? { clock: o.clock } : {});
    } catch (err) {
      await lock.release();
      throw err;
    }
    try {
      // Before the evictor counts the used bytes: they are recounted from what remains.
      const beforeUnlink = o.hooks?.beforeUnlink;
      await reconcileCacheDir({
        store,
        objectsDir: join(o.cacheDir, 'objects'),
        logger: (o.logger ?? silentLogger()).child({ component: 'data' }),
        ...(beforeUnlink ? { beforeUnlink: (fileName: string) => beforeUnlink({ fileName }) } : {}),
      });
    } catch (err) {
      store.close();
      await lock.release();
      throw err;
    }
    const cache = new DataCache(o, config, store, lock);
    cache.#tasks.run('background', (signal) => cache.#background(signal));
    return cache;
  }

  /**
   * Opens `path` at version `fingerprint` (size `sizeBytes`) for reading. Readers of the same
   * version share one CacheFile. Throws ClosedError after close().
   */
  async openFile(path: string, requested: Fingerprint, sizeBytes: number): Promise<FileReader> {
    if (this.#closed) throw new ClosedError('data cache is closed');
    const fingerprint = this.#canonical(path, requested);
    const key = `${path}\u0000${fingerprintKey(fingerprint)}`;
    let reader: FileReader | undefined;
    while (!reader) {
      // Wait for a previous CacheFile of this key to finish closing *outside* the catalog
      // mutex: its downloads may need that mutex to get out of an eviction (docs/LOCKING.md).
      const closing = this.#closingFiles.get(key);
      if (closing) await closing;
      reader = await this.#catalogMutex.runExclusive(async () => {
        if (this.#closed) throw new ClosedError('data cache is closed');
        let entry = this.#files.get(key);
        if (!entry) {
          if (this.#closingFiles.has(key)) return undefined;
          entry = await this.#openEntryLocked(key, path, fingerprint, sizeBytes);
        }
        // Registered in the same synchronous step that found the entry open, so a concurrent
        // close of its last reader cannot close it under us.
        const r = new FileReader(this, entry, this.#makeReadAhead(entry.cf));
        entry.readers.add(r);
        return r;
      });
    }
    return reader;
  }

  /**
   * The fingerprint the bytes of this version are (or will be) filed under. A version may be
   * named less or more fully (a listing's size and mtime, a HEAD's ETag too): when an open
   * cache file or the catalogue's row names the same version (sameVersion), their name is
   * used, with what `requested` adds merged in and recorded, so the bytes are kept, not
   * fetched again under a second name.
   */
  #canonical(path: string, requested: Fingerprint): Fingerprint {
    // The common case first: this very name is open (a re-open), no scan and no query.
    if (this.#files.has(`${path}\u0000${fingerprintKey(requested)}`)) return requested;
    for (const entry of this.#files.values()) {
      if (entry.cf.remotePath === path && sameVersion(entry.cf.fingerprint, requested)) return entry.cf.fingerprint;
    }
    const row = this.#store.getObject(this.remote.id, path);
    const stored = row === undefined ? undefined : parseFingerprintKey(row.fingerprint);
    if (row === undefined || stored === undefined || stored.size !== row.size || !sameVersion(stored, requested)) return requested;
    const merged = mergeFingerprints(stored, requested);
    const key = fingerprintKey(merged);
    if (key !== row.fingerprint) this.#store.setFingerprint(row.id, key);
    return merged;
  }

  async #openEntryLocked(key: string, path: string, fingerprint: Fingerprint, sizeBytes: number): Promise<FileEntry> {
    const previous = this.#store.getObject(this.remote.id, path);
    const { object, stale } = this.#store.upsertObject(this.remote.id, path, fingerprintKey(fingerprint), sizeBytes, (id) =>
      `${id}-${randomBytes(4).toString('hex')}.bin`,
    );
    if (stale && previous) await this.#dropStaleLocked(previous.id, stale);
    const debugId = `cf-${nextCacheFileId++}`;
    this.#pin(object.id);
    let cf: CacheFile;
    try {
      cf = await CacheFile.open({
        debugId,
        remotePath: path,
        objectId: object.id,
        fingerprint,
        sizeBytes,
        filePath: join(this.#objectsDir, object.cacheFileName),
        record: {
          identity: object.fileIdentity,
          loadPresent: () => this.#store.loadRanges(object.id),
          forget: (reason) => this.#forgetFile(object.id, object.cacheFileName, reason, debugId),
          created: (identity) => this.#store.setFileIdentity(object.id, identity),
        },
        logger: this.#log,
        persist: (ranges: Range[]) => this.#store.addRanges(object.id, ranges),
        beforeUnlink: () => this.#hooks.beforeUnlink?.({ fileName: object.cacheFileName }),
      });
    } catch (err) {
      this.#unpin(object.id);
      throw err;
    }
    try {
      this.#store.touch(object.id);
    } catch (err) {
      // Only the LRU clock: a store that cannot take the write (a full cache disk answers
      // SQLITE_FULL) must not fail the open, nor leak the CacheFile just opened.
      cf.log.warn({ err }, 'cannot record the use of a cached object');
    }
    const entry: FileEntry = { key, cf, readers: new Set() };
    this.#files.set(key, entry);
    cf.log.debug({ path, sizeBytes, presentBytes: cf.present.size }, 'cache file opened');
    return entry;
  }

  /**
   * The cache file of an object is not the one its ranges describe: the store drops them (one
   * transaction, before the file is unlinked) and the accounting follows.
   */
  #forgetFile(objectId: number, fileName: string, reason: string, debugId: string): void {
    const dropped = this.#store.forgetFile(objectId);
    this.#evictor.forget(dropped.presentBytes);
    if (dropped.dirtyBytes > 0) {
      // Today nothing writes dirty ranges; the write path must journal what it loses here.
      this.#log.error({ debugId, objectId, fileName, reason, dirtyBytes: dropped.dirtyBytes }, 'cache file lost with locally written bytes');
    } else if (dropped.presentBytes > 0) {
      this.#log.warn({ debugId, objectId, fileName, reason, droppedBytes: dropped.presentBytes }, 'cache file not trusted: its cached ranges are dropped and fetched again');
    }
  }

  #makeReadAhead(cf: CacheFile): ReadAhead {
    return new ReadAhead({
      initialBytes: this.config.readAheadInitialBytes,
      maxBytes: this.config.readAheadMaxBytes,
      sizeBytes: cf.sizeBytes,
      budget: this.#budget,
      saturated: () => this.#pool.saturated,
      start: (s, e) => this.#fetcher.prefetch(cf, s, e),
    });
  }

  /** @internal FileReader.read */
  async _read(entry: FileEntry, readAhead: ReadAhead, offset: number, end: number, signal: AbortSignal, deadlineAt: number): Promise<Buffer> {
    const cf = entry.cf;
    cf.enter();
    try {
      let buf: Buffer;
      try {
        // The first step of waitForRange (look, plan, register) runs synchronously inside
        // this call, so the demand download is planned before read-ahead plans around it.
        const align = readAhead.isSequential(offset) ? this.config.chunkSizeBytes : this.config.randomAlignBytes;
        const waiting = this.#fetcher.waitForRange(cf, offset, end, signal, deadlineAt, align);
        try {
          readAhead.onRead(offset, end);
        } catch (err) {
          cf.log.warn({ err }, 'read-ahead failed');
        }
        await waiting;
        buf = await cf.readAt(offset, end - offset);
      } catch (err) {
        if (!(err instanceof CacheFullError)) throw err;
        cf.log.debug({ offset, end, err }, 'cache full: reading uncached');
        this.#uncachedReads++;
        buf = await this.#fetcher.readUncached(cf, offset, end, signal, deadlineAt);
      }
      cf.accessed = true;
      this.#bytesServed += buf.length;
      return buf;
    } finally {
      cf.leave();
    }
  }

  /** @internal FileReader.close: the reader has settled its reads. */
  _readerClosed(entry: FileEntry, reader: FileReader): Promise<void> {
    entry.readers.delete(reader);
    if (entry.readers.size > 0 || this.#files.get(entry.key) !== entry) return Promise.resolve();
    return this.#closeEntry(entry);
  }

  #closeEntry(entry: FileEntry): Promise<void> {
    this.#files.delete(entry.key);
    const done = entry.cf
      .close()
      .then(() => this.#touchIfAccessed(entry.cf))
      .catch((err: unknown) => this.#log.warn({ err, debugId: entry.cf.debugId }, 'closing cache file failed'))
      .then(async () => {
        const detachedFile = this.#detached.get(entry.cf.objectId);
        if (detachedFile === undefined) return;
        // Its row is gone (a newer version replaced it): its bytes leave the cache now.
        this.#detached.delete(entry.cf.objectId);
        this.#evictor.forget(entry.cf.present.size);
        await this.#unlinkQuiet(detachedFile);
      })
      .finally(() => {
        this.#unpin(entry.cf.objectId);
        if (this.#closingFiles.get(entry.key) === done) this.#closingFiles.delete(entry.key);
      });
    this.#closingFiles.set(entry.key, done);
    return done;
  }

  #touchIfAccessed(cf: CacheFile): void {
    if (!cf.accessed) return;
    cf.accessed = false;
    this.#store.touch(cf.objectId);
  }

  /** @internal */
  /** @internal the test hooks, for FileReader */
  _hooks(): DataHooks {
    return this.#hooks;
  }

  /** @internal */
  _clock(): Clock {
    return this.#clock;
  }

  #pin(id: number): void {
    this.#pinned.set(id, (this.#pinned.get(id) ?? 0) + 1);
  }

  #unpin(id: number): void {
    const n = (this.#pinned.get(id) ?? 0) - 1;
    if (n > 0) this.#pinned.set(id, n);
    else this.#pinned.delete(id);
  }

  #candidates(limit: number): EvictionCandidate[] {
    return this.#store
      .evictionCandidates(limit, [...this.#pinned.keys()])
      .map((o) => ({ objectId: o.id, bytes: o.presentBytes }));
  }

  /** Deletes an unpinned object's file and rows; 0 if it is pinned now. */
  async #evictObject(id: number): Promise<number> {
    return this.#catalogMutex.runExclusive(async () => {
      if (this.#pinned.has(id)) return 0;
      const obj = this.#store.getObjectById(id);
      if (!obj) return 0;
      const bytes = obj.presentBytes;
      this.#store.deleteObject(id);
      await this.#unlinkQuiet(obj.cacheFileName);
      this.#hooks.onEvicted?.({ objectId: id, bytes });
      return bytes;
    });
  }

  /**
   * The store replaced an object's row (new version). A file nobody has open is deleted now;
   * one still open for the old version stays until its CacheFile closes (its fd keeps the old
   * bytes readable for the old handles; the store no longer lists it).
   */
  async #dropStaleLocked(oldId: number, stale: { cacheFileName: string; presentBytes: number }): Promise<void> {
    if (this.#pinned.has(oldId)) {
      this.#detached.set(oldId, stale.cacheFileName);
      return;
    }
    this.#evictor.forget(stale.presentBytes);
    await this.#unlinkQuiet(stale.cacheFileName);
  }

  async #unlinkQuiet(fileName: string): Promise<void> {
    this.#hooks.beforeUnlink?.({ fileName });
    await unlink(join(this.#objectsDir, fileName)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ err, fileName }, 'cannot delete cache file');
    });
  }

  /**
   * Drops the cached bytes of `path` (all versions) after the caller learnt it changed (a
   * ChangedError, or the change poller). Open readers keep their version until they close.
   */
  async invalidate(path: string): Promise<void> {
    await this.#catalogMutex.runExclusive(async () => {
      const obj = this.#store.getObject(this.remote.id, path);
      if (!obj) return;
      this.#store.deleteObject(obj.id);
      await this.#dropStaleLocked(obj.id, { cacheFileName: obj.cacheFileName, presentBytes: obj.presentBytes });
    });
  }

  async #background(signal: AbortSignal): Promise<void> {
    let lastCleanup = this.#clock.now();
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(Math.min(this.config.persistIntervalMs, this.config.cleanupIntervalMs), signal);
      } catch {
        return;
      }
      await this.flush().catch((err: unknown) => this.#log.warn({ err }, 'persisting cache ranges failed'));
      if (this.#clock.now() - lastCleanup >= this.config.cleanupIntervalMs) {
        lastCleanup = this.#clock.now();
        await this.#evictor.cleanup(signal).catch((err: unknown) => {
          if (!signal.aborted) this.#log.warn({ err }, 'cache cleanup failed');
        });
      }
    }
  }

  /** Makes every newly present range durable and known to the store. */
  async flush(): Promise<void> {
    const entries = [...this.#files.values()];
    await Promise.all(
      entries.map(async (e) => {
        await e.cf.flush();
        this.#touchIfAccessed(e.cf);
      }),
    );
  }

  /** Runs one cleanup step now (what the background loop does every cleanupIntervalMs). */
  async cleanup(signal?: AbortSignal): Promise<number> {
    return this.#evictor.cleanup(signal ?? new AbortController().signal);
  }

  stats(): DataStats {
    let waiters = 0;
    let inFlightReads = 0;
    let openReaders = 0;
    for (const e of this.#files.values()) {
      waiters += e.cf.waiterCount;
      inFlightReads += e.cf.inFlightReads;
      openReaders += e.readers.size;
    }
    return {
      openFiles: this.#files.size + this.#closingFiles.size,
      openReaders,
      inFlightReads,
      waiters,
      downloadsActive: this.#fetcher.activeDownloads,
      downloadsInFlight: this.#pool.inFlight,
      downloadsQueued: this.#pool.queued + this.#pool.blocked,
      readAheadBytes: this.#budget.usedBytes,
      reservedBytes: this.#evictor.reservedBytes,
      cacheBytes: this.#evictor.usedBytes,
      cacheCapBytes: this.#evictor.capBytes,
      bytesFetched: this.#fetcher.bytesFetched,
      bytesServed: this.#bytesServed,
      remoteRequests: this.#fetcher.remoteRequests,
      downloadsStarted: this.#fetcher.downloadsStarted,
      downloadsCancelled: this.#fetcher.downloadsCancelled,
      uncachedReads: this.#uncachedReads,
      evictedObjects: this.#evictor.evictedObjects,
    };
  }

  /** Where cache files live (for tests and `status`). */
  get objectsDir(): string {
    return this.#objectsDir;
  }

  get cacheDir(): string {
    return this.#cacheDir;
  }

  /**
   * What the remote said of its directories and files, persisted in this cache dir's store
   * (the core saves listings and attributes there and reads them back while offline). Owned
   * by the cache: closed with it, after which every call throws StoreClosedError.
   */
  get listings(): ListingStore {
    return this.#store.listings;
  }

  /**
   * Where the write path keeps its working files (`<cacheDir>/work`, emptied at open: a working
   * file holds only what was written since the last close or fsync, which a crash may lose).
   */
  get workDir(): string {
    return join(this.#cacheDir, 'work');
  }

  /** Where the upload queue keeps the snapshots it uploads (`<cacheDir>/snapshots`). */
  get snapshotDir(): string {
    return join(this.#cacheDir, 'snapshots');
  }

  /** Dirty bytes counted in the cap now. */
  get dirtyBytes(): number {
    return this.#dirtyBytes;
  }

  /**
   * Makes room for `bytes` more dirty bytes (written data, never evicted): clean cached
   * objects are evicted first; when the cap is full of dirty data the caller waits for dirty
   * bytes to leave (uploads finishing) until `signal` fires, then gets CacheFullError
   * (ENOSPC). The bytes count as used until `releaseDirty`.
   */
  async reserveDirty(bytes: number, signal: AbortSignal): Promise<void> {
    if (bytes <= 0) return;
    if (bytes > this.config.cacheCapBytes) throw new CacheFullError(`a write of ${bytes} bytes is larger than the cache cap`);
    for (;;) {
      const freed = this.#dirtyFreed.promise;
      try {
        await this.#evictor.reserve(DIRTY_OBJECT, 0, bytes, signal);
        this.#evictor.settle(DIRTY_OBJECT, bytes, bytes);
        this.#dirtyBytes += bytes;
        return;
      } catch (err) {
        if (!(err instanceof CacheFullError) || signal.aborted) throw err;
      }
      try {
        await raceAbort(freed, signal);
      } catch (cause) {
        throw new CacheFullError(`the cache cap of ${this.config.cacheCapBytes} bytes is full of data not uploaded yet (${this.#dirtyBytes} bytes)`, { cause });
      }
    }
  }

  /** Counts `bytes` that are already on disk as dirty (snapshots found at start). */
  adoptDirty(bytes: number): void {
    if (bytes <= 0) return;
    this.#evictor.settle(DIRTY_OBJECT, 0, bytes);
    this.#dirtyBytes += bytes;
  }

  /** `bytes` of dirty data left the cache (uploaded, truncated, deleted): room for writers. */
  releaseDirty(bytes: number): void {
    if (bytes <= 0) return;
    const n = Math.min(bytes, this.#dirtyBytes);
    this.#evictor.forget(n);
    this.#dirtyBytes -= n;
    const freed = this.#dirtyFreed;
    this.#dirtyFreed = new Deferred<void>();
    freed.resolve();
  }

  /** @internal the store, for tests that check its totals. */
  get store(): Catalogue {
    return this.#store;
  }

  /**
   * Closes every reader (their reads fail with ClosedError), every cache file, the
   * background loop and the store, then releases the cache dir. Idempotent.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // An openFile holding the catalog mutex finishes first; later ones see #closed under it.
    await this.#catalogMutex.runExclusive(() => undefined);
    const readers = [...this.#files.values()].flatMap((e) => [...e.readers]);
    await Promise.all(readers.map((r) => r.close()));
    await Promise.all([...this.#files.values()].map((e) => this.#closeEntry(e)));
    await Promise.all([...this.#closingFiles.values()]);
    await this.#tasks.close(new ClosedError('data cache is closed'));
    try {
      this.#store.close();
    } finally {
      await this.#ownerLock.release();
    }
  }
}

/** One open handle on a cached object. Reads are concurrent; close() is idempotent. */
export class FileReader {
  readonly path: string;
  readonly fingerprint: Fingerprint;
  readonly sizeBytes: number;
  readonly #cache: DataCache;
  readonly #entry: FileEntry;
  readonly #readAhead: ReadAhead;
  readonly #controller = new AbortController();
  #inFlight = 0;
  #drained: Deferred<void> | undefined;
  #closePromise: Promise<void> | undefined;

  /** @internal created by DataCache.openFile */
  constructor(cache: DataCache, entry: FileEntry, readAhead: ReadAhead) {
    this.#cache = cache;
    this.#entry = entry;
    this.#readAhead = readAhead;
    this.path = entry.cf.remotePath;
    this.fingerprint = entry.cf.fingerprint;
    this.sizeBytes = entry.cf.sizeBytes;
  }

  get debugId(): string {
    return this.#entry.cf.debugId;
  }

  /** The store's id of the cached object (for logs and tests). */
  get objectId(): number {
    return this.#entry.cf.objectId;
  }

  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /**
   * Reads [offset, offset+length) clamped to the size: exactly those bytes (empty past EOF).
   * Rejects with ClosedError, ChangedError, DeadlineError, a RemoteError, or the reason of
   * `signal`.
   */
  async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`bad read range offset=${offset} length=${length}`);
    }
    if (this.closed) throw new ClosedError(`${this.debugId}: reader is closed`);
    const end = Math.min(offset + length, this.sizeBytes);
    if (end <= offset) return Buffer.alloc(0);
    const clock = this.#cache._clock();
    const deadlineMs = this.#cache.config.operationDeadlineMs;
    const deadlineAt = clock.now() + deadlineMs;
    const deadline = new AbortController();
    const stopTimer = new AbortController();
    void clock.sleep(deadlineMs, stopTimer.signal).then(
      () => deadline.abort(new DeadlineError(`${this.debugId}: read [${offset}, ${end}) of ${this.path} passed its ${deadlineMs} ms deadline`, deadlineMs)),
      () => undefined,
    );
    const op = anySignal([signal, this.#controller.signal, deadline.signal]);
    this.#inFlight++;
    try {
      return await this.#cache._read(this.#entry, this.#readAhead, offset, end, op, deadlineAt);
    } catch (err) {
      // Its whole deadline spent waiting for remote bytes: the remote's health hears of it, so
      // the kernel's page-by-page retries fail fast instead of each waiting a deadline.
      if (deadline.signal.aborted) this.#cache.remote.reportTimeout?.(`read of ${this.path}`);
      // A read cut short by its own signal reports the signal's reason, whatever layer saw it.
      if (op.aborted && !(err instanceof ClosedError)) {
        const reason: unknown = op.reason;
        throw reason instanceof Error ? reason : new AbortedError('read aborted', { cause: err });
      }
      throw err;
    } finally {
      stopTimer.abort();
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.resolve();
    }
  }

  /** Fails in-flight reads with ClosedError, stops read-ahead, unpins the cache file. */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#controller.abort(new ClosedError(`${this.debugId}: reader closed`));
    this.#readAhead.close();
    if (this.#inFlight > 0) {
      this.#drained = new Deferred<void>();
      this.#cache._hooks().onCloseWaitsForReads?.({ debugId: this.debugId, inFlightReads: this.#inFlight });
      await this.#drained.promise;
    }
    await this.#cache._readerClosed(this.#entry, this);
  }
}
