// When the network fails: every syscall returns within --deadline plus one second of the remote
// failing, whatever the kernel's retry pattern (buffered dd, cat, cp, stat of a deep uncached
// path), cached data and listings keep being served, and the mount recovers by itself when the
// server comes back. One outage per test, on the fault-injecting server: a black hole (accepts,
// never answers), a refused port, resets, a 503 storm, a 1 B/s trickle. Client syscalls run in
// child processes, timed inside the child (process start-up is not counted).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { silentLogger } from '../../src/observability/logger.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { GuardedRemote } from '../../src/remote/guarded-remote.js';
import { RemoteHealth } from '../../src/remote/health.js';
import { startFaultServer, type Outage } from '../fakes/fault-server.js';
import { sh } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';
import { tempDir } from '../support/mounted.js';
import { withRemoteMount } from '../support/remote-mount.js';

const DEADLINE_MS = 2000;
/** The promise: deadline + 1 s. Timed in the child, so only the syscalls count. */
const BOUND_MS = DEADLINE_MS + 1000;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Runs `cmd` in a child shell and says how it ended and how long it took (ms, in the child). */
async function timed(cmd: string): Promise<{ rc: number; ms: number; out: string }> {
  const out = await sh(`s=$(date +%s%N); out=$( { ${cmd} ; } 2>&1 ); rc=$?; e=$(( ($(date +%s%N) - s) / 1000000 )); echo "$rc $e"; echo "$out"`, 60_000);
  const [first = '', ...rest] = out.split('\n');
  const [rc, ms] = first.split(' ').map(Number);
  return { rc: rc ?? -1, ms: ms ?? -1, out: rest.join('\n') };
}

describe('outages: bounded syscalls, cached data served, recovery without a remount', () => {
  for (const outage of ['black-hole', 'refused', 'reset', 'status-503', 'trickle'] as const satisfies readonly Outage[]) {
    test(`${outage}`, async () => {
      const server = await startFaultServer();
      server.addObject('/big.bin', 8 * MiB);
      server.addObject('/cached.bin', 1 * MiB);
      server.addObject('/u1.bin', 256 * 1024);
      server.addObject('/u2.bin', 256 * 1024);
      server.addObject('/a/b/c/d/e/deep.bin', 4096);
      const inner = new HttpRemote({ baseUrl: server.url, timeouts: { connectTimeoutMs: DEADLINE_MS, headersTimeoutMs: DEADLINE_MS, bodyTimeoutMs: DEADLINE_MS } });
      const health = new RemoteHealth({ remoteId: inner.id, probe: (signal) => inner.stat('', signal), probeMinMs: 100, probeMaxMs: 400, probeTimeoutMs: DEADLINE_MS, logger: silentLogger() });
      const remote = new GuardedRemote(inner, health);
      const scratch = tempDir();
      try {
        await withRemoteMount(
          remote,
          async ({ mnt }) => {
            const q = (rel: string): string => join(mnt, rel);
            // Before: a file read whole (its bytes are cached) and the root listed.
            assert.equal((await sh(`sha256sum < ${q('cached.bin')}`)).split(' ')[0], sha(rampBuffer(0, MiB)));
            await sh(`ls -l ${mnt} > /dev/null`);

            await server.outage(outage);
            const results: Record<string, { rc: number; ms: number }> = {};
            results['dd bs=1M (buffered)'] = await timed(`dd if=${q('big.bin')} of=/dev/null bs=1M count=8`);
            results['cat'] = await timed(`cat ${q('u1.bin')} > /dev/null`);
            results['cp'] = await timed(`cp ${q('u2.bin')} ${scratch.path}/`);
            results['stat of a 5-deep path'] = await timed(`stat ${q('a/b/c/d/e/deep.bin')}`);
            for (const [what, r] of Object.entries(results)) {
              assert.ok(r.ms <= BOUND_MS, `${what} took ${r.ms} ms during a ${outage} (bound ${BOUND_MS} ms)`);
            }
            // Every data read of an uncached file failed (a trickle delivers too little in time).
            for (const what of ['dd bs=1M (buffered)', 'cat', 'cp'] as const) {
              assert.notEqual(results[what]?.rc, 0, `${what} failed during a ${outage}`);
            }
            // Once the breaker is open, what needs the network fails at once (the goal is
            // ~100 ms; the bound leaves room for a loaded CI machine and the shell's start-up).
            // Not for a trickle: that server answers the probe (a HEAD has no body to trickle),
            // so the breaker closes again and each read waits its deadline, still within the
            // bound above.
            if (outage !== 'trickle') assert.equal(health.state, 'offline', 'the breaker opened');
            for (const what of outage === 'trickle' ? [] : (['cat', 'cp', 'stat of a 5-deep path'] as const)) {
              const r = results[what];
              assert.ok(r !== undefined && r.ms <= 1000, `${what} after the breaker opened took ${r?.ms ?? '?'} ms during a ${outage}`);
            }

            // Meanwhile: the cached file and the listing seen before keep working.
            const ls = await timed(`ls -l ${mnt}`);
            assert.equal(ls.rc, 0, `ls -l during a ${outage}: ${ls.out}`);
            assert.match(ls.out, /cached\.bin/);
            const cached = await timed(`sha256sum < ${q('cached.bin')}`);
            assert.equal(cached.rc, 0, cached.out);
            assert.equal(cached.out.split(' ')[0], sha(rampBuffer(0, MiB)), 'cached bytes served during the outage');

            // The server comes back: the probe notices, and reads work again without a remount.
            const back = health.offline ? new Promise<void>((resolve) => health.onChange((c) => c.state === 'online' && resolve())) : Promise.resolve();
            await server.outage(undefined);
            await within(back, 15_000, `the probe to see the server back after a ${outage}`);
            assert.equal((await sh(`sha256sum < ${q('u1.bin')}`, 30_000)).split(' ')[0], sha(rampBuffer(0, 256 * 1024)), 'after recovery');
          },
          { data: { operationDeadlineMs: DEADLINE_MS }, sessionDeadlineMs: DEADLINE_MS + 1000, health },
        );
      } finally {
        await remote.close();
        await server.stop();
        scratch.cleanup();
      }
    });
  }
});
