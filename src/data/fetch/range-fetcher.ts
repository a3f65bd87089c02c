// RangeFetcher: gets missing bytes of a cache file from the remote.
//
// - Plans the missing parts of a read, aligned to chunkSizeBytes (sequential readers) or
//   randomAlignBytes (random access), and split at maxRequestBytes.
// - Single flight: a cache file's running downloads are the in-flight set; a read whose bytes
//   are pending in a running download links its waiter to it instead of fetching them again,
//   and fetches only the rest.
// - Streams each response into the cache file as it arrives (positional writes), marking each
//   chunk present as it lands, so readers of early bytes wake before the download ends.
// - Validates through the Remote (expect = the cache file's fingerprint); kind 'changed'
//   becomes ChangedError. Transient failures (RemoteError.retryable) are retried with the
//   remote retry policy inside the download's deadline, resuming at the last byte that landed.
// - Cancels downloads nobody waits for: a download's interested parties are the waiters
//   linked to it plus read-ahead holds; when the last one leaves without being satisfied
//   (abort, deadline, seek, close), the download's AbortController fires. A download whose
//   last reader left satisfied finishes its (bounded, aligned) range.
// - Servers without range support (the remote says so, or answers a partial range with the
//   whole object: RemoteError kind 'unsupported'): from then on every download is one
//   whole-file stream from byte 0 that readers at any offset link to and wait on, never a
//   refetch of the file per read. Read-ahead is off (the stream is the read-ahead); a retry
//   restarts the body at 0 and skips what already landed.
//
// Invariants:
// - Every Download is in `cf.downloads` from the synchronous step that created it until it
//   ended; a cancelled download is never joined (its range counts as not in flight).
// - When a download ends, every waiter linked to it is either failed with its error, or
//   woken to re-plan if it is not covered and has no download left; so no waiter is left
//   waiting on nothing.
// - Downloads are tasks of their CacheFile's TaskGroup: close() aborts and awaits them.
//
// Test hook points (hooks.ts; a property test each when none is installed): onSawMissing
// between waitForRange's look and the registration, beforeCopyOut when a reader's bytes are
// present, beforeLanded (which may land() the chunk itself) and afterChunkLanded where a chunk
// lands, on both the in-thread and the transfer path.
//
// Lock order: no mutex of its own. Evictor.reserve (Evictor mutex → catalog mutex) is taken
// while a download holds a pool slot, never the other way round. No CacheFile lock is held
// while awaiting the remote.
import { AbortedError, Deferred, raceAbort, throwIfAborted } from '../../base/async.js';
import type { Clock } from '../../base/clock.js';
import { RangeSet } from '../../base/range-set.js';
import type { Logger } from '../../observability/logger.js';
import { FileWriteError, RemoteError, isRemoteError } from '../../remote/remote-error.js';
import { fingerprintChange } from '../../remote/fingerprint.js';
import type { FileTransfer, Remote } from '../../remote/remote.js';
import { retry } from '../../remote/retry.js';
import { isDiskFullCode, type CacheFile, type ActiveDownload, type Waiter, type WaiterLink } from '../cache/cache-file.js';
import type { DataConfig } from '../config.js';
import type { DownloadPool } from './download-pool.js';
import { CacheDiskFullError, CacheFullError, CacheIoError, ChangedError, ClosedError } from '../errors.js';
import type { Evictor } from '../cache/eviction.js';
import type { DataHooks } from '../hooks.js';
import type { PrefetchHandle } from './read-ahead.js';

/** A download stops pulling its body while this much is queued for writing. */
const MAX_WRITE_BACKLOG_BYTES = 1024 * 1024;

/** How many plan/wait rounds one read may take before we call it a bug (no progress). */
const MAX_ROUNDS = 1000;

export interface RangeFetcherDeps {
  remote: Remote;
  pool: DownloadPool;
  evictor: Evictor;
  clock: Clock;
  config: DataConfig;
  logger: Logger;
  hooks: DataHooks;
}

class PrefetchHold implements PrefetchHandle {
  readonly downloads = new Set<Download>();
  readonly #done = new Deferred<void>();
  #ended = false;

  get done(): Promise<void> {
    return this.#done.promise;
  }

