// UploadQueue: applies the journal's pending changes (store/journal.ts) to a Remote, and is
// the write path's entry point for the core: `put`/`delete`/`mkdir`/`rmdir`/`rename` journal a
// change (close/flush of a file), `waitFor` is fsync, `drain` and `close` are unmount.
//
// Invariants (the product's worst bug is a write acknowledged and then lost):
// - Nothing but the remote's success removes a change: a row is deleted only by
//   Journal.complete, in the transaction that also runs `onUploaded` (the core records the new
//   fingerprint there). Every failure leaves the row, visible with its error: retryable errors
//   keep it 'queued', permanent ones mark it 'failed'; both are tried again after a jittered
//   backoff capped at `retryMaxMs` (5 min), forever. Shutdown aborts running uploads and hands
//   their rows back to 'queued'; the next start resumes them.
// - A put reads a frozen snapshot (snapshot-source.ts), re-opened for each attempt. A row
//   rewritten meanwhile (newer generation) is re-queued, never completed for the old bytes;
//   if the old bytes did reach the remote, the row goes on against the version they made.
//   A snapshot file is deleted only after the commit that released it and once no worker
//   reads it (#inUse).
// - Conditional writes: a put names the version it replaces (ifMatch; on a remote without
//   atomic conditional puts also a stat check first) or, for a new file, ifNoneMatch. When the
//   remote changed meanwhile, both versions are kept: ours goes to
//   `<name>.conflict-<UTC yyyymmddThhmmssZ>-<host>` (create-only, `-2`, `-3`... if taken), the
//   row is marked 'conflict' and the conflict is logged. Not a conflict: the remote holding our
//   own bytes, this generation's or an earlier one's that an attempt committed before a crash
//   or a lost answer (the row's `sent` digests, journaled before each put starts).
// - At most `concurrency` changes are applied at once, and rows touching related paths never
//   at the same time (the journal hands them out). Background rows are due `writeBackDelayMs`
//   after their last change (coalescing rapid saves); `waitFor` and `drain` make rows
//   foreground and due now.
// - Everything waits through the injected clock and an AbortSignal; the workers and the
//   scheduler run in one TaskGroup, which `close()` aborts and awaits.
//
// Concurrency: no mutex. Journal calls are synchronous transactions; the scheduler takes rows
// and registers workers in one synchronous step, and a wakeup (`#kick`) resolves a Deferred the
// scheduler registered before it last looked, so none is missed. Remote I/O is awaited holding
// nothing. See docs/LOCKING.md ("Upload queue and journal").
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Deferred, TaskGroup, raceAbort } from '../../base/async.js';
import { systemClock, type Clock } from '../../base/clock.js';
import { uniqueFileTag } from '../../base/ids.js';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import { sameVersion } from '../../remote/fingerprint.js';
import { RemoteError, isRemoteError } from '../../remote/remote-error.js';
import { backoffDelayMs } from '../../remote/retry.js';
import type { ContentSource, PutOptions, Remote, RemoteStat } from '../../remote/remote.js';
import type { Db } from '../../store/database.js';
import type { Base, BaseVersion, Journal, JournalRow, Outcome, Priority, RecordResult, Snapshot } from '../../store/journal.js';
import { SnapshotError, SupersededError, snapshotDigest, snapshotSource } from './snapshot-source.js';

export interface UploadQueueOptions {
  journal: Journal;
  remote: Remote;
  /** Where snapshot files live (the queue deletes the ones the journal released). */
  snapshotDir: string;
  clock?: Clock;
  logger?: Logger;
  /** Changes applied at once. Default 4. */
  concurrency?: number;
  /** A background change becomes due this long after its last change. Default 5000. */
  writeBackDelayMs?: number;
  /** First retry backoff ceiling. Default 1000. */
  retryBaseMs?: number;
  /** Largest retry backoff. Default 300 000 (5 min). */
  retryMaxMs?: number;
  /** Uniform in [0, 1), for the backoff jitter. Default Math.random. */
  random?: () => number;
  /** For conflict names. Default os.hostname(). */
  host?: string;
  /**
   * Runs inside the journal transaction that deletes a completed row (or, for a row rewritten
   * meanwhile, records what the remote has now): the core records the new fingerprint here,
   * on `db` (the journal's connection). Throwing rolls the completion back (the change is
   * applied again later, which is harmless).
   */
  onUploaded?: (row: JournalRow, outcome: Outcome, db: Db) => void;
  /** Told after a conflict was resolved by keeping ours under `conflictPath`. */
  onConflict?: (row: JournalRow, conflictPath: string) => void;
  /** Told when a released snapshot file was deleted (its bytes left the cache). */
  onSnapshotDeleted?: (name: string) => void;
}

