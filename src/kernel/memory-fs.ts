// MemoryFs: a complete in-memory read-write filesystem implementing FuseOps. It exists to
// exercise the kernel layer for real (tests, `fusestream memfs`, the demo), so it implements
// every op with POSIX errnos rather than the minimum.
//
// Invariants:
// - Kernel lookup counts: +1 for each entry reply (lookup/mkdir/mknod/create/symlink/link)
//   and each READDIRPLUS entry the sink accepted; FORGET subtracts. A node is freed when its
//   lookup count is 0, it has no open handles and no links (nlink 0). The root never goes.
// - Directory entries keep insertion order with a per-directory monotonically increasing
//   cookie per entry, so READDIR offsets stay valid across concurrent changes: an entry added
//   later gets a later cookie, a removed one is simply skipped.
// - Large generated files (`addFile(path, {size, generator})`) are virtual: reads compute
//   bytes; the first write materialises only the 64 KiB chunks it touches.
// No locks: every mutation is synchronous (hooks may await before it, never during it).
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { asFh, asIno, ROOT_INO, type Fh, type Ino } from '../base/ids.js';
import { systemClock, type Clock } from '../base/clock.js';
import {
  DT,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  R_OK,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  W_OK,
  X_OK,
  direntType,
} from './abi.js';
import type { Attr, AttrOut, CreateOut, DirentSink, EntryOut, FuseOps, OpenOut, RequestContext, SetattrIn, StatfsOut } from './ops.js';

const CHUNK = 64 * 1024;
const NAME_MAX = 255;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/** File contents as sparse 64 KiB chunks over an optional generator for untouched bytes. */
class Content {
  size = 0;
  readonly #chunks = new Map<number, Buffer>();
  #generator: ((offset: number) => number) | undefined;
  /** Bytes at or past this offset read as zero even where the generator would say otherwise (after a truncate). */
  #generatedEnd = Infinity;

  static generated(size: number, generator: (offset: number) => number): Content {
    const c = new Content();
    c.size = size;
    c.#generator = generator;
    c.#generatedEnd = size;
    return c;
  }