  ended(dl: Download): void {
    this.downloads.delete(dl);
    if (this.downloads.size === 0 && !this.#ended) {
      this.#ended = true;
      this.#done.resolve();
    }
  }

  cancel(): void {
    for (const dl of [...this.downloads]) dl.dropHold(this);
  }
}

let nextDownloadId = 1;

class Download implements ActiveDownload, WaiterLink {
  readonly debugId = `dl-${nextDownloadId++}`;
  readonly cf: CacheFile;
  readonly start: number;
  readonly end: number;
  readonly kind: 'demand' | 'read-ahead';
  readonly controller = new AbortController();
  readonly waiters = new Set<Waiter>();
  readonly holds = new Set<PrefetchHold>();
  pos: number;
  deadlineAt: number;
  cancelled = false;
  ended = false;

  constructor(cf: CacheFile, start: number, end: number, kind: 'demand' | 'read-ahead', deadlineAt: number) {
    this.cf = cf;
    this.start = start;
    this.end = end;
    this.pos = start;
    this.kind = kind;
    this.deadlineAt = deadlineAt;
  }

  get refs(): number {
    return this.waiters.size + this.holds.size;
  }

  link(w: Waiter, deadlineAt: number): void {
    this.waiters.add(w);
    w.links.add(this);
    if (deadlineAt > this.deadlineAt) this.deadlineAt = deadlineAt;
  }

  unlink(w: Waiter, reason: 'satisfied' | 'abandoned'): void {
    this.waiters.delete(w);
    if (reason === 'abandoned') this.#cancelIfUnwanted();
  }

  addHold(h: PrefetchHold): void {
    this.holds.add(h);
    h.downloads.add(this);
  }

  dropHold(h: PrefetchHold): void {
    if (!this.holds.delete(h)) return;
    h.ended(this);
    this.#cancelIfUnwanted();
  }

  #cancelIfUnwanted(): void {
    if (this.ended || this.cancelled || this.refs > 0) return;
    this.cancelled = true;
    this.controller.abort(new AbortedError(`${this.debugId}: nobody waits for it any more`));
  }
}

export class RangeFetcher {
  readonly #d: RangeFetcherDeps;
  #active = 0;
  #bytesFetched = 0;
  #remoteRequests = 0;
  #downloadsStarted = 0;
  #downloadsCancelled = 0;
  /** The remote cannot serve byte ranges: whole-file downloads only (see the header). */
  #wholeFile: boolean;

  constructor(deps: RangeFetcherDeps) {
    this.#wholeFile = !deps.remote.capabilities.ranges;
    this.#d = deps;
  }

  /** Downloads that exist (queued, running or retrying). */
  get activeDownloads(): number {
    return this.#active;
  }

  get bytesFetched(): number {
    return this.#bytesFetched;
  }

  get remoteRequests(): number {
    return this.#remoteRequests;
  }

  get downloadsStarted(): number {
    return this.#downloadsStarted;
  }

  get downloadsCancelled(): number {
    return this.#downloadsCancelled;
  }

  /** Whether downloads are whole-file streams (the remote does not serve ranges). */
  get wholeFileOnly(): boolean {
    return this.#wholeFile;
  }

