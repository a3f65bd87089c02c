// The inode table: kernel node ids ↔ remote paths, with the kernel's lookup counts.
//
// Invariants:
// - A path keeps its inode number for the life of the mount (the path → ino map is never
//   pruned), so `ls -i` and hard-link-free tools see stable numbers even across FORGET.
// - `nlookup` counts the references the kernel holds: +1 for every LOOKUP/CREATE/MKDIR/SYMLINK
//   reply and every READDIRPLUS entry with a non-zero nodeid; FORGET/BATCH_FORGET subtract.
//   It never goes negative (a forget for more than we handed out is logged and clamped).
// - An inode with nlookup 0 and no open handle may be dropped from the live table; its number
//   stays reserved for its path. The root (ino 1) is never dropped.
// - `generation` is 0: inode numbers are never reused for a different path in one mount.
// No locks: every method is synchronous.
import { asIno, ROOT_INO, type Ino } from '../base/ids.js';
import type { Logger } from '../observability/logger.js';
import type { EntryType } from '../remote/remote.js';

export interface InodeAttrs {
  type: EntryType;
  /** Bytes; a placeholder 0 while `sizeKnown` is false. */
  size: number;
  /** What `stat` shows: the remote's mtime, a listing's rounded one, or the mount time. */
  mtimeMs: number;
  etag?: string;
  /**
   * The size is the object's real size (listed exactly or learnt from a stat). False for a
   * file whose listing gave no exact size: such attributes never reach the kernel (a size 0
   * that means "unknown" makes the kernel read nothing).
   */
  sizeKnown: boolean;
  /** Size, ETag and remote mtime are authoritative (a stat, or an exact listing). */
  exact: boolean;
  /** The remote's own modification time, when it gave one: part of the fingerprint. */
  remoteMtimeMs?: number;
}

export interface Inode {
  readonly ino: Ino;
  /** Remote-relative path, '' for the root; changes with renames (`move`). */
  path: string;
  /** Removed (unlink, rmdir, replaced by a rename): no path leads to it any more. */
  unlinked?: true;
  attrs: InodeAttrs;
  /** When attrs were last confirmed by the remote (clock ms). */
  attrsAt: number;
  nlookup: bigint;
  openHandles: number;
}

export class InodeTable {
  readonly #byIno = new Map<Ino, Inode>();
  readonly #inoByPath = new Map<string, Ino>();
  readonly #log: Logger;
  #next = 2n;

  constructor(rootAttrs: InodeAttrs, nowMs: number, log: Logger) {
    this.#log = log;
    this.#inoByPath.set('', ROOT_INO);
    this.#byIno.set(ROOT_INO, { ino: ROOT_INO, path: '', attrs: rootAttrs, attrsAt: nowMs, nlookup: 1n, openHandles: 0 });
  }

  get size(): number {
    return this.#byIno.size;
  }

  get(ino: Ino): Inode | undefined {
    return this.#byIno.get(ino);
  }

  byPath(path: string): Inode | undefined {
    const ino = this.#inoByPath.get(path);
    return ino === undefined ? undefined : this.#byIno.get(ino);
  }

  /**
   * Returns the inode for `path`, creating or reviving it with `attrs` confirmed at
   * `attrsAtMs`; the caller decides whether the kernel takes a reference (`ref`).
   */
  upsert(path: string, attrs: InodeAttrs, attrsAtMs: number): Inode {
    let ino = this.#inoByPath.get(path);
    if (ino === undefined) {
      ino = asIno(this.#next++);
      this.#inoByPath.set(path, ino);
    }
    let node = this.#byIno.get(ino);
    if (!node) {
      node = { ino, path, attrs, attrsAt: attrsAtMs, nlookup: 0n, openHandles: 0 };
      this.#byIno.set(ino, node);
    } else {
      node.attrs = attrs;
      node.attrsAt = attrsAtMs;
    }
    return node;
  }

  /**
   * The live inode for `node`'s number: `node` itself, put back if FORGET dropped it meanwhile
   * (an open directory's snapshot still holds it), or the object that replaced it.
   */
  revive(node: Inode): Inode {
    const live = this.#byIno.get(node.ino);
    if (live !== undefined) return live;
    this.#byIno.set(node.ino, node);
    return node;
  }

  /**
   * A rename: the inode at `from` (and every inode below it) now lives at `to`; an inode that
   * was at `to` (or below it) is detached first. Inode numbers follow their inodes.
   */
  move(from: string, to: string): void {
    this.detach(to);
    const moved = this.#under(from);
    for (const [path] of moved) this.#inoByPath.delete(path);
    for (const [path, ino] of moved) {
      const next = to + path.slice(from.length);
      this.#inoByPath.set(next, ino);
      const node = this.#byIno.get(ino);
      if (node !== undefined) node.path = next;
    }
  }

  /**
   * The inode at `path` (and those below it) is removed: no path leads to it any more; the
   * kernel's references and open handles keep it alive until they go. A new entry at `path`
   * gets a new number.
   */
  detach(path: string): void {
    for (const [p, ino] of this.#under(path)) {
      if (ino === ROOT_INO) continue;
      this.#inoByPath.delete(p);
      const node = this.#byIno.get(ino);
      if (node !== undefined) node.unlinked = true;
    }
  }

  /** `path` and, when it is a directory, every path below it, with their numbers. */
  #under(path: string): [string, Ino][] {
    const ino = this.#inoByPath.get(path);
    // A path never seen has nothing below it either (a path below one is only known through a
    // lookup in it, which gave it a number): no scan, so a create costs O(1), not O(paths).
    if (ino === undefined) return [];
    const out: [string, Ino][] = [[path, ino]];
    const node = this.#byIno.get(ino);
    if (node !== undefined && node.attrs.type !== 'dir') return out;
    const prefix = `${path}/`;
    for (const [p, i] of this.#inoByPath) if (p.startsWith(prefix)) out.push([p, i]);
    return out;
  }

  /** The kernel took one more reference (a LOOKUP reply or a READDIRPLUS entry). */
  ref(node: Inode): void {
    node.nlookup += 1n;
  }

  forget(ino: Ino, n: bigint): void {
    const node = this.#byIno.get(ino);
    if (!node) {
      this.#log.warn({ ino, n }, 'forget for an unknown inode');
      return;
    }
    if (n > node.nlookup) {
      this.#log.warn({ ino, n, nlookup: node.nlookup }, 'forget exceeds lookup count; clamped');
      n = node.nlookup;
    }
    node.nlookup -= n;
    this.#maybeDrop(node);
  }

  handleOpened(node: Inode): void {
    node.openHandles++;
  }

  handleClosed(node: Inode): void {
    node.openHandles = Math.max(0, node.openHandles - 1);
    this.#maybeDrop(node);
  }

  #maybeDrop(node: Inode): void {
    if (node.ino === ROOT_INO || node.nlookup > 0n || node.openHandles > 0) return;
    this.#byIno.delete(node.ino);
  }

  /** Every live inode (for the change poller and status). */
  values(): IterableIterator<Inode> {
    return this.#byIno.values();
  }
}
