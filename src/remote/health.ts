// RemoteHealth: one per mounted remote, the circuit breaker that makes "no syscall waits longer
// than --deadline" hold per syscall rather than per request. The kernel turns one read(2) into
// several READs and retries a failed readahead page by page; without a breaker each of those
// would wait its own deadline on a dead server.
//
// States: 'online' (requests pass), 'offline' (requests fail at once; a probe runs).
// - online → offline: a request that ran out of time ('timeout': a deadline passed, a stall,
//   a connect/headers/body timeout: a whole deadline is strong evidence), or `failuresToOpen`
//   consecutive failures of the connection (refused, reset, closed, DNS: 'unavailable' without
//   an HTTP status, or any error marked `connectionLost`) or of the server (5xx, 429). One
//   reset is not enough: a keep-alive connection the server closed as we reused it looks the
//   same, and the data layer's retry will succeed.
// - offline → online: a probe (the remote's cheapest request, `probe(signal)`) succeeds, or
//   fails with an answer the server meant (a 404 or 403 proves it is reachable). Probes
//   run in the background with full-jitter exponential backoff from `probeMinMs` doubling to
//   `probeMaxMs`; each probe is bounded by `probeTimeoutMs`.
// - Any request that succeeds while online resets the consecutive-failure count.
// Everything else ('not-found', 'permission', 'changed', 'protocol', 'aborted'...) says nothing
// about reachability and leaves the state alone.
//
// Invariants:
// - While offline, `admit` throws at once (no I/O, no waiting): RemoteError kind 'unavailable',
//   not retryable, `offline: true` in its message's cause chain via OfflineError.
// - At most one probe loop runs; it ends when the remote is back or on close(); close() awaits
//   it (TaskGroup), and every sleep goes through the injected clock.
// - Listeners hear every transition exactly once, in order; a throwing listener is logged and
//   does not stop the others.
// No locks: every method is synchronous except the probe loop, whose only shared-state writes
// happen in synchronous steps.
import { TaskGroup } from '../base/async.js';
import { systemClock, type Clock } from '../base/clock.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { backoffDelayMs } from './retry.js';
import { RemoteError, isRemoteError } from './remote-error.js';

export type HealthState = 'online' | 'offline';

export interface HealthOptions {
  /** For logs: the remote's id. */
  remoteId: string;
  /** The cheapest request that proves the remote answers (e.g. a stat of the root). */
  probe: (signal: AbortSignal) => Promise<unknown>;
  clock?: Clock;
  logger?: Logger;
  /** Consecutive connection failures or server errors (5xx, 429) that take the remote offline. Default 3. */
  failuresToOpen?: number;
  /** First probe delay ceiling, doubling per failed probe. Default 1000. */
  probeMinMs?: number;
  /** Largest probe delay ceiling. Default 60000. */
  probeMaxMs?: number;
  /** Bound of one probe request. Default 5000. */
  probeTimeoutMs?: number;
  /** Uniform in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

export interface HealthChange {
  state: HealthState;
  /** Clock ms (the injected clock's scale) of the transition. */
  at: number;
  /** Wall-clock ms of the transition, for status. */
  wallAt: number;
  /** What caused it (the failure, or 'probe succeeded'). */
  reason: string;
}

/** What a request gets while the remote is offline: fails fast, never retried. */
export class OfflineError extends RemoteError {
  constructor(remoteId: string, what: string, since: string) {
    super('unavailable', `${what}: ${remoteId} is unreachable (offline since ${since}); not trying until a probe succeeds`, { retryable: false });
  }
}

export class RemoteHealth {
  readonly #o: Required<Omit<HealthOptions, 'clock' | 'logger' | 'random'>>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #tasks: TaskGroup;
  readonly #listeners = new Set<(c: HealthChange) => void>();
  #state: HealthState = 'online';
  #since: HealthChange;
  #serverErrors = 0;
  #probing = false;
  #probes = 0;
  #lastOfflineAt = 0;
  #closed = false;