  /**
   * Resolves once [start, end) of `cf` is present. Rejects with ClosedError, ChangedError,
   * CacheFullError (the cap is reached or the cache disk is full, CacheDiskFullError: the
   * caller then reads uncached), a final RemoteError, or the signal's reason. The caller has entered the cache file's gate.
   */
  async waitForRange(cf: CacheFile, start: number, end: number, signal: AbortSignal, deadlineAt: number, alignBytes = this.#d.config.chunkSizeBytes): Promise<void> {
    for (let round = 0; ; round++) {
      if (round >= MAX_ROUNDS) {
        throw new RemoteError('protocol', `${cf.debugId}: no progress on [${start}, ${end}) after ${MAX_ROUNDS} rounds`);
      }
      throwIfAborted(signal);
      // ---- one synchronous step: look, then register (no await in between) ----
      if (cf.present.covers(start, end)) {
        if (this.#d.hooks.beforeCopyOut) await this.#d.hooks.beforeCopyOut({ debugId: cf.debugId, start, end });
        return;
      }
      this.#d.hooks.onSawMissing?.({ debugId: cf.debugId, start, end });
      const w = cf.addWaiter(start, end);
      if (!w.settled) this.#plan(cf, w, deadlineAt, alignBytes);
      // ---- end of the step ----
      try {
        await raceAbort(w.promise, signal);
      } finally {
        this.#release(cf, w);
      }
    }
  }

  /** Starts a read-ahead of [start, end); undefined when nothing needs fetching. */
  prefetch(cf: CacheFile, start: number, end: number): PrefetchHandle | undefined {
    if (cf.closing || this.#wholeFile) return undefined;
    const want = new RangeSet();
    for (const r of cf.present.missing(start, end)) want.add(r.start, r.end);
    const hold = new PrefetchHold();
    // Bytes already pending in a running download are left to it: read-ahead holds only the
    // downloads it starts, so a demand download whose readers all gave up is still cancelled.
    for (const dl of this.#joinable(cf)) want.remove(dl.pos, dl.end);
    if (want.size > 0 && this.#d.evictor.fileMayGrow(cf.objectId, cf.present.size + this.#pendingBytes(cf), want.size)) {
      const deadlineAt = this.#d.clock.now() + this.#d.config.operationDeadlineMs;
      for (const r of want) {
        for (let s = r.start; s < r.end; s += this.#d.config.maxRequestBytes) {
          const dl = this.#startDownload(cf, s, Math.min(s + this.#d.config.maxRequestBytes, r.end), 'read-ahead', deadlineAt);
          if (dl) dl.addHold(hold);
        }
      }
    }
    if (hold.downloads.size === 0) return undefined;
    return hold;
  }

  /**
   * Reads [start, end) straight from the remote into memory, bypassing the cache file
   * (used when the cache is full). Same validation and retries as a download.
   */
  async readUncached(cf: CacheFile, start: number, end: number, signal: AbortSignal, deadlineAt: number): Promise<Buffer> {
    const out = Buffer.alloc(end - start);
    let pos = start;
    await this.#withRetries(
      cf,
      () => pos,
      async () => {
        const slot = await this.#d.pool.acquire(signal);
        try {
          // Without ranges the body starts at 0: skip to `pos`, stop once `end` is reached.
          const from = this.#wholeFile ? 0 : pos;
          const stream = await this.#open(cf, from, this.#wholeFile ? cf.sizeBytes : end - pos, signal);
          let at = from;
          for await (const raw of stream.body) {
            const chunkStart = at;
            at += raw.length;
            if (at <= pos) continue;
            const chunk = chunkStart < pos ? raw.subarray(pos - chunkStart) : raw;
            const take = Math.min(chunk.length, end - pos);
            if (!this.#wholeFile && take < chunk.length) {
              throw new RemoteError('protocol', `${cf.debugId}: body longer than the ${end - start} bytes asked for`);
            }
            out.set(chunk.subarray(0, take), pos - start);
            pos += take;
            this.#bytesFetched += raw.length;
            if (pos >= end) break;
          }
          if (pos < end) throw new RemoteError('protocol', `${cf.debugId}: short body, ${pos - start} of ${end - start} bytes`);
        } finally {
          slot.release();
        }
      },
      signal,
      deadlineAt,
    ).catch((err: unknown) => {
      throw this.#finalError(cf, err, signal);
    });
    return out;
  }

  #joinable(cf: CacheFile): Download[] {
    const out: Download[] = [];
    for (const a of cf.downloads) {
      const dl = a as Download;
      if (!dl.cancelled && !dl.ended && dl.pos < dl.end) out.push(dl);
    }
    return out;
  }

  #pendingBytes(cf: CacheFile): number {
    let n = 0;
    for (const a of cf.downloads) n += Math.max(0, a.end - a.pos);
    return n;
  }