  #byteFromBase(off: number): number {
    return this.#generator && off < this.#generatedEnd ? this.#generator(off) & 0xff : 0;
  }

  #chunk(index: number, create: boolean): Buffer | undefined {
    let c = this.#chunks.get(index);
    if (!c && create) {
      c = Buffer.alloc(CHUNK);
      if (this.#generator) for (let i = 0; i < CHUNK; i++) c[i] = this.#byteFromBase(index * CHUNK + i);
      this.#chunks.set(index, c);
    }
    return c;
  }

  read(offset: number, length: number): Buffer {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / CHUNK);
      const within = pos - index * CHUNK;
      const n = Math.min(CHUNK - within, end - pos);
      const c = this.#chunk(index, false);
      if (c) c.copy(out, pos - offset, within, within + n);
      else if (this.#generator) for (let i = 0; i < n; i++) out[pos - offset + i] = this.#byteFromBase(pos + i);
      pos += n;
    }
    return out;
  }

  write(offset: number, data: Buffer): void {
    for (let done = 0; done < data.length; ) {
      const pos = offset + done;
      const index = Math.floor(pos / CHUNK);
      const within = pos - index * CHUNK;
      const n = Math.min(CHUNK - within, data.length - done);
      data.copy(this.#chunk(index, true) as Buffer, within, done, done + n);
      done += n;
    }
    this.size = Math.max(this.size, offset + data.length);
  }

  truncate(size: number): void {
    if (size < this.size) {
      for (const index of [...this.#chunks.keys()]) {
        if (index * CHUNK >= size) this.#chunks.delete(index);
      }
      const last = this.#chunks.get(Math.floor(size / CHUNK));
      if (last) last.fill(0, size % CHUNK);
      this.#generatedEnd = Math.min(this.#generatedEnd, size);
    }
    this.size = size;
  }

  /** Bytes of memory actually held (for statfs and tests). */
  get heldBytes(): number {
    return this.#chunks.size * CHUNK;
  }
}

interface DirEntryRec {
  name: string;
  node: Node;
  cookie: bigint;
}

interface Node {
  ino: Ino;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  rdev: number;
  nlookup: bigint;
  openCount: number;
  xattrs: Map<string, Buffer>;
  content?: Content;
  target?: string;
  entries?: Map<string, DirEntryRec>;
  nextCookie?: bigint;
  parent?: Node;
}

export interface MemoryFsHooks {
  /** Runs before every op (after argument checks); may await, throw, or wait on ctx.signal. */
  beforeOp?(op: string, ino: Ino, ctx: RequestContext): Promise<void> | void;
}

export interface MemoryFsOptions {
  attrTtlMs?: number;
  entryTtlMs?: number;
  uid?: number;
  gid?: number;
  clock?: Clock;
  /** Largest file size accepted (EFBIG past it). Default 1 TiB (sparse). */
  maxFileBytes?: number;
}

const isDir = (n: Node): boolean => (n.mode & S_IFMT) === S_IFDIR;

export class MemoryFs implements FuseOps {
  hooks: MemoryFsHooks = {};
  readonly #nodes = new Map<Ino, Node>();
  readonly #root: Node;
  readonly #attrTtlMs: number;
  readonly #entryTtlMs: number;
  readonly #clock: Clock;
  readonly #maxFileBytes: number;
  readonly #handles = new Map<Fh, Node>();
  #nextIno = 2n;
  #nextFh = 1n;

  constructor(o: MemoryFsOptions = {}) {
    this.#attrTtlMs = o.attrTtlMs ?? 1000;
    this.#entryTtlMs = o.entryTtlMs ?? 1000;
    this.#clock = o.clock ?? systemClock;
    this.#maxFileBytes = o.maxFileBytes ?? 2 ** 40;
    this.#root = this.#newNode(ROOT_INO, S_IFDIR | 0o755, o.uid ?? 0, o.gid ?? 0);
    this.#root.nlink = 2;
    this.#root.nlookup = 1n;
    this.#root.parent = this.#root;
  }

  // ---- setup helpers for tests and demos (paths relative to the root, '/'-separated) ----

  addDir(path: string): void {
    const { parent, name } = this.#resolveParent(path);
    const n = this.#newNode(asIno(this.#nextIno++), S_IFDIR | 0o755, this.#root.uid, this.#root.gid);
    this.#link(parent, name, n);
  }

  addFile(path: string, content: Buffer | { size: number; generator: (offset: number) => number }, mode = 0o644): void {
    const { parent, name } = this.#resolveParent(path);
    const n = this.#newNode(asIno(this.#nextIno++), S_IFREG | mode, this.#root.uid, this.#root.gid);
    if (Buffer.isBuffer(content)) {
      n.content = new Content();
      n.content.write(0, content);
    } else {
      n.content = Content.generated(content.size, content.generator);
    }
    this.#link(parent, name, n);
  }

  /** Live nodes (for leak checks in tests). */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  lookupCount(ino: Ino): bigint | undefined {
    return this.#nodes.get(ino)?.nlookup;
  }

  #resolveParent(path: string): { parent: Node; name: string } {
    const parts = path.split('/').filter((p) => p !== '');
    const name = parts.pop();
    if (!name) throw new Error(`bad path ${path}`);
    let dir = this.#root;
    for (const p of parts) {
      const e = dir.entries?.get(p);
      if (!e || !isDir(e.node)) throw new Error(`no directory ${p} in ${path}`);
      dir = e.node;
    }
    if (dir.entries?.has(name)) throw new Error(`${path} exists`);
    return { parent: dir, name };
  }

  // ---- internals ----

  #newNode(ino: Ino, mode: number, uid: number, gid: number): Node {
    const now = this.#clock.wallNow();
    const n: Node = { ino, mode, uid, gid, nlink: 1, atimeMs: now, mtimeMs: now, ctimeMs: now, rdev: 0, nlookup: 0n, openCount: 0, xattrs: new Map() };
    if (isDir(n)) {
      n.entries = new Map();
      n.nextCookie = 3n; // 1 and 2 are the cookies after "." and ".."
      n.nlink = 2;
    }
    this.#nodes.set(ino, n);
    return n;
  }

  #node(ino: Ino): Node {
    const n = this.#nodes.get(ino);
    if (!n) throw new FsError(Errno.ESTALE, `unknown inode ${ino}`);
    return n;
  }

  #dir(ino: Ino): Node {
    const n = this.#node(ino);
    if (!isDir(n)) throw new FsError(Errno.ENOTDIR);
    return n;
  }

  #checkName(name: string): void {
    if (name === '' || name.includes('/') || name.includes('\0')) throw new FsError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
  }

  #link(parent: Node, name: string, node: Node): void {
    const entries = parent.entries as Map<string, DirEntryRec>;
    const cookie = parent.nextCookie as bigint;
    parent.nextCookie = cookie + 1n;
    entries.set(name, { name, node, cookie });
    if (isDir(node)) {
      node.parent = parent;
      parent.nlink++;
    }
    const now = this.#clock.wallNow();
    parent.mtimeMs = now;
    parent.ctimeMs = now;
  }

  #unlinkEntry(parent: Node, name: string): Node {
    const entries = parent.entries as Map<string, DirEntryRec>;
    const e = entries.get(name) as DirEntryRec;
    entries.delete(name);
    const now = this.#clock.wallNow();
    parent.mtimeMs = now;
    parent.ctimeMs = now;
    const n = e.node;
    if (isDir(n)) {
      parent.nlink--;
      n.nlink = 0;
    } else {
      n.nlink--;
    }
    n.ctimeMs = now;
    this.#maybeFree(n);
    return n;
  }

  #maybeFree(n: Node): void {
    if (n === this.#root || n.nlookup > 0n || n.openCount > 0 || n.nlink > 0) return;
    this.#nodes.delete(n.ino);
  }

  #attr(n: Node): Attr {
    const size = n.content ? n.content.size : n.target !== undefined ? Buffer.byteLength(n.target) : isDir(n) ? 4096 : 0;
    return { ino: n.ino, size, blocks: Math.ceil((n.content?.heldBytes ?? size) / 512), atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: n.rdev };
  }

  #entry(n: Node): EntryOut {
    n.nlookup += 1n;
    return { nodeid: n.ino, generation: 0n, entryTtlMs: this.#entryTtlMs, attrTtlMs: this.#attrTtlMs, attr: this.#attr(n) };
  }

  async #before(op: string, ino: Ino, ctx: RequestContext): Promise<void> {
    if (this.hooks.beforeOp) await this.hooks.beforeOp(op, ino, ctx);
  }

  #mayAccess(n: Node, ctx: RequestContext, mask: number): boolean {
    if (ctx.uid === 0) return (mask & X_OK) === 0 || isDir(n) || (n.mode & 0o111) !== 0;
    const bits = ctx.uid === n.uid ? (n.mode >> 6) & 7 : ctx.gid === n.gid ? (n.mode >> 3) & 7 : n.mode & 7;
    return (bits & mask) === mask;
  }

  #newChild(ctx: RequestContext, parent: Node, name: string, mode: number, umask: number): Node {
    this.#checkName(name);
    if ((parent.entries as Map<string, DirEntryRec>).has(name)) throw new FsError(Errno.EEXIST);
    if (parent.nlink === 0) throw new FsError(Errno.ENOENT, 'parent directory was removed');
    const n = this.#newNode(asIno(this.#nextIno++), mode & ~(umask & 0o777), ctx.uid, ctx.gid);
    this.#link(parent, name, n);
    return n;
  }

  // ---- FuseOps ----

  async lookup(ctx: RequestContext, parent: Ino, name: string): Promise<EntryOut> {
    await this.#before('lookup', parent, ctx);
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
    const dir = this.#dir(parent);
    if (name === '.') return this.#entry(dir);
    if (name === '..') return this.#entry(dir.parent ?? this.#root);
    const e = dir.entries?.get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    return this.#entry(e.node);
  }

  forget(ino: Ino, nlookup: bigint): void {
    const n = this.#nodes.get(ino);
    if (!n) return;
    n.nlookup = nlookup > n.nlookup ? 0n : n.nlookup - nlookup;
    this.#maybeFree(n);
  }

  async getattr(ctx: RequestContext, ino: Ino): Promise<AttrOut> {
    await this.#before('getattr', ino, ctx);
    return { attrTtlMs: this.#attrTtlMs, attr: this.#attr(this.#node(ino)) };
  }

  async setattr(ctx: RequestContext, ino: Ino, a: SetattrIn): Promise<AttrOut> {
    await this.#before('setattr', ino, ctx);
    const n = this.#node(ino);
    const now = this.#clock.wallNow();
    if (a.mode !== undefined) n.mode = (n.mode & S_IFMT) | (a.mode & 0o7777);
    if (a.uid !== undefined) n.uid = a.uid;
    if (a.gid !== undefined) n.gid = a.gid;
    if (a.size !== undefined) {
      if (isDir(n)) throw new FsError(Errno.EISDIR);
      if (!n.content) throw new FsError(Errno.EINVAL);
      if (a.size > this.#maxFileBytes) throw new FsError(Errno.EFBIG);
      n.content.truncate(a.size);
      n.mtimeMs = now;
    }
    if (a.atime !== undefined) n.atimeMs = a.atime === 'now' ? now : a.atime;
    if (a.mtime !== undefined) n.mtimeMs = a.mtime === 'now' ? now : a.mtime;
    n.ctimeMs = a.ctime ?? now;
    return { attrTtlMs: this.#attrTtlMs, attr: this.#attr(n) };
  }

  async readlink(ctx: RequestContext, ino: Ino): Promise<string> {
    await this.#before('readlink', ino, ctx);
    const n = this.#node(ino);
    if (n.target === undefined) throw new FsError(Errno.EINVAL);
    return n.target;
  }

  async symlink(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<EntryOut> {
    await this.#before('symlink', parent, ctx);
    const n = this.#newChild(ctx, this.#dir(parent), name, S_IFLNK | 0o777, 0);
    n.target = target;
    return this.#entry(n);
  }

  async mknod(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut> {
    await this.#before('mknod', parent, ctx);
    const n = this.#newChild(ctx, this.#dir(parent), name, (mode & S_IFMT) === 0 ? S_IFREG | mode : mode, umask);
    n.rdev = rdev;
    // FIFOs, sockets and devices are typed nodes without content.
    if ((n.mode & S_IFMT) === S_IFREG) n.content = new Content();
    return this.#entry(n);
  }

  async mkdir(ctx: RequestContext, parent: Ino, name: string, mode: number, umask: number): Promise<EntryOut> {
    await this.#before('mkdir', parent, ctx);
    return this.#entry(this.#newChild(ctx, this.#dir(parent), name, S_IFDIR | (mode & 0o7777), umask));
  }

  async unlink(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    await this.#before('unlink', parent, ctx);
    const dir = this.#dir(parent);
    const e = dir.entries?.get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    if (isDir(e.node)) throw new FsError(Errno.EISDIR);
    this.#unlinkEntry(dir, name);
  }

  async rmdir(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    await this.#before('rmdir', parent, ctx);
    const dir = this.#dir(parent);
    if (name === '.') throw new FsError(Errno.EINVAL);
    const e = dir.entries?.get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    if (!isDir(e.node)) throw new FsError(Errno.ENOTDIR);
    if ((e.node.entries as Map<string, DirEntryRec>).size > 0) throw new FsError(Errno.ENOTEMPTY);
    this.#unlinkEntry(dir, name);
  }

  async rename(ctx: RequestContext, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    await this.#before('rename', parent, ctx);
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError(Errno.EINVAL, 'unsupported rename flags');
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) throw new FsError(Errno.EINVAL);
    this.#checkName(newName);
    const from = this.#dir(parent);
    const to = this.#dir(newParent);
    const src = from.entries?.get(name);
    if (!src) throw new FsError(Errno.ENOENT);
    const dst = to.entries?.get(newName);
    if (from === to && name === newName) return;
    if (isDir(src.node)) {
      // Moving a directory into its own subtree would detach it.
      for (let d: Node | undefined = to; d; d = d === this.#root ? undefined : d.parent) {
        if (d === src.node) throw new FsError(Errno.EINVAL, 'cannot move a directory into itself');
      }
    }
    if (flags & RENAME_EXCHANGE) {
      if (!dst) throw new FsError(Errno.ENOENT);
      if (isDir(dst.node)) {
        for (let d: Node | undefined = from; d; d = d === this.#root ? undefined : d.parent) {
          if (d === dst.node) throw new FsError(Errno.EINVAL);
        }
      }
      const a = src.node;
      const b = dst.node;
      src.node = b;
      dst.node = a;
      if (isDir(a) && from !== to) {
        a.parent = to;
        from.nlink--;
        to.nlink++;
      }
      if (isDir(b) && from !== to) {
        b.parent = from;
        to.nlink--;
        from.nlink++;
      }
      const now = this.#clock.wallNow();
      for (const n of [from, to, a, b]) n.ctimeMs = now;
      return;
    }
    if (dst) {
      if (flags & RENAME_NOREPLACE) throw new FsError(Errno.EEXIST);
      if (isDir(src.node) && !isDir(dst.node)) throw new FsError(Errno.ENOTDIR);
      if (!isDir(src.node) && isDir(dst.node)) throw new FsError(Errno.EISDIR);
      if (isDir(dst.node) && (dst.node.entries as Map<string, DirEntryRec>).size > 0) throw new FsError(Errno.ENOTEMPTY);
      if (dst.node === src.node) return; // hard links to the same inode: POSIX says do nothing
      this.#unlinkEntry(to, newName);
    }
    const node = src.node;
    (from.entries as Map<string, DirEntryRec>).delete(name);
    if (isDir(node)) from.nlink--;
    this.#link(to, newName, node);
    const now = this.#clock.wallNow();
    from.mtimeMs = now;
    from.ctimeMs = now;
    node.ctimeMs = now;
  }

  async link(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<EntryOut> {
    await this.#before('link', ino, ctx);
    const n = this.#node(ino);
    if (isDir(n)) throw new FsError(Errno.EPERM);
    const dir = this.#dir(newParent);
    this.#checkName(newName);
    if (dir.entries?.has(newName)) throw new FsError(Errno.EEXIST);
    n.nlink++;
    this.#link(dir, newName, n);
    n.ctimeMs = this.#clock.wallNow();
    return this.#entry(n);
  }

  #openHandle(n: Node): Fh {
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, n);
    n.openCount++;
    return fh;
  }

  async open(ctx: RequestContext, ino: Ino, _flags: number): Promise<OpenOut> {
    await this.#before('open', ino, ctx);
    const n = this.#node(ino);
    if (isDir(n)) throw new FsError(Errno.EISDIR);
    return { fh: this.#openHandle(n), openFlags: 0 };
  }

  async create(ctx: RequestContext, parent: Ino, name: string, mode: number, _flags: number, umask: number): Promise<CreateOut> {
    await this.#before('create', parent, ctx);
    const n = this.#newChild(ctx, this.#dir(parent), name, S_IFREG | (mode & 0o7777), umask);
    n.content = new Content();
    return { entry: this.#entry(n), open: { fh: this.#openHandle(n), openFlags: 0 } };
  }

  #handle(fh: Fh): Node {
    const n = this.#handles.get(fh);
    if (!n) throw new FsError(Errno.EBADF);
    return n;
  }

  async read(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer> {
    await this.#before('read', ino, ctx);
    const n = this.#handle(fh);
    if (!n.content) throw new FsError(Errno.EINVAL);
    n.atimeMs = this.#clock.wallNow();
    return n.content.read(offset, size);
  }

  async write(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, data: Buffer): Promise<number> {
    await this.#before('write', ino, ctx);
    const n = this.#handle(fh);
    if (!n.content) throw new FsError(Errno.EINVAL);
    if (offset + data.length > this.#maxFileBytes) throw new FsError(Errno.EFBIG);
    n.content.write(offset, data);
    const now = this.#clock.wallNow();
    n.mtimeMs = now;
    n.ctimeMs = now;
    return data.length;
  }

  async flush(ctx: RequestContext, ino: Ino): Promise<void> {
    await this.#before('flush', ino, ctx);
  }

  async fsync(ctx: RequestContext, ino: Ino): Promise<void> {
    await this.#before('fsync', ino, ctx);
  }

  async release(ctx: RequestContext, ino: Ino, fh: Fh): Promise<void> {
    await this.#before('release', ino, ctx);
    const n = this.#handles.get(fh);
    if (!n) return;
    this.#handles.delete(fh);
    n.openCount--;
    this.#maybeFree(n);
  }

  async opendir(ctx: RequestContext, ino: Ino): Promise<OpenOut> {
    await this.#before('opendir', ino, ctx);
    this.#dir(ino);
    return { fh: asFh(0n), openFlags: 0 };
  }

  async readdir(ctx: RequestContext, ino: Ino, _fh: Fh, offset: bigint, sink: DirentSink): Promise<void> {
    await this.#before('readdir', ino, ctx);
    const dir = this.#dir(ino);
    if (offset < 1n && !sink.add({ name: '.', ino: dir.ino, type: DT.DIR, offset: 1n })) return;
    if (offset < 2n && !sink.add({ name: '..', ino: (dir.parent ?? dir).ino, type: DT.DIR, offset: 2n })) return;
    // Entries are in cookie order (Map insertion order; cookies only grow).
    for (const e of (dir.entries as Map<string, DirEntryRec>).values()) {
      if (e.cookie <= offset) continue;
      const d = { name: e.name, ino: e.node.ino, type: direntType(e.node.mode), offset: e.cookie };
      if (sink.plus) {
        const entry: EntryOut = { nodeid: e.node.ino, generation: 0n, entryTtlMs: this.#entryTtlMs, attrTtlMs: this.#attrTtlMs, attr: this.#attr(e.node) };
        if (!sink.add(d, entry)) return;
        e.node.nlookup += 1n;
      } else if (!sink.add(d)) {
        return;
      }
    }
  }

  async releasedir(ctx: RequestContext, ino: Ino): Promise<void> {
    await this.#before('releasedir', ino, ctx);
  }

  async fsyncdir(ctx: RequestContext, ino: Ino): Promise<void> {
    await this.#before('fsyncdir', ino, ctx);
  }

  async statfs(ctx: RequestContext, ino: Ino): Promise<StatfsOut> {
    await this.#before('statfs', ino, ctx);
    let held = 0;
    for (const n of this.#nodes.values()) held += n.content?.heldBytes ?? 0;
    const blocks = 2 ** 30 / 4; // report 1 TiB of 4 KiB blocks
    const used = Math.ceil(held / 4096);
    return { blocks, bfree: blocks - used, bavail: blocks - used, files: 1 << 24, ffree: (1 << 24) - this.#nodes.size, bsize: 4096, namelen: NAME_MAX, frsize: 4096 };
  }

  async access(ctx: RequestContext, ino: Ino, mask: number): Promise<void> {
    await this.#before('access', ino, ctx);
    const n = this.#node(ino);
    if (!this.#mayAccess(n, ctx, mask & (R_OK | W_OK | X_OK))) throw new FsError(Errno.EACCES);
  }

  async getxattr(ctx: RequestContext, ino: Ino, name: string): Promise<Buffer> {
    await this.#before('getxattr', ino, ctx);
    const v = this.#node(ino).xattrs.get(name);
    if (!v) throw new FsError(Errno.ENODATA);
    return v;
  }

  async listxattr(ctx: RequestContext, ino: Ino): Promise<Buffer> {
    await this.#before('listxattr', ino, ctx);
    return Buffer.concat([...this.#node(ino).xattrs.keys()].map((k) => Buffer.from(`${k}\0`)));
  }

  async setxattr(ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    await this.#before('setxattr', ino, ctx);
    const n = this.#node(ino);
    const exists = n.xattrs.has(name);
    if (flags & XATTR_CREATE && exists) throw new FsError(Errno.EEXIST);
    if (flags & XATTR_REPLACE && !exists) throw new FsError(Errno.ENODATA);
    n.xattrs.set(name, Buffer.from(value));
    n.ctimeMs = this.#clock.wallNow();
  }

  async removexattr(ctx: RequestContext, ino: Ino, name: string): Promise<void> {
    await this.#before('removexattr', ino, ctx);
    if (!this.#node(ino).xattrs.delete(name)) throw new FsError(Errno.ENODATA);
  }

  async fallocate(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void> {
    await this.#before('fallocate', ino, ctx);
    if (mode !== 0) throw new FsError(Errno.EOPNOTSUPP);
    const n = this.#handle(fh);
    if (!n.content) throw new FsError(Errno.EINVAL);
    if (offset + length > this.#maxFileBytes) throw new FsError(Errno.EFBIG);
    if (offset + length > n.content.size) n.content.truncate(offset + length);
  }

  async lseek(ctx: RequestContext, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number> {
    await this.#before('lseek', ino, ctx);
    const size = this.#handle(fh).content?.size ?? 0;
    if (offset >= size) throw new FsError(Errno.ENXIO);
    if (whence === SEEK_DATA) return offset;
    if (whence === SEEK_HOLE) return size;
    throw new FsError(Errno.EINVAL);
  }
}
