// WorkingFile: the local copy of one file being written, a sparse file in the cache's work dir.
// It holds the bytes written since the file's version on the remote (its "base"), and fetches
// the base's other bytes only when they are read or when a snapshot needs the whole file.
//
// State: `size` (the file's length now), `present` (ranges whose bytes in the working file
// are the file's bytes: written, zero-filled by a truncate or a write past the end, or filled
// from the base), `baseEnd` (bytes below it that are not present still come from the base;
// every truncate lowers it). Bytes at or past `baseEnd` that are not present are zeros (the
// working file is truncated with the file, so they are holes).
//
// Invariants:
// - A read returns exactly min(length, size - offset) bytes of the file as written, never a
//   base byte where a write landed, never a stale byte past a truncate.
// - Every mutation of the working file (write, truncate, a fill landing) runs under `#mutex`,
//   so two pwrites of overlapping ranges never race in the thread pool. Base bytes are fetched
//   WITHOUT the mutex (remote I/O is never awaited holding it), then only the sub-ranges still
//   missing are written under it: a write that landed meanwhile is never overwritten.
// - Dirty bytes are counted: `space.reserve` before the working file grows past what it counts
//   (waiting for room, then CacheFullError), `space.release` when it shrinks, is frozen into a
//   snapshot (the bytes move to the snapshot, whose owner releases them) or is closed.
// - `freeze` makes an immutable snapshot file of the complete file (fdatasync'ed when
//   durable: fsync; a close needs only what survives the process being killed): by rename
//   when `move` (the working file is then gone and this object reads from the snapshot, frozen,
//   until `thaw` copies it back), else by copy.
//
// I/O: the fd is ours (raw, closed by close() under the mutex, so no operation on it is ever in
// flight when it closes). Small operations run synchronously on the event loop: close, rename,
// unlink, and writes of at most SYNC_WRITE_MAX bytes. A thread-pool round trip costs two to
// four context switches (~100-200 us on the VMs we measured) where these syscalls take
// ~5-100 us on a local disk, and an untar paid five of them per file. Creating the file stays
// on the pool: ext4 allocates an inode for it and, while uploads fsync, waits for the journal
// (measured 0.8 ms a create on the event loop in an untar with uploads running). So do large
// writes, reads, copies, truncates and fdatasync.
//
// Write-behind: a write larger than SYNC_WRITE_MAX returns once a copy of its bytes is on its
// way to the pool, and the mutex stays held until they landed, so the kernel hands us the next
// request of a sequential writer while the last one is copied into the working file (the two
// copies, in the kernel and into the page cache, overlap instead of taking turns). Every other
// operation on the file (read, write, truncate, freeze, thaw, close) takes the mutex first, so
// none sees the file before those bytes are in it. A write that fails there (ENOSPC, EIO) makes
// every later operation fail with its error (`#failed`), close included (its flush freezes the
// file): the loss is reported, as a local filesystem reports a failed write-back at close and
// fsync, and never read as zeros. kill -9 before the bytes landed loses only a write whose
// close had not returned.
import { closeSync, fdatasync, ftruncate, open, openSync, read, renameSync, rmSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Mutex } from '../../base/async.js';
import { BufferPool } from '../../base/buffer-pool.js';
import { uniqueFileTag } from '../../base/ids.js';
import { RangeSet } from '../../base/range-set.js';

/** Where dirty bytes are counted (DataCache.reserveDirty / releaseDirty). */
export interface DirtySpace {
  reserve(bytes: number, signal: AbortSignal): Promise<void>;
  release(bytes: number): void;
}

/** Reads [offset, offset + length) of the base version (short only at its end). */
export type BaseReader = (offset: number, length: number, signal: AbortSignal) => Promise<Buffer>;

export interface WorkingFileOptions {
  /** The work dir (DataCache.workDir). */
  dir: string;
  space: DirtySpace;
  /** The file's length now. */
  size: number;
  /** Bytes [0, baseBytes) come from `base` until written. 0 for a new or truncated file. */
  baseBytes: number;
  base?: BaseReader;
}

const CHUNK = 1024 * 1024;
/** Writes up to this size are written synchronously (see the header). */
const SYNC_WRITE_MAX = 64 * 1024;

const openAsync = promisify(open);
const readAsync = promisify(read);
const writeAsync = promisify(write);
const truncateAsync = promisify(ftruncate);
const datasyncAsync = promisify(fdatasync);

