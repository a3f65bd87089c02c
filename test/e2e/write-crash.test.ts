// Crash safety through the mount: `fusestream mount <local dir>` (a CLI child) serves a
// write-heavy workload child (write-crash-child.ts: seeded rewrites, editor-style temp +
// fsync + rename saves, appends, patches with holes, renames, unlinks, each acknowledged
// close/fsync/rename/unlink logged outside the mount) and is killed with SIGKILL at a seeded
// point: as the test reads the workload's k-th acknowledgement, or its n-th written byte, or
// some event-loop turns after an acknowledgement, or after the workload stopped by itself
// (the daemon then idle or mid-upload). Then a second mount on the same cache dir
// (--write-back-delay 0) is started and stopped with SIGTERM (which drains), and:
// - what the second mount shows, and then the remote directory, hold for every path exactly
//   its last acknowledged version (an unlinked or renamed-away path is absent; a renamed file
//   is at its new name), or what the one operation cut short by the kill would have made it,
//   or an empty file where the workload had created or truncated it since (open(O_TRUNC)
//   returned: the file WAS empty), never half-written bytes nor someone else's bytes;
// - the remote after the drain is exactly what the second mount showed (it had nothing left
//   to upload, and lost nothing it showed); no other file is on the remote.
// 24 kill points; `npm test` runs 8 of them (every third), all run under stress
// (FUSESTREAM_FUZZ_BASE set, which also picks the seeds) or with FUSESTREAM_WRITE_CRASH_ALL=1.
// One run: FUSESTREAM_WRITE_CRASH_ONLY=<index> [FUSESTREAM_FUZZ_BASE=<base>].
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Deferred, within } from '../../src/base/async.js';
import { CliMounts, type CliMount } from '../support/cli-mount.js';
import { prng } from '../support/prng.js';
import { rampBuffer } from '../support/ramp.js';
import { run as runProcess, sh } from '../support/proc.js';
import { readTree } from '../support/tree-compare.js';
import { DIRS, crashPlan } from './write-crash-plan.js';
import { EMPTY_SHA, expectationFrom, show, violations, type Content } from './write-crash-check.js';

const childScript = fileURLToPath(new URL('./write-crash-child.js', import.meta.url));
const RUNS = 24;
const stressBase = process.env.FUSESTREAM_FUZZ_BASE;
const BASE = Number(stressBase ?? 9100);
const only = process.env.FUSESTREAM_WRITE_CRASH_ONLY;
const all = stressBase !== undefined || process.env.FUSESTREAM_WRITE_CRASH_ALL === '1';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Trigger =
  /** Kill as the test reads the workload's n-th acknowledgement (it runs on meanwhile). */
  | { kind: 'ack'; n: number }
  /** Kill as the test reads that the workload has written n bytes. */
  | { kind: 'bytes'; n: number }
  /** Kill `turns` event-loop turns after reading the n-th acknowledgement. */
  | { kind: 'turns'; n: number; turns: number }
  /** The workload exits after its n-th acknowledged close; kill `turns` turns after it exited. */
  | { kind: 'stop'; n: number; turns: number };

interface Run {
  index: number;
  seed: number;
  trigger: Trigger;
  writeBackDelay: string;
}

const describeTrigger = (t: Trigger): string =>
  t.kind === 'ack' ? `at ack ${t.n}` : t.kind === 'bytes' ? `at byte ${t.n}` : t.kind === 'turns' ? `${t.turns} turns after ack ${t.n}` : `${t.turns} turns after the workload stopped at close ${t.n}`;

function runs(): Run[] {
  const out: Run[] = [];
  for (let index = 0; index < RUNS; index++) {
    const seed = BASE + index;
    const plan = crashPlan(seed);
    const rnd = prng(seed * 7);
    const n = (limit: number): number => 1 + Math.floor(rnd() * Math.max(1, limit));
    const turns = Math.floor(rnd() * 400);
    const kinds = ['ack', 'bytes', 'turns', 'stop'] as const;
    const kind = kinds[index % kinds.length] ?? 'ack';
    const trigger: Trigger =
      kind === 'ack' ? { kind, n: n(plan.acks) } : kind === 'bytes' ? { kind, n: n(plan.bytes) } : kind === 'turns' ? { kind, n: n(plan.acks), turns } : { kind, n: n(plan.closes), turns };
    out.push({ index, seed, trigger, writeBackDelay: ['0', '3600', '0.05'][Math.floor(index / 4) % 3] ?? '0' });
  }
  return out.filter((r) => (only !== undefined ? r.index === Number(only) : all || r.index % 3 === 0));
}

