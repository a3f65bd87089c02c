// TransferPool: the caller's side of the transfer worker threads (transfer-worker.ts). A
// Node thread parsing HTTP and writing to the page cache tops out near 1 GB/s here, and the
// FUSE request loop shares the main thread (RESEARCH.md), so bulk downloads run on a few
// worker threads that write into the cache file themselves; this thread only sees progress.
//
// Ownership: the pool owns its workers (spawned lazily, at most `threads`) and every transfer
// it started until the transfer's 'end' arrived. close() aborts everything and terminates
// the workers.
//
// Invariants:
// - A worker runs at most `connections` transfers (its undici Pool never queues one, so an
//   abort always reaches a running response); further transfers wait here, where an abort
//   just drops them.
// - `done` settles exactly once, after the worker's 'end' (so after its last write) — or, for
//   a transfer that never reached a worker, at once. If a worker dies, its transfers fail as
//   'unavailable' (retryable): the thread that wrote is gone, so nothing writes any more.
// - `onWritten` is called in order with growing offsets, before `done` settles.
// - A worker is referenced (keeps the process alive) only while it has transfers.
import { Worker } from 'node:worker_threads';
import { Deferred, within } from '../../base/async.js';
import type { Logger } from '../../observability/logger.js';
import type { FileTransfer, Fingerprint, ReadToFileOptions } from '../remote.js';
import { FileWriteError, RemoteError, abortError } from '../remote-error.js';
import type { FromWorker, ToWorker, TransferFailure, TransferJob, TransferWorkerSetup } from './transfer-messages.js';

/** How long close() waits for workers to end their transfers before terminating them. */
const CLOSE_GRACE_MS = 2000;

export interface TransferPoolOptions extends Omit<TransferWorkerSetup, 'connections'> {
  /** Worker threads. */
  threads: number;
  /** Concurrent transfers per worker. */
  connectionsPerThread: number;
  logger: Logger;
}

class Transfer implements FileTransfer {
  readonly id: number;
  readonly job: TransferJob;
  readonly options: ReadToFileOptions;
  readonly result = new Deferred<Fingerprint>();
  allowTo: number;
  slot: WorkerSlot | undefined;
  /** Aborted by close(): ends as 'unavailable' (the remote is gone), not as 'aborted'. */
  closing = false;
  onAbort: (() => void) | undefined;

  constructor(id: number, job: TransferJob, options: ReadToFileOptions) {
    this.id = id;
    this.job = job;
    this.options = options;
    this.allowTo = options.allowTo;
    this.result.promise.catch(() => undefined); // observed through `done`
  }

  get done(): Promise<Fingerprint> {
    return this.result.promise;
  }

  allow(to: number): void {
    if (to <= this.allowTo || this.result.settled) return;
    this.allowTo = to;
    this.slot?.send({ t: 'allow', id: this.id, to });
  }
}

class WorkerSlot {
  readonly worker: Worker;
  readonly active = new Map<number, Transfer>();
  dead = false;

  constructor(worker: Worker) {
    this.worker = worker;
    worker.unref();
  }

  send(m: ToWorker): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  add(t: Transfer): void {
    if (this.active.size === 0) this.worker.ref();
    this.active.set(t.id, t);
    t.slot = this;
  }

  remove(t: Transfer): void {
    this.active.delete(t.id);
    t.slot = undefined;
    if (this.active.size === 0) this.worker.unref();
  }
}

