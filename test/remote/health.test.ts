// The circuit breaker (remote/health.ts) and its guard (remote/guarded-remote.ts) on an injected
// clock: no sleeps. What takes a remote offline and what does not, fail-fast while offline, the
// probe schedule (jittered exponential backoff with a fixed "random"), recovery, listeners,
// close.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import { GuardedRemote } from '../../src/remote/guarded-remote.js';
import { OfflineError, RemoteHealth, type HealthChange } from '../../src/remote/health.js';
import type { Remote, RemoteEntry, RemoteStat } from '../../src/remote/remote.js';

/**
 * Lets pending promise chains settle (one macrotask turn drains every microtask), then waits
 * until the clock has `n` sleepers: the loop under test has reached its next sleep.
 */
async function sleepers(clock: ManualClock, n: number, what: string): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  for (let i = 0; i < 1000 && clock.pendingSleeps < n; i++) await new Promise<void>((r) => setImmediate(r));
  assert.ok(clock.pendingSleeps >= n, `${what}: ${clock.pendingSleeps} sleepers, wanted ${n}`);
}

function health(clock: ManualClock, probe: (signal: AbortSignal) => Promise<unknown>, changes: HealthChange[] = []): RemoteHealth {
  // random 0.999…: every backoff sleeps (almost) its whole ceiling, so the schedule is exact.
  const h = new RemoteHealth({ remoteId: 'test://r/', probe, clock, probeMinMs: 1000, probeMaxMs: 8000, probeTimeoutMs: 500, random: () => 0.9999 });
  h.onChange((c) => changes.push(c));
  return h;
}

describe('RemoteHealth', () => {
  test('a timeout takes the remote offline at once; failed connections and 5xx the third in a row', async () => {
    const clock = new ManualClock();
    const changes: HealthChange[] = [];
    const h = health(clock, () => new Promise(() => undefined), changes);
    h.failed(new RemoteError('not-found', 'x'));
    h.failed(new RemoteError('changed', 'x'));
    h.failed(new RemoteError('aborted', 'x'));
    assert.equal(h.state, 'online', 'answers that say nothing about reachability');
    h.failed(new RemoteError('unavailable', '503', { status: 503 }));
    h.failed(new RemoteError('unavailable', '503', { status: 503 }));
    h.succeeded();
    h.failed(new RemoteError('unavailable', '503', { status: 503 }));
    h.failed(new RemoteError('unavailable', '502', { status: 502 }));
    assert.equal(h.state, 'online', 'a success in between resets the count');
    h.failed(new RemoteError('unavailable', '500', { status: 500 }));
    assert.equal(h.state, 'offline', 'three server errors in a row');
    assert.deepEqual(changes.map((c) => c.state), ['offline']);
    await h.close();

    const h2 = health(new ManualClock(), () => new Promise(() => undefined));
    h2.failed(new RemoteError('timeout', 'stalled'));
    assert.equal(h2.state, 'offline', 'a whole deadline without an answer');
    await h2.close();

    // A reset mid-body ('protocol', connectionLost) or a refused connection: one could be a
    // keep-alive race that a retry fixes; three in a row are an outage.
    const h3 = health(new ManualClock(), () => new Promise(() => undefined));
    h3.failed(new RemoteError('unavailable', 'ECONNREFUSED'));
    h3.failed(new RemoteError('protocol', 'body ended early (ECONNRESET)', { connectionLost: true }));
    h3.failed(new RemoteError('protocol', 'bad Content-Range'));
    assert.equal(h3.state, 'online', 'a wrong answer is an answer: the count starts again');
    for (let i = 0; i < 3; i++) h3.failed(new RemoteError('protocol', 'body ended early (ECONNRESET)', { connectionLost: true }));
    assert.equal(h3.state, 'offline');
    await h3.close();
  });

  test('offline: admit fails at once with a non-retryable OfflineError; a probe with backoff brings it back', async () => {
    const clock = new ManualClock();
    const changes: HealthChange[] = [];
    let answer: Deferred<void> = new Deferred<void>();
    const probed: number[] = [];
    const h = health(
      clock,
      (signal) => {
        probed.push(clock.now());
        return new Promise<void>((resolve, reject) => {
          answer.promise.then(resolve, reject);
          signal.addEventListener('abort', () => reject(new RemoteError('aborted', 'probe aborted')), { once: true });
        });
      },
      changes,
    );
    h.failed(new RemoteError('timeout', 'stalled'));
    assert.throws(() => h.admit('list /'), (e: unknown) => e instanceof OfflineError && e.kind === 'unavailable' && !e.retryable);
    // Probe 1 after ~1 s (ceiling 1000), it fails; probe 2 after ~2 s more; probe 3 after ~4 s.
    for (const [i, wait] of [[1, 999], [2, 1999], [3, 3999]] as const) {
      await sleepers(clock, 1, `backoff before probe ${i}`);
      clock.advance(wait);
      await sleepers(clock, 1, `probe ${i} running (its time bound sleeps)`);
      assert.equal(probed.length, i, `probe ${i} sent`);
      if (i < 3) {
        answer.reject(new RemoteError('unavailable', 'ECONNREFUSED'));
        answer = new Deferred<void>();
      }
    }
    assert.deepEqual(probed.map((t, k) => t - (probed[k - 1] ?? 0)), [999, 1999, 3999], 'delays double (jitter fixed)');
    answer.resolve();
    await within(new Promise<void>((r) => h.onChange(() => r())), 5000, 'the probe to bring the remote back');
    assert.equal(h.state, 'online');
    h.admit('list /');
    assert.deepEqual(changes.map((c) => c.state), ['offline', 'online']);
    await h.close();
  });

  test('a probe that does not answer is cut at its time bound and the next one is scheduled', async () => {
    const clock = new ManualClock();
    let probes = 0;
    const aborted = new Deferred<void>();
    const h = health(clock, (signal) => {
      probes++;
      return new Promise((_, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            aborted.resolve();
            reject(new RemoteError('timeout', 'cut'));
          },
          { once: true },
        ),
      );
    });
    h.failed(new RemoteError('timeout', 'stalled'));
    await sleepers(clock, 1, 'first backoff');
    clock.advance(999);
    await sleepers(clock, 1, 'the probe time bound');
    clock.advance(500);
    await within(aborted.promise, 5000, 'the hung probe to be aborted at its bound');
    await sleepers(clock, 1, 'the next backoff');
    assert.equal(probes, 1);
    assert.equal(h.state, 'offline');
    await within(h.close(), 5000, 'close to end the probe loop');
  });
});

