// LocalRemote: a directory on this machine as a read-write Remote. Useful on its own and as the
// reference backend in tests.
//
// Invariants:
// - No path leaves the root: '..' and '.' segments are refused by splitPath, the joined path
//   must stay under the root, and every intermediate directory is resolved with realpath and
//   must stay under the real root (a symlinked directory cannot lead outside). The final
//   component is never followed: stat/list use lstat, and reads open with O_NOFOLLOW.
// - No check-then-use race: a directory swapped for a symlink between that check and the use
//   cannot lead outside either. Every use goes through an fd whose real path is verified after
//   opening it (/proc/self/fd/N): files are read through their verified fd, directories are
//   listed and their entries lstat'ed through `/proc/self/fd/N/...` (resolved relative to the
//   verified directory, like openat).
// - Symlinks are reported as type 'symlink' and are not readable through read().
// - Fingerprints are size + mtimeMs (no ETag). A read re-checks them when it opens the file and
//   fails with 'changed' if the file is not the version the caller expects or if it shrinks
//   while being read.
// - read() holds no fd until its body is iterated, and the iterator closes it on every exit,
//   so a body nobody consumes leaks nothing.
// - Names in listings pass validateName; names that are not valid UTF-8 are refused (they
//   could not be looked up again by the decoded string). Refused names are logged and skipped.
//
// Writes keep the same rule: every write names its target relative to a verified directory fd
// (`/proc/self/fd/N/name`, like the *at() calls), so a directory swapped for a symlink after the
// check cannot make a write land outside the root. And:
// - put never shows a partial file: the bytes go to a temp file in the target's directory
//   (`.fusestream-tmp-<pid>-<random>`, a name listings hide and paths may not use), which is
//   fdatasync'ed, then renamed over the target (or, create-only, hard-linked to it: link fails
//   atomically with EEXIST), then the directory is fsync'ed. Only then does put resolve. A crash
//   at any point leaves the old file or the new one, whole, plus at worst a temp file.
// - Temp files of dead writers are removed by `cleanupTemp` (exposed, recursive) and, for one
//   directory, before the first put into it by this instance and when rmdir finds only them.
//   A temp is stale when its writer's pid is not alive (or is ours and no put of ours owns it);
//   removing a live writer's temp by mistake can only fail that put, never lose data a put
//   resolved for.
// - A replaced file keeps its permission bits. A new version never has the fingerprint of the
//   one it replaces: if size and mtime would be equal (a coarse clock, or mtimeMs asked for),
//   its mtime is moved 1 ms later, so a reader holding the old fingerprint sees 'changed'.
// - What is not atomic here (ifMatch, noReplace for directories) is a check just before the
//   step; docs/SEMANTICS.md says what a concurrent writer can lose in that window.
// - Every write resolves only after an fsync of what it changed (the file, then the directory),
//   except a symlink's mtime (a symlink cannot be opened to fsync).
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp, type Dirent, type Stats } from 'node:fs';
import { resolve as resolvePath, sep } from 'node:path';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import type {
  ContentSource,
  DeleteOptions,
  EntryType,
  Fingerprint,
  PutOptions,
  ReadRangeOptions,
  Remote,
  RemoteCapabilities,
  RemoteEntry,
  RemoteReadStream,
  RemoteStat,
  RenameOptions,
  WriteOptions,
} from '../remote.js';
import { fingerprintChange, sameVersion } from '../fingerprint.js';
import { RemoteError, isRemoteError, abortError, type RemoteErrorKind } from '../remote-error.js';
import { isRefused, splitPath, validateName } from '../names.js';
import { tempWriterGone } from '../temp-names.js';

export interface LocalRemoteOptions {
  root: string;
  logger?: Logger;
  /** Bytes per chunk yielded by read bodies. Default 256 KiB. */
  chunkBytes?: number;
  /** Parallel lstat calls while listing. Default 16. */
  statConcurrency?: number;
  /**
   * Test hooks: `afterResolve` runs between the path check and its use (a race window);
   * `beforeCommit` runs in put once the temp file is complete and durable, just before the
   * ifMatch re-check and the rename (or link) that makes it visible.
   */
  hooks?: { afterResolve?(what: string): Promise<void>; beforeCommit?(what: string): Promise<void> };
}

