// Mounting and unmounting without libfuse: open /dev/fuse, run mount(8) with the fd inherited,
// and take the mount down with fusermount3 / umount. Root (or CAP_SYS_ADMIN) is required.
//
// Invariants:
// - We only ever touch the mount we were asked about. Other FUSE mounts on the machine are
//   never unmounted or aborted: unmount stops as soon as the mount it found at the path (by
//   connection id) is gone, so a FUSE mount stacked underneath survives; fusectl aborts go by
//   the connection id of *our* mount.
// - A possibly hung FUSE mountpoint is never stat()ed (nor lstat/realpath/readdir) from this
//   process: /proc/self/mountinfo says whether a path is a FUSE mount, and whether such a mount
//   is alive, dead or hung is decided by a bounded `stat` in a child process.
// - Every failure is a MountError with a stable code and a message that says what to do.
import { spawn } from 'node:child_process';
import { constants, closeSync, existsSync, lstatSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';

export type MountErrorCode =
  | 'NOT_ROOT'
  | 'NO_DEV_FUSE'
  | 'MOUNTPOINT_MISSING'
  | 'NOT_A_DIRECTORY'
  | 'NOT_EMPTY'
  | 'ALREADY_MOUNTED'
  | 'MOUNT_FAILED'
  | 'UNMOUNT_FAILED'
  | 'ABORT_FAILED';

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
  /** The mount type becomes fuse.<subtype>. Default 'fusestream'. */
  subtype?: string;
  allowOther?: boolean;
  readOnly?: boolean;
  /** Let the kernel check permissions from the mode bits we report. */
  defaultPermissions?: boolean;
  allowNonEmpty?: boolean;
  /** Caps the size of one READ request (max_read=). */
  maxRead?: number;
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

const FUSECTL_DIR = '/sys/fs/fuse/connections';
const CAP_SYS_ADMIN = 21n;
const PROBE_TIMEOUT_MS = 3000;
const COMMAND_TIMEOUT_MS = 10_000;
const MOUNT_TIMEOUT_MS = 15_000;
const MAX_SYMLINKS = 40;

/** mountinfo escapes space, tab, newline and backslash as \ooo (octal). */
const unescapeMountInfo = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/**
 * Parses /proc/self/mountinfo text (proc(5)): "id parent major:minor root mountpoint options
 * [optional fields...] - fstype source superoptions". Malformed lines are skipped.
 */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-', 6);
    if (sep < 0 || parts.length < sep + 3) continue;
    const minor = Number((parts[2] ?? '').split(':')[1]);
    if (!Number.isInteger(minor)) continue;
    out.push({ mountpoint: unescapeMountInfo(parts[4] ?? ''), fstype: parts[sep + 1] ?? '', source: unescapeMountInfo(parts[sep + 2] ?? ''), minor });
  }
  return out;
}

const isFuseType = (fstype: string): boolean => fstype === 'fuse' || fstype === 'fuseblk' || fstype.startsWith('fuse.') || fstype.startsWith('fuseblk.');

const readMountInfo = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

/**
 * The FUSE mount at `mountpoint` (an absolute, symlink-free path), if any. When several are
 * stacked there, the last one listed (the visible one) wins. `mountinfo` defaults to
 * /proc/self/mountinfo; tests pass a fixture.
 */
export function findFuseMount(mountpoint: string, mountinfo?: string): { connectionId: number; fstype: string } | undefined {
  const hit = parseMountInfo(mountinfo ?? readMountInfo())
    .filter((m) => m.mountpoint === mountpoint && isFuseType(m.fstype))
    .pop();
  return hit ? { connectionId: hit.minor, fstype: hit.fstype } : undefined;
}

/**
 * Makes `path` absolute and symlink-free without touching a FUSE mount: the parent directory
 * goes through realpath, and the last component is only lstat()ed once mountinfo says it is
 * not a FUSE mount (a symlink there is followed the same way, one hop at a time).
 */
