// Evictor: keeps the cache under its hard caps (cacheCapBytes over all objects, and
// perFileCapBytes per object), least recently used first.
//
// Accounting: `usedBytes` is the present bytes of every object (initialised from the store,
// then moved by every chunk that lands and every object evicted or dropped); `reservedBytes`
// is what chunks being written right now have reserved. A chunk reserves before it is written
// (`tryReserve`/`reserve`), and `settle`s after it landed (or failed). Hence
//   usedBytes + reservedBytes <= capBytes
// holds at every moment (the bytes on disk never exceed the cap, not even by the chunk in
// flight), as long as reservations succeed; when nothing more can be evicted a reservation
// fails with CacheFullError and the reader is served uncached instead.
//
// What may be evicted is decided by the catalog (DataCache): never an object with an open
// CacheFile (pinned — this also covers every range being read), never dirty objects.
//
// Lock order: Evictor.#mutex → DataCache catalog mutex (taken inside catalog.evict). The
// evictor mutex is never held across remote I/O; only local unlink and store writes happen
// under it. Waiting for it honours the caller's AbortSignal.
import { Mutex } from '../../base/async.js';
import type { Logger } from '../../observability/logger.js';
import { CacheFullError } from '../errors.js';

export interface EvictionCandidate {
  objectId: number;
  bytes: number;
}

/** What the evictor needs from the cache that owns the objects. */
export interface EvictionCatalog {
  /** Least recently used first, excluding pinned (open) and dirty objects. */
  candidates(limit: number): EvictionCandidate[];
  /**
   * Deletes the object's file and store rows if it is still evictable; returns the bytes it
   * accounted for (0 when it was skipped because it got pinned meanwhile).
   */
  evict(objectId: number): Promise<number>;
}

export interface EvictorOptions {
  capBytes: number;
  perFileCapBytes: number;
  targetRatio: number;
  initialUsedBytes: number;
  catalog: EvictionCatalog;
  logger: Logger;
}

export class Evictor {
  readonly capBytes: number;
  readonly perFileCapBytes: number;
  readonly #targetRatio: number;
  readonly #catalog: EvictionCatalog;
  readonly #log: Logger;
  readonly #mutex = new Mutex();
  readonly #reservedByObject = new Map<number, number>();
  #used: number;
  #reserved = 0;
  #evictedObjects = 0;

  constructor(o: EvictorOptions) {
    this.capBytes = o.capBytes;
    this.perFileCapBytes = o.perFileCapBytes;
    this.#targetRatio = o.targetRatio;
    this.#used = o.initialUsedBytes;
    this.#catalog = o.catalog;
    this.#log = o.logger;
  }

  get usedBytes(): number {
    return this.#used;
  }

  get reservedBytes(): number {
    return this.#reserved;
  }

  get evictedObjects(): number {
    return this.#evictedObjects;
  }

  /** True if an object holding `fileBytes` may grow by `bytes` (per-file cap). */
  fileMayGrow(objectId: number, fileBytes: number, bytes: number): boolean {
    return fileBytes + (this.#reservedByObject.get(objectId) ?? 0) + bytes <= this.perFileCapBytes;
  }

  /** Reserves `bytes` for a chunk of `objectId` if it fits now, without evicting. */
  tryReserve(objectId: number, fileBytes: number, bytes: number): boolean {
    if (!this.fileMayGrow(objectId, fileBytes, bytes)) return false;
    if (this.#used + this.#reserved + bytes > this.capBytes) return false;
    this.#reserved += bytes;
    this.#reservedByObject.set(objectId, (this.#reservedByObject.get(objectId) ?? 0) + bytes);
    return true;
  }

  /**
   * Reserves `bytes`, evicting least recently used objects first if needed. Throws
   * CacheFullError when the per-file cap is reached or nothing more can be evicted.
   */
  async reserve(objectId: number, fileBytes: number, bytes: number, signal: AbortSignal): Promise<void> {
    if (this.tryReserve(objectId, fileBytes, bytes)) return;
    if (!this.fileMayGrow(objectId, fileBytes, bytes)) {
      throw new CacheFullError(`object ${objectId} reached the per-file cache cap of ${this.perFileCapBytes} bytes`);
    }
    if (bytes > this.capBytes) throw new CacheFullError(`a chunk of ${bytes} bytes is larger than the cache cap`);
    await this.#mutex.runExclusive(async () => {
      while (!this.tryReserve(objectId, fileBytes, bytes)) {
        const need = this.#used + this.#reserved + bytes - this.capBytes;
        const freed = await this.#evictLocked(need);
        if (freed === 0) {
          throw new CacheFullError(
            `cache cap of ${this.capBytes} bytes reached (${this.#used} used, ${this.#reserved} reserved) and nothing more is evictable`,
          );
        }
      }
    }, signal);
  }

  /**
   * Ends a reservation: `reservedBytes` were reserved, `addedBytes` became newly present
   * (0 if the write failed). Never throws.
   */
  settle(objectId: number, reservedBytes: number, addedBytes: number): void {
    this.#reserved -= reservedBytes;
    const left = (this.#reservedByObject.get(objectId) ?? 0) - reservedBytes;
    if (left > 0) this.#reservedByObject.set(objectId, left);
    else this.#reservedByObject.delete(objectId);
    this.#used += addedBytes;
  }

  /** Bytes that left the cache other than through eviction (an invalidated object). */
  forget(bytes: number): void {
    this.#used -= bytes;
  }

  /** Evicts LRU objects until usedBytes <= targetRatio * cap (the cleanup loop's step). */
  async cleanup(signal: AbortSignal): Promise<number> {
    const target = Math.floor(this.capBytes * this.#targetRatio);
    if (this.#used <= target) return 0;
    return this.#mutex.runExclusive(async () => {
      const need = this.#used - target;
      return need > 0 ? this.#evictLocked(need) : 0;
    }, signal);
  }

  async #evictLocked(needBytes: number): Promise<number> {
    let freed = 0;
    while (freed < needBytes) {
      const batch = this.#catalog.candidates(16);
      if (batch.length === 0) break;
      let progressed = false;
      for (const c of batch) {
        const bytes = await this.#catalog.evict(c.objectId);
        if (bytes === 0 && c.bytes !== 0) continue;
        progressed = true;
        this.#used -= bytes;
        freed += bytes;
        this.#evictedObjects++;
        this.#log.debug({ objectId: c.objectId, bytes }, 'evicted cached object');
        if (freed >= needBytes) break;
      }
      if (!progressed) break;
    }
    return freed;
  }
}
