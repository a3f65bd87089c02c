// Process plumbing for the mount benches (bench/mount-bench.ts reads, bench/write-bench.ts
// writes): client commands in child process groups with a soft cap (SIGINT, so dd prints what it
// copied) and a hard timeout (SIGKILL), the FUSE daemons under test, each on its own temp
// mountpoint, stopped by PID, and the small helpers both reports share (medians, machine and
// version lines, progress lines, settings from the environment).
//
// Ownership: every client group and daemon started here is registered until it has exited and
// its mount is gone; stopEverything() ends exactly those (by PID / process group id), never
// anything found by name. The bench process itself never does file I/O on a mountpoint: it only
// reads /proc and its own temp files.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- client commands

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, as seen by the bench. */
  ms: number;
  /** The soft cap fired (SIGINT was sent to the group). */
  capped: boolean;
  /** The hard timeout fired (SIGKILL was sent to the group). */
  timedOut: boolean;
}

export interface ExecOptions {
  /** Hard limit: the whole process group is SIGKILLed. */
  timeoutMs: number;
  /** Soft limit: the process group gets SIGINT (dd then prints its statistics and exits). */
  capMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Process groups of running client commands (each command leads its own group). */
const clientGroups = new Set<number>();
/** Set by stopEverything(): nothing new is started after it. */
let closed = false;

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

/** C locale so that dd's statistics have a '.' decimal point. */
export const CLIENT_ENV: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };

export function exec(cmd: string, args: readonly string[], o: ExecOptions): Promise<ExecResult> {
  if (closed) return Promise.reject(new Error('the bench is stopping'));
  return spawnGroup(cmd, args, o);
}

function spawnGroup(cmd: string, args: readonly string[], o: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: o.env ?? CLIENT_ENV });
    const pgid = child.pid;
    if (pgid !== undefined) clientGroups.add(pgid);
    let stdout = '';
    let stderr = '';
    let capped = false;
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1_000_000) stderr += d;
    });
    const capTimer =
      o.capMs === undefined || pgid === undefined
        ? undefined
        : setTimeout(() => {
            capped = true;
            signalGroup(pgid, 'SIGINT');
          }, o.capMs);
    const killTimer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
    }, o.timeoutMs);
    const done = (): void => {
      clearTimeout(capTimer);
      clearTimeout(killTimer);
      if (pgid !== undefined) clientGroups.delete(pgid);
    };
    child.on('error', (err) => {
      done();
      reject(err);
    });
    child.on('close', (code, signal) => {
      done();
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, capped, timedOut });
    });
  });
}

/** Runs a command that must succeed; returns its stdout. */
export async function mustExec(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const r = await exec(cmd, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.timedOut ? 'timed out' : (r.code ?? r.signal)}): ${lastLines(r.stderr, 3)}`);
  return r.stdout;
}

export function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 600);
}

/** How a client command ended, for failure messages. */
export function describeExec(r: ExecResult): string {
  return `${r.timedOut ? 'timed out' : r.capped ? 'capped' : `exit ${r.code ?? r.signal}`}: ${lastLines(r.stderr, 3)}`;
}

export interface TimedRun {
  /** Wall clock (epoch seconds) just before the script started. */
  startS: number;
  /** Just after it ended: the script's own instant, or, when it was capped, when bash exited. */
  endS: number;
  /** Stopped at the cap (SIGINT to its process group). */
  capped: boolean;
  result: ExecResult;
}

/**
 * Runs `script` in bash with $EPOCHREALTIME taken just before and after it, so the spawn of bash
 * is not timed; both instants are wall clock, which other processes can compare with. The script's
 * own stdout follows a "start" line. With `capMs` the run may be capped, and then counts as
 * ending when bash exited; any other failure throws.
 */
export async function bashTimedAt(script: string, args: readonly string[], o: ExecOptions): Promise<TimedRun> {
  const full = `echo "start $EPOCHREALTIME"; ${script} || exit 3; echo "end $EPOCHREALTIME"`;
  const r = await exec('bash', ['-c', full, 'bench', ...args], o);
  const exitedS = Date.now() / 1000;
  const start = /^start ([\d.]+)$/m.exec(r.stdout);
  const end = /^end ([\d.]+)$/m.exec(r.stdout);
  if (r.code === 0 && start && end) return { startS: Number(start[1]), endS: Number(end[1]), capped: false, result: r };
  if (r.capped && !r.timedOut && start) return { startS: Number(start[1]), endS: exitedS, capped: true, result: r };
  throw new Error(`bash -c '${script}': ${describeExec(r)}`);
}

// ---------------------------------------------------------------- /proc readers

export function isMounted(mnt: string): boolean {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  return info.split('\n').some((line) => line.split(' ')[4] === mnt);
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(fields[11]) + Number(fields[12]);
}

/** Peak resident set (VmHWM) of a process, in bytes. */
export function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  if (!m?.[1]) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

// ---------------------------------------------------------------- report helpers

/** A positive number from the environment, or `dflt` when the variable is unset or empty. */
export function envNumber(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v} is not a positive number`);
  return n;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] ?? NaN) : ((s[n / 2 - 1] ?? NaN) + (s[n / 2] ?? NaN)) / 2;
}

