// The change poller on an injected clock: one round per interval, none while the remote is
// offline, none at all with interval 0, rounds never overlap, close() ends it mid-round.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ChangePoller } from '../../src/core/change-poller.js';
import type { PollRound } from '../../src/core/remote-fs.js';

const round = (changed = 0): PollRound => ({ dirs: 1, requests: 1, added: 0, removed: 0, changed, failed: 0 });

async function settle(clock: ManualClock, sleepers: number): Promise<void> {
  for (let i = 0; i < 1000 && clock.pendingSleeps < sleepers; i++) await new Promise<void>((r) => setImmediate(r));
  assert.equal(clock.pendingSleeps, sleepers, 'the poller reached its sleep');
}

describe('ChangePoller', () => {
  test('one round per interval, skipped while offline; totals add up', async () => {
    const clock = new ManualClock();
    const health = { offline: false };
    let calls = 0;
    const p = new ChangePoller({ poll: async () => (calls++, round(2)), intervalMs: 1000, health, clock, logger: silentLogger() });
    p.start();
    await settle(clock, 1);
    clock.advance(999);
    assert.equal(calls, 0);
    clock.advance(1);
    await settle(clock, 1);
    assert.equal(calls, 1);
    health.offline = true;
    clock.advance(1000);
    await settle(clock, 1);
    assert.equal(calls, 1, 'no round while offline');
    health.offline = false;
    clock.advance(1000);
    await settle(clock, 1);
    assert.deepEqual({ calls, rounds: p.totals.rounds, changed: p.totals.changed }, { calls: 2, rounds: 2, changed: 4 });
    await within(p.close(), 5000, 'close while sleeping');
  });

  test('rounds never overlap; close() ends a round in progress through its signal', async () => {
    const clock = new ManualClock();
    const entered = new Deferred<void>();
    let running = 0;
    let maxRunning = 0;
    const p = new ChangePoller({
      poll: (signal) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        entered.resolve();
        return new Promise<PollRound>((_, reject) =>
          signal.addEventListener('abort', () => {
            running--;
            reject(new Error('aborted'));
          }),
        );
      },
      intervalMs: 100,
      clock,
      logger: silentLogger(),
    });
    p.start();
    await settle(clock, 1);
    clock.advance(100);
    await within(entered.promise, 5000, 'the first round to start');
    clock.advance(1000); // the round is still running: no second one starts
    assert.equal(maxRunning, 1);
    await within(p.close(), 5000, 'close to abort the running round');
    assert.equal(running, 0);
  });

  test('an interval of 0 polls never', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = new ChangePoller({ poll: async () => (calls++, round()), intervalMs: 0, clock, logger: silentLogger() });
    p.start();
    clock.advance(1_000_000);
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(calls, 0);
    assert.equal(clock.pendingSleeps, 0);
    await p.close();
  });
});