export function resolveMountpoint(path: string, mountinfo?: string): string {
  const text = mountinfo ?? readMountInfo();
  let abs = resolve(path);
  for (let hops = 0; ; hops++) {
    if (abs === '/') return abs;
    let parent: string;
    try {
      parent = realpathSync(dirname(abs));
    } catch (err) {
      // A missing parent: the mountpoint is missing too; preflight says so with this path.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return abs;
      throw new MountError('MOUNT_FAILED', `cannot resolve ${dirname(abs)}: ${(err as Error).message}`, { cause: err });
    }
    const candidate = join(parent, basename(abs));
    if (findFuseMount(candidate, text)) return candidate;
    let isLink: boolean;
    try {
      isLink = lstatSync(candidate).isSymbolicLink();
    } catch {
      return candidate; // missing or unreadable: preflight's stat reports it precisely
    }
    if (!isLink) return candidate;
    if (hops >= MAX_SYMLINKS) throw new MountError('MOUNT_FAILED', `too many levels of symbolic links resolving ${path}`);
    abs = resolve(parent, readlinkSync(candidate));
  }
}

/** The mount(8) -o string for our mount (fd=3: the /dev/fuse fd as the child sees it). */
export function mountOptionString(o: Pick<MountOptions, 'allowOther' | 'defaultPermissions' | 'readOnly' | 'maxRead'>, uid: number, gid: number): string {
  if (o.maxRead !== undefined && !(Number.isInteger(o.maxRead) && o.maxRead > 0)) {
    throw new MountError('MOUNT_FAILED', `max_read must be a positive integer, not ${o.maxRead}`);
  }
  return [
    'fd=3',
    'rootmode=40000',
    `user_id=${uid}`,
    `group_id=${gid}`,
    'nosuid',
    'nodev',
    ...(o.allowOther ? ['allow_other'] : []),
    ...(o.defaultPermissions ? ['default_permissions'] : []),
    ...(o.readOnly ? ['ro'] : []),
    ...(o.maxRead !== undefined ? [`max_read=${o.maxRead}`] : []),
  ].join(',');
}