/** Three significant digits, or whole numbers from 100 up. */
export const sig3 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

/** A timestamped progress line on stderr. */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** One line about the machine the numbers come from. */
export function machine(): string {
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  let debian = '';
  try {
    debian = `, Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}`;
  } catch {
    // not Debian
  }
  return `${cpus().length} cores (${cpuModel}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${release()}${debian}, Node ${process.version}`;
}

/** First line of a command's stdout, or 'not available'. */
export function firstLine(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0] ?? '?';
  } catch {
    return 'not available';
  }
}

/** The installed version of a Debian package, or '?'. */
export function dpkgVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '?';
  }
}

/** Short commit of a checkout, noting uncommitted changes under src/. */
export function gitCommit(repoRoot: string): string {
  try {
    let commit = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim();
    if (dirty !== '') commit += ' + uncommitted changes under src/';
    return commit;
  } catch {
    return '? (not a git checkout)';
  }
}

// ---------------------------------------------------------------- daemons under test

export type MountToolId = 'fusestream' | 'rclone-off' | 'rclone-full' | 'httpdirfs' | 'httpdirfs-cache';

/** A daemon the benches can start: `Id` is the read bench's MountToolId unless given. */
export interface MountTool<Id extends string = MountToolId> {
  id: Id;
  label: string;
  /** Keeps data on disk across remounts (the "re-read after remount" figure applies). */
  diskCache: boolean;
  /** `remote` is a URL for the read bench's tools and a local directory for the write bench's. */
  command(remote: string, mnt: string, cacheDir: string, workDir: string): { cmd: string; args: string[] };
}

const fusestreamBin = new URL('../../bin/fusestream.js', import.meta.url).pathname;

export const MOUNT_TOOLS: readonly MountTool[] = [
  {
    id: 'fusestream',
    label: 'fusestream',
    diskCache: true,
    command: (url, mnt, cacheDir) => ({ cmd: process.execPath, args: [fusestreamBin, 'mount', url, mnt, '--cache-dir', cacheDir, '--log-level', 'warn'] }),
  },
  ...(['off', 'full'] as const).map(
    (mode): MountTool => ({
      id: `rclone-${mode}`,
      label: `rclone vfs ${mode}`,
      diskCache: mode === 'full',
      command: (url, mnt, cacheDir, workDir) => ({
        cmd: 'rclone',
        args: ['mount', ':http:', mnt, '--http-url', url, '--read-only', '--vfs-cache-mode', mode, '--cache-dir', cacheDir, '--config', join(workDir, 'rclone.conf'), '--log-level', 'NOTICE'],
      }),
    }),
  ),
  {
    id: 'httpdirfs',
    label: 'httpdirfs',
    diskCache: false,
    command: (url, mnt) => ({ cmd: 'httpdirfs', args: ['-f', '--no-range-check', url, mnt] }),
  },
  {
    id: 'httpdirfs-cache',
    label: 'httpdirfs --cache',
    diskCache: true,
    command: (url, mnt, cacheDir) => ({ cmd: 'httpdirfs', args: ['-f', '--no-range-check', '--cache', '--cache-location', cacheDir, url, mnt] }),
  },
];

// The write bench's tools: each mounts a local directory read-write and uploads a closed file
// `writeBackS` seconds after its last change.
export type WriteToolId = 'fusestream' | 'rclone-writes';

export function writeMountTools(writeBackS: number): readonly MountTool<WriteToolId>[] {
  return [
    {
      id: 'fusestream',
      label: 'fusestream',
      diskCache: true,
      command: (dir, mnt, cacheDir) => ({
        cmd: process.execPath,
        args: [fusestreamBin, 'mount', dir, mnt, '--cache-dir', cacheDir, '--write-back-delay', String(writeBackS), '--drain-timeout', '600', '--log-level', 'warn'],
      }),
    },
    {
      id: 'rclone-writes',
      label: 'rclone vfs writes',
      diskCache: true,
      command: (dir, mnt, cacheDir, workDir) => ({
        cmd: 'rclone',
        args: ['mount', dir, mnt, '--vfs-cache-mode', 'writes', '--vfs-write-back', `${writeBackS}s`, '--cache-dir', cacheDir, '--config', join(workDir, 'rclone.conf'), '--log-level', 'NOTICE'],
      }),
    },
  ];
}

