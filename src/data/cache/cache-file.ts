// CacheFile: one sparse file on disk holding the cached bytes of one version (fingerprint) of
// one remote object, the RangeSet of bytes present in it, and the waiters of readers that
// need bytes not present yet.
//
// Ownership: a CacheFile owns its fd, its waiters and (through a TaskGroup) the downloads that
// write into it. DataCache owns the CacheFile (pinned while any handle has it open) and calls
// close() when the last handle goes away. close() is idempotent.
//
// Invariants:
// - Opening never trusts a file it did not verify: the file must be the one the catalogue row
//   recorded (identity: inode + birth time) and have the object's size (file-identity.ts);
//   otherwise its ranges are dropped in the store *before* the file is unlinked and recreated
//   empty, and the new identity is recorded before any range of it can be persisted.
// - Once open, the CacheFile works on its fd only: reads, writes, and transfer threads (which
//   open `/proc/self/fd/<fd>`, the same inode, not the path). A file deleted or replaced under
//   an open CacheFile is therefore harmless while it is open (Linux keeps an unlinked inode
//   alive while an fd names it); the bytes land in, and are read from, the file the ranges
//   describe, and the next open sees the change and drops the ranges.
// - `present` only grows while the file is open, and only after the bytes were written
//   (write, then `landed`): a byte marked present is on disk (in the page cache).
// - Check-and-register: `addWaiter` looks at `present` and registers in one synchronous step;
//   if the range is already covered the waiter is resolved at once. `landed` settles exactly
//   the waiters it covers, in the same synchronous step as the `present.add`. So no waiter
//   can miss its wakeup: every arrival after registration sees the waiter, and every
//   arrival before registration is seen by the check.
// - Close: `closing` shuts the gate to new reads (ClosedError), aborts the downloads, rejects
//   every waiter with ClosedError, waits for in-flight reads and for the downloads to end,
//   makes newly present ranges durable (fdatasync, then persist), then closes the fd. No read
//   or write touches the fd after it is closed.
//
// Lock order: CacheFile.#flushMutex is the only lock here; it is a leaf (nothing else is
// taken while holding it) and it is never held across remote I/O — only fdatasync, the
// synchronous store write and the final fd close happen under it. See docs/LOCKING.md.
import { constants as fsConstants, existsSync } from 'node:fs';
import { open as fsOpen, unlink, type FileHandle } from 'node:fs/promises';
import { AbortedError, Deferred, Mutex, TaskGroup } from '../../base/async.js';
import { readBuffers } from '../../base/buffer-pool.js';
import { RangeSet, type Range } from '../../base/range-set.js';
import type { Logger } from '../../observability/logger.js';
import type { Fingerprint } from '../../remote/remote.js';
import { CacheDiskFullError, CacheIoError, ClosedError } from '../errors.js';
import { distrustReason, fileIdentity } from './file-identity.js';