export const UPLOAD_DEFAULTS = { concurrency: 4, writeBackDelayMs: 5000, retryBaseMs: 1000, retryMaxMs: 300_000 } as const;

/** A change `waitFor` waited on failed permanently or ended in a conflict (fsync reports it). */
export class UploadFailedError extends Error {
  override readonly name = 'UploadFailedError';
  readonly code = 'UPLOAD_FAILED';
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/** The queue is closed. */
export class UploadQueueClosedError extends Error {
  override readonly name = 'UploadQueueClosedError';
  readonly code = 'UPLOAD_QUEUE_CLOSED';
}

const SNAPSHOT_PREFIX = 'snap-';

/** Non-strict waits (drain) on more rows than this are checked incrementally (#checkWaiter). */
const WAITER_SCAN_MAX = 64;

/** `dir/name.conflict-20260101T000000Z-host` (then `-2`, `-3`... for `attempt` 2, 3...). */
export function conflictName(path: string, wallMs: number, host: string, attempt = 1): string {
  const stamp = new Date(wallMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const safeHost = host.replace(/[^A-Za-z0-9.-]/g, '_') || 'host';
  return `${path}.conflict-${stamp}-${safeHost}${attempt > 1 ? `-${attempt}` : ''}`;
}

type Applied = Outcome | { kind: 'conflict'; conflictPath: string };

interface Waiter {
  /** Row ids waited for, with their attempt count when the wait began. */
  ids: Map<number, number>;
  /** Reject on a failed or conflicting row (waitFor), or only wait (drain). */
  strict: boolean;
  done: Deferred<void>;
  /** drain: also done once nothing runs and nothing is due before this wall time. */
  untilWallMs?: number;
}

export class UploadQueue {
  readonly #journal: Journal;
  readonly #remote: Remote;
  readonly #snapshotDir: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #writeBackDelayMs: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #random: () => number;
  readonly #host: string;
  readonly #onUploaded: UploadQueueOptions['onUploaded'];
  readonly #onConflict: UploadQueueOptions['onConflict'];
  readonly #onSnapshotDeleted: UploadQueueOptions['onSnapshotDeleted'];
  readonly #group: TaskGroup;
  /** Rows being applied, by id. */
  readonly #running = new Map<number, JournalRow>();
  /** Told when any running change ends (settledAt re-checks). */
  readonly #finished: Deferred<void>[] = [];
  /** Snapshot files a worker reads, with their reader count. */
  readonly #inUse = new Map<string, number>();
  /** Released snapshot files to delete once no worker reads them. */
  readonly #releasedInUse = new Set<string>();
  readonly #waiters = new Set<Waiter>();
  #wake: Deferred<void> | undefined;
  /** whenQuiet callers: settled by the next scheduler pass that leaves nothing running. */
  #quiet: Deferred<void>[] = [];
  /** Resolved by #finish when nothing runs (close's grace period). */
  #idle: Deferred<void> | undefined;
  #started = false;
  #stopping = false;
  #closed: Promise<void> | undefined;

  constructor(opts: UploadQueueOptions) {
    this.#journal = opts.journal;
    this.#remote = opts.remote;
    this.#snapshotDir = opts.snapshotDir;
    this.#clock = opts.clock ?? systemClock;
    this.#logger = (opts.logger ?? silentLogger()).child({ component: 'upload-queue', remote: opts.remote.id });
    this.#concurrency = opts.concurrency ?? UPLOAD_DEFAULTS.concurrency;
    if (!(this.#concurrency >= 1)) throw new RangeError(`bad upload concurrency ${this.#concurrency}`);
    this.#writeBackDelayMs = opts.writeBackDelayMs ?? UPLOAD_DEFAULTS.writeBackDelayMs;
    this.#retryBaseMs = opts.retryBaseMs ?? UPLOAD_DEFAULTS.retryBaseMs;
    this.#retryMaxMs = opts.retryMaxMs ?? UPLOAD_DEFAULTS.retryMaxMs;
    this.#random = opts.random ?? Math.random;
    this.#host = opts.host ?? hostname();
    this.#onUploaded = opts.onUploaded;
    this.#onConflict = opts.onConflict;
    this.#onSnapshotDeleted = opts.onSnapshotDeleted;
    this.#group = new TaskGroup((err, name) => this.#logger.error({ err, task: name }, 'upload queue: task failed'));
  }

  /**
   * Resumes what a previous owner left (rows it was uploading go back to 'queued'), deletes
   * snapshot files no row references (a crash between writing one and journaling it), and
   * starts the scheduler. Call before anything creates new snapshot files.
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    mkdirSync(this.#snapshotDir, { recursive: true });
    const resumed = this.#journal.requeueInterrupted();
    const referenced = this.#journal.referencedSnapshots();
    let orphans = 0;
    for (const name of readdirSync(this.#snapshotDir)) {
      if (name.startsWith(SNAPSHOT_PREFIX) && !referenced.has(name)) {
        rmSync(join(this.#snapshotDir, name), { force: true });
        orphans++;
      }
    }
    const pending = this.#journal.pending().length;
    if (resumed > 0 || pending > 0 || orphans > 0) this.#logger.info({ resumed, pending, orphans }, 'upload queue: resuming the journal');
    this.#group.run('upload scheduler', (signal) => this.#schedule(signal));
  }

  /** A fresh name for a snapshot file in the snapshot dir (write it, fdatasync it, then `put`). */
  newSnapshotName(): string {
    return `${SNAPSHOT_PREFIX}${Math.round(this.#clock.wallNow()).toString(36)}-${uniqueFileTag()}`;
  }

  snapshotPath(name: string): string {
    return join(this.#snapshotDir, name);
  }

  // ---- journaling changes (the core calls these when a file is closed, removed, ...) ----

  /**
   * Journals a put of the snapshot (already fdatasync'ed in the snapshot dir) to `path`, made
   * against `base`. When this returns, the change survives a crash.
   */
  put(path: string, snapshot: Snapshot, base: Base, priority: Priority = 'background', durable = true): void {
    this.#record({ change: 'put', path, base: base.kind, snapshot: snapshot.name }, () => this.#journal.recordPut(path, snapshot, base, priority, this.#dueFor(priority)), durable);
  }

  // Names change as a local filesystem changes them: the row survives a crash of the process
  // at once, a power loss after the next `sync` (fsync, fsyncdir, unmount).
  delete(path: string, base: Base, priority: Priority = 'background'): void {
    this.#record({ change: 'delete', path, base: base.kind }, () => this.#journal.recordDelete(path, base, priority, this.#dueFor(priority)), false);
  }

  mkdir(path: string, priority: Priority = 'background'): void {
    this.#record({ change: 'mkdir', path }, () => this.#journal.recordMkdir(path, priority, this.#dueFor(priority)), false);
  }

  rmdir(path: string, priority: Priority = 'background'): void {
    this.#record({ change: 'rmdir', path }, () => this.#journal.recordRmdir(path, priority, this.#dueFor(priority)), false);
  }

  rename(from: string, to: string, targetBase: Base, priority: Priority = 'background'): void {
    this.#record({ change: 'rename', path: to, fromPath: from, base: targetBase.kind }, () => this.#journal.recordRename(from, to, targetBase, priority, this.#dueFor(priority)), false);
  }

  /** Makes every change journaled so far survive a power loss. */
  sync(): void {
    this.#journal.sync();
  }

  /** Pending changes (not conflicts), in journal order. */
  pending(): JournalRow[] {
    return this.#journal.pending();
  }

  /**
   * Resolves after the scheduler has looked at the journal (at the clock's time now) and
   * nothing is left running: every due change was applied or failed. For tests and status.
   */
  whenQuiet(signal?: AbortSignal): Promise<void> {
    if (this.#closed !== undefined || !this.#started) return Promise.resolve();
    const d = new Deferred<void>();
    this.#quiet.push(d);
    this.#kick();
    return raceAbort(d.promise, signal);
  }

  /**
   * Resolves once no change of `path` (to it or a rename from it) is being applied: one being
   * applied now may have moved the bytes at `path` without having reported it yet. Its
   * completion (onUploaded, and what the owner queued from there) comes first. True if it
   * had to wait.
   */
  async settledAt(path: string, signal: AbortSignal): Promise<boolean> {
    for (let waited = false; ; waited = true) {
      let busy = false;
      for (const r of this.#running.values()) if (r.path === path || r.fromPath === path) busy = true;
      if (!busy) return waited;
      const d = new Deferred<void>();
      this.#finished.push(d);
      await raceAbort(d.promise, signal);
    }
  }

  /** Changes being applied now. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * fsync: makes the changes of `path` (every change, when undefined) foreground and due now,
   * and resolves once every one of them that is pending now has reached the remote (a later
   * rewrite of the same row is waited for too). Rejects with UploadFailedError when one fails
   * permanently or ends in a conflict, and with the abort reason when `signal` fires; the
   * changes stay journaled either way.
   */
  async waitFor(path: string | undefined, signal: AbortSignal): Promise<void> {
    if (this.#closed !== undefined) throw new UploadQueueClosedError('the upload queue is closed');
    const ids = this.#idsOf(path);
    if (ids.size === 0) return;
    const waiter: Waiter = { ids, strict: true, done: new Deferred<void>() };
    this.#waiters.add(waiter);
    try {
      this.#journal.bump(path, this.#clock.wallNow());
      this.#kick();
      this.#checkWaiter(waiter);
      await raceAbort(waiter.done.promise, signal);
    } finally {
      this.#waiters.delete(waiter);
    }
  }

  /**
   * Unmount: makes everything due now and waits until the journal is empty, or until nothing
   * runs and nothing is due within `timeoutMs` (permanently failing rows in backoff), or until
   * `timeoutMs` passed on the clock. Returns what is still pending (it stays journaled).
   */
  async drain(timeoutMs: number): Promise<JournalRow[]> {
    const ids = this.#idsOf(undefined);
    if (ids.size > 0 && !this.#stopping) {
      const deadline = this.#clock.wallNow() + timeoutMs;
      const waiter: Waiter = { ids, strict: false, done: new Deferred<void>(), untilWallMs: deadline };
      const timer = new AbortController();
      this.#waiters.add(waiter);
      try {
        this.#journal.bump(undefined, this.#clock.wallNow());
        this.#kick();
        this.#checkWaiter(waiter);
        await Promise.race([waiter.done.promise, this.#clock.sleep(timeoutMs, timer.signal).catch(() => undefined)]);
      } finally {
        timer.abort();
        this.#waiters.delete(waiter);
      }
    }
    return this.#journal.pending();
  }

  /**
   * Stops taking rows, gives running uploads up to `graceMs` (on the clock) to finish, then
   * aborts them (their rows go back to 'queued') and awaits every task. Idempotent. Leaves the
   * journal open: its owner closes it afterwards.
   */
  close(graceMs = 0): Promise<void> {
    this.#closed ??= this.#close(graceMs);
    return this.#closed;
  }

  async #close(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#kick();
    if (graceMs > 0 && this.#running.size > 0) {
      const timer = new AbortController();
      this.#idle = new Deferred<void>();
      try {
        await Promise.race([this.#idle.promise, this.#clock.sleep(graceMs, timer.signal).catch(() => undefined)]);
      } finally {
        timer.abort();
      }
    }
    await this.#group.close(new UploadQueueClosedError('the upload queue is closing'));
    for (const w of this.#waiters) {
      if (w.strict) w.done.reject(new UploadQueueClosedError('the upload queue closed before the change reached the remote'));
      else w.done.resolve();
    }
    this.#waiters.clear();
    for (const q of this.#quiet.splice(0)) q.resolve();
  }

  // ---- internals ----

  #dueFor(priority: Priority): number {
    const now = this.#clock.wallNow();
    return priority === 'foreground' ? now : now + this.#writeBackDelayMs;
  }

  #record(what: Record<string, string>, fn: () => RecordResult, durable: boolean): void {
    if (this.#closed !== undefined) throw new UploadQueueClosedError('the upload queue is closed');
    const r = durable ? fn() : this.#journal.relaxed(fn);
    if (this.#logger.isLevelEnabled('debug')) this.#logger.debug({ ...what, id: r.id, released: r.released.length }, 'journaled');
    this.#deleteSnapshots(r.released);
    this.#kick();
    this.#checkWaiters();
  }

  #idsOf(path: string | undefined): Map<number, number> {
    const rows = this.#journal.pending().filter((r) => path === undefined || r.path === path || r.fromPath === path);
    return new Map(rows.map((r) => [r.id, r.attempts]));
  }

  #kick(): void {
    this.#wake?.resolve();
  }

  /** The scheduler: fills free worker slots with due rows, then sleeps until a kick or the next due time. */
  async #schedule(signal: AbortSignal): Promise<void> {
    // One timer for the earliest due time known, replaced only by an earlier one: most kicks
    // (a close journaling a change due after the write-back delay) leave it as it is, so a
    // change costs no timer, controller or abort of its own.
    let timer: { atMs: number; stop: AbortController } | undefined;
    try {
      while (!signal.aborted && !this.#stopping) {
        // Take rows and register for the next kick in one synchronous step.
        this.#fill();
        if (this.#running.size === 0) for (const q of this.#quiet.splice(0)) q.resolve();
        const wake = new Deferred<void>();
        this.#wake = wake;
        const nowWall = this.#clock.wallNow();
        const next = this.#running.size < this.#concurrency ? this.#journal.nextDueMs(nowWall) : undefined;
        if (next !== undefined && (timer === undefined || next < timer.atMs)) {
          timer?.stop.abort();
          const t = { atMs: next, stop: new AbortController() };
          timer = t;
          this.#clock.sleep(next - nowWall, t.stop.signal).then(
            () => {
              if (timer === t) timer = undefined;
              this.#kick();
            },
            () => undefined,
          );
        }
        try {
          await raceAbort(wake.promise, signal);
        } catch {
          return;
        }
      }
    } finally {
      timer?.stop.abort();
    }
  }

  #fill(): void {
    const free = this.#concurrency - this.#running.size;
    if (free <= 0 || this.#stopping) return;
    // Committed without an inline fsync; each worker awaits `durable()` before its first
    // remote request (the journal's header: what survives a power loss is unchanged).
    for (const row of this.#journal.synced(() => this.#journal.take(free, this.#clock.wallNow()))) {
      this.#running.set(row.id, row);
      if (row.snapshot) this.#inUse.set(row.snapshot.name, (this.#inUse.get(row.snapshot.name) ?? 0) + 1);
      const started = this.#group.run(`upload ${row.kind} ${row.path}`, (s) => this.#work(row, s));
      if (!started) {
        this.#journal.requeue(row.id);
        this.#finish(row);
      }
    }
  }

  async #work(row: JournalRow, signal: AbortSignal): Promise<void> {
    const log = this.#logger.child({ change: row.kind, path: row.path, ...(row.fromPath !== undefined ? { fromPath: row.fromPath } : {}), base: row.base.kind, id: row.id, generation: row.generation });
    try {
      await this.#journal.durable(); // 'uploading' (tried) is on disk before the remote sees anything
      const applied = await this.#apply(row, signal);
      if (applied.kind === 'conflict') {
        this.#deleteSnapshots(this.#journal.markConflict(row.id, row.generation, applied.conflictPath, `the remote changed since our base; ours kept at ${applied.conflictPath}`));
        log.warn({ conflictPath: applied.conflictPath }, 'upload: conflict, both versions kept');
        this.#onConflict?.(row, applied.conflictPath);
      } else {
        const released = this.#journal.synced(() => this.#journal.complete(row.id, row.generation, applied, this.#onUploaded));
        await this.#journal.durable(); // the row is gone for good before its snapshot goes
        this.#deleteSnapshots(released);
        log.debug('upload: done');
      }
    } catch (err) {
      if (err instanceof SupersededError || signal.aborted) {
        // No verdict: a newer generation is waiting, or we are shutting down.
        this.#journal.requeue(row.id);
        return;
      }
      const attempts = row.attempts + 1;
      const permanent = !(isRemoteError(err) && err.retryable);
      const retryAfterMs = isRemoteError(err) ? err.retryAfterMs : undefined;
      const delayMs = Math.max(this.#retryBaseMs, backoffDelayMs(attempts, this.#retryBaseMs, this.#retryMaxMs, this.#random, retryAfterMs));
      const message = describe(err);
      this.#journal.retryLater(row.id, row.generation, message, this.#clock.wallNow() + Math.min(delayMs, this.#retryMaxMs), permanent);
      log[permanent ? 'warn' : 'info']({ err: message, attempts, retryInMs: delayMs, permanent }, 'upload: failed, kept in the journal');
    } finally {
      this.#finish(row);
    }
  }

  #finish(row: JournalRow): void {
    this.#running.delete(row.id);
    if (this.#running.size === 0) this.#idle?.resolve();
    for (const d of this.#finished.splice(0)) d.resolve();
    if (row.snapshot) {
      const name = row.snapshot.name;
      const n = (this.#inUse.get(name) ?? 1) - 1;
      if (n > 0) this.#inUse.set(name, n);
      else {
        this.#inUse.delete(name);
        if (this.#releasedInUse.delete(name)) this.#unlinkSnapshot(name);
      }
    }
    this.#checkWaiters(row.id);
    this.#kick();
  }

  async #apply(row: JournalRow, signal: AbortSignal): Promise<Applied> {
    const r = this.#remote;
    switch (row.kind) {
      case 'put':
        return this.#put(row, signal);
      case 'delete': {
        if (!r.delete) throw new RemoteError('read-only', `${r.id} cannot delete`, { retryable: false });
        const base = row.base;
        try {
          await r.delete(row.path, base.kind === 'version' ? { signal, ifMatch: base.version } : { signal });
        } catch (err) {
          if (isRemoteError(err) && err.kind === 'not-found') return { kind: 'gone' };
          // Theirs is newer than what we deleted: keep theirs.
          if (isRemoteError(err) && err.kind === 'conflict') return { kind: 'conflict', conflictPath: row.path };
          throw err;
        }
        return { kind: 'gone' };
      }
      case 'mkdir': {
        if (!r.mkdir) throw new RemoteError('read-only', `${r.id} cannot mkdir`, { retryable: false });
        try {
          await r.mkdir(row.path, { signal });
        } catch (err) {
          if (!(isRemoteError(err) && err.kind === 'exists' && (await this.#statOrUndefined(row.path, signal))?.type === 'dir')) throw err;
        }
        return { kind: 'dir' };
      }
      case 'rmdir': {
        if (!r.rmdir) throw new RemoteError('read-only', `${r.id} cannot rmdir`, { retryable: false });
        try {
          await r.rmdir(row.path, { signal });
        } catch (err) {
          if (!(isRemoteError(err) && err.kind === 'not-found')) throw err;
        }
        return { kind: 'gone' };
      }
      case 'rename': {
        if (!r.rename) throw new RemoteError('read-only', `${r.id} cannot rename`, { retryable: false });
        const from = row.fromPath ?? '';
        try {
          await r.rename(from, row.path, { signal });
        } catch (err) {
          // An earlier attempt that committed before we lost its answer leaves `to` and no `from`.
          if (!(isRemoteError(err) && err.kind === 'not-found' && (await this.#statOrUndefined(row.path, signal)) !== undefined)) throw err;
        }
        return { kind: 'moved', version: undefined };
      }
    }
  }

  async #put(row: JournalRow, signal: AbortSignal): Promise<Applied> {
    const r = this.#remote;
    if (!r.put) throw new RemoteError('read-only', `${r.id} cannot put`, { retryable: false });
    const snap = row.snapshot;
    if (!snap) throw new SnapshotError(`journal row ${row.id} (put ${row.path}) names no snapshot`);
    // Journaled before any byte moves: after a crash, this content on the remote is ours.
    const digest = await snapshotDigest(this.snapshotPath(snap.name), snap.sizeBytes, signal);
    if (this.#journal.generation(row.id) !== row.generation) throw new SupersededError(`${row.path}: a newer generation is journaled`);
    this.#journal.synced(() => this.#journal.noteSent(row.id, digest));
    await this.#journal.durable();
    const base = row.base;
    let cond: { ifMatch?: BaseVersion; ifNoneMatch?: true } = {};
    if (base.kind === 'absent') cond = { ifNoneMatch: true };
    else if (base.kind === 'version') {
      if (r.capabilities.conditionalPut !== true) {
        // The remote's ifMatch is only a check shortly before its commit: look first as well,
        // so a change made long ago is caught before any byte moves.
        const now = await this.#statOrUndefined(row.path, signal);
        if (now?.type !== 'file' || !sameVersion(base.version, now)) return this.#conflict(row, snap, digest, signal);
      }
      cond = { ifMatch: base.version };
    }
    try {
      return written(await r.put(row.path, this.#source(row, snap), this.#putOptions(signal, snap, cond)));
    } catch (err) {
      if (isRemoteError(err) && (err.kind === 'conflict' || err.kind === 'exists')) return this.#conflict(row, snap, digest, signal);
      throw err;
    }
  }

  #source(row: JournalRow, snap: Snapshot): ContentSource {
    return snapshotSource(this.snapshotPath(snap.name), snap.sizeBytes, () => this.#journal.generation(row.id) === row.generation);
  }

  /**
   * The remote is not the version our change was made against. If it holds our bytes (this
   * generation, or one an earlier attempt sent before a crash or a lost answer: the row's
   * `sent` digests), it is ours: done, or replaced by this generation. Else keep both.
   */
  async #conflict(row: JournalRow, snap: Snapshot, digest: string, signal: AbortSignal): Promise<Applied> {
    const r = this.#remote;
    const put = r.put?.bind(r);
    if (!put) throw new RemoteError('read-only', `${r.id} cannot put`, { retryable: false });
    const there = await this.#statOrUndefined(row.path, signal);
    if (there?.type === 'file') {
      const theirs = await this.#remoteDigest(row.path, there, signal);
      if (theirs === digest) return written(there);
      const sent = this.#journal.get(row.id)?.sent ?? [];
      if (theirs !== undefined && sent.includes(theirs)) {
        try {
          return written(await put(row.path, this.#source(row, snap), this.#putOptions(signal, snap, { ifMatch: there })));
        } catch (err) {
          if (!(isRemoteError(err) && (err.kind === 'conflict' || err.kind === 'exists'))) throw err;
        }
      }
    }
    const wallMs = this.#clock.wallNow();
    for (let attempt = 1; ; attempt++) {
      const target = conflictName(row.path, wallMs, this.#host, attempt);
      try {
        await put(target, this.#source(row, snap), { signal, ifNoneMatch: true });
        return { kind: 'conflict', conflictPath: target };
      } catch (err) {
        if (!(isRemoteError(err) && err.kind === 'exists') || attempt >= 20) throw err;
      }
    }
  }

  #putOptions(signal: AbortSignal, snap: Snapshot, cond: { ifMatch?: BaseVersion; ifNoneMatch?: true }): PutOptions {
    const opts: PutOptions = { signal, ...cond };
    if (this.#remote.capabilities.mtimes === true) opts.mtimeMs = snap.mtimeMs;
    return opts;
  }

  /** "<size>:<sha256>" of the remote file (that version), or undefined if it changed or went. */
  async #remoteDigest(path: string, there: RemoteStat, signal: AbortSignal): Promise<string | undefined> {
    const hash = createHash('sha256');
    try {
      if (there.size > 0) {
        const { body } = await this.#remote.read(path, 0, there.size, { signal, expect: there });
        for await (const chunk of body) hash.update(chunk);
      }
    } catch (err) {
      if (isRemoteError(err) && (err.kind === 'changed' || err.kind === 'not-found')) return undefined;
      throw err;
    }
    return `${there.size}:${hash.digest('hex')}`;
  }

  async #statOrUndefined(path: string, signal: AbortSignal): Promise<RemoteStat | undefined> {
    try {
      return await this.#remote.stat(path, signal);
    } catch (err) {
      if (isRemoteError(err) && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  /** Deletes released snapshot files now, or when the last worker reading one lets go. */
  #deleteSnapshots(names: readonly string[]): void {
    for (const name of names) {
      if (this.#inUse.has(name)) this.#releasedInUse.add(name);
      else this.#unlinkSnapshot(name);
    }
  }

  #unlinkSnapshot(name: string): void {
    try {
      rmSync(this.snapshotPath(name), { force: true });
    } catch (err) {
      // An orphan costs disk space until the next start, never data.
      this.#logger.warn({ err, name }, 'upload queue: cannot delete a released snapshot');
    }
    this.#onSnapshotDeleted?.(name);
  }

  /** After row `changed` finished (or, undefined, anything): settles the waiters it concerns. */
  #checkWaiters(changed?: number): void {
    for (const w of this.#waiters) this.#checkWaiter(w, changed);
  }

  /**
   * Settles `w` if its rows are done (or, for a drain, nothing runs and nothing is due in
   * time). With `changed`, a large wait (a drain) looks at that row only, and at the journal's
   * earliest due time, not at each of its rows again: O(1) per finished row, not O(rows).
   */
  #checkWaiter(w: Waiter, changed?: number): void {
    if (changed !== undefined && w.ids.size > WAITER_SCAN_MAX && !w.strict) {
      if (w.ids.has(changed)) {
        const row = this.#journal.get(changed);
        if (row === undefined || row.state === 'conflict') w.ids.delete(changed);
      }
      if (w.ids.size === 0) w.done.resolve();
      else if (w.untilWallMs !== undefined && this.#running.size === 0 && (this.#journal.minDueMs() ?? Number.POSITIVE_INFINITY) > w.untilWallMs) w.done.resolve();
      return;
    }
    let nextDue = Number.POSITIVE_INFINITY;
    for (const [id, attemptsBefore] of w.ids) {
      const row = this.#journal.get(id);
      if (row === undefined) {
        w.ids.delete(id);
        continue;
      }
      if (row.state === 'conflict') {
        if (w.strict) w.done.reject(new UploadFailedError(row.path, `${row.path}: ${row.lastError ?? 'conflict'}`));
        w.ids.delete(id);
        continue;
      }
      // A row that had failed before the wait began gets one more try first.
      if (w.strict && row.state === 'failed' && row.attempts > attemptsBefore) {
        w.done.reject(new UploadFailedError(row.path, `${row.path}: ${row.lastError ?? 'failed'}`));
        return;
      }
      if (row.state !== 'uploading') nextDue = Math.min(nextDue, row.dueMs);
    }
    if (w.ids.size === 0) w.done.resolve();
    else if (w.untilWallMs !== undefined && this.#running.size === 0 && nextDue > w.untilWallMs) w.done.resolve();
  }
}

function written(st: RemoteStat): Outcome {
  const version: BaseVersion = { size: st.size };
  if (st.etag !== undefined) version.etag = st.etag;
  if (st.mtimeMs !== undefined) version.mtimeMs = st.mtimeMs;
  return { kind: 'written', version };
}

function describe(err: unknown): string {
  if (isRemoteError(err)) return `${err.kind}: ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