export interface Daemon<Id extends string = MountToolId> {
  tool: MountTool<Id>;
  pid: number;
  mnt: string;
  /** The daemon's stdout and stderr. */
  logPath: string;
  alive(): boolean;
  /** Last lines of the daemon's log, for failure reports. */
  logTail(): string;
  /** SIGTERM, then SIGKILL; then unmounts if the mount is still there, and removes the mountpoint. */
  stop(): Promise<void>;
}

const daemons = new Set<Daemon<string>>();

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function unmountIfMounted(mnt: string): Promise<void> {
  for (const [cmd, args] of [
    ['fusermount3', ['-u', mnt]],
    ['fusermount3', ['-u', '-z', mnt]],
    ['umount', ['-l', mnt]],
  ] as const) {
    if (!isMounted(mnt)) return;
    // spawnGroup, not exec: unmounting must work while stopping.
    await spawnGroup(cmd, args, { timeoutMs: 15_000 }).catch(() => undefined);
  }
}

/** Starts `tool` on a fresh temp mountpoint and resolves once the mount is in mountinfo. */
export async function startDaemon<Id extends string>(tool: MountTool<Id>, remote: string, cacheDir: string, workDir: string, timeoutMs = 30_000): Promise<Daemon<Id>> {
  if (closed) throw new Error('the bench is stopping');
  const mnt = mkdtempSync(join(tmpdir(), 'fusestream-bench-mnt-'));
  const logPath = join(workDir, `${tool.id}-${Date.now()}.log`);
  const { cmd, args } = tool.command(remote, mnt, cacheDir, workDir);
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], env: process.env });
  } finally {
    closeSync(logFd);
  }
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let stopping: Promise<void> | undefined;
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const logTail = (): string => {
    try {
      // Without backtrace frames ("/lib/…so(+0x…)[0x…]"): the lines before them say what went wrong.
      const lines = readFileSync(logPath, 'utf8')
        .split('\n')
        .filter((l) => !/\(\+0x[0-9a-f]+\)\s*\[0x[0-9a-f]+\]/.test(l));
      return lastLines(lines.join('\n'), 4);
    } catch {
      return '';
    }
  };
  const daemon: Daemon<Id> = {
    tool,
    pid: child.pid ?? -1,
    mnt,
    logPath,
    alive,
    logTail,
    stop: () =>
      (stopping ??= (async () => {
        if (alive()) {
          child.kill('SIGTERM');
          if (!(await waitExit(child, 20_000))) {
            child.kill('SIGKILL');
            await waitExit(child, 10_000);
          }
        }
        await unmountIfMounted(mnt);
        if (!isMounted(mnt)) {
          try {
            rmdirSync(mnt);
          } catch {
            // left behind: not empty or busy; never removed recursively (it was a mountpoint)
          }
        }
        daemons.delete(daemon);
      })()),
  };
  daemons.add(daemon);
  try {
    const t0 = performance.now();
    for (;;) {
      if (isMounted(mnt)) break;
      if (!alive()) throw new Error(`${tool.label} exited (${child.exitCode ?? child.signalCode}) before mounting: ${logTail()}`);
      const err = await Promise.race([spawnError, sleep(25).then(() => undefined)]);
      if (err !== undefined) throw new Error(`${tool.label} could not be started: ${err.message}`);
      if (performance.now() - t0 > timeoutMs) throw new Error(`${tool.label} did not mount within ${timeoutMs / 1000} s: ${logTail()}`);
    }
    return daemon;
  } catch (err) {
    await daemon.stop();
    throw err;
  }
}

/** Ends every client command and daemon this module started (by process group id / PID). */
export async function stopEverything(): Promise<void> {
  closed = true;
  for (const pgid of clientGroups) signalGroup(pgid, 'SIGKILL');
  clientGroups.clear();
  await Promise.all([...daemons].map((d) => d.stop()));
}

/**
 * Runs a bench's `main`: on SIGINT/SIGTERM/SIGHUP, on failure and at the end, `cleanup` stops
 * every client and daemon the bench started (a failure sets exit code 1, a signal exits 130).
 */
export async function runBench(name: string, main: () => Promise<void>, cleanup: () => Promise<void>, progress: (msg: string) => void): Promise<void> {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      progress(`${sig}: stopping every client and daemon this bench started`);
      void cleanup()
        .catch(() => undefined)
        .finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (err) {
    process.stderr.write(`${name} bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
