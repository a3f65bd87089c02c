// ChangePoller: every poll interval, one change-detection round of a filesystem (RemoteFs.poll)
// so that a change on the remote reaches the kernel's caches within the interval, whatever the
// attribute and directory TTLs. Skips rounds while the remote is offline (the probe brings it
// back first). Rounds never overlap; each is bounded in requests.
//
// Ownership: the poller owns its TaskGroup; close() aborts the sleep or the round and awaits
// it. Time comes from the injected clock, so tests drive rounds without sleeping.
import { TaskGroup } from '../base/async.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../observability/logger.js';
import type { PollRound } from './remote-fs.js';

export interface ChangePollerOptions {
  poll: (signal: AbortSignal, maxRequests: number) => Promise<PollRound>;
  intervalMs: number;
  /** Most remote requests one round may make. Default 256. */
  maxRequestsPerRound?: number;
  health?: { readonly offline: boolean };
  clock?: Clock;
  logger: Logger;
}

export interface PollerTotals {
  rounds: number;
  requests: number;
  added: number;
  removed: number;
  changed: number;
  failed: number;
}

export class ChangePoller {
  readonly totals: PollerTotals = { rounds: 0, requests: 0, added: 0, removed: 0, changed: 0, failed: 0 };
  readonly #o: ChangePollerOptions;
  readonly #clock: Clock;
  readonly #tasks: TaskGroup;

  constructor(o: ChangePollerOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#tasks = new TaskGroup((err) => o.logger.error({ err }, 'change poller failed'));
  }

  /** Starts the loop (no-op for an interval of 0: polling is off). */
  start(): void {
    if (this.#o.intervalMs <= 0) return;
    this.#tasks.run('change poller', (signal) => this.#loop(signal));
  }

  async close(): Promise<void> {
    await this.#tasks.close();
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(this.#o.intervalMs, signal);
      } catch {
        return; // closed
      }
      if (this.#o.health?.offline === true) continue;
      let r: PollRound;
      try {
        r = await this.#o.poll(signal, this.#o.maxRequestsPerRound ?? 256);
      } catch (err) {
        if (signal.aborted) return;
        this.#o.logger.warn({ err }, 'a change-poll round failed; trying again next interval');
        continue;
      }
      const t = this.totals;
      t.rounds++;
      t.requests += r.requests;
      t.added += r.added;
      t.removed += r.removed;
      t.changed += r.changed;
      t.failed += r.failed;
      if (r.added + r.removed + r.changed > 0) this.#o.logger.debug({ ...r }, 'remote changes seen; kernel caches invalidated');
    }
  }
}
