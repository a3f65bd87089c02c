// `fusestream mount … --daemon`: the mount runs in a detached child (its own session, stdin
// closed, stdout and stderr appended to a log file) and the command returns only once the
// mount is ready, with an exit status that says whether it mounted. systemd's Type=forking,
// mount(8) helpers and scripts rely on exactly that.
//
// The readiness channel is a pipe on fd 3 of the child (FUSESTREAM_READY_FD=3): the child
// writes one JSON line, {"ready": "<the mounted line>"} once the kernel mount and the control
// socket are up, or {"error": "<message>", "code": n} when it gives up (the exit status it
// takes), and closes it. The parent:
// - relays the line: the ready text (plus the daemon's pid and log file) and exit 0, or the
//   message and the child's code;
// - a child that exits (or closes fd 3) without a line failed: the parent says so with the
//   last lines of the log and exits 1;
// - a child that does not answer within the bound is stopped (SIGTERM: it unmounts if it got
//   that far) and the parent exits 1.
// Invariants: the parent never leaves a child it gave up on running; the child writes the
// line synchronously (fail() exits right after), and a parent already gone is ignored (EPIPE;
// node ignores SIGPIPE). The variable is removed from the child's environment once read, so
// nothing it starts inherits it.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { Deferred, within } from '../base/async.js';

export const READY_FD_ENV = 'FUSESTREAM_READY_FD';
const READY_FD = 3;
/** How much of the log a failed start shows. */
const LOG_TAIL_BYTES = 2000;

/**
 * The log file of a daemon mount when --log-file is not given: /var/log/fusestream/ for root,
 * else $XDG_STATE_HOME/fusestream/ (~/.local/state/fusestream/), named after the mountpoint
 * the way systemd names units (/mnt/my data → mnt-my\x20data.log).
 */
export function defaultLogFile(mountpoint: string): string {
  const dir = (process.getuid?.() ?? 0) === 0 ? '/var/log/fusestream' : join(process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state'), 'fusestream');
  const name = resolve(mountpoint).replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9_./-]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).replace(/\//g, '-');
  return join(dir, `${name || 'root'}.log`);
}

export const DEFAULT_LOG_FILE_HELP = '/var/log/fusestream/<mountpoint>.log for root, else $XDG_STATE_HOME/fusestream/<mountpoint>.log (~/.local/state/…)';

/** The child's side: how it tells the parent that it mounted, or why not. */
export interface ReadyChannel {
  ready(text: string): void;
  failed(message: string, code: number): void;
}

let channel: ReadyChannel | undefined | null = null;

/** The readiness channel of a daemon child (undefined when this process is not one). */
export function readyChannel(): ReadyChannel | undefined {
  if (channel !== null) return channel;
  const fd = process.env[READY_FD_ENV];
  delete process.env[READY_FD_ENV];
  if (fd !== String(READY_FD)) return (channel = undefined);
  let open = true;
  const send = (msg: object): void => {
    if (!open) return;
    open = false;
    try {
      writeSync(READY_FD, `${JSON.stringify(msg)}\n`);
    } catch {
      // The parent is gone (EPIPE) or gave up: nobody to tell.
    }
    try {
      closeSync(READY_FD);
    } catch {
      // already closed
    }
  };
  channel = { ready: (text) => send({ ready: text }), failed: (message, code) => send({ error: message, code }) };
  return channel;
}

export interface DaemonOptions {
  /** The node arguments that run the CLI (script first) with the mount's arguments, without --daemon. */
  args: string[];
  logFile: string;
  /** How long the mount may take to become ready. */
  readyMs: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

type Outcome = { ready: string } | { error: string; code: number } | { exited: string };

/** The parent's side: starts the daemon and waits for its verdict; the exit status. */
export async function runDaemon(o: DaemonOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  mkdirSync(dirname(o.logFile), { recursive: true, mode: 0o700 });
  const logFd = openSync(o.logFile, 'a', 0o600);
  const logStart = fstatSync(logFd).size;
  const env = { ...process.env, [READY_FD_ENV]: String(READY_FD) };
  let child;
  try {
    child = spawn(process.execPath, [...process.execArgv, ...o.args], { detached: true, stdio: ['ignore', logFd, logFd, 'pipe'], env });
  } finally {
    closeSync(logFd);
  }
  const pipe = child.stdio[READY_FD] as Readable;
  const outcome = new Deferred<Outcome>();
  let buf = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (c: string) => {
    buf += c;
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    try {
      const msg = JSON.parse(buf.slice(0, nl)) as { ready?: string; error?: string; code?: number };
      if (msg.ready !== undefined) outcome.resolve({ ready: msg.ready });
      else outcome.resolve({ error: msg.error ?? 'unknown error', code: typeof msg.code === 'number' ? msg.code : 1 });
    } catch {
      outcome.resolve({ exited: `it sent a garbled readiness line: ${buf.slice(0, 200)}` });
    }
  });
  pipe.on('error', () => undefined);
  const exited = new Promise<string>((res) => child.once('exit', (code, signal) => res(signal !== null ? `it was killed by ${signal}` : `it exited with status ${code ?? '?'}`)));
  void exited.then((why) => outcome.resolve({ exited: why }));
  child.once('error', (e) => outcome.resolve({ exited: `it could not be started: ${e.message}` }));

  let result: Outcome;
  try {
    result = await within(outcome.promise, o.readyMs, 'the daemon to report');
  } catch {
    child.kill('SIGTERM');
    err.write(`fusestream: the daemon (pid ${child.pid ?? '?'}) did not report a mount within ${Math.round(o.readyMs / 1000)} s; it was stopped. Its log: ${o.logFile}\n${logTail(o.logFile, logStart)}`);
    pipe.destroy();
    return 1;
  }
  pipe.destroy();
  if ('ready' in result) {
    child.unref();
    out.write(`${result.ready}; daemon pid ${child.pid ?? '?'}, log ${o.logFile}\n`);
    return 0;
  }
  // It failed: wait (bounded) for it to be gone, so a failed start leaves nothing behind.
  await within(exited, 30_000, 'the failed daemon to exit').catch(() => child.kill('SIGKILL'));
  if ('error' in result) {
    err.write(`fusestream: ${result.error}\n`);
    return result.code;
  }
  err.write(`fusestream: the daemon stopped before the mount was ready (${result.exited}). Its log: ${o.logFile}\n${logTail(o.logFile, logStart)}`);
  return 1;
}

/** What the daemon wrote to its log since `from` (the last LOG_TAIL_BYTES), indented. */
function logTail(path: string, from: number): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(from, size - LOG_TAIL_BYTES);
      const b = Buffer.alloc(size - start);
      readSync(fd, b, 0, b.length, start);
      const text = b.toString('utf8').trimEnd();
      return text === '' ? '' : `${text.split('\n').map((l) => `  | ${l}`).join('\n')}\n`;
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}
