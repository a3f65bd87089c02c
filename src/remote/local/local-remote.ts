// LocalRemote: a directory on this machine as a Remote (read-only for now). Useful on its
// own and as the reference backend in tests.
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
import { constants as fsc, promises as fsp, type Dirent, type Stats } from 'node:fs';
import { resolve as resolvePath, sep } from 'node:path';
import type { Logger } from '../../observability/logger.js';
import { silentLogger } from '../../observability/logger.js';
import { type EntryType, type Fingerprint, type ReadRangeOptions, type Remote, type RemoteCapabilities, type RemoteEntry, type RemoteReadStream, type RemoteStat } from '../remote.js';
import { sameVersion } from '../fingerprint.js';
import { RemoteError, isRemoteError, abortError } from '../remote-error.js';
import { isRefused, splitPath, validateName } from '../names.js';

export interface LocalRemoteOptions {
  root: string;
  logger?: Logger;
  /** Bytes per chunk yielded by read bodies. Default 256 KiB. */
  chunkBytes?: number;
  /** Parallel lstat calls while listing. Default 16. */
  statConcurrency?: number;
  /** Test hooks: `afterResolve` runs between the path check and its use (a race window). */
  hooks?: { afterResolve?(what: string): Promise<void> };
}

export class LocalRemote implements Remote {
  readonly id: string;
  readonly capabilities: RemoteCapabilities = { writable: false, ranges: true, exactListing: true };
  readonly #root: string;
  readonly #logger: Logger;
  readonly #chunkBytes: number;
  readonly #statConcurrency: number;
  #realRoot: Promise<string> | undefined;
  readonly #hooks: NonNullable<LocalRemoteOptions['hooks']>;

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
    const st = await this.#inParent(segs, what, (at) => fsp.lstat(at));
    const type = entryType(st);
    if (type === undefined) throw new RemoteError('unsupported', `${what}: not a file, directory or symlink`);
    return { name: segs[segs.length - 1] ?? '', type, size: type === 'dir' ? 0 : st.size, mtimeMs: st.mtimeMs };
  }

  async readlink(path: string, signal: AbortSignal): Promise<string> {
    const segs = splitPath(path);
    const what = `readlink /${segs.join('/')}`;
    checkAborted(signal, what);
    // Through the parent only: the link itself is read, never followed.
    if (segs.length === 0) throw new RemoteError('invalid', `${what}: the root is not a symlink`, { retryable: false });
    return this.#inParent(segs, what, (at) => fsp.readlink(at));
  }

  async list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const segs = splitPath(path);
    const what = `list /${segs.join('/')}`;
    checkAborted(signal, what);
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

function checkAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortError(signal, what);
}

async function wrapFs<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapFsError(err, what);
  }
}

export function mapFsError(err: unknown, what: string): RemoteError {
  if (isRemoteError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const msg = `${what}: ${code || String(err)}`;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new RemoteError('not-found', msg, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new RemoteError('permission', msg, { cause: err });
    case 'ELOOP':
    case 'EISDIR':
    case 'ENAMETOOLONG':
    case 'EINVAL':
      return new RemoteError('invalid', msg, { cause: err, retryable: false });
    default:
      return new RemoteError('unavailable', msg, { cause: err });
  }
}