  /**
   * Synchronous: links `w` to running downloads of its missing bytes, starts the rest, widened
   * to multiples of `alignBytes` (a chunk for sequential reads, a page for random ones).
   */
  #plan(cf: CacheFile, w: Waiter, deadlineAt: number, alignBytes: number): void {
    if (this.#wholeFile) {
      this.#planWholeFile(cf, w, deadlineAt);
      return;
    }
    const need = new RangeSet();
    for (const r of cf.present.missing(w.start, w.end)) need.add(r.start, r.end);
    const joinable = this.#joinable(cf);
    for (const dl of joinable) {
      if (need.intersect(dl.pos, dl.end).length > 0) {
        dl.link(w, deadlineAt);
        need.remove(dl.pos, dl.end);
      }
    }
    if (need.size === 0) return;
    const aligned = new RangeSet();
    for (const r of need) {
      aligned.add(Math.floor(r.start / alignBytes) * alignBytes, Math.min(Math.ceil(r.end / alignBytes) * alignBytes, cf.sizeBytes));
    }
    const toFetch = new RangeSet();
    for (const r of aligned) for (const m of cf.present.missing(r.start, r.end)) toFetch.add(m.start, m.end);
    for (const dl of joinable) toFetch.remove(dl.pos, dl.end);
    if (!this.#d.evictor.fileMayGrow(cf.objectId, cf.present.size + this.#pendingBytes(cf), need.size)) {
      cf.removeWaiter(w);
      w.fail(new CacheFullError(`${cf.debugId}: object reached the per-file cache cap`));
      return;
    }
    const max = this.#d.config.maxRequestBytes;
    for (const r of toFetch) {
      for (let s = r.start; s < r.end; s += max) {
        const dl = this.#startDownload(cf, s, Math.min(s + max, r.end), 'demand', deadlineAt);
        if (!dl) {
          cf.removeWaiter(w);
          w.fail(new ClosedError(`${cf.debugId} (${cf.remotePath}) is closed`));
          return;
        }
        dl.link(w, deadlineAt);
      }
    }
  }

  /**
   * Synchronous, for a remote without ranges: links `w` to a running whole-file download that
   * has not yet passed its first missing byte, or starts one from byte 0.
   */
  #planWholeFile(cf: CacheFile, w: Waiter, deadlineAt: number): void {
    const missing = cf.present.missing(w.start, w.end);
    const first = missing[0];
    if (first === undefined) return;
    for (const dl of this.#joinable(cf)) {
      if (dl.pos <= first.start) {
        dl.link(w, deadlineAt);
        return;
      }
    }
    if (!this.#d.evictor.fileMayGrow(cf.objectId, cf.present.size + this.#pendingBytes(cf), cf.sizeBytes - cf.present.size)) {
      cf.removeWaiter(w);
      w.fail(new CacheFullError(`${cf.debugId}: the whole object does not fit the per-file cache cap`));
      return;
    }
    const dl = this.#startDownload(cf, 0, cf.sizeBytes, 'demand', deadlineAt);
    if (!dl) {
      cf.removeWaiter(w);
      w.fail(new ClosedError(`${cf.debugId} (${cf.remotePath}) is closed`));
      return;
    }
    dl.link(w, deadlineAt);
  }

  #startDownload(cf: CacheFile, start: number, end: number, kind: 'demand' | 'read-ahead', deadlineAt: number): Download | undefined {
    const dl = new Download(cf, start, end, kind, deadlineAt);
    const started = cf.run(dl.debugId, (groupSignal) => this.#run(dl, groupSignal));
    if (!started) return undefined;
    cf.downloads.add(dl);
    this.#active++;
    this.#downloadsStarted++;
    cf.log.debug({ dl: dl.debugId, start, end, kind }, 'download planned');
    return dl;
  }

  /** Takes `w` out of the file and out of its downloads, with the reason its reader left. */
  #release(cf: CacheFile, w: Waiter): void {
    cf.removeWaiter(w);
    const reason = cf.present.covers(w.start, w.end) ? 'satisfied' : 'abandoned';
    const links = [...w.links];
    w.links.clear();
    for (const l of links) l.unlink(w, reason);
  }

  async #run(dl: Download, groupSignal: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([groupSignal, dl.controller.signal]);
    let error: unknown;
    try {
      await this.#download(dl, signal);
    } catch (err) {
      error = err;
    }
    const cf = dl.cf;
    dl.ended = true;
    cf.downloads.delete(dl);
    this.#active--;
    if (dl.cancelled) this.#downloadsCancelled++;
    if (error !== undefined && !this.#wholeFile && !signal.aborted && isRemoteError(error) && error.kind === 'unsupported' && error.status === 200) {
      // The server ignores Range: switch to whole-file downloads. The waiters of this one wake
      // below (not covered, no download left) and re-plan in the new mode.
      this.#wholeFile = true;
      cf.log.info({ path: cf.remotePath, remote: this.#d.remote.id }, 'the server ignores Range requests: reading whole files from now on');
      error = undefined;
    }
    const finalErr = error === undefined ? undefined : this.#finalError(cf, error, signal);
    if (finalErr !== undefined && !dl.cancelled && !(finalErr instanceof ClosedError)) {
      cf.log.debug({ dl: dl.debugId, err: finalErr, pos: dl.pos, end: dl.end }, 'download failed');
    }
    const waiters = [...dl.waiters];
    dl.waiters.clear();
    for (const w of waiters) {
      w.links.delete(dl);
      if (w.settled) continue;
      if (cf.present.covers(w.start, w.end)) {
        w.wake();
      } else if (finalErr !== undefined) {
        w.fail(finalErr);
      } else if (w.links.size === 0) {
        w.wake(); // its downloads all ended without covering it: look again
      }
    }
    const holds = [...dl.holds];
    dl.holds.clear();
    for (const h of holds) h.ended(dl);
  }

  /** The error a waiter sees for a failed download or read. */
  #finalError(cf: CacheFile, err: unknown, signal: AbortSignal): unknown {
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof ClosedError) return reason;
      if (reason instanceof Error) return reason;
      return new AbortedError('aborted', { cause: err });
    }
    if (isRemoteError(err) && err.kind === 'changed') {
      return new ChangedError(cf.remotePath, `${cf.remotePath} changed on the remote; the cached version is stale`, { cause: err });
    }
    return err;
  }

  async #download(dl: Download, signal: AbortSignal): Promise<void> {
    await this.#withRetries(
      dl.cf,
      () => dl.pos,
      async () => {
        const slot = await this.#d.pool.acquire(signal);
        try {
          await this.#attempt(dl, signal);
        } finally {
          slot.release();
        }
      },
      signal,
      () => dl.deadlineAt,
    );
  }

  /**
   * Retries `attempt` per the remote retry policy. A run of retries that made progress
   * (position moved) starts over with a fresh attempt budget, still inside the deadline.
   */
  async #withRetries(
    cf: CacheFile,
    position: () => number,
    attempt: () => Promise<void>,
    signal: AbortSignal,
    deadlineAt: number | (() => number),
  ): Promise<void> {
    const deadline = typeof deadlineAt === 'number' ? (): number => deadlineAt : deadlineAt;
    for (;;) {
      const before = position();
      try {
        await retry(attempt, {
          signal,
          deadlineAt: deadline(),
          clock: this.#d.clock,
          baseMs: this.#d.config.retryBaseMs,
          maxMs: this.#d.config.retryMaxMs,
          maxAttempts: this.#d.config.retryMaxAttempts,
          onRetry: (err, n, delayMs) => cf.log.debug({ err, attempt: n, delayMs, pos: position() }, 'retrying remote read'),
        });
        return;
      } catch (err) {
        const progressed = position() > before;
        if (!progressed || signal.aborted || !isRemoteError(err) || !err.retryable) throw err;
        if (this.#d.clock.now() >= deadline()) throw err;
      }
    }
  }

  async #open(cf: CacheFile, pos: number, length: number, signal: AbortSignal): Promise<{ body: AsyncIterable<Uint8Array> }> {
    this.#remoteRequests++;
    const stream = await this.#d.remote.read(cf.remotePath, pos, length, { signal, expect: cf.fingerprint });
    if (fingerprintChange(cf.fingerprint, stream.fingerprint) !== undefined) {
      throw new RemoteError('changed', `${cf.remotePath}: remote answered for another version`);
    }
    return stream;
  }

  async #attempt(dl: Download, signal: AbortSignal): Promise<void> {
    const cf = dl.cf;
    if (dl.pos >= dl.end) return;
    const readToFile = this.#d.remote.readToFile?.bind(this.#d.remote);
    // Read-ahead runs off-thread; a demand download has a reader waiting for its first bytes,
    // and the hops to a transfer thread and back would add to that wait.
    if (readToFile !== undefined && dl.kind === 'read-ahead' && dl.end - dl.pos >= this.#d.config.offThreadMinBytes) {
      await this.#attemptToFile(dl, signal, readToFile);
      return;
    }
    // Without ranges every attempt reads from byte 0; what already landed is skipped.
    const from = this.#wholeFile ? 0 : dl.pos;
    const stream = await this.#open(cf, from, this.#wholeFile ? cf.sizeBytes : dl.end - dl.pos, signal);
    let skip = dl.pos - from;
    // Writes are pipelined with the body: while one batch is being written, the chunks that
    // arrive queue up and go out as the next batch (one writev), so small network chunks do
    // not each cost a thread-pool round trip, and nothing waits for a later chunk to land.
    const writer = new BatchWriter((bufs) => this.#land(dl, bufs, signal));
    let queuedTo = dl.pos;
    try {
      for await (const raw of stream.body) {
        throwIfAborted(signal);
        if (raw.length <= skip) {
          skip -= raw.length;
          continue;
        }
        const chunk = skip > 0 ? raw.subarray(skip) : raw;
        skip = 0;
        if (chunk.length === 0) continue;
        if (queuedTo + chunk.length > dl.end) {
          throw new RemoteError('protocol', `${dl.debugId}: body longer than asked for (${queuedTo + chunk.length} > ${dl.end})`);
        }
        writer.push(chunk);
        queuedTo += chunk.length;
        if (writer.backlogBytes >= MAX_WRITE_BACKLOG_BYTES) await writer.drain();
      }
    } catch (err) {
      await writer.drain(); // a write error takes precedence: it says why the body stopped
      throw err;
    }
    await writer.drain();
    if (dl.pos < dl.end) {
      throw new RemoteError('protocol', `${dl.debugId}: short body, ended at ${dl.pos} of [${dl.start}, ${dl.end})`);
    }
  }

  /**
   * One attempt through the remote's readToFile: another thread writes the cache file, this
   * one marks what it reports written as present. Flow control keeps the cap exact: the
   * transfer may write only what is reserved, at most four chunks ahead of what has landed;
   * it is told so a chunk at a time (each message costs both threads a wakeup).
   */
  async #attemptToFile(dl: Download, signal: AbortSignal, readToFile: NonNullable<Remote['readToFile']>): Promise<void> {
    const cf = dl.cf;
    const ev = this.#d.evictor;
    const chunk = this.#d.config.chunkSizeBytes;
    const ahead = 4 * chunk;
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    let reservedTo = dl.pos; // [dl.pos, reservedTo) is reserved and not landed
    let allowed = dl.pos; // what the transfer was told it may write
    const reserveAhead = async (): Promise<void> => {
      const to = Math.min(dl.pos + ahead, dl.end);
      if (to <= reservedTo) return;
      const n = to - reservedTo;
      if (!ev.tryReserve(cf.objectId, cf.present.size, n)) await ev.reserve(cf.objectId, cf.present.size, n, both);
      reservedTo = to;
    };
    let written = dl.pos;
    let pump: Promise<void> | undefined;
    let pumpError: Error | undefined;
    let transfer: FileTransfer | undefined;
    // Lands what the transfer reported written, in order, then lets it write further.
    const runPump = async (): Promise<void> => {
      try {
        while (dl.pos < written) {
          const from = dl.pos;
          const to = written;
          let landedByHook = false;
          if (this.#d.hooks.beforeLanded) {
            const land = (): void => {
              if (landedByHook) return;
              landedByHook = true;
              this.#landed(dl, from, to, to - from);
            };
            await this.#d.hooks.beforeLanded({ debugId: cf.debugId, start: from, end: to, land });
          }
          if (!landedByHook) this.#landed(dl, from, to, to - from);
          await reserveAhead();
          if (transfer !== undefined && (reservedTo - allowed >= chunk || reservedTo === dl.end)) {
            allowed = reservedTo;
            transfer.allow(allowed);
          }
        }
      } catch (err) {
        pumpError ??= err instanceof Error ? err : new CacheIoError(`${dl.debugId}: landing failed`, { cause: err });
        stop.abort(pumpError);
      } finally {
        pump = undefined;
      }
    };
    try {
      await reserveAhead();
      allowed = reservedTo;
      this.#remoteRequests++;
      // The CacheFile's own inode (through its fd), not its path: see CacheFile.transferPath.
      transfer = readToFile(cf.remotePath, dl.pos, dl.end - dl.pos, cf.transferPath, {
        signal: both,
        expect: cf.fingerprint,
        allowTo: reservedTo,
        onWritten: (to) => {
          written = to;
          pump ??= runPump();
        },
      });
      let failure: Error | undefined;
      try {
        await transfer.done;
      } catch (err) {
        failure = err instanceof Error ? err : new RemoteError('protocol', `${dl.debugId}: transfer failed`, { cause: err });
      }
      while (pump !== undefined) await pump;
      if (pumpError !== undefined) throw pumpError;
      if (failure instanceof FileWriteError) {
        // The transfer thread's write failed; a full cache disk serves the reader uncached.
        if (isDiskFullCode(failure.code)) throw new CacheDiskFullError(`${dl.debugId}: the cache disk is full: ${failure.message}`, { cause: failure });
        throw new CacheIoError(`${dl.debugId}: ${failure.message}`, { cause: failure });
      }
      if (failure !== undefined) throw failure;
    } finally {
      ev.settle(cf.objectId, reservedTo - dl.pos, 0);
    }
    if (dl.pos < dl.end) {
      throw new RemoteError('protocol', `${dl.debugId}: short body, ended at ${dl.pos} of [${dl.start}, ${dl.end})`);
    }
  }

  /**
   * Marks [from, to) of `dl` present (waking readers) and moves the accounting, in one
   * synchronous step; `reserved` bytes of reservation are settled by it.
   */
  #landed(dl: Download, from: number, to: number, reserved: number): void {
    const cf = dl.cf;
    const ev = this.#d.evictor;
    let added = 0;
    try {
      added = cf.landed(from, to);
      dl.pos = to;
    } finally {
      ev.settle(cf.objectId, reserved, added);
    }
    this.#bytesFetched += to - from;
    this.#d.hooks.afterChunkLanded?.({
      debugId: cf.debugId,
      objectId: cf.objectId,
      start: from,
      end: to,
      usedBytes: ev.usedBytes,
      reservedBytes: ev.reservedBytes,
      capBytes: ev.capBytes,
      fileBytes: cf.present.size,
      perFileCapBytes: ev.perFileCapBytes,
    });
  }

  /** Reserve cache space, write, mark present (waking readers), account. */
  async #land(dl: Download, bufs: readonly Uint8Array[], signal: AbortSignal): Promise<void> {
    const cf = dl.cf;
    const ev = this.#d.evictor;
    const n = bufs.reduce((sum, b) => sum + b.length, 0);
    const pos = dl.pos;
    if (!ev.tryReserve(cf.objectId, cf.present.size, n)) await ev.reserve(cf.objectId, cf.present.size, n, signal);
    let landed = false;
    try {
      await cf.writeAt(pos, bufs);
      if (this.#d.hooks.beforeLanded) {
        const land = (): void => {
          if (landed) return;
          landed = true;
          this.#landed(dl, pos, pos + n, n);
        };
        await this.#d.hooks.beforeLanded({ debugId: cf.debugId, start: pos, end: pos + n, land });
      }
      if (!landed) {
        landed = true;
        this.#landed(dl, pos, pos + n, n);
      }
    } finally {
      if (!landed) ev.settle(cf.objectId, n, 0);
    }
  }
}

/**
 * Queues chunks and writes them in order, one batch at a time, starting the next batch as
 * soon as the previous one landed. The first failure is kept and rethrown by push/drain.
 */
class BatchWriter {
  readonly #write: (bufs: Uint8Array[]) => Promise<void>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #running: Promise<void> | undefined;
  #error: Error | undefined;

  constructor(write: (bufs: Uint8Array[]) => Promise<void>) {
    this.#write = write;
  }

  get backlogBytes(): number {
    return this.#queued;
  }

  push(chunk: Uint8Array): void {
    if (this.#error) throw this.#error;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#running ??= this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const bufs = this.#queue;
        this.#queue = [];
        this.#queued = 0;
        await this.#write(bufs);
      }
    } catch (err) {
      this.#error = err instanceof Error ? err : new CacheIoError('cache write failed', { cause: err });
      this.#queue = [];
      this.#queued = 0;
    } finally {
      this.#running = undefined;
    }
  }

  /** Waits until everything pushed is written; throws the first write error. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#error) throw this.#error;
  }
}