/** Names of put's temp files. Listings hide them; no path may use them. */
export const TEMP_PREFIX = '.fusestream-tmp-';

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** Temp names this process is writing right now (every LocalRemote instance: they share the pid). */
const inFlightTemps = new Set<string>();

/** Directories cleaned of stale temps, per instance; bounded (cleaning again is only work). */
const CLEANED_DIRS_MAX = 4096;

export class LocalRemote implements Remote {
  readonly id: string;
  readonly capabilities: RemoteCapabilities = {
    writable: true,
    ranges: true,
    exactListing: true,
    atomicRename: true,
    // Atomic for files and symlinks (link + unlink); a directory is checked then renamed.
    renameNoReplace: false,
    // ifNoneMatch is atomic (link); ifMatch is a check just before the rename.
    conditionalPut: false,
    symlinks: true,
    mtimes: true,
    modes: false,
  };
  readonly #root: string;
  readonly #logger: Logger;
  readonly #chunkBytes: number;
  readonly #statConcurrency: number;
  #realRoot: Promise<string> | undefined;
  readonly #hooks: NonNullable<LocalRemoteOptions['hooks']>;
  readonly #cleanedDirs = new Set<string>();

  constructor(options: LocalRemoteOptions) {
    this.#root = resolvePath(options.root);
    this.id = `file://${this.#root}/`;
    this.#logger = (options.logger ?? silentLogger()).child({ remote: this.id });
    this.#chunkBytes = options.chunkBytes ?? 256 * 1024;
    this.#statConcurrency = options.statConcurrency ?? 16;
    this.#hooks = options.hooks ?? {};
  }