describe('GuardedRemote', () => {
  function fakeRemote(calls: string[], fail?: () => RemoteError): Remote {
    return {
      id: 'fake://',
      capabilities: { writable: false, ranges: true, exactListing: true },
      stat: async (path): Promise<RemoteStat> => {
        calls.push(`stat ${path}`);
        const err = fail?.();
        if (err) throw err;
        return { name: path, type: 'file', size: 1 };
      },
      list: async (path): Promise<RemoteEntry[]> => {
        calls.push(`list ${path}`);
        const err = fail?.();
        if (err) throw err;
        return [];
      },
      read: async (path) => {
        calls.push(`read ${path}`);
        return {
          fingerprint: { size: 4 },
          body: (async function* () {
            yield Buffer.from('ab');
            throw new RemoteError('timeout', 'body stalled');
          })(),
        };
      },
      close: async () => undefined,
    };
  }

  test('failures reach the health state; while offline no call reaches the remote', async () => {
    const calls: string[] = [];
    const inner = fakeRemote(calls, () => new RemoteError('timeout', 'no answer'));
    const h = new RemoteHealth({ remoteId: inner.id, probe: () => new Promise(() => undefined), clock: new ManualClock() });
    const g = new GuardedRemote(inner, h);
    const signal = new AbortController().signal;
    await assert.rejects(g.list('', signal), (e: unknown) => e instanceof RemoteError && e.kind === 'timeout');
    assert.equal(h.state, 'offline');
    await assert.rejects(g.stat('f', signal), OfflineError);
    await assert.rejects(g.list('d', signal), OfflineError);
    assert.deepEqual(calls, ['list '], 'nothing after the failure reached the remote');
    await g.close();
  });

  test('an error while a body streams counts; so does a caller that waited a whole deadline', async () => {
    const h = new RemoteHealth({ remoteId: 'fake://', probe: () => new Promise(() => undefined), clock: new ManualClock() });
    const g = new GuardedRemote(fakeRemote([]), h);
    const r = await g.read('f', 0, 4, { signal: new AbortController().signal });
    await assert.rejects(async () => {
      for await (const _ of r.body) void _;
    }, (e: unknown) => e instanceof RemoteError && e.kind === 'timeout');
    assert.equal(h.state, 'offline');
    await g.close();

    const h2 = new RemoteHealth({ remoteId: 'fake://', probe: () => new Promise(() => undefined), clock: new ManualClock() });
    const g2 = new GuardedRemote(fakeRemote([]), h2);
    g2.reportTimeout('read of f');
    assert.equal(h2.state, 'offline');
    await g2.close();
  });
});
