// MemoryFs: a complete in-memory read-write filesystem implementing the core's FileSystem. It is
// the reference model: the conformance suite runs the same POSIX scenarios against it directly
// and through a mount, and `fusestream memfs` serves it. So it implements every op with the
// errno POSIX names rather than the minimum.
//
// Invariants:
// - Kernel lookup counts: +1 for each entry reply (lookup/mkdir/mknod/create/symlink/link)
//   and each READDIRPLUS entry the sink accepted; FORGET subtracts. A node is freed when its
//   lookup count is 0, it has no open handles and no links (nlink 0). The root never goes.
// - Each directory hands out a cookie per entry from a counter that only grows (1 and 2 are
//   "." and ".."). A READDIR offset is the last cookie the kernel saw, so a listing resumes
//   after it whatever changed in between: an entry added (or renamed in) later gets a later
//   cookie and shows up at the end, a removed one is skipped, none is listed twice.
// - Entries are kept in cookie order (removed ones are tombstoned and compacted away), so a
//   READDIR call finds its starting point by binary search: paging a 10,000-entry directory
//   costs O(log n) per call, not O(n).
// - Large generated files (`addFile(path, {size, generator})`) are virtual: reads compute
//   bytes; a write materialises only the 64 KiB chunks it touches.
// - st_blocks follows "data everywhere" (ceil(size/512)), the same answer lseek gives.
// No locks: every mutation is synchronous (hooks may await before it, never during it), so a
// request sees a consistent tree and interleaving only happens between ops.
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { asFh, asIno, ROOT_INO, type Fh, type Ino } from '../base/ids.js';
import { systemClock, type Clock } from '../base/clock.js';
import { DT, O_ACCMODE, O_RDWR, O_TRUNC, O_WRONLY, RENAME_EXCHANGE, RENAME_NOREPLACE, R_OK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, W_OK, X_OK, direntType } from '../base/posix.js';
import type { Attr, AttrOut, Dirent, DirentSink, EntryOut, SetattrIn, StatfsOut } from '../base/fs-types.js';
import type { CreateReply, FileSystem, OpContext, OpenReply } from './filesystem.js';

const CHUNK = 64 * 1024;
const NAME_MAX = 255;
const PATH_MAX = 4096;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 64 * 1024;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const BLOCK = 4096;

/** File contents as sparse 64 KiB chunks over an optional generator for untouched bytes. */
class Content {
  size = 0;
  readonly #chunks = new Map<number, Buffer>();
  #generator: ((offset: number) => number) | undefined;
  /** Bytes at or past this offset read as zero where no chunk holds them (after a truncate). */
  #generatedEnd = 0;

  static generated(size: number, generator: (offset: number) => number): Content {
    const c = new Content();
    c.size = size;
    c.#generator = generator;
    c.#generatedEnd = size;
    return c;
  }