/** Write-behind copies (a MiB at most, the largest FUSE write): reused, as READ replies are. */
const landingBuffers = new BufferPool(CHUNK, 4);

/** Writes all of `data` at `position` (sync when small, else on the pool). */
async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  if (data.length <= SYNC_WRITE_MAX) {
    for (let pos = 0; pos < data.length; ) pos += writeSync(fd, data, pos, data.length - pos, position + pos);
    return;
  }
  for (let pos = 0; pos < data.length; ) pos += (await writeAsync(fd, data, pos, data.length - pos, position + pos)).bytesWritten;
}

export class WorkingFile {
  readonly #dir: string;
  readonly #space: DirtySpace;
  readonly #base: BaseReader | undefined;
  readonly #mutex = new Mutex();
  #path: string;
  #fd: number;
  #size: number;
  #baseEnd: number;
  readonly #present = new RangeSet();
  /** Bytes counted as dirty for this file (its extent). */
  #counted = 0;
  /**
   * A write-behind that failed (its reply had said the bytes were written): every later read,
   * write, truncate and freeze fails with this error, so the loss is reported (at the latest
   * by close, whose flush freezes the file) and nothing reads the bytes that did not land.
   */
  #failed: Error | undefined;
  /** The file is a snapshot now (read-only, not ours to unlink). */
  #frozen = false;
  #closed = false;

