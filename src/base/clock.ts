// Time as an injected dependency: the core and data layers take a Clock so tests can drive
// deadlines and backoff without sleeping.
export interface Clock {
  /** Milliseconds on a monotonic scale (not wall time). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for mtimes and logs. */
  wallNow(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new Error('aborted');
}

/** A clock that moves only when the test says so. Sleepers wake in due-time order. */
export class ManualClock implements Clock {
  #now = 0;
  #wall: number;
  #sleepers: { due: number; resolve: () => void; reject: (e: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }[] = [];

  constructor(wallStart = Date.UTC(2026, 0, 1)) {
    this.#wall = wallStart;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wall + this.#now;
  }

  /** How many sleepers are waiting; lets a test wait until code has reached its sleep. */
  get pendingSleeps(): number {
    return this.#sleepers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const entry = {
        due: this.#now + Math.max(0, ms),
        resolve,
        reject,
        signal,
        onAbort: (): void => {
          this.#sleepers = this.#sleepers.filter((s) => s !== entry);
          reject(abortReason(signal));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.#sleepers.push(entry);
    });
  }

  /** Moves time forward and wakes every sleeper that became due. */
  advance(ms: number): void {
    this.#now += ms;
    const due = this.#sleepers.filter((s) => s.due <= this.#now).sort((a, b) => a.due - b.due);
    this.#sleepers = this.#sleepers.filter((s) => s.due > this.#now);
    for (const s of due) {
      s.signal?.removeEventListener('abort', s.onAbort);
      s.resolve();
    }
  }
}
