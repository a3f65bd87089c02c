// Mounting and unmounting without libfuse: open /dev/fuse, run mount(8) with the fd inherited,
// and take the mount down with fusermount3 / umount. Root (or CAP_SYS_ADMIN) is required.
//
// Invariants:
// - We only ever touch the mountpoint we were given; other FUSE mounts on the machine are
//   never unmounted or aborted (fusectl aborts go by the connection id of *our* mount).
// - A possibly hung FUSE mountpoint is never stat()ed from this process: whether a FUSE mount
//   is dead is decided from /proc/self/mountinfo plus a bounded `stat` in a child process.
// - Every failure is a MountError with a stable code and a message that says what to do.
import { spawn } from 'node:child_process';
import { constants, existsSync, openSync, closeSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';

export type MountErrorCode =
  | 'NOT_ROOT'
  | 'NO_DEV_FUSE'
  | 'MOUNTPOINT_MISSING'
  | 'NOT_A_DIRECTORY'
  | 'NOT_EMPTY'
  | 'ALREADY_MOUNTED'
  | 'MOUNT_FAILED'
  | 'UNMOUNT_FAILED';

export class MountError extends Error {
  override readonly name = 'MountError';
  readonly code: MountErrorCode;
  constructor(code: MountErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export interface MountOptions {
  mountpoint: string;
  /** Shown as the mount's source in /proc/mounts and df. */
  fsName: string;
  /** The mount type becomes fuse.<subtype>. */
  subtype?: string;
  allowOther?: boolean;
  readOnly?: boolean;
  /** Let the kernel check permissions from the mode bits we report. */
  defaultPermissions?: boolean;
  allowNonEmpty?: boolean;
  logger?: Logger;
}

export interface MountHandle {
  /** The /dev/fuse fd; the caller owns it (the device closes it). */
  fd: number;
  /** Absolute, symlink-free path of the mountpoint. */
  mountpoint: string;
  /** The st_dev minor of the mount: its id under /sys/fs/fuse/connections. */
  connectionId: number;
}

export interface MountInfoEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  /** The minor of the mount's st_dev (for FUSE, the fusectl connection id). */
  minor: number;
}

const unescapeMountInfo = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/self/mountinfo (or the given text). */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 0 || parts.length < sep + 3) continue;
    const devid = parts[2] ?? '';
    const minor = Number(devid.split(':')[1] ?? NaN);
    out.push({ mountpoint: unescapeMountInfo(parts[4] ?? ''), fstype: parts[sep + 1] ?? '', source: unescapeMountInfo(parts[sep + 2] ?? ''), minor });
  }
  return out;
}

/** The FUSE mount at `mountpoint`, if any (the last one mounted there wins). */
export function findFuseMount(mountpoint: string, mountinfo?: string): { connectionId: number; fstype: string } | undefined {
  const text = mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
  const hit = parseMountInfo(text)
    .filter((m) => m.mountpoint === mountpoint && (m.fstype === 'fuse' || m.fstype.startsWith('fuse.') || m.fstype === 'fuseblk'))
    .pop();
  return hit ? { connectionId: hit.minor, fstype: hit.fstype } : undefined;
}

interface Exec {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

function exec(cmd: string, args: readonly string[], timeoutMs: number, extraFd?: number): Promise<Exec> {
  return new Promise((resolvePromise) => {
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'ignore', 'pipe'];
    if (extraFd !== undefined) stdio.push(extraFd);
    let child;
    try {
      child = spawn(cmd, args, { stdio });
    } catch (err) {
      resolvePromise({ code: null, stderr: String(err), timedOut: false });
      return;
    }
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolvePromise({ code: null, stderr: `${stderr}${err.message}`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stderr: stderr.trim(), timedOut });
    });
  });
}

/**
 * Whether the FUSE mount at `mountpoint` is dead (its server gone: ENOTCONN/ECONNABORTED).
 * Decided by `stat` in a child with a timeout, so a hung mount cannot block us.
 */
async function isDeadMount(mountpoint: string): Promise<boolean> {
  // --cached=never (AT_STATX_FORCE_SYNC): the kernel may still hold the root's attributes
  // after the server died, and would answer a plain stat from that cache.
  const r = await exec('stat', ['--cached=never', '-c', '%i', mountpoint], 3000);
  if (r.timedOut) return false; // a live but slow server: not ours to clean
  // ENOTCONN ("Transport endpoint is not connected") or, with FUSE_ABORT_ERROR, ECONNABORTED
  // ("Software caused connection abort").
  return r.code !== 0 && /not connected|connection abort/i.test(r.stderr);
}

/** Removes a dead FUSE mount left at `mountpoint` by a killed server. Returns true if it did. */
export async function cleanStaleMount(mountpoint: string, logger?: Logger): Promise<boolean> {
  const m = findFuseMount(mountpoint);
  if (!m) return false;
  if (!(await isDeadMount(mountpoint))) return false;
  logger?.warn({ mountpoint, fstype: m.fstype }, 'removing a stale FUSE mount left by a server that is gone');
  const r = await exec('umount', ['-l', mountpoint], 10_000);
  if (r.code !== 0) throw new MountError('ALREADY_MOUNTED', `${mountpoint} holds a dead FUSE mount that could not be removed (${r.stderr}); run: umount -l ${mountpoint}`);
  return true;
}