/** sha256 of every file shown under `root`, read by a child process (never by this one). */
async function shasThroughMount(root: string): Promise<Map<string, Content>> {
  const out = await sh(`cd ${root} && find . -type f -exec sha256sum {} +`, 60_000);
  const m = new Map<string, Content>();
  for (const line of out.split('\n')) {
    const hit = /^([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
    if (hit?.[1] && hit[2]) m.set(hit[2], hit[1]);
  }
  return m;
}

function shasOfTree(root: string): Map<string, Content> {
  const m = new Map<string, Content>();
  for (const [p, b] of readTree(root)) if (b !== null) m.set(p, sha(b));
  return m;
}

/**
 * Runs the workload child on `mnt` and SIGKILLs `daemon` at `trigger`. Resolves with the
 * child's stdout once both have exited.
 */
async function runUntilKilled(daemon: CliMount, mnt: string, log: string, seed: number, trigger: Trigger): Promise<{ stdout: string; stderr: string }> {
  const args = [childScript, mnt, log, String(seed), trigger.kind === 'stop' ? String(trigger.n) : '0'];
  const child = spawn(process.execPath, ['--enable-source-maps', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Deferred<void>();
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('close', () => exited.resolve());
  child.on('error', (err) => exited.reject(err));
  let killed = false;
  const kill = (): void => {
    if (killed) return;
    killed = true;
    daemon.proc.child.kill('SIGKILL');
  };
  const killAfterTurns = async (turns: number): Promise<void> => {
    for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    kill();
  };
  const pending: Promise<void>[] = [];
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    stdout += `${line}\n`;
    const ack = /^ACK (\d+) /.exec(line);
    const w = /^W (\d+)$/.exec(line);
    if (trigger.kind === 'ack' && ack && Number(ack[1]) >= trigger.n) kill();
    else if (trigger.kind === 'bytes' && w && Number(w[1]) >= trigger.n) kill();
    else if (trigger.kind === 'turns' && ack && Number(ack[1]) === trigger.n) pending.push(killAfterTurns(trigger.turns));
  });
  try {
    await within(exited.promise, 60_000, `the workload child (seed ${seed}) to finish or stop`);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  await Promise.all(pending);
  // The workload finished (or stopped by itself) before its trigger: kill the daemon now.
  if (trigger.kind === 'stop') await killAfterTurns(trigger.turns);
  else kill();
  return { stdout, stderr };
}

/** The remote before the first mount: the plan's directories and initial files. */
function writeInitialRemote(remote: string, seed: number): void {
  mkdirSync(remote, { recursive: true });
  for (const d of DIRS) mkdirSync(join(remote, d));
  for (const f of crashPlan(seed).initial) writeFileSync(join(remote, f.path), rampBuffer(0, f.sizeBytes, f.seed));
}

// The judge must be able to fail: the workload on a plain directory (no mount, no crash) leaves
// exactly what its log promises, and each way of breaking that promise is named.
void describe('write crash judge', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-crash-judge-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a plain directory keeps every promise of the log, for each seed run here; broken promises are named', async () => {
    for (const { index, seed } of runs()) {
      const root = join(dir, `plain${index}`);
      const log = join(dir, `plain${index}.log`);
      writeInitialRemote(root, seed);
      const r = await runProcess(process.execPath, [childScript, root, log, String(seed), '0'], 30_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^DONE$/m);
      const want = expectationFrom(readFileSync(log, 'utf8').trim().split('\n'));
      const tree = shasOfTree(root);
      assert.deepEqual(violations(tree, want, 'plain'), [], `seed ${seed}`);
      const [path, content] = [...tree].find(([, c]) => c !== EMPTY_SHA) ?? [];
      if (path === undefined || content === undefined) continue;
      const broken = (change: (t: Map<string, Content>) => void): string[] => {
        const t = new Map(tree);
        change(t);
        return violations(t, want, 'broken');
      };
      assert.equal(broken((t) => t.delete(path)).length, 1, `seed ${seed}: a lost file is named`);
      assert.equal(broken((t) => t.set(path, sha(readFileSync(join(root, path)).subarray(1)))).length, 1, `seed ${seed}: half-written bytes are named`);
      assert.equal(broken((t) => t.set('z.bin', content)).length, 1, `seed ${seed}: a file the workload never made is named`);
    }
  });

  test('the operation the kill cut short may or may not have happened; nothing else may', () => {
    const [v1, v2] = ['one', 'two'].map((s) => sha(Buffer.from(s))) as [string, string];
    const lines = [
      { ev: 'init', path: 'a', sha: v1, size: 3 },
      { ev: 'try', op: 'open', path: 'a', trunc: true, create: false },
      { ev: 'ack', op: 'open', path: 'a', trunc: true, create: false },
      { ev: 'try', op: 'close', path: 'a', sha: v2, size: 3 },
      { ev: 'ack', op: 'close', path: 'a', sha: v2, size: 3 },
      { ev: 'try', op: 'rename', from: 'a', to: 'b' },
      { ev: 'fail', op: 'rename', from: 'a', to: 'b', code: 'ENOTCONN' },
    ].map((e) => JSON.stringify(e));
    const want = expectationFrom(lines);
    assert.deepEqual(violations(new Map([['a', v2]]), want, 'x'), [], 'the rename not done');
    assert.deepEqual(violations(new Map([['b', v2]]), want, 'x'), [], 'the rename done');
    assert.equal(violations(new Map([['a', v1]]), want, 'x').length, 1, 'the version before the last close is not enough');
    assert.equal(violations(new Map([['a', EMPTY_SHA]]), want, 'x').length, 1, 'the truncation was superseded by the close');
    assert.equal(violations(new Map(), want, 'x').length, 1, 'losing the file is named');
  });
});

