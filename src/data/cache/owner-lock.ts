// The owner lock of a cache dir: one DataCache (one mount) at a time owns a cache dir, its cap
// and its evictions. Two owners would each believe they own the cap and evict each other's
// open files. Node has no flock(2) without native code, so the lock is a file,
// `<cacheDir>/owner.lock`, holding JSON { pid, startTicks, hostname, token }:
//
// - Taking it: the record is written to a private temp file, then link(2)ed to owner.lock.
//   link fails with EEXIST if the lock exists, and the lock never exists half-written (unlike
//   O_CREAT|O_EXCL followed by a write, where a second process could read an empty lock).
// - A lock is stale when its owner is gone: the pid does not exist (kill(pid, 0) → ESRCH),
//   is a zombie, or now belongs to another process (its start time in /proc/<pid>/stat is not
//   the recorded one: pids are reused); or when the file is not a lock record at all (a power
//   loss can leave it empty). A lock from another host (a cache dir on a network filesystem)
//   cannot be checked and counts as live.
// - Taking over a stale lock: rename(2) it to a private name, check that what was renamed is
//   still the record judged stale, delete it, and try the link again. If the renamed file is
//   not that record (a new owner took the lock between our read and our rename), it is linked
//   back and we try again (and are refused if that owner is alive).
// - Releasing (DataCache.close, last step): the lock is deleted if it still holds our token.
//
// The race that remains: while a lock we renamed by mistake is away (between our rename and
// linking it back), a third process can take the lock; linking back then fails and both that
// process and the owner we displaced believe they own the dir. It needs three processes
// starting on one cache dir within a few microseconds, one of them over a stale lock. A crash
// between our rename and our link-back leaves no lock for a live owner, until it restarts.
// A flock(2)-based lock (native code) would close both; see docs/SEMANTICS.md.
//
// Lock order: this is an inter-process lock, taken first (before the store is opened) and
// released last; no mutex is held while taking it (docs/LOCKING.md).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CacheDirBusyError, CacheIoError } from '../errors.js';

export const OWNER_LOCK_FILE = 'owner.lock';

/** How many times acquire() goes round (link, judge, take over) before it gives up. */
const MAX_ROUNDS = 8;

interface OwnerRecord {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTicks: string | undefined;
  hostname: string;
  /** Random: tells this owner's lock from any other, also one of a reused pid. */
  token: string;
}

export class OwnerLock {
  readonly dir: string;
  readonly #path: string;
  readonly #record: OwnerRecord;
  #released = false;

  private constructor(dir: string, record: OwnerRecord) {
    this.dir = dir;
    this.#path = join(dir, OWNER_LOCK_FILE);
    this.#record = record;
  }

  /** Takes the lock of `dir`, or throws CacheDirBusyError naming the live owner. */
  static async acquire(dir: string): Promise<OwnerLock> {
    const path = join(dir, OWNER_LOCK_FILE);
    const record: OwnerRecord = { pid: process.pid, startTicks: procStart(process.pid)?.startTicks, hostname: hostname(), token: randomBytes(8).toString('hex') };
    const text = JSON.stringify(record);
    const tmp = `${path}.${record.token}.tmp`;
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        try {
          await link(tmp, path);
          return new OwnerLock(dir, record);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CacheIoError(`cannot take the lock ${path}`, { cause: err });
        }
        const seen = await readFile(path, 'utf8').catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw new CacheIoError(`cannot read the lock ${path}`, { cause: err });
        });
        if (seen === undefined) continue; // released meanwhile: try again
        const owner = parseRecord(seen);
        if (owner !== undefined && isAlive(owner)) {
          const where = owner.hostname === record.hostname ? '' : ` on host ${owner.hostname}`;
          throw new CacheDirBusyError(
            dir,
            owner.pid,
            `cache dir ${dir} is in use by another fusestream mount (pid ${owner.pid}${where}); unmount it or use another cache dir`,
          );
        }
        await takeOver(path, seen, record.token);
      }
      throw new CacheIoError(`cannot take the lock ${path}: it kept changing (${MAX_ROUNDS} rounds)`);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /** Deletes the lock if it is still ours. Idempotent; never throws. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const seen = await readFile(this.#path, 'utf8').catch(() => undefined);
    if (seen === undefined || parseRecord(seen)?.token !== this.#record.token) return;
    await unlink(this.#path).catch(() => undefined);
  }
}

/** Moves a lock judged stale (`staleText`) out of the way; puts back one that changed meanwhile. */
async function takeOver(path: string, staleText: string, token: string): Promise<void> {
  const aside = `${path}.${token}.stale`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else moved it
    throw new CacheIoError(`cannot take over the stale lock ${path}`, { cause: err });
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== staleText) {
    // Not the stale lock any more: a new owner's. Give it back (see the race in the header).
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

function parseRecord(text: string): OwnerRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.pid !== 'number' || !Number.isSafeInteger(r.pid) || r.pid <= 0) return undefined;
  if (typeof r.hostname !== 'string' || typeof r.token !== 'string') return undefined;
  if (r.startTicks !== undefined && typeof r.startTicks !== 'string') return undefined;
  return { pid: r.pid, startTicks: r.startTicks, hostname: r.hostname, token: r.token };
}

/** True unless the owner is provably gone (see the header). */
function isAlive(owner: OwnerRecord): boolean {
  if (owner.hostname !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists (another user's process); look at /proc below.
  }
  if (!haveProc()) return true; // no /proc to ask: assume it is the owner
  const now = procStart(owner.pid);
  if (now === undefined) return false; // exited since kill(pid, 0)
  if (now.state === 'Z' || now.state === 'X') return false;
  return owner.startTicks === undefined || now.startTicks === owner.startTicks;
}

function haveProc(): boolean {
  return existsSync('/proc/self/stat');
}

/** State and start time of a process from /proc/<pid>/stat; undefined when unreadable. */
function procStart(pid: number): { state: string; startTicks: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19]; // field 22 of the line; fields[0] is field 3
  if (state === undefined || startTicks === undefined) return undefined;
  return { state, startTicks };
}