/** Checks everything a mount needs and throws a MountError that says what to do. */
export async function preflight(o: Pick<MountOptions, 'mountpoint' | 'allowNonEmpty' | 'logger'>): Promise<string> {
  if (process.getuid?.() !== 0) {
    throw new MountError('NOT_ROOT', 'mounting needs root or CAP_SYS_ADMIN (fusestream mounts with mount(8) and an inherited /dev/fuse fd): run it as root');
  }
  if (!existsSync('/dev/fuse')) {
    throw new MountError('NO_DEV_FUSE', '/dev/fuse does not exist: load the module (modprobe fuse), or run the container with --device /dev/fuse');
  }
  const abs = resolve(o.mountpoint);
  // A dead FUSE mount fails every stat with ENOTCONN: clean it before looking further.
  await cleanStaleMount(abs, o.logger);
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MountError('MOUNTPOINT_MISSING', `mountpoint ${abs} does not exist: create it with mkdir -p ${abs}`, { cause: err });
    throw new MountError('MOUNT_FAILED', `cannot inspect mountpoint ${abs}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new MountError('NOT_A_DIRECTORY', `mountpoint ${abs} is not a directory`);
  const real = realpathSync(abs);
  if (findFuseMount(real)) {
    throw new MountError('ALREADY_MOUNTED', `${real} is already a FUSE mount (busy); unmount it first: fusestream unmount ${real}`);
  }
  if (!o.allowNonEmpty && readdirSync(real).length > 0) {
    throw new MountError('NOT_EMPTY', `mountpoint ${real} is not empty; use an empty directory (its contents would be hidden)`);
  }
  return real;
}

export async function mount(o: MountOptions): Promise<MountHandle> {
  const mountpoint = await preflight(o);
  let fd: number;
  try {
    fd = openSync('/dev/fuse', constants.O_RDWR);
  } catch (err) {
    throw new MountError('NO_DEV_FUSE', `cannot open /dev/fuse: ${(err as Error).message}`, { cause: err });
  }
  const opts = [
    'fd=3',
    'rootmode=40000',
    `user_id=${process.getuid?.() ?? 0}`,
    `group_id=${process.getgid?.() ?? 0}`,
    'nosuid',
    'nodev',
    ...(o.allowOther ? ['allow_other'] : []),
    ...(o.defaultPermissions ? ['default_permissions'] : []),
    ...(o.readOnly ? ['ro'] : []),
  ];
  const type = `fuse.${o.subtype ?? 'fusestream'}`;
  // -i: no /sbin/mount.<type> helper; the kernel mount is made directly with our fd as fd 3.
  const r = await exec('mount', ['-i', '-t', type, '-o', opts.join(','), o.fsName, mountpoint], 15_000, fd);
  if (r.code !== 0) {
    closeSync(fd);
    throw new MountError('MOUNT_FAILED', `mount of ${mountpoint} failed: ${r.timedOut ? 'mount(8) timed out' : r.stderr || `exit ${r.code}`}`);
  }
  const m = findFuseMount(mountpoint);
  if (!m) {
    closeSync(fd);
    throw new MountError('MOUNT_FAILED', `mount(8) succeeded but ${mountpoint} is not in /proc/self/mountinfo`);
  }
  o.logger?.info({ mountpoint, type, connection: m.connectionId }, 'mounted');
  return { fd, mountpoint, connectionId: m.connectionId };
}

/**
 * Unmounts: fusermount3 -u, then umount, then (if `lazy` or both failed) umount -l. A path
 * with no FUSE mount is a no-op.
 */
export async function unmount(mountpoint: string, opts: { lazy?: boolean; logger?: Logger } = {}): Promise<void> {
  const abs = resolve(mountpoint);
  if (!findFuseMount(abs)) return;
  const errors: string[] = [];
  if (!opts.lazy) {
    for (const [cmd, args] of [
      ['fusermount3', ['-u', abs]],
      ['umount', [abs]],
    ] as const) {
      const r = await exec(cmd, args, 10_000);
      if (r.code === 0 || !findFuseMount(abs)) return;
      errors.push(`${cmd}: ${r.stderr || (r.timedOut ? 'timed out' : `exit ${r.code}`)}`);
    }
    opts.logger?.warn({ mountpoint: abs, errors }, 'unmount refused (busy?); detaching lazily');
  }
  const r = await exec('umount', ['-l', abs], 10_000);
  if (r.code === 0 || !findFuseMount(abs)) return;
  errors.push(`umount -l: ${r.stderr}`);
  throw new MountError('UNMOUNT_FAILED', `could not unmount ${abs}: ${errors.join('; ')}`);
}

/** Aborts our FUSE connection through fusectl (mounting fusectl if needed). */
export async function abortConnection(connectionId: number): Promise<void> {
  const dir = '/sys/fs/fuse/connections';
  if (!existsSync(`${dir}/${connectionId}`)) {
    await exec('mount', ['-t', 'fusectl', 'none', dir], 5000);
  }
  writeFileSync(`${dir}/${connectionId}/abort`, '1');
}