  #baseByte(off: number): number {
    return this.#generator && off < this.#generatedEnd ? this.#generator(off) & 0xff : 0;
  }

  #fillBase(out: Buffer, at: number, pos: number, n: number): void {
    if (!this.#generator || pos >= this.#generatedEnd) return; // out is zeroed already
    const m = Math.min(n, this.#generatedEnd - pos);
    for (let i = 0; i < m; i++) out[at + i] = this.#baseByte(pos + i);
  }

  #chunkForWrite(index: number): Buffer {
    let c = this.#chunks.get(index);
    if (!c) {
      c = Buffer.alloc(CHUNK);
      this.#fillBase(c, 0, index * CHUNK, CHUNK);
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
      const c = this.#chunks.get(index);
      if (c) c.copy(out, pos - offset, within, within + n);
      else this.#fillBase(out, pos - offset, pos, n);
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
      data.copy(this.#chunkForWrite(index), within, done, done + n);
      done += n;
    }
    this.size = Math.max(this.size, offset + data.length);
  }

  truncate(size: number): void {
    if (size < this.size) {
      for (const index of [...this.#chunks.keys()]) {
        if (index * CHUNK >= size) this.#chunks.delete(index);
      }
      // The tail of the last chunk must read as zeros if the file grows again.
      this.#chunks.get(Math.floor(size / CHUNK))?.fill(0, size % CHUNK);
      this.#generatedEnd = Math.min(this.#generatedEnd, size);
    }
    this.size = size;
  }

  /** Bytes of memory actually held. */
  get heldBytes(): number {
    return this.#chunks.size * CHUNK;
  }
}

interface DirEntryRec {
  readonly name: string;
  node: Node;
  readonly cookie: bigint;
  removed: boolean;
}

/** A directory's entries: by name, and in cookie order for READDIR. */
class DirEntries {
  readonly #byName = new Map<string, DirEntryRec>();
  /** Ascending cookies; may hold removed records until the next compaction. */
  #order: DirEntryRec[] = [];
  #removed = 0;
  /** 1 and 2 are the cookies after "." and "..". */
  #nextCookie = 3n;

  get size(): number {
    return this.#byName.size;
  }

  get(name: string): DirEntryRec | undefined {
    return this.#byName.get(name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  add(name: string, node: Node): void {
    const rec: DirEntryRec = { name, node, cookie: this.#nextCookie++, removed: false };
    this.#byName.set(name, rec);
    this.#order.push(rec);
  }

  remove(name: string): DirEntryRec | undefined {
    const rec = this.#byName.get(name);
    if (!rec) return undefined;
    this.#byName.delete(name);
    rec.removed = true;
    this.#removed++;
    if (this.#removed > 64 && this.#removed * 2 > this.#order.length) {
      this.#order = this.#order.filter((r) => !r.removed);
      this.#removed = 0;
    }
    return rec;
  }

  /** Live entries with a cookie greater than `cookie`, in cookie order. */
  *after(cookie: bigint): Generator<DirEntryRec> {
    const order = this.#order;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((order[mid] as DirEntryRec).cookie <= cookie) lo = mid + 1;
      else hi = mid;
    }
    // `order` is not replaced while we iterate: compaction only happens inside a mutation,
    // and the caller's loop is synchronous.
    for (let i = lo; i < order.length; i++) {
      const rec = order[i] as DirEntryRec;
      if (!rec.removed) yield rec;
    }
  }
}

interface Node {
  readonly ino: Ino;
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
  readonly xattrs: Map<string, Buffer>;
  content?: Content;
  target?: string;
  dir?: DirEntries;
  /** For directories: the directory holding it (the root is its own parent). */
  parent?: Node;
}

export interface MemoryFsHooks {
  /**
   * Runs before every op except forget (after argument checks that need no state). It may
   * await, throw (that error is the op's answer), or wait until `ctx.signal` fires.
   */
  beforeOp?(op: string, ino: Ino, ctx: OpContext): Promise<void> | void;
}

export interface MemoryFsOptions {
  attrTtlMs?: number;
  entryTtlMs?: number;
  /** Owner of the root and of files added with addFile/addDir. */
  uid?: number;
  gid?: number;
  clock?: Clock;
  /** Largest file size accepted (EFBIG past it). Default 1 TiB (sparse). */
  maxFileBytes?: number;
  hooks?: MemoryFsHooks;
}

export type GeneratedContent = { size: number; generator: (offset: number) => number };

const isDir = (n: Node): boolean => (n.mode & S_IFMT) === S_IFDIR;
const dirOf = (n: Node): DirEntries => {
  if (!n.dir) throw new FsError(Errno.ENOTDIR);
  return n.dir;
};

export class MemoryFs implements FileSystem {
  /** Replaceable at any time (tests install hooks after construction). */
  hooks: MemoryFsHooks;
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
    this.hooks = o.hooks ?? {};
    this.#attrTtlMs = o.attrTtlMs ?? 1000;
    this.#entryTtlMs = o.entryTtlMs ?? 1000;
    this.#clock = o.clock ?? systemClock;
    this.#maxFileBytes = o.maxFileBytes ?? 2 ** 40;
    this.#root = this.#newNode(ROOT_INO, S_IFDIR | 0o755, o.uid ?? 0, o.gid ?? 0);
    // The kernel holds one reference on the root for the life of the mount; it is never freed.
    this.#root.nlookup = 1n;
    this.#root.parent = this.#root;
  }

  // ---- setup helpers for tests and demos (paths relative to the root, '/'-separated) ----

  /** Adds a directory; its parents must exist. Returns its inode. */
  addDir(path: string, mode = 0o755): Ino {
    const { parent, name } = this.#resolveParent(path);
    const n = this.#newNode(this.#allocIno(), S_IFDIR | mode, this.#root.uid, this.#root.gid);
    this.#link(parent, name, n);
    return n.ino;
  }

  /**
   * Adds a file with the given bytes, or a virtual one whose byte at offset i is
   * `generator(i) & 0xff`: it takes no memory until written to. Returns its inode.
   */
  addFile(path: string, content: Buffer | GeneratedContent, mode = 0o644): Ino {
    const { parent, name } = this.#resolveParent(path);
    const n = this.#newNode(this.#allocIno(), S_IFREG | mode, this.#root.uid, this.#root.gid);
    if (Buffer.isBuffer(content)) {
      n.content = new Content();
      n.content.write(0, content);
    } else {
      n.content = Content.generated(content.size, content.generator);
    }
    this.#link(parent, name, n);
    return n.ino;
  }

  /** Live nodes (for leak checks in tests). */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** The kernel's lookup count for a live node, undefined once it was freed. */
  lookupCount(ino: Ino): bigint | undefined {
    return this.#nodes.get(ino)?.nlookup;
  }

  /** Bytes of file content actually held in memory (generated bytes cost nothing until written). */
  heldBytes(ino?: Ino): number {
    if (ino !== undefined) return this.#nodes.get(ino)?.content?.heldBytes ?? 0;
    let held = 0;
    for (const n of this.#nodes.values()) held += n.content?.heldBytes ?? 0;
    return held;
  }

  /** Open file handles (for leak checks in tests). */
  get openHandleCount(): number {
    return this.#handles.size;
  }

  /** The directory that holds `path` (setup helpers only: they throw plain errors). */
  #resolveParent(path: string): { parent: Node; name: string } {
    const parts = path.split('/').filter((p) => p !== '');
    const name = parts.pop();
    if (!name) throw new Error(`bad path ${JSON.stringify(path)}`);
    let dir = this.#root;
    for (const p of parts) {
      const e = dir.dir?.get(p);
      if (!e?.node.dir) throw new Error(`no directory ${p} in ${path}`);
      dir = e.node;
    }
    if (dir.dir?.has(name)) throw new Error(`${path} exists`);
    return { parent: dir, name };
  }

  // ---- internals ----

  #allocIno(): Ino {
    return asIno(this.#nextIno++);
  }

  #newNode(ino: Ino, mode: number, uid: number, gid: number): Node {
    const now = this.#clock.wallNow();
    const n: Node = { ino, mode, uid, gid, nlink: 1, atimeMs: now, mtimeMs: now, ctimeMs: now, rdev: 0, nlookup: 0n, openCount: 0, xattrs: new Map() };
    if (isDir(n)) {
      n.dir = new DirEntries();
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
    if (!n.dir) throw new FsError(Errno.ENOTDIR);
    return n;
  }

  static #checkName(name: string): void {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw new FsError(Errno.EINVAL, `bad name ${JSON.stringify(name)}`);
    }
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
  }

  #touch(...nodes: Node[]): void {
    const now = this.#clock.wallNow();
    for (const n of nodes) {
      n.mtimeMs = now;
      n.ctimeMs = now;
    }
  }

  #changed(...nodes: Node[]): void {
    const now = this.#clock.wallNow();
    for (const n of nodes) n.ctimeMs = now;
  }

  /** Adds `name` → `node` in `parent` (a new cookie); node's own nlink is the caller's business. */
  #link(parent: Node, name: string, node: Node): void {
    dirOf(parent).add(name, node);
    if (node.dir) {
      node.parent = parent;
      parent.nlink++;
    }
    this.#touch(parent);
  }

  /** Removes `name` from `parent` and drops one link of its node; frees it if nothing holds it. */
  #unlinkEntry(parent: Node, name: string): void {
    const rec = dirOf(parent).remove(name);
    if (!rec) return;
    const n = rec.node;
    if (n.dir) {
      parent.nlink--;
      n.nlink = 0;
    } else {
      n.nlink--;
    }
    this.#touch(parent);
    this.#changed(n);
    this.#maybeFree(n);
  }

  #maybeFree(n: Node): void {
    if (n === this.#root || n.nlookup > 0n || n.openCount > 0 || n.nlink > 0) return;
    this.#nodes.delete(n.ino);
  }

  #attr(n: Node): Attr {
    const size = n.content ? n.content.size : n.target !== undefined ? Buffer.byteLength(n.target) : n.dir ? BLOCK : 0;
    return {
      ino: n.ino,
      size,
      blocks: Math.ceil(size / BLOCK) * (BLOCK / 512),
      atimeMs: n.atimeMs,
      mtimeMs: n.mtimeMs,
      ctimeMs: n.ctimeMs,
      mode: n.mode,
      nlink: n.nlink,
      uid: n.uid,
      gid: n.gid,
      rdev: n.rdev,
      blksize: BLOCK,
    };
  }

  #entryOut(n: Node, nodeid: Ino = n.ino): EntryOut {
    return { nodeid, generation: 0n, entryTtlMs: this.#entryTtlMs, attrTtlMs: this.#attrTtlMs, attr: this.#attr(n) };
  }

  /** An entry reply: the kernel takes one lookup reference. */
  #entry(n: Node): EntryOut {
    n.nlookup += 1n;
    return this.#entryOut(n);
  }

  async #before(op: string, ino: Ino, ctx: OpContext): Promise<void> {
    const hooks = this.hooks;
    if (hooks.beforeOp) await hooks.beforeOp(op, ino, ctx);
  }

  static #mayAccess(n: Node, ctx: OpContext, mask: number): boolean {
    // root passes every check except execute, which needs some x bit on a non-directory.
    if (ctx.uid === 0) return (mask & X_OK) === 0 || isDir(n) || (n.mode & 0o111) !== 0;
    const bits = ctx.uid === n.uid ? (n.mode >> 6) & 7 : ctx.gid === n.gid ? (n.mode >> 3) & 7 : n.mode & 7;
    return (bits & mask) === mask;
  }

  #newChild(ctx: OpContext, parent: Node, name: string, mode: number, umask: number): Node {
    MemoryFs.#checkName(name);
    if (dirOf(parent).has(name)) throw new FsError(Errno.EEXIST);
    if (parent.nlink === 0) throw new FsError(Errno.ENOENT, 'parent directory was removed');
    const n = this.#newNode(this.#allocIno(), mode & ~(umask & 0o777), ctx.uid, ctx.gid);
    this.#link(parent, name, n);
    return n;
  }

  #handle(fh: Fh): Node {
    const n = this.#handles.get(fh);
    if (!n) throw new FsError(Errno.EBADF);
    return n;
  }

  #fileHandle(fh: Fh): { node: Node; content: Content } {
    const node = this.#handle(fh);
    if (!node.content) throw new FsError(Errno.EINVAL);
    return { node, content: node.content };
  }

  #openHandle(n: Node): Fh {
    const fh = asFh(this.#nextFh++);
    this.#handles.set(fh, n);
    n.openCount++;
    return fh;
  }

  #checkSize(bytes: number): void {
    if (bytes > this.#maxFileBytes) throw new FsError(Errno.EFBIG);
  }

  /** Whether `ancestor` is `d` or one of its parents. */
  #isAncestor(ancestor: Node, d: Node): boolean {
    for (let cur: Node | undefined = d; cur; cur = cur === this.#root ? undefined : cur.parent) {
      if (cur === ancestor) return true;
    }
    return false;
  }

  // ---- FileSystem ----

  async lookup(ctx: OpContext, parent: Ino, name: string): Promise<EntryOut> {
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
    await this.#before('lookup', parent, ctx);
    const dir = this.#dir(parent);
    if (name === '.') return this.#entry(dir);
    if (name === '..') return this.#entry(dir.parent ?? this.#root);
    const e = dirOf(dir).get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    return this.#entry(e.node);
  }

  forget(ino: Ino, nlookup: bigint): void {
    const n = this.#nodes.get(ino);
    if (!n) return;
    n.nlookup = nlookup > n.nlookup ? 0n : n.nlookup - nlookup;
    this.#maybeFree(n);
  }

  async getattr(ctx: OpContext, ino: Ino): Promise<AttrOut> {
    await this.#before('getattr', ino, ctx);
    return { attrTtlMs: this.#attrTtlMs, attr: this.#attr(this.#node(ino)) };
  }

  async setattr(ctx: OpContext, ino: Ino, a: SetattrIn): Promise<AttrOut> {
    await this.#before('setattr', ino, ctx);
    const n = this.#node(ino);
    if (a.size !== undefined) {
      if (n.dir) throw new FsError(Errno.EISDIR);
      if (!n.content) throw new FsError(Errno.EINVAL);
      this.#checkSize(a.size);
    }
    const now = this.#clock.wallNow();
    if (a.mode !== undefined) n.mode = (n.mode & S_IFMT) | (a.mode & 0o7777);
    if (a.uid !== undefined) n.uid = a.uid;
    if (a.gid !== undefined) n.gid = a.gid;
    if (a.size !== undefined && n.content) {
      // POSIX: truncate updates mtime and ctime even when the size does not change.
      n.content.truncate(a.size);
      n.mtimeMs = now;
    }
    if (a.atime !== undefined) n.atimeMs = a.atime === 'now' ? now : a.atime;
    if (a.mtime !== undefined) n.mtimeMs = a.mtime === 'now' ? now : a.mtime;
    n.ctimeMs = a.ctime ?? now;
    return { attrTtlMs: this.#attrTtlMs, attr: this.#attr(n) };
  }

  async readlink(ctx: OpContext, ino: Ino): Promise<string> {
    await this.#before('readlink', ino, ctx);
    const n = this.#node(ino);
    if (n.target === undefined) throw new FsError(Errno.EINVAL);
    n.atimeMs = this.#clock.wallNow();
    return n.target;
  }

  async symlink(ctx: OpContext, parent: Ino, name: string, target: string): Promise<EntryOut> {
    await this.#before('symlink', parent, ctx);
    if (target === '') throw new FsError(Errno.ENOENT);
    if (Buffer.byteLength(target) >= PATH_MAX) throw new FsError(Errno.ENAMETOOLONG);
    const n = this.#newChild(ctx, this.#dir(parent), name, S_IFLNK | 0o777, 0);
    n.target = target;
    return this.#entry(n);
  }

  async mknod(ctx: OpContext, parent: Ino, name: string, mode: number, rdev: number, umask: number): Promise<EntryOut> {
    await this.#before('mknod', parent, ctx);
    const type = mode & S_IFMT;
    if (type === S_IFDIR || type === S_IFLNK) throw new FsError(Errno.EINVAL);
    const n = this.#newChild(ctx, this.#dir(parent), name, type === 0 ? S_IFREG | mode : mode, umask);
    n.rdev = rdev;
    // FIFOs, sockets and devices are typed nodes without content.
    if ((n.mode & S_IFMT) === S_IFREG) n.content = new Content();
    return this.#entry(n);
  }

  async mkdir(ctx: OpContext, parent: Ino, name: string, mode: number, umask: number): Promise<EntryOut> {
    await this.#before('mkdir', parent, ctx);
    return this.#entry(this.#newChild(ctx, this.#dir(parent), name, S_IFDIR | (mode & 0o7777), umask));
  }

  async unlink(ctx: OpContext, parent: Ino, name: string): Promise<void> {
    await this.#before('unlink', parent, ctx);
    const dir = this.#dir(parent);
    const e = dirOf(dir).get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    if (e.node.dir) throw new FsError(Errno.EISDIR);
    this.#unlinkEntry(dir, name);
  }

  async rmdir(ctx: OpContext, parent: Ino, name: string): Promise<void> {
    await this.#before('rmdir', parent, ctx);
    const dir = this.#dir(parent);
    if (name === '.') throw new FsError(Errno.EINVAL);
    if (name === '..') throw new FsError(Errno.ENOTEMPTY);
    const e = dirOf(dir).get(name);
    if (!e) throw new FsError(Errno.ENOENT);
    if (!e.node.dir) throw new FsError(Errno.ENOTDIR);
    if (e.node.dir.size > 0) throw new FsError(Errno.ENOTEMPTY);
    this.#unlinkEntry(dir, name);
  }

  async rename(ctx: OpContext, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    await this.#before('rename', parent, ctx);
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError(Errno.EINVAL, 'unsupported rename flags');
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new FsError(Errno.EINVAL);
    MemoryFs.#checkName(newName);
    const from = this.#dir(parent);
    const to = this.#dir(newParent);
    const src = dirOf(from).get(name);
    if (!src) throw new FsError(Errno.ENOENT);
    const dst = dirOf(to).get(newName);
    if (flags & RENAME_EXCHANGE && !dst) throw new FsError(Errno.ENOENT);
    if (flags & RENAME_NOREPLACE && dst) throw new FsError(Errno.EEXIST);
    if (from === to && name === newName) return;
    const a = src.node;
    // Moving a directory into its own subtree would detach it from the tree.
    if (a.dir && this.#isAncestor(a, to)) throw new FsError(Errno.EINVAL, 'cannot move a directory into itself');

    if (flags & RENAME_EXCHANGE) {
      const b = (dst as DirEntryRec).node;
      if (b.dir && this.#isAncestor(b, from)) throw new FsError(Errno.EINVAL, 'cannot move a directory into itself');
      // Both names stay where they are (same cookies); only the nodes they point at swap.
      src.node = b;
      (dst as DirEntryRec).node = a;
      if (from !== to) {
        if (a.dir) {
          a.parent = to;
          from.nlink--;
          to.nlink++;
        }
        if (b.dir) {
          b.parent = from;
          to.nlink--;
          from.nlink++;
        }
      }
      this.#touch(from, to);
      this.#changed(a, b);
      return;
    }

    if (dst) {
      const b = dst.node;
      if (b === a) return; // two hard links to one inode: POSIX says do nothing
      if (a.dir && !b.dir) throw new FsError(Errno.ENOTDIR);
      if (!a.dir && b.dir) throw new FsError(Errno.EISDIR);
      if (b.dir && b.dir.size > 0) throw new FsError(Errno.ENOTEMPTY);
      this.#unlinkEntry(to, newName);
    }
    dirOf(from).remove(name);
    if (a.dir) from.nlink--;
    // A new cookie in the target directory: a listing in progress there sees it at the end.
    this.#link(to, newName, a);
    this.#touch(from);
    this.#changed(a);
  }

  async link(ctx: OpContext, ino: Ino, newParent: Ino, newName: string): Promise<EntryOut> {
    await this.#before('link', ino, ctx);
    const n = this.#node(ino);
    if (n.dir) throw new FsError(Errno.EPERM);
    if (n.nlink === 0) throw new FsError(Errno.ENOENT, 'cannot link a removed file');
    const dir = this.#dir(newParent);
    MemoryFs.#checkName(newName);
    if (dirOf(dir).has(newName)) throw new FsError(Errno.EEXIST);
    if (dir.nlink === 0) throw new FsError(Errno.ENOENT, 'target directory was removed');
    n.nlink++;
    this.#link(dir, newName, n);
    this.#changed(n);
    return this.#entry(n);
  }

  async open(ctx: OpContext, ino: Ino, flags: number): Promise<OpenReply> {
    await this.#before('open', ino, ctx);
    const n = this.#node(ino);
    if (n.dir) throw new FsError(Errno.EISDIR);
    const acc = flags & O_ACCMODE;
    // As open(2): O_TRUNC needs write permission whatever the access mode.
    const want = (acc === O_WRONLY ? W_OK : acc === O_RDWR ? R_OK | W_OK : R_OK) | (flags & O_TRUNC ? W_OK : 0);
    if (!MemoryFs.#mayAccess(n, ctx, want)) throw new FsError(Errno.EACCES);
    // Only sent with FUSE_ATOMIC_O_TRUNC; otherwise the kernel truncates through SETATTR.
    if (flags & O_TRUNC && n.content && n.content.size > 0) {
      n.content.truncate(0);
      this.#touch(n);
    }
    return { fh: this.#openHandle(n)};
  }

  async create(ctx: OpContext, parent: Ino, name: string, mode: number, _flags: number, umask: number): Promise<CreateReply> {
    await this.#before('create', parent, ctx);
    // O_EXCL is the kernel's: it only sends CREATE after a negative lookup, so an existing
    // name here is a race and EEXIST is the right answer either way.
    const n = this.#newChild(ctx, this.#dir(parent), name, S_IFREG | (mode & 0o7777), umask);
    n.content = new Content();
    return { entry: this.#entry(n), open: { fh: this.#openHandle(n)} };
  }

  async read(ctx: OpContext, ino: Ino, fh: Fh, offset: number, size: number): Promise<Buffer> {
    await this.#before('read', ino, ctx);
    const { node, content } = this.#fileHandle(fh);
    node.atimeMs = this.#clock.wallNow();
    return content.read(offset, size);
  }

  async write(ctx: OpContext, ino: Ino, fh: Fh, offset: number, data: Buffer): Promise<number> {
    await this.#before('write', ino, ctx);
    const { node, content } = this.#fileHandle(fh);
    this.#checkSize(offset + data.length);
    content.write(offset, data);
    this.#touch(node);
    return data.length;
  }

  async flush(ctx: OpContext, ino: Ino): Promise<void> {
    await this.#before('flush', ino, ctx);
  }

  async fsync(ctx: OpContext, ino: Ino): Promise<void> {
    await this.#before('fsync', ino, ctx);
  }

  async release(ctx: OpContext, ino: Ino, fh: Fh, _flags: number): Promise<void> {
    await this.#before('release', ino, ctx);
    const n = this.#handles.get(fh);
    if (!n) return;
    this.#handles.delete(fh);
    n.openCount--;
    this.#maybeFree(n);
  }

  async opendir(ctx: OpContext, ino: Ino, _flags: number): Promise<OpenReply> {
    await this.#before('opendir', ino, ctx);
    this.#dir(ino);
    return { fh: asFh(0n)};
  }

  async readdir(ctx: OpContext, ino: Ino, _fh: Fh, offset: bigint, sink: DirentSink): Promise<void> {
    await this.#before('readdir', ino, ctx);
    const dir = this.#dir(ino);
    const parent = dir.parent ?? dir;
    // "." and ".." carry nodeid 0 in READDIRPLUS: the kernel takes no reference for them.
    const dots: [Dirent, Node][] = [
      [{ name: '.', ino: dir.ino, type: DT.DIR, offset: 1n }, dir],
      [{ name: '..', ino: parent.ino, type: DT.DIR, offset: 2n }, parent],
    ];
    for (const [d, n] of dots) {
      if (offset >= d.offset) continue;
      if (!(sink.plus ? sink.add(d, this.#entryOut(n, asIno(0n))) : sink.add(d))) return;
    }
    for (const e of dirOf(dir).after(offset)) {
      const d: Dirent = { name: e.name, ino: e.node.ino, type: direntType(e.node.mode), offset: e.cookie };
      if (sink.plus) {
        if (!sink.add(d, this.#entryOut(e.node))) return;
        e.node.nlookup += 1n; // only an accepted entry reaches the kernel
      } else if (!sink.add(d)) {
        return;
      }
    }
    dir.atimeMs = this.#clock.wallNow();
  }

  async releasedir(ctx: OpContext, ino: Ino): Promise<void> {
    await this.#before('releasedir', ino, ctx);
  }

  async fsyncdir(ctx: OpContext, ino: Ino): Promise<void> {
    await this.#before('fsyncdir', ino, ctx);
  }

  async statfs(ctx: OpContext, ino: Ino): Promise<StatfsOut> {
    await this.#before('statfs', ino, ctx);
    const blocks = 2 ** 40 / BLOCK; // report 1 TiB
    const used = Math.min(blocks, Math.ceil(this.heldBytes() / BLOCK));
    const files = 1 << 24;
    return { blocks, bfree: blocks - used, bavail: blocks - used, files, ffree: Math.max(0, files - this.#nodes.size), bsize: BLOCK, namelen: NAME_MAX, frsize: BLOCK };
  }

  async access(ctx: OpContext, ino: Ino, mask: number): Promise<void> {
    await this.#before('access', ino, ctx);
    const n = this.#node(ino);
    if (!MemoryFs.#mayAccess(n, ctx, mask & (R_OK | W_OK | X_OK))) throw new FsError(Errno.EACCES);
  }

  async getxattr(ctx: OpContext, ino: Ino, name: string, _size: number): Promise<Buffer> {
    await this.#before('getxattr', ino, ctx);
    const v = this.#node(ino).xattrs.get(name);
    if (!v) throw new FsError(Errno.ENODATA);
    return v;
  }

  async listxattr(ctx: OpContext, ino: Ino, _size: number): Promise<Buffer> {
    await this.#before('listxattr', ino, ctx);
    return Buffer.concat([...this.#node(ino).xattrs.keys()].map((k) => Buffer.from(`${k}\0`)));
  }

  async setxattr(ctx: OpContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    await this.#before('setxattr', ino, ctx);
    if (name === '' || Buffer.byteLength(name) > XATTR_NAME_MAX) throw new FsError(Errno.ERANGE);
    if (value.length > XATTR_SIZE_MAX) throw new FsError(Errno.E2BIG);
    const n = this.#node(ino);
    const exists = n.xattrs.has(name);
    if (flags & XATTR_CREATE && exists) throw new FsError(Errno.EEXIST);
    if (flags & XATTR_REPLACE && !exists) throw new FsError(Errno.ENODATA);
    n.xattrs.set(name, Buffer.from(value)); // a copy: `value` belongs to the request buffer
    this.#changed(n);
  }

  async removexattr(ctx: OpContext, ino: Ino, name: string): Promise<void> {
    await this.#before('removexattr', ino, ctx);
    const n = this.#node(ino);
    if (!n.xattrs.delete(name)) throw new FsError(Errno.ENODATA);
    this.#changed(n);
  }

  async fallocate(ctx: OpContext, ino: Ino, fh: Fh, offset: number, length: number, mode: number): Promise<void> {
    await this.#before('fallocate', ino, ctx);
    if (mode !== 0) throw new FsError(Errno.EOPNOTSUPP);
    if (length <= 0) throw new FsError(Errno.EINVAL);
    const { node, content } = this.#fileHandle(fh);
    this.#checkSize(offset + length);
    if (offset + length > content.size) {
      content.truncate(offset + length);
      this.#touch(node);
    }
  }

  async lseek(ctx: OpContext, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number> {
    await this.#before('lseek', ino, ctx);
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError(Errno.EINVAL);
    const size = this.#handle(fh).content?.size ?? 0;
    if (offset >= size) throw new FsError(Errno.ENXIO);
    // Data everywhere: the only hole is the implicit one at EOF.
    return whence === SEEK_DATA ? offset : size;
  }
}