  private constructor(o: WorkingFileOptions, path: string, fd: number) {
    this.#dir = o.dir;
    this.#space = o.space;
    this.#base = o.base;
    this.#path = path;
    this.#fd = fd;
    this.#size = o.size;
    this.#baseEnd = Math.min(o.baseBytes, o.size);
    if (this.#baseEnd < o.size) this.#present.add(this.#baseEnd, o.size);
  }

  /** A new working file of `size` bytes (zeros, or the base's bytes below `baseBytes`). */
  static async create(o: WorkingFileOptions, signal: AbortSignal): Promise<WorkingFile> {
    await o.space.reserve(o.size, signal);
    let fd: number | undefined;
    const path = join(o.dir, `w-${uniqueFileTag()}`);
    try {
      fd = await openAsync(path, 'wx+', 0o600);
      if (o.size > 0) await truncateAsync(fd, o.size);
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      rmSync(path, { force: true });
      o.space.release(o.size);
      throw err;
    }
    const wf = new WorkingFile(o, path, fd);
    wf.#counted = o.size;
    return wf;
  }

  /**
   * A working file that reads a frozen snapshot (complete, `size` bytes) already counted as
   * dirty by its owner: writes first `thaw` it into a working copy of its own.
   */
  static async ofSnapshot(o: Omit<WorkingFileOptions, 'baseBytes' | 'base'>, snapshotPath: string): Promise<WorkingFile> {
    const fd = openSync(snapshotPath, 'r');
    const wf = new WorkingFile({ ...o, baseBytes: 0 }, snapshotPath, fd);
    wf.#frozen = true;
    return wf;
  }

  get size(): number {
    return this.#size;
  }

  /** Reading a snapshot: the next change makes a working copy first. */
  get frozen(): boolean {
    return this.#frozen;
  }

  /** Bytes of the base still to fetch before the file is complete. */
  get missingBytes(): number {
    return this.#missing(0, this.#baseEnd).reduce((n, r) => n + r.end - r.start, 0);
  }

  #missing(start: number, end: number): { start: number; end: number }[] {
    const to = Math.min(end, this.#baseEnd);
    return to > start ? this.#present.missing(start, to) : [];
  }

  async read(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    this.#checkOpen();
    for (;;) {
      const end = Math.min(offset + length, this.#size);
      if (end <= offset) return Buffer.alloc(0);
      await this.#fill(offset, end, signal);
      const unlock = await this.#mutex.lock(signal);
      try {
        this.#throwIfFailed();
        const to = Math.min(end, this.#size); // a truncate may have run meanwhile
        if (to <= offset) return Buffer.alloc(0);
        // A truncate + regrow meanwhile cannot make base bytes missing again (it lowers
        // baseEnd), but check: never serve a byte that is not the file's.
        if (this.#missing(offset, to).length > 0) continue;
        const buf = Buffer.alloc(to - offset);
        let pos = 0;
        while (pos < buf.length) {
          const { bytesRead } = await readAsync(this.#fd, buf, pos, buf.length - pos, offset + pos);
          if (bytesRead === 0) break; // the rest is a hole at the end: the zeros already in buf
          pos += bytesRead;
        }
        return buf;
      } finally {
        unlock();
      }
    }
  }

  /** Writes `data` at `offset`; a gap past the end reads as zeros. Returns the bytes written. */
  async write(offset: number, data: Buffer, signal: AbortSignal): Promise<number> {
    this.#checkOpen();
    if (this.#frozen) await this.thaw(signal);
    const end = offset + data.length;
    // Room is waited for before the mutex (a wait for room can last the deadline; reads of
    // what is here must not wait behind it), then settled under it.
    const reserved = await this.#reserveFor(end, signal);
    const unlock = await this.#mutex.lock(signal).catch((err: unknown) => {
      this.#space.release(reserved);
      throw err;
    });
    let landing = false;
    try {
      this.#throwIfFailed();
      await this.#count(end, reserved, signal);
      if (data.length <= SYNC_WRITE_MAX) await writeAll(this.#fd, data, offset);
      if (offset > this.#size) this.#present.add(this.#size, offset); // the gap: zeros
      this.#present.add(offset, end);
      this.#size = Math.max(this.#size, end);
      if (data.length > SYNC_WRITE_MAX) {
        // Write-behind (see the header): a copy of the bytes lands on the pool while the mutex
        // stays held, so every later operation on this file waits for it.
        const copy = landingBuffers.acquire(data.length);
        data.copy(copy);
        landing = true;
        void writeAll(this.#fd, copy, offset)
          .catch((err: unknown) => {
            this.#failed ??= err instanceof Error ? err : new Error(String(err));
          })
          .finally(() => {
            landingBuffers.release(copy);
            unlock();
          });
      }
      return data.length;
    } finally {
      if (!landing) unlock();
    }
  }

  /** A write that landed behind its reply failed: this file cannot be trusted any more. */
  #throwIfFailed(): void {
    if (this.#failed !== undefined) throw this.#failed;
  }

  async truncate(size: number, signal: AbortSignal): Promise<void> {
    this.#checkOpen();
    if (this.#frozen) await this.thaw(signal);
    const reserved = await this.#reserveFor(size, signal);
    const unlock = await this.#mutex.lock(signal).catch((err: unknown) => {
      this.#space.release(reserved);
      throw err;
    });
    try {
      this.#throwIfFailed();
      await this.#count(Math.max(size, this.#counted), reserved, signal);
      await truncateAsync(this.#fd, size);
      if (size < this.#size) {
        this.#present.remove(size, Number.MAX_SAFE_INTEGER);
        this.#baseEnd = Math.min(this.#baseEnd, size);
        const freed = this.#counted - size;
        if (freed > 0) {
          this.#counted = size;
          this.#space.release(freed);
        }
      } else {
        this.#present.add(this.#size, size);
      }
      this.#size = size;
    } finally {
      unlock();
    }
  }

  /** Fetches every base byte not yet present (a snapshot needs the whole file). */
  async complete(signal: AbortSignal): Promise<void> {
    for (let at = 0; at < this.#baseEnd; at += CHUNK) await this.#fill(at, Math.min(at + CHUNK, this.#baseEnd), signal);
  }

  /**
   * Makes `snapshotPath` an immutable copy of the complete file, fdatasync'ed when `durable`. `move`: the
   * working file itself becomes the snapshot (no copy) and this object reads it, frozen; its
   * dirty bytes then belong to the snapshot's owner. Otherwise a copy (counted as dirty here:
   * the caller releases it with the snapshot). Returns the snapshot's size.
   */
  async freeze(snapshotPath: string, move: boolean, signal: AbortSignal, durable = true): Promise<number> {
    this.#checkOpen();
    await this.complete(signal);
    const unlock = await this.#mutex.lock(signal);
    try {
      this.#throwIfFailed();
      if (this.#missing(0, this.#size).length > 0) throw new Error('working file incomplete after complete()');
      const size = this.#size;
      if (move && !this.#frozen) {
        if (durable) await datasyncAsync(this.#fd);
        renameSync(this.#path, snapshotPath);
        this.#path = snapshotPath;
        this.#frozen = true;
        this.#counted = 0; // the snapshot's owner releases them now
        return size;
      }
      // A copy (of a frozen file: it is a snapshot already, and not ours to move).
      await this.#space.reserve(size, signal);
      try {
        await copyFile(this.#fd, snapshotPath, size, signal, durable);
      } catch (err) {
        this.#space.release(size);
        throw err;
      }
      return size;
    } finally {
      unlock();
    }
  }

  /** Turns a frozen (snapshot-reading) file back into a working copy of its own. */
  async thaw(signal: AbortSignal): Promise<void> {
    if (!this.#frozen) return;
    // Room first, without the mutex (see write); a frozen file does not change size.
    const size = this.#size;
    await this.#space.reserve(size, signal);
    let unlock: () => void;
    try {
      unlock = await this.#mutex.lock(signal);
    } catch (err) {
      this.#space.release(size);
      throw err;
    }
    try {
      if (!this.#frozen) {
        this.#space.release(size); // another thaw won
        return;
      }
      const path = join(this.#dir, `w-${uniqueFileTag()}`);
      try {
        await copyFile(this.#fd, path, this.#size, signal, false);
      } catch (err) {
        this.#space.release(this.#size);
        rmSync(path, { force: true });
        throw err;
      }
      const old = this.#fd;
      this.#fd = openSync(path, 'r+');
      closeSync(old);
      this.#path = path;
      this.#counted = this.#size;
      this.#frozen = false;
    } finally {
      unlock();
    }
  }

  /** Closes the fd; an unfrozen working file is deleted and its dirty bytes released. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const unlock = await this.#mutex.lock();
    try {
      closeSync(this.#fd);
      if (!this.#frozen) rmSync(this.#path, { force: true });
      this.#space.release(this.#counted);
      this.#counted = 0;
    } finally {
      unlock();
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('working file is closed');
  }

  /** Reserves (without the mutex) what growing to `end` will need, as things are now. */
  async #reserveFor(end: number, signal: AbortSignal): Promise<number> {
    const bytes = Math.max(0, end - this.#counted);
    if (bytes > 0) await this.#space.reserve(bytes, signal);
    return bytes;
  }

  /**
   * Counts the extent up to `end` as dirty (under the mutex), using the `reserved` bytes: what
   * a concurrent change made unneeded is given back, what it made missing is reserved now.
   */
  async #count(end: number, reserved: number, signal: AbortSignal): Promise<void> {
    const need = Math.max(0, end - this.#counted);
    if (need > reserved) await this.#space.reserve(need - reserved, signal);
    else if (reserved > need) this.#space.release(reserved - need);
    this.#counted += need;
  }

  /** Makes [start, end) present, fetching base bytes not yet there (remote I/O without the mutex). */
  async #fill(start: number, end: number, signal: AbortSignal): Promise<void> {
    for (const gap of this.#missing(start, end)) {
      if (this.#base === undefined) throw new Error('working file has base bytes but no base reader');
      for (let at = gap.start; at < gap.end; ) {
        const want = Math.min(CHUNK, gap.end - at);
        const bytes = await this.#base(at, want, signal);
        if (bytes.length === 0) throw new Error(`base ended at ${at}, expected ${gap.end}`);
        const unlock = await this.#mutex.lock(signal);
        try {
          // Only what is still missing: a write or truncate may have landed meanwhile.
          for (const r of this.#missing(at, at + bytes.length)) {
            await writeAll(this.#fd, bytes.subarray(r.start - at, r.end - at), r.start);
            this.#present.add(r.start, r.end);
          }
        } finally {
          unlock();
        }
        at += bytes.length;
      }
    }
  }
}

/** Copies `size` bytes of fd `from` into a new file `to` (fdatasync'ed when `durable`). */
async function copyFile(from: number, to: string, size: number, signal: AbortSignal, durable: boolean): Promise<void> {
  const out = openSync(to, 'wx', 0o600);
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, size)));
    for (let at = 0; at < size; ) {
      signal.throwIfAborted();
      const { bytesRead } = await readAsync(from, buf, 0, Math.min(buf.length, size - at), at);
      if (bytesRead === 0) throw new Error(`copy: source ended at ${at} of ${size}`);
      await writeAll(out, buf.subarray(0, bytesRead), at);
      at += bytesRead;
    }
    await truncateAsync(out, size);
    if (durable) await datasyncAsync(out);
  } catch (err) {
    closeSync(out);
    rmSync(to, { force: true });
    throw err;
  }
  closeSync(out);
}