  async stat(path: string, signal: AbortSignal): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `stat /${segs.join('/')}`;
    checkAborted(signal, what);
    refuseTemp(segs, what);
    const st = await this.#inParent(segs, what, (at) => fsp.lstat(at));
    const type = entryType(st);
    if (type === undefined) throw new RemoteError('unsupported', `${what}: not a file, directory or symlink`);
    return { name: segs[segs.length - 1] ?? '', type, size: type === 'dir' ? 0 : st.size, mtimeMs: st.mtimeMs };
  }

  async readlink(path: string, signal: AbortSignal): Promise<string> {
    const segs = splitPath(path);
    const what = `readlink /${segs.join('/')}`;
    checkAborted(signal, what);
    refuseTemp(segs, what);
    // Through the parent only: the link itself is read, never followed.
    if (segs.length === 0) throw new RemoteError('invalid', `${what}: the root is not a symlink`, { retryable: false });
    return this.#inParent(segs, what, (at) => fsp.readlink(at));
  }

  async list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const segs = splitPath(path);
    const what = `list /${segs.join('/')}`;
    checkAborted(signal, what);
    refuseTemp(segs, what);
    const abs = await this.#resolve(segs, what);
    // O_NOFOLLOW|O_DIRECTORY: a symlink (to elsewhere) or a file is never listed.
    const dir = await this.#openVerified(abs, fsc.O_RDONLY | fsc.O_DIRECTORY, what);
    try {
      const at = `/proc/self/fd/${dir.fd}`;
      const dirents = await wrapFs(() => fsp.readdir(at, { withFileTypes: true, encoding: 'buffer' }), what);
      const out: (RemoteEntry | undefined)[] = new Array<RemoteEntry | undefined>(dirents.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < dirents.length) {
          const i = next++;
          checkAborted(signal, what);
          out[i] = await this.#entryOf(at, dirents[i] as Dirent<Buffer>, segs);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#statConcurrency, dirents.length) }, worker));
      return out.filter((e): e is RemoteEntry => e !== undefined);
    } finally {
      await dir.close();
    }
  }

  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    const segs = splitPath(path);
    const what = `read /${segs.join('/')} [${offset}, +${length})`;
    if (segs.length === 0) throw new RemoteError('invalid', `${what}: the root is a directory`);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
      throw new RemoteError('invalid', `${what}: bad range`);
    }
    const { signal, expect } = options;
    checkAborted(signal, what);
    refuseTemp(segs, what);
    const abs = await this.#resolve(segs, what);
    const st = await this.#inParent(segs, what, (at) => fsp.lstat(at));
    if (st.isSymbolicLink()) throw new RemoteError('invalid', `${what}: is a symlink`, { retryable: false });
    if (!st.isFile()) throw new RemoteError('invalid', `${what}: not a regular file`, { retryable: false });
    const fingerprint: Fingerprint = { size: st.size, mtimeMs: st.mtimeMs };
    if (expect !== undefined && !sameVersion(expect, fingerprint)) {
      throw new RemoteError('changed', `${what}: file is size ${st.size} mtime ${st.mtimeMs}, expected ${expect.size} ${expect.mtimeMs ?? '?'}`);
    }
    if (offset > st.size) throw new RemoteError('invalid', `${what}: offset past EOF (${st.size})`);
    const end = Math.min(offset + length, st.size);
    return { fingerprint, body: this.#body(abs, offset, end, fingerprint, signal, what) };
  }

  async put(path: string, source: ContentSource, options: PutOptions): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `put /${segs.join('/')}`;
    const { signal, ifMatch, ifNoneMatch, mtimeMs } = options;
    checkAborted(signal, what);
    refuseTempCreate(segs, what);
    if (!Number.isSafeInteger(source.sizeBytes) || source.sizeBytes < 0) throw new RemoteError('invalid', `${what}: bad source size ${source.sizeBytes}`, { retryable: false });
    if (mtimeMs !== undefined && !Number.isFinite(mtimeMs)) throw new RemoteError('invalid', `${what}: bad mtime ${mtimeMs}`, { retryable: false });
    const parent = await this.#openParent(segs, what);
    try {
      await this.#cleanDirOnce(parent.dir, segs.slice(0, -1).join('/'), what);
      // Early answers, before any byte moves (the same checks run again just before the commit).
      const old = await lstatOrUndefined(parent.at, what);
      if (ifNoneMatch === true && old !== undefined) throw new RemoteError('exists', `${what}: already exists`);
      if (ifMatch !== undefined) checkMatch(old, ifMatch, what);
      if (old?.isDirectory() === true) throw new RemoteError('invalid', `${what}: is a directory`, { retryable: false });

      const tempName = `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`;
      const tempAt = `/proc/self/fd/${parent.dir.fd}/${tempName}`;
      inFlightTemps.add(tempName);
      let visible = false;
      try {
        const fh = await wrapFs(() => fsp.open(tempAt, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o666), what);
        let st: Stats;
        try {
          if (old?.isFile() === true) await wrapFs(() => fh.chmod(old.mode & 0o7777), what);
          await writeSource(fh, source, signal, what);
          st = await wrapFs(() => fh.stat(), what);
          let setMtimeMs = mtimeMs;
          // A new version must not look like the old one (a coarse clock, or an mtime asked for).
          if (old?.isFile() === true && sameVersion(fingerprintOf(old), { size: st.size, mtimeMs: setMtimeMs ?? st.mtimeMs })) {
            setMtimeMs = old.mtimeMs + 1;
          }
          if (setMtimeMs !== undefined) {
            const t = setMtimeMs / 1000;
            await wrapFs(() => fh.utimes(t, t), what);
            await wrapFs(() => fh.sync(), what);
            st = await wrapFs(() => fh.stat(), what);
          } else {
            await wrapFs(() => fh.datasync(), what);
          }
          await this.#hooks.beforeCommit?.(what);
          // The last moment an abort or a lost condition can stop the put.
          checkAborted(signal, what);
          const now = await lstatOrUndefined(parent.at, what);
          if (ifMatch !== undefined) checkMatch(now, ifMatch, what);
          if (now?.isDirectory() === true) throw new RemoteError('invalid', `${what}: is a directory`, { retryable: false });
          if (ifNoneMatch === true) {
            // link() fails with EEXIST if anything took the name meanwhile: atomic create-only.
            await wrapFs(() => fsp.link(tempAt, parent.at), what);
            visible = true;
          } else {
            await wrapFs(() => fsp.rename(tempAt, parent.at), what);
            visible = true;
          }
        } finally {
          await fh.close().catch((err: unknown) => this.#logger.warn({ err, what }, 'closing a put temp file failed'));
        }
        // Not acknowledged until the directory entry is durable too.
        await wrapFs(() => parent.dir.sync(), what);
        return { name: parent.name, type: 'file', size: st.size, mtimeMs: st.mtimeMs };
      } finally {
        // After a rename the temp name is gone; after a link (or a failure) it is removed here.
        if (!visible || ifNoneMatch === true) {
          await fsp.unlink(tempAt).catch((err: unknown) => {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.warn({ err, what, tempName }, 'removing a put temp file failed; cleanupTemp will');
          });
        }
        inFlightTemps.delete(tempName);
      }
    } finally {
      await parent.dir.close();
    }
  }

  async delete(path: string, options: DeleteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `delete /${segs.join('/')}`;
    checkAborted(options.signal, what);
    refuseTemp(segs, what);
    await this.#inParentDir(segs, what, async (at) => {
      if (options.ifMatch !== undefined) checkMatch(await lstatOrUndefined(at, what), options.ifMatch, what);
      // EISDIR (Linux's answer for a directory) → 'invalid', through mapFsError.
      await wrapFs(() => fsp.unlink(at), what);
    });
  }

  async rename(from: string, to: string, options: RenameOptions): Promise<void> {
    const f = splitPath(from);
    const t = splitPath(to);
    const what = `rename /${f.join('/')} → /${t.join('/')}`;
    checkAborted(options.signal, what);
    refuseTemp(f, what);
    refuseTempCreate(t, what);
    if (f.length === 0 || t.length === 0) throw new RemoteError('invalid', `${what}: the root cannot be renamed or replaced`, { retryable: false });
    if (t.length > f.length && f.every((seg, i) => t[i] === seg)) throw new RemoteError('invalid', `${what}: a directory cannot move into itself`, { retryable: false });
    const pf = await this.#openParent(f, what);
    try {
      const pt = await this.#openParent(t, what);
      try {
        // Both names hang off verified directory fds: ENOTDIR/EISDIR are about the entries
        // themselves (a directory onto a file or back), never a missing path.
        const clash = { ENOTDIR: 'invalid', EISDIR: 'invalid', EEXIST: 'not-empty' } as const;
        if (options.noReplace !== true) {
          await wrapFs(() => fsp.rename(pf.at, pt.at), what, clash);
        } else {
          const st = await wrapFs(() => fsp.lstat(pf.at), what);
          if (f.join('/') === t.join('/')) throw new RemoteError('exists', `${what}: the target exists (it is the source)`);
          if (st.isDirectory()) {
            // No renameat2(RENAME_NOREPLACE) in Node: check, then rename. rename(2) never lets
            // a directory replace a file or a non-empty directory, so the only thing a
            // concurrent creator can lose in this window is an empty directory.
            if ((await lstatOrUndefined(pt.at, what)) !== undefined) throw new RemoteError('exists', `${what}: the target exists`);
            await wrapFs(() => fsp.rename(pf.at, pt.at), what, clash);
          } else {
            // Atomic no-replace for a file or symlink: link() fails with EEXIST, then the old
            // name goes. A crash in between leaves both names (never neither).
            await wrapFs(() => fsp.link(pf.at, pt.at), what);
            const [a, b] = await Promise.all([lstatOrUndefined(pf.at, what), lstatOrUndefined(pt.at, what)]);
            if (a !== undefined && b !== undefined && a.ino === b.ino && a.dev === b.dev) {
              await wrapFs(() => fsp.unlink(pf.at), what);
            } else {
              // Someone replaced the source name meanwhile: their entry stays.
              this.#logger.warn({ what }, 'the source of a no-replace rename was replaced during it; left in place');
            }
          }
        }
        await wrapFs(() => pt.dir.sync(), what);
        await wrapFs(() => pf.dir.sync(), what);
      } finally {
        await pt.dir.close();
      }
    } finally {
      await pf.dir.close();
    }
  }

  async mkdir(path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `mkdir /${segs.join('/')}`;
    checkAborted(options.signal, what);
    refuseTempCreate(segs, what);
    if (segs.length === 0) throw new RemoteError('exists', `${what}: the root exists`);
    await this.#inParentDir(segs, what, (at) => wrapFs(() => fsp.mkdir(at, 0o777), what));
  }

  async rmdir(path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `rmdir /${segs.join('/')}`;
    checkAborted(options.signal, what);
    refuseTemp(segs, what);
    if (segs.length === 0) throw new RemoteError('invalid', `${what}: the root cannot be removed`, { retryable: false });
    const kinds = { ENOTDIR: 'invalid', EEXIST: 'not-empty' } as const;
    await this.#inParentDir(segs, what, async (at) => {
      try {
        await wrapFs(() => fsp.rmdir(at), what, kinds);
      } catch (err) {
        if (!(isRemoteError(err) && err.kind === 'not-empty')) throw err;
        // A directory that lists empty may hold only stale temp files: clean them, try again.
        const dir = await this.#openVerified(at, fsc.O_RDONLY | fsc.O_DIRECTORY, what);
        try {
          if ((await this.#cleanDir(dir, what)) === 0) throw err;
        } finally {
          await dir.close();
        }
        await wrapFs(() => fsp.rmdir(at), what, kinds);
      }
    });
  }

  async symlink(target: string, path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `symlink /${segs.join('/')}`;
    checkAborted(options.signal, what);
    refuseTempCreate(segs, what);
    if (target.length === 0 || target.includes('\0') || Buffer.byteLength(target) > 4095) {
      throw new RemoteError('invalid', `${what}: bad target text`, { retryable: false });
    }
    if (segs.length === 0) throw new RemoteError('exists', `${what}: the root exists`);
    await this.#inParentDir(segs, what, (at) => wrapFs(() => fsp.symlink(target, at), what));
  }

  async setMtime(path: string, mtimeMs: number, options: WriteOptions): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `setMtime /${segs.join('/')}`;
    checkAborted(options.signal, what);
    refuseTemp(segs, what);
    if (!Number.isFinite(mtimeMs)) throw new RemoteError('invalid', `${what}: bad mtime ${mtimeMs}`, { retryable: false });
    const t = mtimeMs / 1000;
    const apply = async (at: string): Promise<Stats> => {
      const st = await wrapFs(() => fsp.lstat(at), what);
      if (st.isSymbolicLink()) {
        // The link's own time (lutimes never follows); a symlink cannot be opened to fsync.
        await wrapFs(() => fsp.lutimes(at, st.atimeMs / 1000, t), what);
        return wrapFs(() => fsp.lstat(at), what);
      }
      const fh = await wrapFs(() => fsp.open(at, fsc.O_RDONLY | fsc.O_NOFOLLOW), what);
      try {
        await wrapFs(() => fh.utimes(st.atimeMs / 1000, t), what);
        await wrapFs(() => fh.sync(), what);
        return await wrapFs(() => fh.stat(), what);
      } finally {
        await fh.close();
      }
    };
    const st = segs.length === 0 ? await apply(await wrapFs(() => (this.#realRoot ??= fsp.realpath(this.#root)), what)) : await this.#inParentDir(segs, what, apply, false);
    const type = entryType(st) ?? 'file';
    return { name: segs[segs.length - 1] ?? '', type, size: type === 'dir' ? 0 : st.size, mtimeMs: st.mtimeMs };
  }

  /**
   * Removes stale temp files (see the header) from the directory at `path` and every directory
   * below it, never following a symlink. Returns how many it removed. Safe while puts run.
   */
  async cleanupTemp(signal: AbortSignal, path = ''): Promise<number> {
    const segs = splitPath(path);
    const what = `cleanupTemp /${segs.join('/')}`;
    checkAborted(signal, what);
    const top = await this.#openVerified(await this.#resolve(segs, what), fsc.O_RDONLY | fsc.O_DIRECTORY, what);
    const walk = async (dir: fsp.FileHandle): Promise<number> => {
      checkAborted(signal, what);
      let removed = await this.#cleanDir(dir, what);
      const dirents = await wrapFs(() => fsp.readdir(`/proc/self/fd/${dir.fd}`, { withFileTypes: true }), what);
      for (const d of dirents) {
        if (!d.isDirectory() || isTempName(d.name) || isRefused(validateName(d.name))) continue;
        let sub: fsp.FileHandle;
        try {
          sub = await this.#openVerified(`/proc/self/fd/${dir.fd}/${d.name}`, fsc.O_RDONLY | fsc.O_DIRECTORY, what);
        } catch (err) {
          if (isRemoteError(err) && err.kind === 'not-found') continue; // gone meanwhile
          throw err;
        }
        try {
          removed += await walk(sub);
        } finally {
          await sub.close();
        }
      }
      return removed;
    };
    try {
      return await walk(top);
    } finally {
      await top.close();
    }
  }

  /** Removes the stale temp files directly in `dir`; returns how many. */
  async #cleanDir(dir: fsp.FileHandle, what: string): Promise<number> {
    const at = `/proc/self/fd/${dir.fd}`;
    const names = await wrapFs(() => fsp.readdir(at), what);
    let removed = 0;
    for (const name of names) {
      if (!isTempName(name) || !isStaleTemp(name)) continue;
      try {
        await fsp.unlink(`${at}/${name}`);
        removed++;
        this.#logger.info({ what, name }, 'removed a stale put temp file');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.warn({ err, what, name }, 'could not remove a stale put temp file');
      }
    }
    return removed;
  }

  async #cleanDirOnce(dir: fsp.FileHandle, key: string, what: string): Promise<void> {
    if (this.#cleanedDirs.has(key)) return;
    await this.#cleanDir(dir, what);
    if (this.#cleanedDirs.size >= CLEANED_DIRS_MAX) this.#cleanedDirs.clear();
    this.#cleanedDirs.add(key);
  }

  /** Opens the verified parent directory of `segs` (never the root itself). The caller closes `dir`. */
  async #openParent(segs: readonly string[], what: string): Promise<{ dir: fsp.FileHandle; name: string; at: string }> {
    const name = segs[segs.length - 1];
    if (name === undefined) throw new RemoteError('invalid', `${what}: not possible on the root`, { retryable: false });
    const abs = await this.#resolve(segs, what);
    const dir = await this.#openVerified(abs.slice(0, abs.length - name.length - 1) || sep, fsc.O_RDONLY | fsc.O_DIRECTORY, what);
    return { dir, name, at: `/proc/self/fd/${dir.fd}/${name}` };
  }

  /** Runs `change` on the last component of `segs` inside its verified parent, then fsyncs the parent. */
  async #inParentDir<T>(segs: readonly string[], what: string, change: (at: string) => Promise<T>, syncDir = true): Promise<T> {
    const parent = await this.#openParent(segs, what);
    try {
      const out = await change(parent.at);
      if (syncDir) await wrapFs(() => parent.dir.sync(), what);
      return out;
    } finally {
      await parent.dir.close();
    }
  }

  async close(): Promise<void> {
    // Nothing is held between calls.
  }

  async *#body(abs: string, start: number, end: number, fp: Fingerprint, signal: AbortSignal, what: string): AsyncGenerator<Uint8Array, void, undefined> {
    if (start === end) return;
    const fh = await this.#openVerified(abs, fsc.O_RDONLY, what);
    try {
      const st = await wrapFs(() => fh.stat(), what);
      if (!sameVersion(fp, { size: st.size, mtimeMs: st.mtimeMs })) throw new RemoteError('changed', `${what}: file changed before reading`);
      let pos = start;
      while (pos < end) {
        checkAborted(signal, what);
        const buf = Buffer.allocUnsafe(Math.min(this.#chunkBytes, end - pos));
        const { bytesRead } = await wrapFs(() => fh.read(buf, 0, buf.length, pos), what);
        if (bytesRead === 0) throw new RemoteError('changed', `${what}: file shrank while reading (EOF at ${pos})`);
        pos += bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  async #entryOf(dirAbs: string, d: Dirent<Buffer>, segs: readonly string[]): Promise<RemoteEntry | undefined> {
    const raw = d.name;
    const name = raw.toString('utf8');
    const valid = Buffer.from(name, 'utf8').equals(raw) ? validateName(name) : { refused: 'name is not valid UTF-8' };
    if (isRefused(valid)) {
      this.#logger.warn({ dir: segs.join('/'), name: raw.toString('hex'), reason: valid.refused }, 'refused a name in a local directory');
      return undefined;
    }
    if (isTempName(valid)) return undefined;
    let st: Stats;
    try {
      st = await fsp.lstat(`${dirAbs}${sep}${valid}`);
    } catch (err) {
      // Deleted between readdir and lstat: it is simply gone.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw mapFsError(err, `list /${segs.join('/')}: lstat ${valid}`);
    }
    const type = entryType(st);
    if (type === undefined) return undefined;
    return { name: valid, type, size: type === 'dir' ? 0 : st.size, mtimeMs: st.mtimeMs };
  }

  /** The absolute path of `segs`, after checking that no directory on the way leads out. */
  async #resolve(segs: readonly string[], what: string): Promise<string> {
    const abs = segs.length === 0 ? this.#root : resolvePath(this.#root, ...segs);
    if (abs !== this.#root && !abs.startsWith(this.#root + sep)) throw new RemoteError('invalid', `${what}: path escapes the root`, { retryable: false });
    if (segs.length <= 1) return abs;
    this.#realRoot ??= fsp.realpath(this.#root);
    const realRoot = await wrapFs(() => this.#realRoot as Promise<string>, what);
    const parentReal = await wrapFs(() => fsp.realpath(resolvePath(this.#root, ...segs.slice(0, -1))), what);
    if (parentReal !== realRoot && !parentReal.startsWith(realRoot + sep)) {
      throw new RemoteError('invalid', `${what}: path leads outside the root through a symlink`, { retryable: false });
    }
    return `${parentReal}${sep}${segs[segs.length - 1] ?? ''}`;
  }

  /**
   * Opens `abs` (never following its last component) and checks where the fd really is: under
   * the real root, whatever was swapped on the way since #resolve looked. Closes it otherwise.
   */
  async #openVerified(abs: string, flags: number, what: string): Promise<fsp.FileHandle> {
    await this.#hooks.afterResolve?.(what);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(abs, flags | fsc.O_NOFOLLOW);
    } catch (err) {
      // O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR with O_DIRECTORY. Say what it is.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ELOOP' || code === 'ENOTDIR') && (await fsp.lstat(abs).then((st) => st.isSymbolicLink(), () => false))) {
        throw new RemoteError('invalid', `${what}: is a symlink, not followed`, { cause: err, retryable: false });
      }
      throw mapFsError(err, what);
    }
    try {
      const real = await wrapFs(() => fsp.readlink(`/proc/self/fd/${fh.fd}`), what);
      const realRoot = await wrapFs(() => (this.#realRoot ??= fsp.realpath(this.#root)), what);
      if (real !== realRoot && !real.startsWith(realRoot + sep)) {
        throw new RemoteError('invalid', `${what}: path leads outside the root (a directory was swapped for a symlink)`, { retryable: false });
      }
      return fh;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Runs `use` on the last component of `segs` inside its verified parent directory. */
  async #inParent<T>(segs: readonly string[], what: string, use: (at: string) => Promise<T>): Promise<T> {
    const name = segs[segs.length - 1];
    if (name === undefined) return wrapFs(() => use(this.#root), what);
    const abs = await this.#resolve(segs, what);
    const parent = await this.#openVerified(abs.slice(0, abs.length - name.length - 1) || sep, fsc.O_RDONLY | fsc.O_DIRECTORY, what);
    try {
      return await wrapFs(() => use(`/proc/self/fd/${parent.fd}/${name}`), what);
    } finally {
      await parent.close();
    }
  }
}

function entryType(st: Stats): EntryType | undefined {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return undefined;
}

/** Temp names do not exist for readers. */
function refuseTemp(segs: readonly string[], what: string): void {
  if (segs.some(isTempName)) throw new RemoteError('not-found', `${what}: no such entry (${TEMP_PREFIX}* names are reserved)`);
}

/** Nor may anyone create one: cleanupTemp would remove it. */
function refuseTempCreate(segs: readonly string[], what: string): void {
  if (segs.some(isTempName)) throw new RemoteError('invalid', `${what}: ${TEMP_PREFIX}* names are reserved`, { retryable: false });
}

/** A temp file nobody is writing: its pid is dead, or it is ours and no put of ours owns it. */
function isStaleTemp(name: string): boolean {
  const m = /^\.fusestream-tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return tempWriterGone(Number(m?.[1]), inFlightTemps.has(name));
}

function fingerprintOf(st: Stats): Fingerprint {
  return { size: st.size, mtimeMs: st.mtimeMs };
}

/** ifMatch: the entry must be a file of exactly that version (the one comparison, sameVersion). */
function checkMatch(st: Stats | undefined, expect: Fingerprint, what: string): void {
  if (st === undefined) throw new RemoteError('conflict', `${what}: the object is gone (ifMatch)`);
  if (!st.isFile()) throw new RemoteError('conflict', `${what}: the object is no longer a file (ifMatch)`);
  const why = fingerprintChange(expect, fingerprintOf(st));
  if (why !== undefined) throw new RemoteError('conflict', `${what}: not the expected version: ${why}`);
}

async function lstatOrUndefined(at: string, what: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(at);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw mapFsError(err, what);
  }
}

/**
 * Streams the source into `fh` from offset 0. The source's own errors pass through unchanged;
 * an abort becomes 'aborted'/'timeout'; a source that yields another total than it announced is
 * 'invalid'.
 */
async function writeSource(fh: fsp.FileHandle, source: ContentSource, signal: AbortSignal, what: string): Promise<void> {
  let pos = 0;
  try {
    for await (const chunk of source.open(signal)) {
      checkAborted(signal, what);
      if (pos + chunk.byteLength > source.sizeBytes) {
        throw new RemoteError('invalid', `${what}: the source yielded more than its ${source.sizeBytes} bytes`, { retryable: false });
      }
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await wrapFs(() => fh.write(chunk, done, chunk.byteLength - done, pos + done), what);
        done += bytesWritten;
      }
      pos += chunk.byteLength;
    }
  } catch (err) {
    if (signal.aborted) throw abortError(signal, what, err);
    throw err;
  }
  checkAborted(signal, what);
  if (pos !== source.sizeBytes) throw new RemoteError('invalid', `${what}: the source yielded ${pos} of its ${source.sizeBytes} bytes`, { retryable: false });
}

function checkAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortError(signal, what);
}

/** Errno codes whose meaning depends on the call (ENOTDIR from rename is a type clash). */
type KindOverrides = Readonly<Partial<Record<string, RemoteErrorKind>>>;

async function wrapFs<T>(fn: () => Promise<T>, what: string, overrides?: KindOverrides): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapFsError(err, what, overrides);
  }
}

export function mapFsError(err: unknown, what: string, overrides?: KindOverrides): RemoteError {
  if (isRemoteError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const msg = `${what}: ${code || String(err)}`;
  const override = overrides?.[code];
  if (override !== undefined) return new RemoteError(override, msg, { cause: err, retryable: false });
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new RemoteError('not-found', msg, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new RemoteError('permission', msg, { cause: err });
    case 'EEXIST':
      return new RemoteError('exists', msg, { cause: err });
    case 'ENOTEMPTY':
      return new RemoteError('not-empty', msg, { cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new RemoteError('no-space', msg, { cause: err });
    case 'EROFS':
      return new RemoteError('read-only', msg, { cause: err });
    case 'EXDEV':
      return new RemoteError('unsupported', msg, { cause: err, retryable: false });
    case 'ELOOP':
    case 'EISDIR':
    case 'ENAMETOOLONG':
    case 'EINVAL':
      return new RemoteError('invalid', msg, { cause: err, retryable: false });
    default:
      return new RemoteError('unavailable', msg, { cause: err });
  }
}
