// DownloadPool: bounds the remote requests of one DataCache. At most `concurrency` run at
// once; at most `queueMax` more hold a place in the queue; any further caller waits for queue
// space (the queue never grows past its bound, callers wait). Every wait honours the caller's
// AbortSignal and gives its place back when aborted.
//
// Invariants: inFlight <= concurrency; queued <= queueMax; a slot returned by acquire() is
// released exactly once (the release function is idempotent).
//
// Lock order: no mutexes; two Semaphores always taken in the order admission → run and
// released in the reverse order.
import { Semaphore } from '../../base/async.js';

export interface PoolSlot {
  /** Gives the slot back; idempotent. */
  release(): void;
}

export class DownloadPool {
  readonly #run: Semaphore;
  readonly #admission: Semaphore;
  #inFlight = 0;
  #queued = 0;
  #blocked = 0;

  constructor(concurrency: number, queueMax: number) {
    this.#run = new Semaphore(concurrency);
    this.#admission = new Semaphore(concurrency + queueMax);
  }

  /** Remote requests running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests holding a queue place and waiting for a run slot. */
  get queued(): number {
    return this.#queued;
  }

  /** Callers waiting for a queue place (the queue is full). */
  get blocked(): number {
    return this.#blocked;
  }

  /** True when new work would have to queue; read-ahead uses it to stay out of the way. */
  get saturated(): boolean {
    return this.#run.available === 0;
  }

  async acquire(signal: AbortSignal): Promise<PoolSlot> {
    this.#blocked++;
    let releaseAdmission: () => void;
    try {
      releaseAdmission = await this.#admission.acquire(signal);
    } finally {
      this.#blocked--;
    }
    this.#queued++;
    let releaseRun: () => void;
    try {
      releaseRun = await this.#run.acquire(signal);
    } catch (err) {
      releaseAdmission();
      throw err;
    } finally {
      this.#queued--;
    }
    this.#inFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        releaseRun();
        releaseAdmission();
      },
    };
  }
}
