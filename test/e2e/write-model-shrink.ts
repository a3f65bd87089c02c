// Shrinks a failing write-model sequence to a short one that still fails (delta debugging over
// a trace recorded by write-model-child.ts), for bug reports and regression tests. Each try
// is a fresh run as in write-model.test.ts: a new remote with the initial tree of the seed, a
// `fusestream mount` CLI child, the client child replaying the candidate ops, then SIGTERM
// (drain) and the remote compared with the model. Not a test: a tool, run by hand.
// Usage: node dist/test/e2e/write-model-shrink.js <trace> <seed> [--match REGEX] [--confirm N]
//          [--memfs] [-- mount options...]
//   --memfs: shrink against `fusestream memfs` (the core over an in-memory remote, empty at
//   start; checked through the mount only) instead of a mount of a local directory.
//   A candidate "fails" when the client reports a MISMATCH (or dies) or the remote differs from
//   the model after the unmount, and (with --match) the failure text matches REGEX, in each of
//   N runs in a row (default 1; more for timing-dependent failures). The result is run 5 more
//   times and the report says how often it failed.
// Prints the shrunk sequence (one op a line, as the client describes it) and writes its trace
// to <trace>.min (replay it with write-model-child.js).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliMounts } from '../support/cli-mount.js';
import { run } from '../support/proc.js';
import { readTree, treeDifferences } from '../support/tree-compare.js';
import { writeInitialTree } from './write-model-tree.js';

const child = fileURLToPath(new URL('./write-model-child.js', import.meta.url));
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash >= 0 ? argv.slice(0, dash) : argv;
// A short drain: a change that cannot be uploaded fails the try in seconds, not a minute.
const mountOptions = ['--drain-timeout', '5', ...(dash >= 0 ? argv.slice(dash + 1) : ['--write-back-delay', '0'])];
const [traceFile, seedArg] = own;
const matchAt = own.indexOf('--match');
const match = matchAt >= 0 ? new RegExp(own[matchAt + 1] ?? '') : undefined;
/** `fusestream memfs` (the core over an in-memory remote, starting empty) instead of mount. */
const memfs = own.includes('--memfs');
const confirmAt = own.indexOf('--confirm');
/** A candidate counts as failing only if this many runs in a row fail (timing-dependent bugs). */
const confirm = confirmAt >= 0 ? Number(own[confirmAt + 1]) : 1;
if (!traceFile || !seedArg) throw new Error('usage: write-model-shrink <trace> <seed> [--match REGEX] [-- mount options...]');
const seed = Number(seedArg);
const lines = readFileSync(traceFile, 'utf8').trim().split('\n').filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'fusestream-shrink-'));
let tries = 0;
/** The client's OP lines of the last failing run. */
let lastFailingOps = '';

/** Runs `ops` `confirm` times; the failure text if every run failed, else undefined. */
async function failure(ops: string[]): Promise<string | undefined> {
  let text: string | undefined;
  for (let i = 0; i < confirm; i++) {
    text = await failureOnce(ops);
    if (text === undefined) return undefined;
  }
  return text;
}

/** Runs `ops` (trace lines) once; the failure text, or undefined when the run passes. */
async function failureOnce(ops: string[]): Promise<string | undefined> {
  const work = join(dir, `try${++tries}`);
  const remote = join(work, 'remote');
  const init = join(work, 'init');
  const expect = join(work, 'expect');
  for (const d of [remote, init, expect]) mkdirSync(d, { recursive: true });
  if (!memfs) {
    writeInitialTree(init, seed);
    cpSync(init, remote, { recursive: true });
  }
  const replay = join(work, 'replay');
  writeFileSync(replay, `${ops.join('\n')}\n`);
  const mounts = new CliMounts();
  try {
    const mnt = mounts.mountpoint(work, 'mnt');
    const command = memfs ? ['memfs', mnt] : ['mount', remote, mnt, '--cache-dir', join(work, 'cache'), ...mountOptions];
    const m = await mounts.start([...command, '--log-level', 'warn'], mnt, 'the mount');
    const r = await run(process.execPath, [child, mnt, String(seed), '0', expect, memfs ? '-' : init, '1', '-', replay], 120_000);
    const { exit } = await mounts.stop(m, 'SIGTERM');
    const mismatch = r.stdout.split('\n').find((l) => l.startsWith('MISMATCH'));
    let text: string | undefined;
    if (mismatch) text = mismatch;
    else if (r.code !== 0) text = `client exited ${r.code ?? r.signal}: ${r.stderr.slice(-500)}`;
    else if (exit.code !== 0) text = `mount exited ${exit.code ?? exit.signal}: ${exit.stderr.slice(-500)}`;
    else if (!memfs) {
      const diff = treeDifferences(readTree(remote), readTree(expect));
      if (diff.length > 0) text = `remote after unmount: ${diff.join('; ')}`;
    }
    if (text === undefined || (match && !match.test(text))) return undefined;
    lastFailingOps = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('OP ') || l.startsWith('MISMATCH'))
      .join('\n');
    return text;
  } finally {
    await mounts.dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

/** ddmin: removes chunks of ops while the run still fails. */
async function shrink(ops: string[]): Promise<{ ops: string[]; text: string }> {
  let text = await failure(ops);
  if (text === undefined) throw new Error('the full trace does not fail: nothing to shrink');
  let n = 2;
  while (ops.length >= 2) {
    const size = Math.ceil(ops.length / n);
    let reduced = false;
    for (let start = 0; start < ops.length; start += size) {
      const candidate = [...ops.slice(0, start), ...ops.slice(start + size)];
      const t = await failure(candidate);
      if (t !== undefined) {
        ops = candidate;
        text = t;
        n = Math.max(n - 1, 2);
        reduced = true;
        process.stderr.write(`${ops.length} ops still fail (${tries} tries)\n`);
        break;
      }
    }
    if (!reduced) {
      if (size === 1) break;
      n = Math.min(ops.length, n * 2);
    }
  }
  return { ops, text };
}

try {
  const { ops, text } = await shrink(lines);
  const described = lastFailingOps;
  writeFileSync(`${traceFile}.min`, `${ops.join('\n')}\n`);
  let again = 0;
  for (let i = 0; i < 5; i++) if ((await failureOnce(ops)) !== undefined) again++;
  lastFailingOps = described;
  process.stdout.write(`${ops.length} ops (from ${lines.length}, ${tries} tries), seed ${seed}, mount options ${mountOptions.join(' ')}; fails again in ${again} of 5 runs:\n${lastFailingOps}\nfailure: ${text}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
