// The retry policy, driven by a ManualClock: growing jittered delays, Retry-After as a floor,
// the deadline, abort, and non-retryable errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import { backoffDelayMs, retry } from '../../src/remote/retry.js';

/** Waits until the code under test is asleep on the clock (bounded). */
async function untilSleeping(clock: ManualClock, n = 1): Promise<void> {
  await within(
    (async () => {
      while (clock.pendingSleeps < n) await new Promise<void>((r) => setImmediate(r));
    })(),
    2000,
    'retry to reach its backoff sleep',
  );
}

void describe('retry', () => {
  void test('retries retryable errors with growing delays, then succeeds', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    let calls = 0;
    const p = retry(
      async (attempt) => {
        calls++;
        assert.equal(attempt, calls);
        if (attempt < 4) throw new RemoteError('unavailable', `fail ${attempt}`);
        return 'ok';
      },
      { signal: new AbortController().signal, clock, baseMs: 100, maxMs: 1000, random: () => 0.999, onRetry: (_e, _a, d) => delays.push(d) },
    );
    for (let i = 0; i < 3; i++) {
      await untilSleeping(clock);
      clock.advance(delays[i] ?? 0);
    }
    assert.equal(await within(p, 2000, 'retry result'), 'ok');
    assert.deepEqual(delays, [99, 199, 399]);
    assert.equal(calls, 4);
  });

  void test('full jitter stays under the capped ceiling', () => {
    assert.equal(backoffDelayMs(1, 100, 1000, () => 0), 0);
    assert.equal(backoffDelayMs(10, 100, 1000, () => 0.5), 500);
    assert.equal(backoffDelayMs(60, 100, 1000, () => 0.999), 999);
  });

  void test('honours Retry-After as a floor', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    let calls = 0;
    const p = retry(
      async () => {
        if (++calls === 1) throw new RemoteError('unavailable', '503', { status: 503, retryAfterMs: 5000 });
        return calls;
      },
      { signal: new AbortController().signal, clock, random: () => 0.5, onRetry: (_e, _a, d) => delays.push(d) },
    );
    await untilSleeping(clock);
    assert.deepEqual(delays, [5000]);
    clock.advance(4999);
    assert.equal(clock.pendingSleeps, 1, 'still asleep before Retry-After has passed');
    clock.advance(1);
    assert.equal(await within(p, 2000, 'retry after Retry-After'), 2);
  });

  void test('stops at the deadline with the last error, without sleeping past it', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = retry(
      async () => {
        throw new RemoteError('timeout', `attempt ${++calls}`);
      },
      { signal: new AbortController().signal, clock, deadlineAt: 250, baseMs: 100, maxMs: 100, maxAttempts: 100, random: () => 0.999 },
    );
    await untilSleeping(clock);
    clock.advance(99);
    await untilSleeping(clock);
    clock.advance(99);
    // now at 198: the next 99 ms sleep would reach 297 > 250, so it gives up at once
    const err = await within(p.catch((e: unknown) => e), 2000, 'retry to give up at the deadline');
    assert.ok(err instanceof RemoteError);
    assert.equal(err.message, 'attempt 3');
    assert.equal(clock.pendingSleeps, 0);
    assert.equal(clock.now(), 198);
  });

  void test('gives up after maxAttempts', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = retry(
      async () => {
        throw new RemoteError('unavailable', `attempt ${++calls}`);
      },
      { signal: new AbortController().signal, clock, maxAttempts: 2, random: () => 0 },
    );
    await untilSleeping(clock);
    clock.advance(0);
    await assert.rejects(within(p, 2000, 'retry to give up'), /attempt 2/);
  });

  void test('aborts promptly while sleeping', async () => {
    const clock = new ManualClock();
    const ac = new AbortController();
    const p = retry(
      async () => {
        throw new RemoteError('unavailable', 'down');
      },
      { signal: ac.signal, clock, baseMs: 60_000, random: () => 0.9 },
    );
    await untilSleeping(clock);
    const reason = new Error('interrupted');
    ac.abort(reason);
    const err = await within(p.catch((e: unknown) => e), 2000, 'retry to notice the abort');
    assert.ok(err instanceof RemoteError);
    assert.equal(err.kind, 'aborted');
    assert.equal(err.cause, reason);
    assert.equal(clock.pendingSleeps, 0);
  });

  void test('does not start when already aborted', async () => {
    let calls = 0;
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      retry(async () => ++calls, { signal: ac.signal }),
      (e: unknown) => e instanceof RemoteError && e.kind === 'aborted',
    );
    assert.equal(calls, 0);
  });

  void test('does not retry non-retryable kinds or foreign errors', async () => {
    for (const kind of ['not-found', 'permission', 'changed', 'invalid', 'conflict', 'unsupported'] as const) {
      let calls = 0;
      await assert.rejects(
        retry(
          async () => {
            calls++;
            throw new RemoteError(kind, kind);
          },
          { signal: new AbortController().signal, clock: new ManualClock() },
        ),
        (e: unknown) => e instanceof RemoteError && e.kind === kind,
      );
      assert.equal(calls, 1, kind);
    }
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new TypeError('bug');
        },
        { signal: new AbortController().signal, clock: new ManualClock() },
      ),
      TypeError,
    );
    assert.equal(calls, 1);
  });
});
