// The kill -9 crash test's procedure, shared by its cases (write-crash.test.ts on a local
// directory, webdav-write-crash.test.ts on Apache mod_dav): the kill points, the workload run
// until the daemon is killed, the second mount that shows and drains what survived, and the
// judgement of both against the workload's log (write-crash-check.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Deferred, within } from '../../src/base/async.js';
import type { CliMount, CliMounts } from '../support/cli-mount.js';
import { prng } from '../support/prng.js';
import { rampBuffer } from '../support/ramp.js';
import { sh } from '../support/proc.js';
import { readTree } from '../support/tree-compare.js';
import { DIRS, crashPlan } from './write-crash-plan.js';
import { expectationFrom, show, violations, type Content } from './write-crash-check.js';

export const childScript = fileURLToPath(new URL('./write-crash-child.js', import.meta.url));
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export type Trigger =
  /** Kill as the test reads the workload's n-th acknowledgement (it runs on meanwhile). */
  | { kind: 'ack'; n: number }
  /** Kill as the test reads that the workload has written n bytes. */
  | { kind: 'bytes'; n: number }
  /** Kill `turns` event-loop turns after reading the n-th acknowledgement. */
  | { kind: 'turns'; n: number; turns: number }
  /** The workload exits after its n-th acknowledged close; kill `turns` turns after it exited. */
  | { kind: 'stop'; n: number; turns: number };

export interface Run {
  index: number;
  seed: number;
  trigger: Trigger;
  writeBackDelay: string;
}

export const describeTrigger = (t: Trigger): string =>
  t.kind === 'ack' ? `at ack ${t.n}` : t.kind === 'bytes' ? `at byte ${t.n}` : t.kind === 'turns' ? `${t.turns} turns after ack ${t.n}` : `${t.turns} turns after the workload stopped at close ${t.n}`;

/** The kill points of `runs` runs seeded from `base`, kept by `keep`. */
export function crashRuns(base: number, runs: number, keep: (r: Run) => boolean): Run[] {
  const out: Run[] = [];
  for (let index = 0; index < runs; index++) {
    const seed = base + index;
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
  return out.filter(keep);
}

/** sha256 of every file shown under `root`, read by a child process (never by this one). */
export async function shasThroughMount(root: string): Promise<Map<string, Content>> {
  const out = await sh(`cd ${root} && find . -type f -exec sha256sum {} +`, 60_000);
  const m = new Map<string, Content>();
  for (const line of out.split('\n')) {
    const hit = /^([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
    if (hit?.[1] && hit[2]) m.set(hit[2], hit[1]);
  }
  return m;
}

export function shasOfTree(root: string): Map<string, Content> {
  const m = new Map<string, Content>();
  for (const [p, b] of readTree(root)) if (b !== null) m.set(p, sha(b));
  return m;
}

/**
 * Runs the workload child on `mnt` and SIGKILLs `daemon` at `trigger`. Resolves with the
 * child's stdout once both have exited.
 */
export async function runUntilKilled(daemon: CliMount, mnt: string, log: string, seed: number, trigger: Trigger): Promise<{ stdout: string; stderr: string }> {
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
export function writeInitialRemote(remote: string, seed: number): void {
  mkdirSync(remote, { recursive: true });
  for (const d of DIRS) mkdirSync(join(remote, d));
  for (const f of crashPlan(seed).initial) writeFileSync(join(remote, f.path), rampBuffer(0, f.sizeBytes, f.seed));
}


export interface CrashRunOptions {
  mounts: CliMounts;
  /** The run's own directory (mountpoints, cache, workload log). */
  work: string;
  run: Run;
  /** What `fusestream mount` is given as the remote. */
  remoteSpec: string;
  /** The remote's tree on disk, holding writeInitialRemote's files before the first mount. */
  remoteDir: string;
  /** How to run this one again, for failure messages. */
  repro: string;
}

/**
 * One kill point: the first mount serves the workload until SIGKILL at the trigger, a second
 * mount on the same cache dir shows what survived and drains it, and both what it showed and
 * the remote's tree must keep every promise of the workload's log (see write-crash.test.ts).
 */
export async function checkCrashRun(o: CrashRunOptions): Promise<void> {
  const { mounts, work, repro } = o;
  const { seed, trigger, writeBackDelay } = o.run;
  const cache = join(work, 'cache');
  const log = join(work, 'workload.log');

  const mnt1 = mounts.mountpoint(work, 'mnt1');
  const first = await mounts.start(['mount', o.remoteSpec, mnt1, '--cache-dir', cache, '--write-back-delay', writeBackDelay, '--log-level', process.env.FUSESTREAM_MODEL_LOG_LEVEL ?? 'warn'], mnt1, 'the first mount');
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
  const second = await mounts.start(['mount', o.remoteSpec, mnt2, '--cache-dir', cache, '--write-back-delay', '0', '--drain-timeout', '30', '--log-level', 'warn'], mnt2, 'the second mount');
  const shown = await shasThroughMount(mnt2);
  const stopped = await mounts.stop(second, 'SIGTERM');
  assert.equal(stopped.exit.code, 0, `the second mount drains and exits 0; stderr: ${stopped.exit.stderr.slice(-2000)}`);
  const onRemote = shasOfTree(o.remoteDir);

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
}
