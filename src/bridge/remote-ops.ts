// The bridge: FuseOps (what the kernel session calls) → RemoteFs (the core). It owns the
// translation both ways: kernel arguments into core calls, core results into EntryOut/AttrOut
// with the configured TTLs, and every error through THE mapping in errno-map.ts.
// This mount is read-only: every op that would change something answers EROFS, and OPEN for
// writing answers EROFS too (the kernel asks before any WRITE).
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { asIno, type Fh, type Ino } from '../base/ids.js';
import type { Logger } from '../observability/logger.js';
import { DT, FOPEN_KEEP_CACHE, S_IFDIR, S_IFLNK, S_IFREG } from '../kernel/abi.js';
import type { Attr, AttrOut, DirentSink, EntryOut, FuseOps, OpenOut, RequestContext, StatfsOut } from '../kernel/ops.js';
import type { Inode } from '../core/inode-table.js';
import type { RemoteFs } from '../core/remote-fs.js';
import { toFsError } from './errno-map.js';

const O_ACCMODE = 3;
const O_RDONLY = 0;

export class RemoteFsOps implements FuseOps {
  readonly #fs: RemoteFs;
  readonly #log: Logger;

  constructor(fs: RemoteFs, log: Logger) {
    this.#fs = fs;
    this.#log = log;
  }

  #attr(node: Inode): Attr {
    const c = this.#fs.config;
    const a = node.attrs;
    const mode = a.type === 'dir' ? S_IFDIR | c.dirMode : a.type === 'symlink' ? S_IFLNK | 0o777 : S_IFREG | c.fileMode;
    return {
      ino: node.ino,
      size: a.size,
      atimeMs: a.mtimeMs,
      mtimeMs: a.mtimeMs,
      ctimeMs: a.mtimeMs,
      mode,
      nlink: a.type === 'dir' ? 2 : 1,
      uid: c.uid,
      gid: c.gid,
    };
  }

  #entry(node: Inode): EntryOut {
    const c = this.#fs.config;
    return { nodeid: node.ino, generation: 0n, entryTtlMs: c.entryTtlMs, attrTtlMs: c.attrTtlMs, attr: this.#attr(node) };
  }

  async #run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const fsErr = toFsError(err);
      if (fsErr.level === 'error') this.#log.error({ err, op: what }, 'unexpected error');
      throw fsErr;
    }
  }

  lookup(ctx: RequestContext, parent: Ino, name: string): Promise<EntryOut> {
    return this.#run('lookup', async () => {
      const node = await this.#fs.lookup(parent, name, ctx.signal);
      if (!node) {
        // A negative entry: the kernel caches "no such name" for negativeTtl.
        const c = this.#fs.config;
        if (c.negativeTtlMs <= 0) throw new FsError(Errno.ENOENT);
        return { nodeid: asIno(0n), generation: 0n, entryTtlMs: c.negativeTtlMs, attrTtlMs: 0, attr: { ino: asIno(0n), size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, mode: 0, nlink: 0, uid: 0, gid: 0 } };
      }
      this.#fs.inodes.ref(node);
      return this.#entry(node);
    });
  }

  forget(ino: Ino, nlookup: bigint): void {
    this.#fs.forget(ino, nlookup);
  }

  getattr(ctx: RequestContext, ino: Ino): Promise<AttrOut> {
    return this.#run('getattr', async () => ({ attrTtlMs: this.#fs.config.attrTtlMs, attr: this.#attr(await this.#fs.getattr(ino, ctx.signal)) }));
  }

  readlink(ctx: RequestContext, ino: Ino): Promise<string> {
    return this.#run('readlink', () => this.#fs.readlink(ino, ctx.signal));
  }

  open(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenOut> {
    return this.#run('open', async () => {
      if ((flags & O_ACCMODE) !== O_RDONLY) throw new FsError(Errno.EROFS);
      const r = await this.#fs.open(ino, ctx.signal);
      return { fh: r.fh, openFlags: r.keepCache ? FOPEN_KEEP_CACHE : 0 };
    });
  }

  read(ctx: RequestContext, _ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer> {
    return this.#run('read', () => this.#fs.read(fh, offset, size, ctx.signal));
  }

  release(_ctx: RequestContext, _ino: Ino, fh: Fh): Promise<void> {
    return this.#run('release', () => this.#fs.release(fh));
  }

  async flush(): Promise<void> {
    // Nothing to write back on a read-only mount.
  }

  opendir(_ctx: RequestContext, ino: Ino): Promise<OpenOut> {
    return this.#run('opendir', () => Promise.resolve({ fh: this.#fs.opendir(ino), openFlags: 0 }));
  }

  readdir(ctx: RequestContext, ino: Ino, fh: Fh, offset: bigint, sink: DirentSink): Promise<void> {
    return this.#run('readdir', async () => {
      const entries = await this.#fs.readdirHandle(fh, ino, offset === 0n, ctx.signal);
      // Offsets: 1 = after ".", 2 = after "..", 2 + i + 1 = after entries[i].
      let off = Number(offset);
      if (off === 0) {
        if (!sink.add({ name: '.', ino, type: DT.DIR, offset: 1n })) return;
        off = 1;
      }
      if (off === 1) {
        if (!sink.add({ name: '..', ino, type: DT.DIR, offset: 2n })) return;
        off = 2;
      }
      for (let i = off - 2; i < entries.length; i++) {
        const e = entries[i];
        if (!e) break;
        const type = e.inode.attrs.type === 'dir' ? DT.DIR : e.inode.attrs.type === 'symlink' ? DT.LNK : DT.REG;
        const dirent = { name: e.name, ino: e.inode.ino, type, offset: BigInt(i + 3) };
        if (sink.plus) {
          if (!sink.add(dirent, this.#entry(e.inode))) return;
          this.#fs.inodes.ref(e.inode); // only entries the kernel accepted take a reference
        } else if (!sink.add(dirent)) {
          return;
        }
      }
    });
  }

  async releasedir(_ctx: RequestContext, _ino: Ino, fh: Fh): Promise<void> {
    this.#fs.releasedir(fh);
  }

  async statfs(): Promise<StatfsOut> {
    return { blocks: 0, bfree: 0, bavail: 0, files: this.#fs.inodes.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async access(_ctx: RequestContext, _ino: Ino, mask: number): Promise<void> {
    if (mask & 2) throw new FsError(Errno.EROFS);
  }

  async setattr(): Promise<AttrOut> {
    throw new FsError(Errno.EROFS);
  }
  async mknod(): Promise<EntryOut> {
    throw new FsError(Errno.EROFS);
  }
  async mkdir(): Promise<EntryOut> {
    throw new FsError(Errno.EROFS);
  }
  async unlink(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }
  async rmdir(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }
  async rename(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }
  async link(): Promise<EntryOut> {
    throw new FsError(Errno.EROFS);
  }
  async symlink(): Promise<EntryOut> {
    throw new FsError(Errno.EROFS);
  }
  async create(): Promise<never> {
    throw new FsError(Errno.EROFS);
  }
  async write(): Promise<number> {
    throw new FsError(Errno.EROFS);
  }
  async setxattr(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }
  async removexattr(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }
  async fallocate(): Promise<void> {
    throw new FsError(Errno.EROFS);
  }

  async destroy(): Promise<void> {
    await this.#fs.close();
  }
}
