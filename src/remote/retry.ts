// The one retry policy for remote operations: full-jitter exponential backoff (AWS
// architecture blog, "Exponential Backoff and Jitter"), bounded by attempts and by the
// operation's deadline.
//
// Invariants:
// - Only errors with `retryable === true` (RemoteError) are retried; anything else is thrown
//   at once, unchanged.
// - A server's Retry-After is a floor for the next delay.
// - It never sleeps past `deadlineAt`: when the next sleep would cross it, the last error is
//   thrown now (waiting only to fail later helps nobody).
// - Sleeping goes through `clock.sleep(ms, signal)`, so tests drive it with ManualClock; when
//   the signal fires, the wait ends at once with RemoteError 'aborted' (cause: the reason).
import { systemClock, type Clock } from '../base/clock.js';
import { RemoteError, isRemoteError } from './remote-error.js';

export interface RetryOptions {
  signal: AbortSignal;
  /** Absolute deadline on `clock.now()`'s scale (ms). */
  deadlineAt?: number;
  clock?: Clock;
  /** First backoff ceiling; the ceiling doubles per attempt. Default 100 ms. */
  baseMs?: number;
  /** Largest backoff ceiling. Default 10 s. */
  maxMs?: number;
  /** Total attempts including the first. Default 6. */
  maxAttempts?: number;
  /** Called before each backoff sleep (for logs and metrics). */
  onRetry?: (err: RemoteError, attempt: number, delayMs: number) => void;
  /** Uniform in [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

export const RETRY_DEFAULTS = { baseMs: 100, maxMs: 10_000, maxAttempts: 6 } as const;

/** The delay before retry number `attempt` (1-based: the delay after the first failure is attempt 1). */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number, retryAfterMs?: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs !== undefined ? Math.max(jittered, retryAfterMs) : jittered;
}

function abortedError(signal: AbortSignal): RemoteError {
  return new RemoteError('aborted', 'operation aborted', { cause: signal.reason });
}

/** Runs `fn(attempt)` (attempt starts at 1) until it succeeds or retrying makes no sense. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const clock = opts.clock ?? systemClock;
  const baseMs = opts.baseMs ?? RETRY_DEFAULTS.baseMs;
  const maxMs = opts.maxMs ?? RETRY_DEFAULTS.maxMs;
  const maxAttempts = opts.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  const random = opts.random ?? Math.random;
  const { signal } = opts;

  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw abortedError(signal);
    let err: unknown;
    try {
      return await fn(attempt);
    } catch (e) {
      err = e;
    }
    if (signal.aborted) {
      if (isRemoteError(err) && err.kind === 'aborted') throw err;
      throw abortedError(signal);
    }
    if (!isRemoteError(err) || !err.retryable || attempt >= maxAttempts) throw err;
    const delayMs = backoffDelayMs(attempt, baseMs, maxMs, random, err.retryAfterMs);
    if (opts.deadlineAt !== undefined && clock.now() + delayMs >= opts.deadlineAt) throw err;
    opts.onRetry?.(err, attempt, delayMs);
    try {
      await clock.sleep(delayMs, signal);
    } catch {
      throw abortedError(signal);
    }
  }
}
