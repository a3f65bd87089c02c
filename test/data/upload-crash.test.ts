// Crash safety of the write path: kill -9 a process that journals puts and uploads them
// (upload-crash-child.ts: snapshot fdatasync'ed before its row commits; LocalRemote with
// atomic puts) at 24 seeded points: right after a journal commit, half-way through a put's
// bytes, with a put's temp file complete but not renamed, and after the remote committed but
// before the journal heard of it. Then a new queue on the same journal drains it. Every file
// whose row committed before the kill must be on the remote, byte for byte its last committed
// version; no other visible file (no half-written file, no conflict copy of our own bytes);
// the journal and the snapshot dir empty.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { within } from '../../src/base/async.js';
import { Journal } from '../../src/store/journal.js';
import { LocalRemote, isTempName } from '../../src/remote/local/local-remote.js';
import { UploadQueue } from '../../src/data/upload/upload-queue.js';
import { rampBuffer } from '../support/ramp.js';
import { start } from '../support/proc.js';
import { crashPlan, prng } from './upload-crash-plan.js';

const child = fileURLToPath(new URL('./upload-crash-child.js', import.meta.url));
const KINDS = ['after-commit', 'mid-transfer', 'before-rename', 'after-remote'] as const;
const RUNS = 24;

interface Run {
  seed: number;
  point: string;
}

/**
 * Kill points that are always reached: a count of journal commits up to the plan's length,
 * of remote puts up to the number of distinct files (each one's last version is uploaded at
 * least once, whatever coalesced), of half-sent puts up to the files whose last version has
 * bytes.
 */
function runs(): Run[] {
  const out: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const seed = 101 + i;
    const kind = KINDS[i % KINDS.length] ?? 'after-commit';
    const plan = crashPlan(seed);
    const last = new Map(plan.map((s) => [s.path, s.sizeBytes]));
    const limit = kind === 'after-commit' ? plan.length : kind === 'mid-transfer' ? [...last.values()].filter((n) => n > 0).length : last.size;
    const n = 1 + Math.floor(prng(seed * 7)() * Math.max(1, limit));
    out.push({ seed, point: `${limit === 0 ? 'after-remote' : kind}:${n}` });
  }
  return out;
}

void describe('upload queue: kill -9 at any point loses nothing a journal commit promised', () => {
  for (const { seed, point } of runs()) {
    void test(`seed ${seed}, killed at ${point}`, async () => {
      const work = mkdtempSync(join(tmpdir(), 'fusestream-upload-crash-'));
      try {
        const proc = start(process.execPath, ['--enable-source-maps', child, work, String(seed), point]);
        try {
          await proc.waitFor('POINT', 20_000);
        } finally {
          proc.child.kill('SIGKILL');
        }
        const r = await within(proc.done, 5000, 'the killed child to exit');
        assert.equal(r.signal, 'SIGKILL', `stderr: ${r.stderr}`);
        assert.ok(!r.stdout.includes('DONE'), 'killed at its point, not after finishing');
        const expected = new Map<string, { seed: number; size: number }>();
        for (const line of r.stdout.split('\n')) {
          const m = /^COMMITTED (\S+) (\d+) (\d+)$/.exec(line);
          if (m) expected.set(m[1] ?? '', { seed: Number(m[2]), size: Number(m[3]) });
        }
        assert.ok(expected.size > 0 || point === 'after-commit:0', 'something was committed');

        // Restart: a new owner of the same journal drains it.
        const remote = new LocalRemote({ root: join(work, 'remote') });
        const journal = Journal.open(join(work, 'cache.db'), { remote: remote.id });
        const queue = new UploadQueue({ journal, remote, snapshotDir: join(work, 'snapshots'), writeBackDelayMs: 0, retryBaseMs: 5, retryMaxMs: 50 });
        try {
          queue.start();
          const left = await within(queue.drain(20_000), 25_000, 'the restarted queue to drain');
          assert.deepEqual(left, [], 'everything uploaded');
          assert.deepEqual(journal.list(), [], 'no conflict rows either');
        } finally {
          await within(queue.close(), 5000, 'the queue to close');
          journal.close();
          await remote.close();
        }

        const visible = readdirSync(join(work, 'remote')).filter((n) => !isTempName(n)).sort();
        assert.deepEqual(visible, [...expected.keys()].sort(), 'exactly the committed files are visible');
        for (const [path, v] of expected) {
          const got = readFileSync(join(work, 'remote', path));
          assert.equal(got.length, v.size, `${path}: size of its last committed version (seed ${v.seed})`);
          assert.ok(got.equals(rampBuffer(0, v.size, v.seed)), `${path}: bytes of its last committed version (seed ${v.seed})`);
        }
        assert.deepEqual(readdirSync(join(work, 'snapshots')), [], 'every snapshot released');
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});