/** Errnos of a cache disk that is full: the bytes are served uncached instead. */
const DISK_FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** True when `code` says the cache disk (or the user's quota on it) is full. */
export function isDiskFullCode(code: unknown): boolean {
  return typeof code === 'string' && DISK_FULL_CODES.has(code);
}

/** Transfer threads reopen the cache file through /proc when it exists (it does on Linux). */
const PROC_FD_DIR = '/proc/self/fd';
const haveProcFd = existsSync(PROC_FD_DIR);

/** Something a waiter is linked to (a download); told when the waiter goes away. */
export interface WaiterLink {
  unlink(waiter: Waiter, reason: 'satisfied' | 'abandoned'): void;
}

/** A reader waiting for [start, end) to become present. */
export class Waiter {
  readonly start: number;
  readonly end: number;
  readonly #d = new Deferred<void>();
  /** The downloads this waiter counts on; maintained by the range fetcher. */
  readonly links = new Set<WaiterLink>();

  constructor(start: number, end: number) {
    this.start = start;
    this.end = end;
    this.#d.promise.catch(() => undefined); // observed by the reader through `promise`
  }

  get promise(): Promise<void> {
    return this.#d.promise;
  }

  get settled(): boolean {
    return this.#d.settled;
  }

  /** Wakes the reader to look again (its range is covered, or its downloads all ended). */
  wake(): void {
    this.#d.resolve();
  }

  fail(err: unknown): void {
    this.#d.reject(err);
  }
}

/** A download as the cache file sees it: its pending bytes, and a way to stop it. */
export interface ActiveDownload {
  readonly debugId: string;
  /** Bytes [pos, end) are not yet present; [start, pos) have landed. */
  readonly pos: number;
  readonly end: number;
}

export interface CacheFileInit {
  debugId: string;
  remotePath: string;
  objectId: number;
  fingerprint: Fingerprint;
  sizeBytes: number;
  /** Absolute path of the sparse file. Created 0600 if missing or not trusted. */
  filePath: string;
  /** The catalogue's record of the file. */
  record: CacheFileRecord;
  logger: Logger;
  /** Makes newly present ranges known to the store. Called after they are fdatasync'ed. */
  persist: (ranges: Range[]) => void;
  /** Test hook (DataHooks.beforeUnlink): called right before an untrusted file is unlinked. */
  beforeUnlink?: () => void;
}

/** What the catalogue knows about a cache file, and how open() tells it what it found. */
export interface CacheFileRecord {
  /** Identity recorded when the file was created (file-identity.ts); undefined: none. */
  identity: string | undefined;
  /** The ranges recorded present; asked only once the file on disk is verified. */
  loadPresent(): RangeSet;
  /**
   * The file on disk is not the one the ranges describe (`reason`): drop them and the recorded
   * identity, durably. Called before the file is unlinked.
   */
  forget(reason: string): void;
  /** A new empty file was created with `identity`: record it. Called before open() returns. */
  created(identity: string): void;
}

export class CacheFile {
  readonly debugId: string;
  readonly remotePath: string;
  readonly objectId: number;
  readonly fingerprint: Fingerprint;
  readonly sizeBytes: number;
  readonly filePath: string;
  readonly present: RangeSet;
  readonly log: Logger;
  /** Downloads writing into this file; maintained by the range fetcher. */
  readonly downloads = new Set<ActiveDownload>();

  readonly #fh: FileHandle;
  readonly #persist: (ranges: Range[]) => void;
  readonly #waiters = new Set<Waiter>();
  readonly #tasks: TaskGroup;
  readonly #flushMutex = new Mutex();
  #unpersisted = new RangeSet();
  #closing = false;
  #closePromise: Promise<void> | undefined;
  #inFlight = 0;
  #drained: Deferred<void> | undefined;
  #fdClosed = false;
  /** Reads since the last flush (the owner touches the store's LRU clock from it). */
  accessed = false;

  private constructor(init: CacheFileInit, fh: FileHandle, present: RangeSet) {
    this.debugId = init.debugId;
    this.remotePath = init.remotePath;
    this.objectId = init.objectId;
    this.fingerprint = init.fingerprint;
    this.sizeBytes = init.sizeBytes;
    this.filePath = init.filePath;
    this.present = present;
    this.log = init.logger.child({ debugId: init.debugId });
    this.#persist = init.persist;
    this.#fh = fh;
    this.#tasks = new TaskGroup((err, name) => {
      // Download tasks handle their own errors; reaching here is a bug worth a loud line.
      this.log.error({ err, task: name }, 'cache file task failed');
    });
  }

  /**
   * Opens the sparse file if it is the one the record describes (its ranges are then
   * trusted); else tells the record to forget the ranges, unlinks whatever is there and
   * creates a new empty file (0600) of the object's size, whose identity it records.
   * The caller holds the catalog mutex (no eviction or other open of this object meanwhile).
   */
  static async open(init: CacheFileInit): Promise<CacheFile> {
    const path = init.filePath;
    let reason = 'missing';
    let fh: FileHandle | undefined;
    try {
      fh = await fsOpen(path, fsConstants.O_RDWR | fsConstants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') reason = 'a symbolic link';
      else if (code !== 'ENOENT') throw new CacheIoError(`cannot open cache file ${path}`, { cause: err });
    }
    if (fh !== undefined) {
      let why: string | undefined;
      try {
        why = distrustReason(await fh.stat({ bigint: true }), init.record.identity, init.sizeBytes);
        if (why === undefined) return new CacheFile(init, fh, init.record.loadPresent());
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw new CacheIoError(`cannot check cache file ${path}`, { cause: err });
      }
      reason = why;
      await fh.close();
    }
    // Durable order: the store forgets the ranges first, then the file goes. A crash in between
    // leaves a row without ranges (harmless) and a file nobody trusts.
    init.record.forget(reason);
    init.beforeUnlink?.();
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CacheIoError(`cannot remove untrusted cache file ${path}`, { cause: err });
    }
    try {
      fh = await fsOpen(path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw new CacheIoError(`cannot create cache file ${path}`, { cause: err });
    }
    try {
      await fh.truncate(init.sizeBytes);
      init.record.created(fileIdentity(await fh.stat({ bigint: true })));
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw new CacheIoError(`cannot size cache file ${path}`, { cause: err });
    }
    return new CacheFile(init, fh, new RangeSet());
  }

  /**
   * A path that opens this CacheFile's own inode while its fd is open, even if the file was
   * unlinked or replaced meanwhile: what a transfer thread must write to. The fd stays open
   * until every download (and so every transfer) of the file has ended (close order).
   */
  get transferPath(): string {
    return haveProcFd ? `${PROC_FD_DIR}/${this.#fh.fd}` : this.filePath;
  }

  get closing(): boolean {
    return this.#closing;
  }

  get inFlightReads(): number {
    return this.#inFlight;
  }

  get waiterCount(): number {
    return this.#waiters.size;
  }

  /** Abort signal of this file's background work: fires when close() starts. */
  get signal(): AbortSignal {
    return this.#tasks.signal;
  }

  /** The gate: counts a read in, or throws ClosedError once closing. Pair with leave(). */
  enter(): void {
    if (this.#closing) throw new ClosedError(`${this.debugId} (${this.remotePath}) is closed`);
    this.#inFlight++;
  }

  leave(): void {
    if (this.#inFlight <= 0) throw new RangeError(`${this.debugId}: leave() without enter()`);
    this.#inFlight--;
    if (this.#inFlight === 0) this.#drained?.resolve();
  }

  /**
   * Check-and-register in one synchronous step. The returned waiter is already woken if
   * [start, end) is present. The caller must removeWaiter() it when done with it.
   */
  addWaiter(start: number, end: number): Waiter {
    const w = new Waiter(start, end);
    if (this.#closing) {
      w.fail(new ClosedError(`${this.debugId} (${this.remotePath}) is closed`));
      return w;
    }
    if (this.present.covers(start, end)) {
      w.wake();
      return w;
    }
    this.#waiters.add(w);
    return w;
  }

  removeWaiter(w: Waiter): void {
    this.#waiters.delete(w);
  }

  /** Waiters that are still registered (not settled by an arrival or close). */
  waiters(): IterableIterator<Waiter> {
    return this.#waiters.values();
  }

  /**
   * Marks [start, end) present after its bytes were written, and wakes the waiters it now
   * covers, all in one synchronous step. Returns how many bytes were newly present.
   */
  landed(start: number, end: number): number {
    const before = this.present.size;
    this.present.add(start, end);
    this.#unpersisted.add(start, end);
    for (const w of this.#waiters) {
      if (w.end > start && w.start < end && this.present.covers(w.start, w.end)) {
        this.#waiters.delete(w);
        w.wake();
      }
    }
    return this.present.size - before;
  }

  /** Starts background work (a download) owned by this file; false once closing. */
  run(name: string, task: (signal: AbortSignal) => Promise<void>): boolean {
    if (this.#closing) return false;
    return this.#tasks.run(name, task);
  }

  /**
   * Reads exactly [pos, pos+length) from disk into a buffer of `readBuffers` (its final user
   * may release it). The caller has entered the gate.
   */
  async readAt(pos: number, length: number): Promise<Buffer> {
    const buf = readBuffers.acquire(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.#fh.read(buf, done, length - done, pos + done);
        if (bytesRead === 0) throw new CacheIoError(`${this.debugId}: unexpected end of cache file at ${pos + done}`);
        done += bytesRead;
      }
    } catch (err) {
      if (err instanceof CacheIoError) throw err;
      throw new CacheIoError(`${this.debugId}: reading cache file failed at ${pos}`, { cause: err });
    }
    return buf;
  }

  /**
   * Writes `bufs` back to back at `pos` (one positional writev where the kernel takes it all).
   * Only downloads call this, before `landed`. A full disk (ENOSPC, EDQUOT) is a
   * CacheDiskFullError (a CacheFullError: the reader is served uncached); bytes of a write that
   * failed part way are never marked present.
   */
  async writeAt(pos: number, bufs: readonly Uint8Array[]): Promise<void> {
    if (this.#fdClosed) throw new ClosedError(`${this.debugId}: write after close`);
    let list = bufs;
    let left = list.reduce((n, b) => n + b.length, 0);
    let at = pos;
    try {
      while (left > 0) {
        const { bytesWritten } = await this.#fh.writev(list, at);
        if (bytesWritten <= 0) throw new CacheIoError(`${this.debugId}: write made no progress at ${at}`);
        at += bytesWritten;
        left -= bytesWritten;
        if (left > 0) list = dropPrefix(list, bytesWritten);
      }
    } catch (err) {
      if (err instanceof CacheIoError) throw err;
      if (isDiskFullCode((err as NodeJS.ErrnoException).code)) {
        throw new CacheDiskFullError(`${this.debugId}: the cache disk is full (writing at ${at})`, { cause: err });
      }
      throw new CacheIoError(`${this.debugId}: writing cache file failed at ${at}`, { cause: err });
    }
  }

  /** Makes newly present ranges durable and tells the store. Safe to call any time. */
  async flush(): Promise<void> {
    await this.#flushMutex.runExclusive(() => this.#flushLocked());
  }

  async #flushLocked(): Promise<void> {
    if (this.#fdClosed || this.#unpersisted.count === 0) return;
    const ranges = [...this.#unpersisted];
    this.#unpersisted = new RangeSet();
    try {
      await this.#fh.datasync();
    } catch (err) {
      for (const r of ranges) this.#unpersisted.add(r.start, r.end);
      throw new CacheIoError(`${this.debugId}: fdatasync failed`, { cause: err });
    }
    this.#persist(ranges);
  }

  /**
   * Shuts the gate, aborts downloads, fails the waiters with ClosedError, waits for reads and
   * downloads to drain, persists, closes the fd. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    const err = new ClosedError(`${this.debugId} (${this.remotePath}) is closed`);
    const tasksDone = this.#tasks.close(err);
    for (const w of this.#waiters) w.fail(err);
    this.#waiters.clear();
    if (this.#inFlight > 0) {
      this.#drained = new Deferred<void>();
      await this.#drained.promise;
    }
    await tasksDone;
    await this.#flushMutex.runExclusive(async () => {
      try {
        await this.#flushLocked();
      } catch (e) {
        this.log.warn({ err: e }, 'final flush of cache file failed; its newest ranges will be fetched again');
      }
      this.#fdClosed = true;
      await this.#fh.close();
    });
    this.log.debug('cache file closed');
  }
}

function dropPrefix(bufs: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** True when `err` is the abort a closing file or a cancelled download uses. */
export function isStopError(err: unknown): boolean {
  return err instanceof ClosedError || err instanceof AbortedError;
}
