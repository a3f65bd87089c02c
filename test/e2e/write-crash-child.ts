// The workload of the write crash test (write-crash.test.ts): runs the seeded plan of
// write-crash-plan.ts on a mount, one syscall at a time, and keeps a log OUTSIDE the mount
// (one JSON object a line, fsync'ed after each) of what the mount acknowledged, so the test
// can tell, after the daemon was killed, what must have survived:
//   {"ev":"init","path","sha","size"}            a file the remote held before the mount
//   {"ev":"try", "op":..., ...}                  before a close/fsync/rename/unlink/open
//   {"ev":"ack", "op":..., ...}                  after it returned success
//   {"ev":"fail","op":..., "code"}               it failed (the daemon is gone): the log ends
// close and fsync carry "path", "sha" and "size" of the whole file at that moment (the one
// open file always has the name it was opened by: the plan renames only closed files);
// rename carries "from" and "to"; unlink and open carry "path" (open also "trunc"/"create":
// it made the file empty or created it). Writes are not logged: bytes not yet closed or
// fsync'ed are no promise.
// Stdout (for the test's kill triggers): `ACK <n> <op> <path>` after each acknowledged close,
// fsync, rename or unlink; `W <total bytes written>` after each write; then `DONE`, or
// `STOPPED <code> <op>` once a syscall failed. It exits 0 either way.
// Usage: node write-crash-child.js <mnt> <logFile> <seed> [stopAfterCloses]
//   stopAfterCloses > 0: exit right after that many acknowledged closes (the test then kills
//   the daemon while it is idle or uploading).
import { createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { rampBuffer } from '../support/ramp.js';
import { crashPlan } from './write-crash-plan.js';

const [mnt = '', logFile = '', seedArg = '1', stopArg = '0'] = process.argv.slice(2);
if (!mnt || !logFile) throw new Error('usage: write-crash-child <mnt> <logFile> <seed> [stopAfterCloses]');
const plan = crashPlan(Number(seedArg));
const stopAfterCloses = Number(stopArg);
const { O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_EXCL } = constants;

const logFd = openSync(logFile, 'a');
function log(ev: Record<string, unknown>): void {
  writeSync(logFd, `${JSON.stringify(ev)}\n`);
  fsyncSync(logFd);
}
function say(line: string): void {
  writeSync(1, `${line}\n`);
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A syscall failed: the daemon is gone. Ends the run (the log says which op). */
class Stopped extends Error {
  constructor(
    readonly op: string,
    readonly code: string,
  ) {
    super(`${op}: ${code}`);
  }
}

/** The bytes of every file as this workload made them (following renames). */
const content = new Map<string, Buffer>();
let acks = 0;
let closes = 0;
let written = 0;

/** Runs a logged syscall: `try` before, `ack` after, `fail` (and Stopped) if it throws. */
function logged<T>(ev: Record<string, unknown> & { op: string }, fn: () => T): T {
  log({ ev: 'try', ...ev });
  let v: T;
  try {
    v = fn();
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? (err instanceof Error ? err.message : err));
    log({ ev: 'fail', ...ev, code });
    throw new Stopped(ev.op, code);
  }
  log({ ev: 'ack', ...ev });
  if (ev.op === 'close' || ev.op === 'fsync' || ev.op === 'rename' || ev.op === 'unlink') {
    acks++;
    say(`ACK ${acks} ${ev.op} ${String(ev.path ?? ev.from)}`);
  }
  return v;
}

function write(fd: number, data: Buffer, position: number | null, path: string): void {
  for (let done = 0; done < data.length; ) {
    let n: number;
    try {
      n = writeSync(fd, data, done, data.length - done, position === null ? null : position + done);
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? err);
      log({ ev: 'fail', op: 'write', path, code });
      throw new Stopped('write', code);
    }
    done += n;
    written += n;
    say(`W ${written}`);
  }
}

function stateOf(path: string): { path: string; sha: string; size: number } {
  const b = content.get(path) ?? Buffer.alloc(0);
  return { path, sha: sha(b), size: b.length };
}