  constructor(o: HealthOptions) {
    this.#o = {
      remoteId: o.remoteId,
      probe: o.probe,
      failuresToOpen: o.failuresToOpen ?? 3,
      probeMinMs: o.probeMinMs ?? 1000,
      probeMaxMs: o.probeMaxMs ?? 60_000,
      probeTimeoutMs: o.probeTimeoutMs ?? 5000,
    };
    this.#clock = o.clock ?? systemClock;
    this.#log = (o.logger ?? silentLogger()).child({ remote: o.remoteId });
    this.#random = o.random ?? Math.random;
    this.#since = { state: 'online', at: this.#clock.now(), wallAt: this.#clock.wallNow(), reason: 'mounted' };
    this.#tasks = new TaskGroup((err, name) => this.#log.error({ err, task: name }, 'health task failed'));
  }

  get state(): HealthState {
    return this.#state;
  }

  get offline(): boolean {
    return this.#state === 'offline';
  }

  /** The last transition (or the start). */
  get since(): HealthChange {
    return this.#since;
  }

  /** Probes sent since the start (for tests and status). */
  get probes(): number {
    return this.#probes;
  }

  /** Hears every transition; returns the unsubscribe function. */
  onChange(listener: (c: HealthChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Throws OfflineError at once while offline; a request may go ahead otherwise. */
  admit(what: string): void {
    if (this.#state === 'offline') throw new OfflineError(this.#o.remoteId, what, new Date(this.#since.wallAt).toISOString());
  }

  /** A request got an answer (any answer the server meant, success or a plain 404). */
  succeeded(): void {
    this.#serverErrors = 0;
  }

  /** A request failed with `err`; decides whether the remote just went offline. */
  failed(err: unknown): void {
    if (err instanceof OfflineError || !isRemoteError(err)) return;
    if (err.kind === 'timeout') {
      this.#goOffline(err.message);
      return;
    }
    if (err.kind === 'unavailable' || err.connectionLost) {
      if (++this.#serverErrors >= this.#o.failuresToOpen) this.#goOffline(`${this.#serverErrors} failures in a row (last: ${err.message})`);
      return;
    }
    switch (err.kind) {
      case 'aborted':
        // The caller gave up: no answer, and no evidence either way.
        return;
      default:
        // An answer that says nothing about reachability ('not-found', 'changed'...).
        this.#serverErrors = 0;
    }
  }

  /** Forces a state (`--offline` at start; `online` after an external check). */
  force(state: HealthState, reason: string): void {
    if (state === 'offline') this.#goOffline(reason);
    else this.#goOnline(reason);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tasks.close();
  }

  #goOffline(reason: string): void {
    this.#serverErrors = 0;
    if (this.#state === 'offline' || this.#closed) return;
    this.#transition('offline', reason);
    this.#log.warn({ reason }, 'remote unreachable: serving from the cache, failing what needs the network at once');
    if (!this.#probing) {
      this.#probing = true;
      this.#tasks.run('health probe', (signal) => this.#probeLoop(signal));
    }
  }

  #goOnline(reason: string): void {
    this.#serverErrors = 0;
    if (this.#state === 'online') return;
    this.#transition('online', reason);
    this.#log.info({ reason, offlineForMs: Math.round(this.#clock.now() - this.#lastOfflineAt) }, 'remote reachable again');
  }

  #transition(state: HealthState, reason: string): void {
    this.#state = state;
    this.#since = { state, at: this.#clock.now(), wallAt: this.#clock.wallNow(), reason };
    if (state === 'offline') this.#lastOfflineAt = this.#since.at;
    for (const l of [...this.#listeners]) {
      try {
        l(this.#since);
      } catch (err) {
        this.#log.error({ err }, 'a health listener threw');
      }
    }
  }

  async #probeLoop(signal: AbortSignal): Promise<void> {
    try {
      for (let attempt = 1; this.#state === 'offline' && !signal.aborted; attempt++) {
        await this.#clock.sleep(backoffDelayMs(attempt, this.#o.probeMinMs, this.#o.probeMaxMs, this.#random), signal);
        if (this.#state !== 'offline') return;
        this.#probes++;
        const bound = new AbortController();
        const timer = this.#clock.sleep(this.#o.probeTimeoutMs, AbortSignal.any([signal, bound.signal])).then(
          () => bound.abort(new RemoteError('timeout', `health probe of ${this.#o.remoteId}: no answer within ${this.#o.probeTimeoutMs} ms`)),
          () => undefined,
        );
        try {
          await this.#o.probe(AbortSignal.any([signal, bound.signal]));
          this.#goOnline('probe succeeded');
        } catch (err) {
          if (signal.aborted) return;
          // Any answer the server meant (a 404, a 403) proves it is reachable again.
          if (isAnswer(err)) this.#goOnline(`probe answered (${err instanceof Error ? err.message : String(err)})`);
          else this.#log.debug({ err, attempt }, 'health probe failed');
        } finally {
          bound.abort();
          await timer;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      this.#probing = false;
    }
  }
}

/** An error that is still an answer from the server: not a timeout, not a failed connection or server error. */
function isAnswer(err: unknown): boolean {
  if (!isRemoteError(err)) return false;
  if (err.connectionLost) return false;
  return err.kind !== 'timeout' && err.kind !== 'unavailable' && err.kind !== 'aborted';
}