interface Exec {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command with a deadline (SIGKILL: a caller stuck in a FUSE request is killable). */
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

const describeExec = (cmd: string, r: Exec): string => `${cmd}: ${r.timedOut ? 'timed out' : r.stderr || `exit ${r.code}`}`;

type Liveness = 'alive' | 'dead' | 'hung';

/** Whether the FUSE mount at `mountpoint` answers, is dead (server gone) or hangs. */
async function probeFuseMount(mountpoint: string): Promise<Liveness> {
  // --cached=never (AT_STATX_FORCE_SYNC): the kernel may still hold the root's attributes
  // after the server died, and would answer a plain stat from that cache.
  let r = await exec('stat', ['--cached=never', '-c', '%i', '--', mountpoint], PROBE_TIMEOUT_MS);
  if (r.code !== 0 && /unrecognized option/.test(r.stderr)) r = await exec('stat', ['-c', '%i', '--', mountpoint], PROBE_TIMEOUT_MS);
  if (r.timedOut) return 'hung';
  if (r.code === 0) return 'alive';
  // ENOTCONN ("Transport endpoint is not connected") or, with FUSE_ABORT_ERROR negotiated,
  // ECONNABORTED ("Software caused connection abort").
  return /not connected|connection abort/i.test(r.stderr) ? 'dead' : 'alive';
}

/**
 * Removes a dead FUSE mount left at `mountpoint` by a server that is gone (killed, crashed):
 * every access there fails with ENOTCONN until it is unmounted. Returns true if it removed
 * one; a live or hung mount is left alone (false).
 */
export async function cleanStaleMount(mountpoint: string, logger?: Logger): Promise<boolean> {
  const mp = resolveMountpoint(mountpoint);
  const m = findFuseMount(mp);
  if (!m) return false;
  if ((await probeFuseMount(mp)) !== 'dead') return false;
  logger?.warn({ mountpoint: mp, fstype: m.fstype, connection: m.connectionId }, 'removing a stale FUSE mount left by a server that is gone (umount -l)');
  const r = await exec('umount', ['-l', '--', mp], COMMAND_TIMEOUT_MS);
  if (r.code !== 0 && findFuseMount(mp)?.connectionId === m.connectionId) {
    throw new MountError('ALREADY_MOUNTED', `${mp} holds a dead FUSE mount that could not be removed (${describeExec('umount -l', r)}); run: umount -l ${mp}`);
  }
  return true;
}

/** Root, or a process whose effective capabilities include CAP_SYS_ADMIN. */
function canMount(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return eff !== undefined && ((BigInt(`0x${eff}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * Checks everything a mount needs and throws a MountError that says what to do. A dead FUSE
 * mount left at the mountpoint is removed (and logged). Returns the resolved mountpoint.
 */
export async function preflight(o: Pick<MountOptions, 'mountpoint' | 'allowNonEmpty' | 'logger'>): Promise<string> {
  if (!canMount()) {
    throw new MountError('NOT_ROOT', 'mounting needs root or CAP_SYS_ADMIN (fusestream mounts with mount(8) and an inherited /dev/fuse fd): run as root, or with CAP_SYS_ADMIN');
  }
  if (!existsSync('/dev/fuse')) {
    throw new MountError('NO_DEV_FUSE', '/dev/fuse does not exist: load the module (modprobe fuse), or run the container with --device /dev/fuse');
  }
  const mp = resolveMountpoint(o.mountpoint);
  // Nothing below may stat a FUSE mount: find out from mountinfo first, probe from a child.
  for (let m = findFuseMount(mp); m; m = findFuseMount(mp)) {
    const state = await probeFuseMount(mp);
    if (state === 'alive') throw new MountError('ALREADY_MOUNTED', `${mp} is already a FUSE mount (busy); unmount it first: fusestream unmount ${mp}`);
    if (state === 'hung') {
      throw new MountError('ALREADY_MOUNTED', `${mp} is already a FUSE mount, and it does not answer (its server hangs); unmount it first: fusestream unmount ${mp} (or umount -l ${mp})`);
    }
    if (!(await cleanStaleMount(mp, o.logger)) || findFuseMount(mp)?.connectionId === m.connectionId) {
      throw new MountError('ALREADY_MOUNTED', `${mp} holds a dead FUSE mount that could not be removed; run: umount -l ${mp}`);
    }
  }
  let st;
  try {
    st = statSync(mp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MountError('MOUNTPOINT_MISSING', `mountpoint ${mp} does not exist: create it with mkdir -p ${mp}`, { cause: err });
    throw new MountError('MOUNT_FAILED', `cannot inspect mountpoint ${mp}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new MountError('NOT_A_DIRECTORY', `mountpoint ${mp} is not a directory: give the path of an (empty) directory`);
  if (!o.allowNonEmpty && readdirSync(mp).length > 0) {
    throw new MountError('NOT_EMPTY', `mountpoint ${mp} is not empty; use an empty directory (its contents would be hidden), or allow a non-empty mountpoint explicitly`);
  }
  return mp;
}

/** Mounts: preflight, open /dev/fuse, mount(8) with the fd inherited as fd 3. */
export async function mount(o: MountOptions): Promise<MountHandle> {
  const subtype = o.subtype ?? 'fusestream';
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(subtype)) throw new MountError('MOUNT_FAILED', `bad subtype ${JSON.stringify(subtype)}: use letters, digits, . _ + -`);
  const opts = mountOptionString(o, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  const mountpoint = await preflight(o);
  let fd: number;
  try {
    // Blocking on purpose: the device layer decides how to read it.
    fd = openSync('/dev/fuse', constants.O_RDWR);
  } catch (err) {
    throw new MountError('NO_DEV_FUSE', `cannot open /dev/fuse: ${(err as Error).message}; run as root, or make /dev/fuse accessible (--device /dev/fuse in a container)`, { cause: err });
  }
  const type = `fuse.${subtype}`;
  // -i: no /sbin/mount.<type> helper; the kernel mount is made directly with our fd as fd 3.
  const r = await exec('mount', ['-i', '-t', type, '-o', opts, '--', o.fsName || subtype, mountpoint], MOUNT_TIMEOUT_MS, fd);
  if (r.code !== 0) {
    closeSync(fd);
    // A mount(8) that timed out may still have mounted: closing the fd made it dead; take it away.
    const left = findFuseMount(mountpoint);
    if (r.timedOut && left) await exec('umount', ['-l', '--', mountpoint], COMMAND_TIMEOUT_MS);
    throw new MountError('MOUNT_FAILED', `mount of ${mountpoint} failed: ${describeExec('mount', r)}`);
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
 * Unmounts the FUSE mount at `mountpoint`: fusermount3 -u, then umount, then umount -l (at
 * once with `lazy`). A path with no FUSE mount is a no-op: no command runs and the result is
 * false. True once the mount found there at the start is gone; only that one is taken away: a
 * FUSE mount stacked under it is left alone.
 */
export async function unmount(mountpoint: string, opts: { lazy?: boolean; logger?: Logger } = {}): Promise<boolean> {
  const mp = resolveMountpoint(mountpoint);
  const target = findFuseMount(mp);
  if (!target) return false;
  const gone = (): boolean => findFuseMount(mp)?.connectionId !== target.connectionId;
  const errors: string[] = [];
  const steps: [string, string[]][] = [
    ...(opts.lazy
      ? []
      : ([
          ['fusermount3', ['-u', '--', mp]],
          ['umount', ['--', mp]],
        ] as [string, string[]][])),
    ['umount', ['-l', '--', mp]],
  ];
  for (const [cmd, args] of steps) {
    if (args[0] === '-l' && !opts.lazy) opts.logger?.warn({ mountpoint: mp, errors }, 'unmount refused (busy?); detaching lazily');
    const r = await exec(cmd, args, COMMAND_TIMEOUT_MS);
    if (gone()) {
      opts.logger?.debug({ mountpoint: mp, connection: target.connectionId, via: `${cmd} ${args.join(' ')}` }, 'unmounted');
      return true;
    }
    errors.push(describeExec(`${cmd} ${args.slice(0, -2).join(' ')}`.trim(), r));
  }
  throw new MountError('UNMOUNT_FAILED', `could not unmount ${mp}: ${errors.join('; ')}`);
}

/**
 * Aborts FUSE connection `connectionId` through fusectl (mounting fusectl first if it is not
 * mounted): every pending and future request on it fails at once (ECONNABORTED/ENOTCONN).
 * Pass only the id of a mount you own.
 */
export async function abortConnection(connectionId: number): Promise<void> {
  if (!Number.isInteger(connectionId) || connectionId < 0) throw new MountError('ABORT_FAILED', `bad fuse connection id ${connectionId}`);
  const conn = `${FUSECTL_DIR}/${connectionId}`;
  if (!existsSync(conn) && !parseMountInfo(readMountInfo()).some((m) => m.mountpoint === FUSECTL_DIR && m.fstype === 'fusectl')) {
    const r = await exec('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR], COMMAND_TIMEOUT_MS);
    if (r.code !== 0) throw new MountError('ABORT_FAILED', `cannot mount fusectl on ${FUSECTL_DIR} to abort connection ${connectionId}: ${describeExec('mount', r)}`);
  }
  try {
    await writeFile(`${conn}/abort`, '1');
  } catch (err) {
    throw new MountError('ABORT_FAILED', `cannot abort fuse connection ${connectionId}: ${(err as Error).message}`, { cause: err });
  }
}