function close(fd: number, path: string): void {
  logged({ op: 'close', ...stateOf(path) }, () => closeSync(fd));
  closes++;
  if (stopAfterCloses > 0 && closes >= stopAfterCloses) {
    say('DONE');
    process.exit(0);
  }
}

/** Opens `path` with `flags`; the model's bytes follow what the open did to the file. */
function openAs(path: string, flags: number): number {
  const exists = content.has(path);
  const trunc = (flags & O_TRUNC) !== 0;
  const fd = logged({ op: 'open', path, trunc, create: !exists && (flags & O_CREAT) !== 0 }, () => openSync(join(mnt, path), flags, 0o644));
  if (!exists || trunc) content.set(path, Buffer.alloc(0));
  return fd;
}

/** Writes a whole new version of `path` in chunks; fsync after chunk `fsyncAfter` (-1: before close). */
function saveChunks(path: string, flags: number, seed: number, chunks: number[], fsyncAfter: number | undefined): void {
  const fd = openAs(path, flags);
  let off = 0;
  chunks.forEach((n, i) => {
    const data = rampBuffer(off, n, seed);
    write(fd, data, off, path);
    content.set(path, Buffer.concat([content.get(path) ?? Buffer.alloc(0), data]));
    off += n;
    if (i === fsyncAfter) logged({ op: 'fsync', ...stateOf(path) }, () => fsyncSync(fd));
  });
  if (fsyncAfter === -1) logged({ op: 'fsync', ...stateOf(path) }, () => fsyncSync(fd));
  close(fd, path);
}

function run(): void {
  for (const f of plan.initial) {
    content.set(f.path, rampBuffer(0, f.sizeBytes, f.seed));
    log({ ev: 'init', ...stateOf(f.path) });
  }
  for (const s of plan.steps) {
    switch (s.kind) {
      case 'save':
        saveChunks(s.path, O_WRONLY | O_CREAT | O_TRUNC, s.seed, s.chunks, s.fsyncAfter);
        break;
      case 'atomic-save':
        // fsync before close, as careful editors do: "fsync'ed" is what the rename publishes.
        saveChunks(s.tmp, O_WRONLY | O_CREAT | O_EXCL, s.seed, s.chunks, -1);
        logged({ op: 'rename', from: s.tmp, to: s.path }, () => renameSync(join(mnt, s.tmp), join(mnt, s.path)));
        content.set(s.path, content.get(s.tmp) ?? Buffer.alloc(0));
        content.delete(s.tmp);
        break;
      case 'append': {
        const fd = openAs(s.path, O_WRONLY | O_APPEND | O_CREAT);
        const data = rampBuffer(0, s.sizeBytes, s.seed);
        write(fd, data, null, s.path);
        content.set(s.path, Buffer.concat([content.get(s.path) ?? Buffer.alloc(0), data]));
        close(fd, s.path);
        break;
      }
      case 'patch': {
        const fd = openAs(s.path, O_RDWR);
        const data = rampBuffer(0, s.sizeBytes, s.seed);
        write(fd, data, s.offset, s.path);
        const old = content.get(s.path) ?? Buffer.alloc(0);
        const next = Buffer.alloc(Math.max(old.length, s.offset + data.length));
        old.copy(next);
        data.copy(next, s.offset);
        content.set(s.path, next);
        close(fd, s.path);
        break;
      }
      case 'rename':
        logged({ op: 'rename', from: s.from, to: s.to }, () => renameSync(join(mnt, s.from), join(mnt, s.to)));
        content.set(s.to, content.get(s.from) ?? Buffer.alloc(0));
        content.delete(s.from);
        break;
      case 'unlink':
        logged({ op: 'unlink', path: s.path }, () => unlinkSync(join(mnt, s.path)));
        content.delete(s.path);
        break;
    }
  }
}

try {
  run();
  say('DONE');
} catch (err) {
  if (!(err instanceof Stopped)) throw err;
  say(`STOPPED ${err.code} ${err.op}`);
}