void describe('write path: kill -9 of the mount loses nothing acknowledged, leaves nothing half-written', () => {
  let dir: string;
  const mounts = new CliMounts();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-crash-'));
  });

  after(async () => {
    await mounts.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const r of runs()) {
    const { index, seed, trigger, writeBackDelay } = r;
    void test(`run ${index}: seed ${seed}, --write-back-delay ${writeBackDelay}, killed ${describeTrigger(trigger)}`, async () => {
      const work = join(dir, `run${index}`);
      const remote = join(work, 'remote');
      const cache = join(work, 'cache');
      const log = join(work, 'workload.log');
      writeInitialRemote(remote, seed);
      const repro = `FUSESTREAM_FUZZ_BASE=${BASE} FUSESTREAM_WRITE_CRASH_ONLY=${index} node scripts/run-tests.mjs write-crash`;

      const mnt1 = mounts.mountpoint(work, 'mnt1');
      const first = await mounts.start(['mount', remote, mnt1, '--cache-dir', cache, '--write-back-delay', writeBackDelay, '--log-level', process.env.FUSESTREAM_MODEL_LOG_LEVEL ?? 'warn'], mnt1, 'the first mount');
      const workload = await runUntilKilled(first, mnt1, log, seed, trigger);
      const died = await within(first.proc.done, 10_000, 'the first mount to die after SIGKILL');
      assert.equal(died.signal, 'SIGKILL', `the first mount ran until the kill: exit ${died.code}, stderr: ${died.stderr.slice(-2000)}`);
      assert.match(workload.stdout, /^(DONE|STOPPED .*)$/m, `the workload ended cleanly; stderr: ${workload.stderr.slice(-2000)}`);
      const acks = (workload.stdout.match(/^ACK /gm) ?? []).length;
      const bytes = Math.max(0, ...[...workload.stdout.matchAll(/^W (\d+)$/gm)].map((m) => Number(m[1])));
      const ending = workload.stdout.trim().split('\n').pop() ?? '';
      // The kill, not a failure of the mount, ended the workload: it got as far as its trigger.
      assert.ok(trigger.kind === 'bytes' ? bytes >= trigger.n : acks >= trigger.n, `the workload reached its kill point (${acks} acks, ${bytes} bytes) before it ended with: ${ending}`);
      await mounts.detach(mnt1);

      const want = expectationFrom(readFileSync(log, 'utf8').trim().split('\n'));
      const mnt2 = mounts.mountpoint(work, 'mnt2');
      // A drain that cannot finish ends in 30 s with the rest named, inside our wait for the exit.
      const second = await mounts.start(['mount', remote, mnt2, '--cache-dir', cache, '--write-back-delay', '0', '--drain-timeout', '30', '--log-level', 'warn'], mnt2, 'the second mount');
      const shown = await shasThroughMount(mnt2);
      const stopped = await mounts.stop(second, 'SIGTERM');
      assert.equal(stopped.exit.code, 0, `the second mount drains and exits 0; stderr: ${stopped.exit.stderr.slice(-2000)}`);
      const onRemote = shasOfTree(remote);

      const problems = [
        ...violations(shown, want, 'shown by the second mount:'),
        ...violations(onRemote, want, 'on the remote after the drain:'),
        ...[...new Set([...shown.keys(), ...onRemote.keys()])]
          .filter((p) => (shown.get(p) ?? null) !== (onRemote.get(p) ?? null))
          .map((p) => `${p}: the second mount showed ${show(shown.get(p) ?? null)} but the remote has ${show(onRemote.get(p) ?? null)} after its drain`),
      ];
      assert.deepEqual(
        problems,
        [],
        `seed ${seed}, killed ${describeTrigger(trigger)} after ${acks} acknowledgements (workload: ${ending}):\n${problems.join('\n')}\nfirst mount stderr: ${died.stderr.slice(-1500)}\nsecond mount stdout: ${stopped.exit.stdout.slice(-1500)}\nsecond mount stderr: ${stopped.exit.stderr.slice(-1500)}\nreproduce: ${repro}`,
      );
    });
  }
});
