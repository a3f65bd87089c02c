// Small async primitives used everywhere. Each one is bounded and abortable, so that
// "nothing waits forever" is something code gets by construction, not by care.
//
// Invariants:
// - Deferred settles at most once; later settle calls are ignored and reported by the return.
// - TaskGroup owns background promises: close() stops new tasks and awaits every running one.
// - Mutex is FIFO and re-entrancy is not supported (a holder that locks again deadlocks; the
//   `Locked` suffix convention on method names exists to prevent that).

export class Deferred<T> {
  readonly promise: Promise<T>;
  #resolve!: (v: T) => void;
  #reject!: (e: unknown) => void;
  #settled = false;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.#settled;
  }

  resolve(value: T): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#resolve(value);
    return true;
  }

  reject(err: unknown): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#reject(err);
    return true;
  }
}

/** Thrown when a wait is cut short by its AbortSignal and the signal gave no reason. */
export class AbortedError extends Error {
  override readonly name = 'AbortedError';
  readonly code = 'ABORTED';
}

/** Thrown by `within` and deadline helpers when time runs out. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'TIMEOUT';
}

export function abortReasonOf(signal: AbortSignal): unknown {
  return signal.reason ?? new AbortedError('aborted');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReasonOf(signal);
}

/**
 * Races `promise` against `signal`: rejects with the abort reason as soon as it fires.
 * The underlying promise keeps running; its eventual rejection is observed so it never
 * becomes an unhandled rejection.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReasonOf(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => undefined);
      reject(abortReasonOf(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Waits for `promise` at most `ms` milliseconds. On timeout it rejects with a TimeoutError
 * whose message names what was being waited for, so a hang reads as a sentence, e.g.
 * "timed out after 2000 ms waiting for: readers to see the closed error".
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      promise.catch(() => undefined);
      reject(new TimeoutError(`timed out after ${ms} ms waiting for: ${what}`));
    }, ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** A signal that fires when any input fires (AbortSignal.any exists from Node 20.3). */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return AbortSignal.any(present);
}

/**
 * Owns background work. `run` starts a task and keeps its promise; `close` refuses new
 * tasks, aborts the group's signal and awaits everything still running. Task failures are
 * passed to `onError` (they never become unhandled rejections).
 */
export class TaskGroup {
  readonly #tasks = new Set<Promise<void>>();
  readonly #controller = new AbortController();
  readonly #onError: (err: unknown, name: string) => void;
  #closed = false;

  constructor(onError: (err: unknown, name: string) => void) {
    this.#onError = onError;
  }

  /** Aborted when the group closes; tasks should pass it to everything they wait on. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get size(): number {
    return this.#tasks.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  run(name: string, task: (signal: AbortSignal) => Promise<void>): boolean {
    if (this.#closed) return false;
    const p = Promise.resolve()
      .then(() => task(this.#controller.signal))
      .catch((err: unknown) => this.#onError(err, name))
      .finally(() => this.#tasks.delete(p));
    this.#tasks.add(p);
    return true;
  }

  /** Waits for the running tasks without stopping the group. */
  async drain(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }

  async close(reason: unknown = new AbortedError('task group closed')): Promise<void> {
    this.#closed = true;
    this.#controller.abort(reason);
    await this.drain();
  }
}

/** FIFO async mutex. `lock` resolves to a release function; prefer `runExclusive`. */
export class Mutex {
  #locked = false;
  readonly #queue: { grant: () => void; signal: AbortSignal | undefined; onAbort: () => void }[] = [];

  get locked(): boolean {
    return this.#locked;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  lock(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReasonOf(signal));
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: (): void => {
          signal?.removeEventListener('abort', entry.onAbort);
          resolve(this.#releaser());
        },
        signal,
        onAbort: (): void => {
          const i = this.#queue.indexOf(entry);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(abortReasonOf(signal as AbortSignal));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.#queue.push(entry);
    });
  }

  async runExclusive<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const release = await this.lock(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next.grant();
      else this.#locked = false;
    };
  }
}

/**
 * Counting semaphore with a bounded wait queue: `acquire` waits for a permit; when
 * `maxQueued` waiters are already queued, a new caller waits for queue space first
 * (callers wait, the queue never grows past its bound).
 */
export class Semaphore {
  #available: number;
  readonly #waiters: Deferred<void>[] = [];

  constructor(permits: number) {
    if (!(permits >= 1)) throw new RangeError('Semaphore needs at least one permit');
    this.#available = permits;
  }

  get available(): number {
    return this.#available;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    throwIfAborted(signal);
    if (this.#available > 0 && this.#waiters.length === 0) {
      this.#available--;
      return this.#releaser();
    }
    const d = new Deferred<void>();
    this.#waiters.push(d);
    try {
      await raceAbort(d.promise, signal);
    } catch (err) {
      const i = this.#waiters.indexOf(d);
      if (i >= 0) this.#waiters.splice(i, 1);
      else this.#releaser()(); // granted just as we aborted: hand the permit on
      throw err;
    }
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next.resolve();
      else this.#available++;
    };
  }
}

/** A gate tests open by hand: `wait()` blocks until `open()`. */
export class Gate {
  readonly #d = new Deferred<void>();
  #waiters = 0;

  get isOpen(): boolean {
    return this.#d.settled;
  }

  /** How many callers are currently blocked in wait(). */
  get waiters(): number {
    return this.#waiters;
  }

  async wait(signal?: AbortSignal): Promise<void> {
    if (this.#d.settled) return;
    this.#waiters++;
    try {
      await raceAbort(this.#d.promise, signal);
    } finally {
      this.#waiters--;
    }
  }

  open(): void {
    this.#d.resolve();
  }
}

/** N parties arrive; all are released when the Nth arrives. */
export class Barrier {
  readonly #parties: number;
  #arrived = 0;
  readonly #d = new Deferred<void>();

  constructor(parties: number) {
    this.#parties = parties;
  }

  get arrived(): number {
    return this.#arrived;
  }

  arrive(): Promise<void> {
    this.#arrived++;
    if (this.#arrived >= this.#parties) this.#d.resolve();
    return this.#d.promise;
  }
}
