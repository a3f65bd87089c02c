// The conformance driver that calls a FileSystem object directly, playing the kernel's part for
// path-level calls: it walks a path by successive lookups from the root (following symlinks,
// at most 40, as the kernel does), checks O_CREAT|O_EXCL with a lookup before CREATE, keeps an
// fd table over (ino, fh), and checks an fd's access mode (EBADF). Every other errno is left to
// the filesystem, so the direct run is the stricter of the two.
//
// Invariants:
// - Every lookup reference it takes is given back with forget() when the op ends, except one
//   per open fd (the kernel holds the inode of an open file), given back at close.
// - Errors become errno names through the bridge's one mapping (toFsError), as a mount would.
import { Errno, errnoName } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { ROOT_INO, type Fh, type Ino } from '../../src/base/ids.js';
import { O_ACCMODE, O_CREAT, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../src/base/posix.js';
import type { Attr, Dirent, DirentSink } from '../../src/base/fs-types.js';
import { toFsError } from '../../src/bridge/errno-map.js';
import type { FileSystem, OpContext } from '../../src/core/filesystem.js';
import { FATTR_ATIME, FATTR_FH, FATTR_MODE, FATTR_MTIME, FATTR_SIZE } from '../../src/kernel/abi.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DriverError, type DriverStat, type FileKind, type FsDriver } from './fs-driver.js';

const MAX_SYMLINKS = 40;
const UMASK = 0o022;
/** Entries per READDIR call: small, so listings page. */
const READDIR_ROOM = 7;

interface OpenFile {
  ino: Ino;
  fh: Fh;
  flags: number;
}

/** Lookup references taken by one op, given back when it ends. */
class Refs {
  readonly #inos: Ino[] = [];
  constructor(readonly fs: FileSystem) {}
  take(ino: Ino): void {
    if (ino !== ROOT_INO) this.#inos.push(ino);
  }
  /** Keeps one reference on `ino` past release() (the caller owns it now). */
  keep(ino: Ino): void {
    const i = this.#inos.lastIndexOf(ino);
    if (i >= 0) this.#inos.splice(i, 1);
  }
  release(): void {
    for (const ino of this.#inos.splice(0)) this.fs.forget?.(ino, 1n);
  }
}

function kindOf(mode: number): FileKind {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}

function toStat(a: Attr): DriverStat {
  return { kind: kindOf(a.mode), perm: a.mode & 0o7777, size: a.size, nlink: a.nlink, uid: a.uid, gid: a.gid, atimeMs: a.atimeMs, mtimeMs: a.mtimeMs };
}

/** `fs` with op `k` checked present (ENOSYS otherwise, as the kernel layer answers). */
function need<K extends keyof FileSystem>(fs: FileSystem, k: K): Required<Pick<FileSystem, K>> {
  if (fs[k] === undefined) throw new FsError(Errno.ENOSYS, `${k} is not implemented`);
  return fs as Required<Pick<FileSystem, K>>;
}

export class CoreDriver implements FsDriver {
  readonly name = 'core';
  readonly #fs: FileSystem;
  readonly #ac = new AbortController();
  readonly #ctx: OpContext;
  readonly #fds = new Map<number, OpenFile>();
  #nextFd = 3;

  constructor(fs: FileSystem, who: { uid: number; gid: number } = { uid: 0, gid: 0 }) {
    this.#fs = fs;
    this.#ctx = { uid: who.uid, gid: who.gid, pid: process.pid, signal: this.#ac.signal, log: silentLogger() };
  }

  /** Runs `fn` with a reference set released afterwards; errors become DriverErrors. */
  async #op<T>(what: string, fn: (refs: Refs) => Promise<T>): Promise<T> {
    const refs = new Refs(this.#fs);
    try {
      return await fn(refs);
    } catch (err) {
      if (err instanceof DriverError) throw err;
      throw new DriverError(errnoName(toFsError(err).errno), what);
    } finally {
      refs.release();
    }
  }

  async #lookup(refs: Refs, parent: Ino, name: string): Promise<{ ino: Ino; attr: Attr }> {
    const e = await need(this.#fs, 'lookup').lookup(this.#ctx, parent, name);
    if (e.nodeid === 0n) throw new FsError(Errno.ENOENT);
    refs.take(e.nodeid);
    return { ino: e.nodeid, attr: e.attr };
  }

  async #getattr(ino: Ino): Promise<Attr> {
    return (await need(this.#fs, 'getattr').getattr(this.#ctx, ino, undefined)).attr;
  }

  /**
   * Walks `path`. With `followLast`, a symlink at the end is followed too. Relative symlink
   * targets resolve from the directory holding the link, absolute ones from the root.
   */
  async #resolve(refs: Refs, path: string, followLast: boolean): Promise<{ ino: Ino; attr: Attr }> {
    let pending = path.split('/').filter((p) => p !== '');
    let dir = ROOT_INO;
    const dirs: Ino[] = [];
    let cur: { ino: Ino; attr: Attr } = { ino: ROOT_INO, attr: await this.#getattr(ROOT_INO) };
    let links = 0;
    while (pending.length > 0) {
      const [name, ...rest] = pending as [string, ...string[]];
      pending = rest;
      if (name === '.') continue;
      if (name === '..') {
        dir = dirs.pop() ?? ROOT_INO;
        cur = { ino: dir, attr: await this.#getattr(dir) };
        continue;
      }
      cur = await this.#lookup(refs, dir, name);
      if ((cur.attr.mode & S_IFMT) === S_IFLNK && (pending.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) throw new FsError(Errno.ELOOP);
        const target = await need(this.#fs, 'readlink').readlink(this.#ctx, cur.ino);
        if (target.startsWith('/')) {
          dir = ROOT_INO;
          dirs.length = 0;
        }
        pending = [...target.split('/').filter((p) => p !== ''), ...pending];
        cur = { ino: dir, attr: await this.#getattr(dir) };
        continue;
      }
      if (pending.length > 0) {
        dirs.push(dir);
        dir = cur.ino;
      }
    }
    return cur;
  }

  /** The directory holding the last component of `path`, and that component. */
  async #resolveParent(refs: Refs, path: string): Promise<{ parent: Ino; name: string }> {
    const parts = path.split('/').filter((p) => p !== '');
    const name = parts.pop();
    if (name === undefined) throw new FsError(Errno.EBUSY, 'the root has no parent');
    const parent = await this.#resolve(refs, parts.join('/'), true);
    if ((parent.attr.mode & S_IFMT) !== S_IFDIR) throw new FsError(Errno.ENOTDIR);
    return { parent: parent.ino, name };
  }

  #file(fd: number): OpenFile {
    const f = this.#fds.get(fd);
    if (!f) throw new FsError(Errno.EBADF);
    return f;
  }

  stat(path: string): Promise<DriverStat> {
    return this.#op(`stat ${path}`, async (refs) => toStat(await this.#getattr((await this.#resolve(refs, path, true)).ino)));
  }

  lstat(path: string): Promise<DriverStat> {
    return this.#op(`lstat ${path}`, async (refs) => toStat(await this.#getattr((await this.#resolve(refs, path, false)).ino)));
  }

  readdir(path: string): Promise<string[]> {
    return this.#op(`readdir ${path}`, async (refs) => {
      const { ino } = await this.#resolve(refs, path, true);
      const { fh } = await need(this.#fs, 'opendir').opendir(this.#ctx, ino, 0);
      const names: string[] = [];
      try {
        let offset = 0n;
        for (;;) {
          const got: Dirent[] = [];
          const sink: DirentSink = { plus: false, add: (d) => got.length < READDIR_ROOM && got.push(d) > 0 };
          await need(this.#fs, 'readdir').readdir(this.#ctx, ino, fh, offset, sink);
          if (got.length === 0) break;
          for (const d of got) {
            if (d.offset <= offset) throw new Error(`readdir ${path}: cookie ${d.offset} of ${d.name} does not grow past ${offset}`);
            offset = d.offset;
            if (d.name !== '.' && d.name !== '..') names.push(d.name);
          }
        }
      } finally {
        await this.#fs.releasedir?.(this.#ctx, ino, fh, 0);
      }
      return names.sort();
    });
  }

  mkdir(path: string, mode: number): Promise<void> {
    return this.#op(`mkdir ${path}`, async (refs) => {
      const { parent, name } = await this.#resolveParent(refs, path);
      refs.take((await need(this.#fs, 'mkdir').mkdir(this.#ctx, parent, name, mode, UMASK)).nodeid);
    });
  }

  rmdir(path: string): Promise<void> {
    return this.#op(`rmdir ${path}`, async (refs) => {
      const { parent, name } = await this.#resolveParent(refs, path);
      await need(this.#fs, 'rmdir').rmdir(this.#ctx, parent, name);
    });
  }

  unlink(path: string): Promise<void> {
    return this.#op(`unlink ${path}`, async (refs) => {
      const { parent, name } = await this.#resolveParent(refs, path);
      await need(this.#fs, 'unlink').unlink(this.#ctx, parent, name);
    });
  }

  rename(from: string, to: string, flags = 0): Promise<void> {
    return this.#op(`rename ${from} ${to}`, async (refs) => {
      const src = await this.#resolveParent(refs, from);
      const dst = await this.#resolveParent(refs, to);
      await need(this.#fs, 'rename').rename(this.#ctx, src.parent, src.name, dst.parent, dst.name, flags);
    });
  }

  symlink(target: string, path: string): Promise<void> {
    return this.#op(`symlink ${path}`, async (refs) => {
      const { parent, name } = await this.#resolveParent(refs, path);
      refs.take((await need(this.#fs, 'symlink').symlink(this.#ctx, parent, name, target)).nodeid);
    });
  }

  readlink(path: string): Promise<string> {
    return this.#op(`readlink ${path}`, async (refs) => need(this.#fs, 'readlink').readlink(this.#ctx, (await this.#resolve(refs, path, false)).ino));
  }

  open(path: string, flags: number, mode = 0o644): Promise<number> {
    return this.#op(`open ${path}`, async (refs) => {
      let opened: OpenFile;
      if (flags & O_CREAT) {
        const { parent, name } = await this.#resolveParent(refs, path);
        let existing: { ino: Ino; attr: Attr } | undefined;
        try {
          existing = await this.#lookup(refs, parent, name);
        } catch (err) {
          if (toFsError(err).errno !== Errno.ENOENT) throw err;
        }
        if (existing && flags & O_EXCL) throw new FsError(Errno.EEXIST);
        if (existing) {
          opened = await this.#openIno(existing.ino, existing.attr, flags & ~(O_CREAT | O_EXCL));
        } else {
          const r = await need(this.#fs, 'create').create(this.#ctx, parent, name, S_IFREG | (mode & 0o7777), flags, UMASK);
          refs.take(r.entry.nodeid);
          opened = { ino: r.entry.nodeid, fh: r.open.fh, flags };
        }
      } else {
        const f = await this.#resolve(refs, path, true);
        opened = await this.#openIno(f.ino, f.attr, flags);
      }
      refs.keep(opened.ino);
      const fd = this.#nextFd++;
      this.#fds.set(fd, opened);
      return fd;
    });
  }

  async #openIno(ino: Ino, attr: Attr, flags: number): Promise<OpenFile> {
    if ((attr.mode & S_IFMT) === S_IFDIR && (flags & O_ACCMODE) !== O_RDONLY) throw new FsError(Errno.EISDIR);
    const { fh } = await need(this.#fs, 'open').open(this.#ctx, ino, flags);
    return { ino, fh, flags };
  }

  read(fd: number, length: number, position: number): Promise<Buffer> {
    return this.#op(`read fd ${fd}`, async () => {
      const f = this.#file(fd);
      if ((f.flags & O_ACCMODE) === O_WRONLY) throw new FsError(Errno.EBADF);
      const parts: Buffer[] = [];
      let got = 0;
      while (got < length) {
        const b = await need(this.#fs, 'read').read(this.#ctx, f.ino, f.fh, position + got, length - got);
        if (b.length === 0) break;
        parts.push(Buffer.from(b));
        got += b.length;
      }
      return Buffer.concat(parts);
    });
  }

  write(fd: number, data: Buffer, position: number): Promise<void> {
    return this.#op(`write fd ${fd}`, async () => {
      const f = this.#file(fd);
      if ((f.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF);
      for (let done = 0; done < data.length; ) {
        const n = await need(this.#fs, 'write').write(this.#ctx, f.ino, f.fh, position + done, data.subarray(done), 0, f.flags);
        if (n <= 0) throw new Error(`write fd ${fd} wrote ${n} bytes`);
        done += n;
      }
    });
  }

  ftruncate(fd: number, size: number): Promise<void> {
    return this.#op(`ftruncate fd ${fd}`, async () => {
      const f = this.#file(fd);
      if ((f.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EINVAL);
      await need(this.#fs, 'setattr').setattr(this.#ctx, f.ino, { valid: FATTR_SIZE | FATTR_FH, size, fh: f.fh });
    });
  }

  truncate(path: string, size: number): Promise<void> {
    return this.#op(`truncate ${path}`, async (refs) => {
      const { ino } = await this.#resolve(refs, path, true);
      await need(this.#fs, 'setattr').setattr(this.#ctx, ino, { valid: FATTR_SIZE, size });
    });
  }

  fsync(fd: number): Promise<void> {
    return this.#op(`fsync fd ${fd}`, async () => {
      const f = this.#file(fd);
      await this.#fs.fsync?.(this.#ctx, f.ino, f.fh, false);
    });
  }

  close(fd: number): Promise<void> {
    return this.#op(`close fd ${fd}`, async () => {
      const f = this.#file(fd);
      this.#fds.delete(fd);
      try {
        await this.#fs.flush?.(this.#ctx, f.ino, f.fh, 0n);
        await this.#fs.release?.(this.#ctx, f.ino, f.fh, f.flags);
      } finally {
        this.#fs.forget?.(f.ino, 1n);
      }
    });
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.#op(`chmod ${path}`, async (refs) => {
      const { ino } = await this.#resolve(refs, path, true);
      await need(this.#fs, 'setattr').setattr(this.#ctx, ino, { valid: FATTR_MODE, mode: mode & 0o7777 });
    });
  }

  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#op(`utimes ${path}`, async (refs) => {
      const { ino } = await this.#resolve(refs, path, true);
      await need(this.#fs, 'setattr').setattr(this.#ctx, ino, { valid: FATTR_ATIME | FATTR_MTIME, atime: atimeMs, mtime: mtimeMs });
    });
  }

  async readFile(path: string): Promise<Buffer> {
    const fd = await this.open(path, O_RDONLY);
    try {
      const parts: Buffer[] = [];
      for (let pos = 0; ; ) {
        const b = await this.read(fd, 1 << 20, pos);
        if (b.length === 0) return Buffer.concat(parts);
        parts.push(b);
        pos += b.length;
      }
    } finally {
      await this.close(fd);
    }
  }

  async writeFile(path: string, data: Buffer): Promise<void> {
    const fd = await this.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644);
    try {
      if (data.length > 0) await this.write(fd, data, 0);
    } finally {
      await this.close(fd);
    }
  }

  async closeLeftovers(): Promise<number[]> {
    const fds = [...this.#fds.keys()];
    for (const fd of fds) await this.close(fd).catch(() => undefined);
    return fds;
  }

  dispose(): Promise<void> {
    this.#ac.abort();
    return Promise.resolve();
  }
}