export class TransferPool {
  readonly #o: TransferPoolOptions;
  readonly #slots: WorkerSlot[] = [];
  readonly #waiting: Transfer[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: TransferPoolOptions) {
    this.#o = options;
  }

  start(job: TransferJob, options: ReadToFileOptions): FileTransfer {
    const t = new Transfer(this.#nextId++, job, options);
    if (this.#closed) {
      t.result.reject(new RemoteError('unavailable', `${job.what}: remote is closed`, { retryable: false }));
      return t;
    }
    const signal = options.signal;
    if (signal.aborted) {
      t.result.reject(abortError(signal, job.what));
      return t;
    }
    t.onAbort = () => this.#abort(t);
    signal.addEventListener('abort', t.onAbort, { once: true });
    this.#waiting.push(t);
    this.#dispatch();
    return t;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#waiting.splice(0)) this.#settle(t, new RemoteError('unavailable', `${t.job.what}: remote is closed`, { retryable: false }));
    const slots = this.#slots.splice(0);
    // Running transfers are aborted and awaited first, so each worker closes its files
    // itself (a terminated thread would leave its open fds behind); a worker that does not
    // answer within CLOSE_GRACE_MS is terminated anyway.
    const running = slots.flatMap((s) => [...s.active.values()]);
    for (const t of running) {
      t.closing = true;
      t.slot?.send({ t: 'abort', id: t.id });
    }
    await within(Promise.allSettled(running.map((t) => t.done)), CLOSE_GRACE_MS, 'transfer threads to end their transfers').catch(() => undefined);
    await Promise.all(slots.map((s) => this.#retire(s, 'remote is closed')));
  }

  /** Starts waiting transfers on the least busy worker with a free connection. */
  #dispatch(): void {
    while (this.#waiting.length > 0) {
      const slot = this.#pickSlot();
      if (slot === undefined) return;
      const t = this.#waiting.shift() as Transfer;
      slot.add(t);
      slot.send({ t: 'start', id: t.id, job: t.job, allowTo: t.allowTo, expect: t.options.expect });
    }
  }

  #pickSlot(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (const s of this.#slots) if (!s.dead && (best === undefined || s.active.size < best.active.size)) best = s;
    if (best !== undefined && best.active.size === 0) return best;
    if (this.#slots.length < this.#o.threads) return this.#spawn();
    if (best !== undefined && best.active.size < this.#o.connectionsPerThread) return best;
    return undefined;
  }

  #spawn(): WorkerSlot {
    const setup: TransferWorkerSetup = {
      origin: this.#o.origin,
      connections: this.#o.connectionsPerThread,
      timeouts: this.#o.timeouts,
      reportEveryBytes: this.#o.reportEveryBytes,
      drainLimitBytes: this.#o.drainLimitBytes,
      ...(this.#o.ca === undefined ? {} : { ca: this.#o.ca }),
    };
    const slot = new WorkerSlot(new Worker(new URL('./transfer-worker.js', import.meta.url), { workerData: setup }));
    slot.worker.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    slot.worker.on('error', (err) => {
      this.#o.logger.error({ err }, 'transfer thread failed');
      void this.#retire(slot, `transfer thread failed: ${err.message}`);
    });
    slot.worker.on('exit', (code) => {
      if (!slot.dead) void this.#retire(slot, `transfer thread exited with code ${code}`);
    });
    this.#slots.push(slot);
    return slot;
  }

  #onMessage(slot: WorkerSlot, m: FromWorker): void {
    const t = slot.active.get(m.id);
    if (t === undefined) return;
    if (m.t === 'written') {
      t.options.onWritten(m.to);
      return;
    }
    slot.remove(t);
    if (t.closing) this.#settle(t, new RemoteError('unavailable', `${t.job.what}: remote is closed`, { retryable: false }));
    else if ('failure' in m) this.#settle(t, fromFailure(m.failure));
    else this.#settle(t, undefined, m.fingerprint);
    this.#dispatch();
  }

  #abort(t: Transfer): void {
    const i = this.#waiting.indexOf(t);
    if (i >= 0) {
      this.#waiting.splice(i, 1);
      this.#settle(t, abortError(t.options.signal, t.job.what));
      return;
    }
    t.slot?.send({ t: 'abort', id: t.id }); // 'end' follows
  }

  #settle(t: Transfer, err: Error | undefined, fp?: Fingerprint): void {
    if (t.onAbort !== undefined) t.options.signal.removeEventListener('abort', t.onAbort);
    if (err !== undefined) t.result.reject(err);
    else t.result.resolve(fp as Fingerprint);
  }

  /** Takes a worker out of service: its transfers fail, the thread is terminated. */
  async #retire(slot: WorkerSlot, why: string): Promise<void> {
    if (slot.dead) return;
    slot.dead = true;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    const terminated = slot.worker.terminate();
    // The thread is gone (or going) before these settle, so nothing writes for them any more.
    await terminated.catch(() => undefined);
    for (const t of [...slot.active.values()]) {
      slot.remove(t);
      this.#settle(t, new RemoteError('unavailable', `${t.job.what}: ${why}`, { retryable: !this.#closed }));
    }
    if (!this.#closed) this.#dispatch();
  }
}

function fromFailure(f: TransferFailure): Error {
  if (!f.remote) return new FileWriteError(f.message, f.code);
  const opts: { status?: number; retryAfterMs?: number; retryable: boolean; connectionLost: boolean } = { retryable: f.retryable, connectionLost: f.connectionLost };
  if (f.status !== undefined) opts.status = f.status;
  if (f.retryAfterMs !== undefined) opts.retryAfterMs = f.retryAfterMs;
  return new RemoteError(f.kind, f.message, opts);
}
