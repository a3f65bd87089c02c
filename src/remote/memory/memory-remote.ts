// MemoryRemote: a complete read-write Remote held in memory. It backs `fusestream memfs` (the
// real core over it) and the write-path tests, so besides the Remote it has test controls:
// holds (a call waits at its op's hold until the test opens it), fault injection (the next N
// calls of an op fail with a given kind) and per-op call counters.
//
// Invariants:
// - Every change is one synchronous step (no await between checking a condition and applying
//   it): puts, conditional puts, renames (with or without noReplace) and deletes are atomic.
// - A file's bytes are an immutable Buffer replaced whole by put, never mutated: a read takes
//   the version it started on to the end (never a mix), and a put that fails or is aborted
//   changes nothing.
// - Every put gives a new ETag (a counter, never reused), so every version has its own
//   fingerprint; mtimes come from the injected clock (wallNow), or the put's mtimeMs.
// - A directory's mtime moves when an entry is added to it or removed from it.
// - Every op honours its AbortSignal: checked on entry, while waiting at a hold, while reading
//   a put's source and while yielding a read body.
// - Where holds and faults act: on entry to the op, except put, where they act after the
//   source is read and just before the commit (a held put has transferred its bytes and shows
//   nothing yet; a failed put has read its source, as a real upload would have), and read,
//   where they act before the stream is returned.
// - Test setup helpers (`setFile`, `setDir`, `setSymlink`, `removeEntry`, `fileBytes`) are
//   "someone else" changing the remote: not counted, never held, never failed.
import { Deferred, raceAbort } from '../../base/async.js';
import { systemClock, type Clock } from '../../base/clock.js';
import { sameVersion } from '../fingerprint.js';
import { abortError, RemoteError, type RemoteErrorKind } from '../remote-error.js';
import type {
  ContentSource,
  DeleteOptions,
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
import { splitPath } from '../names.js';

export const MEMORY_OPS = ['stat', 'list', 'read', 'readlink', 'put', 'delete', 'rename', 'mkdir', 'rmdir', 'symlink', 'setMtime'] as const;
export type MemoryOp = (typeof MEMORY_OPS)[number];

export interface MemoryRemoteOptions {
  /** Shown in logs and cache identity. Default "memory://<n>/". */
  id?: string;
  clock?: Clock;
  /** Bytes per chunk yielded by read bodies. Default 64 KiB. */
  chunkBytes?: number;
  /** Total bytes of file content the remote accepts; a put past it is 'no-space'. Default unbounded. */
  capacityBytes?: number;
}

interface FileNode {
  type: 'file';
  readonly data: Buffer;
  readonly etag: string;
  mtimeMs: number;
}
interface DirNode {
  type: 'dir';
  readonly children: Map<string, Node>;
  mtimeMs: number;
}
interface LinkNode {
  type: 'symlink';
  readonly target: string;
  mtimeMs: number;
}
type Node = FileNode | DirNode | LinkNode;

/** A hold on one op: calls that reach it wait until `open()`. */
export class OpHold {
  readonly #opened = new Deferred<void>();
  #waiting = 0;
  #watchers: { n: number; d: Deferred<void> }[] = [];

  get isOpen(): boolean {
    return this.#opened.settled;
  }

  /** Calls waiting at this hold now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Resolves once `n` calls are waiting here at the same time (check and register in one step). */
  reached(n = 1): Promise<void> {
    if (this.#waiting >= n) return Promise.resolve();
    const d = new Deferred<void>();
    this.#watchers.push({ n, d });
    return d.promise;
  }

  /** Lets every waiting call, and every later one, through. */
  open(): void {
    this.#opened.resolve();
  }

  async pass(signal: AbortSignal): Promise<void> {
    if (this.#opened.settled) return;
    this.#waiting++;
    this.#watchers = this.#watchers.filter((w) => (w.n <= this.#waiting ? (w.d.resolve(), false) : true));
    try {
      await raceAbort(this.#opened.promise, signal);
    } finally {
      this.#waiting--;
    }
  }
}

let nextId = 1;

export class MemoryRemote implements Remote {
  readonly id: string;
  readonly capabilities: RemoteCapabilities = {
    writable: true,
    ranges: true,
    exactListing: true,
    atomicRename: true,
    renameNoReplace: true,
    conditionalPut: true,
    symlinks: true,
    mtimes: true,
    modes: false,
  };
  readonly #clock: Clock;
  readonly #chunkBytes: number;
  readonly #capacityBytes: number;
  readonly #root: DirNode;
  #usedBytes = 0;
  #etagCounter = 0;
  #closed = false;
  readonly #calls = new Map<MemoryOp, number>();
  readonly #holds = new Map<MemoryOp, OpHold>();
  readonly #faults = new Map<MemoryOp, { kind: RemoteErrorKind; left: number }>();

  constructor(options: MemoryRemoteOptions = {}) {
    this.id = options.id ?? `memory://${nextId++}/`;
    this.#clock = options.clock ?? systemClock;
    this.#chunkBytes = options.chunkBytes ?? 64 * 1024;
    this.#capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.#root = { type: 'dir', children: new Map(), mtimeMs: this.#clock.wallNow() };
  }

  // ---- test controls ----

  /** Holds `op`: later calls wait at its hold point until the returned hold is opened. */
  hold(op: MemoryOp): OpHold {
    const h = new OpHold();
    this.#holds.get(op)?.open();
    this.#holds.set(op, h);
    return h;
  }

  /** Opens and removes the hold on `op`. */
  release(op: MemoryOp): void {
    this.#holds.get(op)?.open();
    this.#holds.delete(op);
  }

  /** The next `count` calls of `op` fail with `kind` (at the op's hold point). */
  failNext(op: MemoryOp, kind: RemoteErrorKind, count = 1): void {
    if (count <= 0) this.#faults.delete(op);
    else this.#faults.set(op, { kind, left: count });
  }

  /** Calls of `op` so far (every call, including those that failed). */
  calls(op: MemoryOp): number {
    return this.#calls.get(op) ?? 0;
  }

  resetCalls(): void {
    this.#calls.clear();
  }

  /** Bytes of file content held. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Someone else writes a file (parents created). Returns its fingerprint. */
  setFile(path: string, data: Uint8Array, mtimeMs = this.#clock.wallNow()): Fingerprint {
    const segs = splitPath(path);
    const parent = this.#mkdirs(segs.slice(0, -1));
    const name = lastOf(segs, `setFile ${path}`);
    const file = this.#newFile(Buffer.from(data), mtimeMs);
    this.#replaceChild(parent, name, file);
    return { size: file.data.length, etag: file.etag, mtimeMs };
  }

  setDir(path: string): void {
    this.#mkdirs(splitPath(path));
  }

  setSymlink(path: string, target: string): void {
    const segs = splitPath(path);
    const parent = this.#mkdirs(segs.slice(0, -1));
    this.#replaceChild(parent, lastOf(segs, `setSymlink ${path}`), { type: 'symlink', target, mtimeMs: this.#clock.wallNow() });
  }

  /** Someone else removes an entry (a directory with everything below it). */
  removeEntry(path: string): void {
    const segs = splitPath(path);
    const parent = this.#dirAt(segs.slice(0, -1), `removeEntry ${path}`);
    this.#replaceChild(parent, lastOf(segs, `removeEntry ${path}`), undefined);
  }

  /** The bytes of the file at `path` now. */
  fileBytes(path: string): Buffer {
    const node = this.#nodeAt(splitPath(path), `fileBytes ${path}`);
    if (node.type !== 'file') throw new RemoteError('invalid', `fileBytes ${path}: not a file`);
    return node.data;
  }

  // ---- Remote: reads ----

  async stat(path: string, signal: AbortSignal): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `stat /${segs.join('/')}`;
    await this.#enter('stat', signal, what);
    return statOf(segs[segs.length - 1] ?? '', this.#nodeAt(segs, what));
  }

  async list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    const segs = splitPath(path);
    const what = `list /${segs.join('/')}`;
    await this.#enter('list', signal, what);
    const node = this.#nodeAt(segs, what);
    if (node.type === 'symlink') throw new RemoteError('invalid', `${what}: is a symlink, not followed`, { retryable: false });
    if (node.type !== 'dir') throw new RemoteError('not-found', `${what}: not a directory`);
    return [...node.children].map(([name, child]) => statOf(name, child));
  }

  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    const segs = splitPath(path);
    const what = `read /${segs.join('/')} [${offset}, +${length})`;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
      throw new RemoteError('invalid', `${what}: bad range`, { retryable: false });
    }
    const { signal, expect } = options;
    await this.#enter('read', signal, what);
    const node = this.#nodeAt(segs, what);
    if (node.type !== 'file') throw new RemoteError('invalid', `${what}: not a regular file`, { retryable: false });
    const fingerprint = fingerprintOf(node);
    if (expect !== undefined && !sameVersion(expect, fingerprint)) throw new RemoteError('changed', `${what}: not the expected version`);
    if (offset > node.data.length) throw new RemoteError('invalid', `${what}: offset past EOF (${node.data.length})`, { retryable: false });
    // The version this read started on, to its end: put replaces the Buffer, never mutates it.
    const data = node.data.subarray(offset, Math.min(offset + length, node.data.length));
    return { fingerprint, body: this.#body(data, signal, what) };
  }

  async readlink(path: string, signal: AbortSignal): Promise<string> {
    const segs = splitPath(path);
    const what = `readlink /${segs.join('/')}`;
    await this.#enter('readlink', signal, what);
    const node = this.#nodeAt(segs, what);
    if (node.type !== 'symlink') throw new RemoteError('invalid', `${what}: not a symlink`, { retryable: false });
    return node.target;
  }

  // ---- Remote: writes ----

  async put(path: string, source: ContentSource, options: PutOptions): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `put /${segs.join('/')}`;
    const { signal, mtimeMs } = options;
    this.#count('put', signal, what);
    const name = lastOf(segs, what);
    if (!Number.isSafeInteger(source.sizeBytes) || source.sizeBytes < 0) throw new RemoteError('invalid', `${what}: bad source size ${source.sizeBytes}`, { retryable: false });
    if (mtimeMs !== undefined && !Number.isFinite(mtimeMs)) throw new RemoteError('invalid', `${what}: bad mtime ${mtimeMs}`, { retryable: false });
    // Early answers before any byte moves; decided again at the commit.
    this.#checkPut(segs, name, options, what);
    const data = await readSource(source, signal, what);
    await this.#holdAndFault('put', signal, what);
    // The commit: one synchronous step.
    const parent = this.#checkPut(segs, name, options, what);
    const old = parent.children.get(name);
    const used = this.#usedBytes - (old?.type === 'file' ? old.data.length : 0) + data.length;
    if (used > this.#capacityBytes) throw new RemoteError('no-space', `${what}: ${data.length} bytes do not fit (capacity ${this.#capacityBytes})`);
    const file = this.#newFile(data, mtimeMs ?? this.#clock.wallNow());
    this.#replaceChild(parent, name, file);
    return statOf(name, file);
  }

  async delete(path: string, options: DeleteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `delete /${segs.join('/')}`;
    await this.#enter('delete', options.signal, what);
    const name = lastOf(segs, what);
    const parent = this.#dirAt(segs.slice(0, -1), what);
    const node = parent.children.get(name);
    if (node === undefined) throw new RemoteError('not-found', `${what}: no such entry`);
    if (node.type === 'dir') throw new RemoteError('invalid', `${what}: is a directory (use rmdir)`, { retryable: false });
    if (options.ifMatch !== undefined) checkMatch(node, options.ifMatch, what);
    this.#replaceChild(parent, name, undefined);
  }

  async rename(from: string, to: string, options: RenameOptions): Promise<void> {
    const f = splitPath(from);
    const t = splitPath(to);
    const what = `rename /${f.join('/')} → /${t.join('/')}`;
    await this.#enter('rename', options.signal, what);
    if (f.length === 0 || t.length === 0) throw new RemoteError('invalid', `${what}: the root cannot be renamed or replaced`, { retryable: false });
    const fromParent = this.#dirAt(f.slice(0, -1), what);
    const fromName = lastOf(f, what);
    const node = fromParent.children.get(fromName);
    if (node === undefined) throw new RemoteError('not-found', `${what}: no such entry`);
    const toParent = this.#dirAt(t.slice(0, -1), what);
    const toName = lastOf(t, what);
    if (t.length > f.length && f.every((seg, i) => t[i] === seg)) throw new RemoteError('invalid', `${what}: a directory cannot move into itself`, { retryable: false });
    const existing = toParent.children.get(toName);
    if (existing !== undefined && options.noReplace === true) throw new RemoteError('exists', `${what}: the target exists`);
    if (existing === node) return;
    if (existing !== undefined) {
      if (node.type === 'dir' && existing.type !== 'dir') throw new RemoteError('invalid', `${what}: a directory cannot replace a ${existing.type}`, { retryable: false });
      if (node.type !== 'dir' && existing.type === 'dir') throw new RemoteError('invalid', `${what}: a ${node.type} cannot replace a directory`, { retryable: false });
      if (existing.type === 'dir' && existing.children.size > 0) throw new RemoteError('not-empty', `${what}: the target directory is not empty`);
    }
    this.#replaceChild(fromParent, fromName, undefined);
    this.#replaceChild(toParent, toName, node);
  }

  async mkdir(path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `mkdir /${segs.join('/')}`;
    await this.#enter('mkdir', options.signal, what);
    if (segs.length === 0) throw new RemoteError('exists', `${what}: the root exists`);
    const parent = this.#dirAt(segs.slice(0, -1), what);
    const name = lastOf(segs, what);
    if (parent.children.has(name)) throw new RemoteError('exists', `${what}: already exists`);
    this.#replaceChild(parent, name, { type: 'dir', children: new Map(), mtimeMs: this.#clock.wallNow() });
  }

  async rmdir(path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `rmdir /${segs.join('/')}`;
    await this.#enter('rmdir', options.signal, what);
    if (segs.length === 0) throw new RemoteError('invalid', `${what}: the root cannot be removed`, { retryable: false });
    const parent = this.#dirAt(segs.slice(0, -1), what);
    const name = lastOf(segs, what);
    const node = parent.children.get(name);
    if (node === undefined) throw new RemoteError('not-found', `${what}: no such entry`);
    if (node.type !== 'dir') throw new RemoteError('invalid', `${what}: not a directory`, { retryable: false });
    if (node.children.size > 0) throw new RemoteError('not-empty', `${what}: not empty`);
    this.#replaceChild(parent, name, undefined);
  }

  async symlink(target: string, path: string, options: WriteOptions): Promise<void> {
    const segs = splitPath(path);
    const what = `symlink /${segs.join('/')}`;
    await this.#enter('symlink', options.signal, what);
    if (target.length === 0 || target.includes('\0') || Buffer.byteLength(target) > 4095) throw new RemoteError('invalid', `${what}: bad target text`, { retryable: false });
    if (segs.length === 0) throw new RemoteError('exists', `${what}: the root exists`);
    const parent = this.#dirAt(segs.slice(0, -1), what);
    const name = lastOf(segs, what);
    if (parent.children.has(name)) throw new RemoteError('exists', `${what}: already exists`);
    this.#replaceChild(parent, name, { type: 'symlink', target, mtimeMs: this.#clock.wallNow() });
  }

  async setMtime(path: string, mtimeMs: number, options: WriteOptions): Promise<RemoteStat> {
    const segs = splitPath(path);
    const what = `setMtime /${segs.join('/')}`;
    await this.#enter('setMtime', options.signal, what);
    if (!Number.isFinite(mtimeMs)) throw new RemoteError('invalid', `${what}: bad mtime ${mtimeMs}`, { retryable: false });
    const node = this.#nodeAt(segs, what);
    node.mtimeMs = mtimeMs;
    return statOf(segs[segs.length - 1] ?? '', node);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const h of this.#holds.values()) h.open();
    this.#holds.clear();
  }

  // ---- internals ----

  async *#body(data: Buffer, signal: AbortSignal, what: string): AsyncGenerator<Uint8Array, void, undefined> {
    for (let pos = 0; pos < data.length; pos += this.#chunkBytes) {
      if (signal.aborted) throw abortError(signal, what);
      // A copy: the consumer may keep or change what it gets.
      yield Buffer.from(data.subarray(pos, Math.min(pos + this.#chunkBytes, data.length)));
      await Promise.resolve();
    }
  }

  #count(op: MemoryOp, signal: AbortSignal, what: string): void {
    this.#calls.set(op, this.calls(op) + 1);
    if (signal.aborted) throw abortError(signal, what);
    if (this.#closed) throw new RemoteError('unavailable', `${what}: the remote is closed`, { retryable: false });
  }

  async #enter(op: MemoryOp, signal: AbortSignal, what: string): Promise<void> {
    this.#count(op, signal, what);
    await this.#holdAndFault(op, signal, what);
  }

  async #holdAndFault(op: MemoryOp, signal: AbortSignal, what: string): Promise<void> {
    const hold = this.#holds.get(op);
    if (hold !== undefined) {
      try {
        await hold.pass(signal);
      } catch (err) {
        throw abortError(signal, what, err);
      }
    }
    if (signal.aborted) throw abortError(signal, what);
    const fault = this.#faults.get(op);
    if (fault !== undefined) {
      if (--fault.left <= 0) this.#faults.delete(op);
      throw new RemoteError(fault.kind, `${what}: injected ${fault.kind}`);
    }
  }

  /** put's conditions against the tree now; returns the parent directory. */
  #checkPut(segs: readonly string[], name: string, options: PutOptions, what: string): DirNode {
    const parent = this.#dirAt(segs.slice(0, -1), what);
    const old = parent.children.get(name);
    if (options.ifNoneMatch === true && old !== undefined) throw new RemoteError('exists', `${what}: already exists`);
    if (options.ifMatch !== undefined) checkMatch(old, options.ifMatch, what);
    if (old?.type === 'dir') throw new RemoteError('invalid', `${what}: is a directory`, { retryable: false });
    return parent;
  }

  #newFile(data: Buffer, mtimeMs: number): FileNode {
    return { type: 'file', data, etag: `"m${++this.#etagCounter}"`, mtimeMs };
  }

  /** Sets (or, with undefined, removes) one entry, keeping byte accounting and the parent's mtime. */
  #replaceChild(parent: DirNode, name: string, node: Node | undefined): void {
    const old = parent.children.get(name);
    if (old !== undefined) this.#usedBytes -= bytesBelow(old);
    if (node === undefined) parent.children.delete(name);
    else {
      parent.children.set(name, node);
      this.#usedBytes += bytesBelow(node);
    }
    parent.mtimeMs = this.#clock.wallNow();
  }

  #mkdirs(segs: readonly string[]): DirNode {
    let dir = this.#root;
    for (const seg of segs) {
      let next = dir.children.get(seg);
      if (next === undefined) {
        next = { type: 'dir', children: new Map(), mtimeMs: this.#clock.wallNow() };
        this.#replaceChild(dir, seg, next);
      }
      if (next.type !== 'dir') throw new RemoteError('invalid', `mkdirs /${segs.join('/')}: ${seg} is not a directory`);
      dir = next;
    }
    return dir;
  }

  #nodeAt(segs: readonly string[], what: string): Node {
    const name = segs[segs.length - 1];
    if (name === undefined) return this.#root;
    const node = this.#dirAt(segs.slice(0, -1), what).children.get(name);
    if (node === undefined) throw new RemoteError('not-found', `${what}: no such entry`);
    return node;
  }

  /** The directory at `segs`; a missing or non-directory component is 'not-found' (ENOTDIR/ENOENT). */
  #dirAt(segs: readonly string[], what: string): DirNode {
    let dir = this.#root;
    for (const seg of segs) {
      const next = dir.children.get(seg);
      if (next?.type !== 'dir') throw new RemoteError('not-found', `${what}: no directory /${segs.join('/')}`);
      dir = next;
    }
    return dir;
  }
}

function lastOf(segs: readonly string[], what: string): string {
  const name = segs[segs.length - 1];
  if (name === undefined) throw new RemoteError('invalid', `${what}: not possible on the root`, { retryable: false });
  return name;
}

function fingerprintOf(node: FileNode): Fingerprint {
  return { size: node.data.length, etag: node.etag, mtimeMs: node.mtimeMs };
}

function statOf(name: string, node: Node): RemoteStat {
  switch (node.type) {
    case 'file':
      return { name, type: 'file', size: node.data.length, mtimeMs: node.mtimeMs, etag: node.etag };
    case 'dir':
      return { name, type: 'dir', size: 0, mtimeMs: node.mtimeMs };
    case 'symlink':
      return { name, type: 'symlink', size: Buffer.byteLength(node.target), mtimeMs: node.mtimeMs };
  }
}

function bytesBelow(node: Node): number {
  if (node.type === 'file') return node.data.length;
  if (node.type === 'symlink') return 0;
  let n = 0;
  for (const child of node.children.values()) n += bytesBelow(child);
  return n;
}

/** ifMatch: the entry must be a file of exactly that version (the one comparison, sameVersion). */
function checkMatch(node: Node | undefined, expect: Fingerprint, what: string): void {
  if (node === undefined) throw new RemoteError('conflict', `${what}: the object is gone (ifMatch)`);
  if (node.type !== 'file') throw new RemoteError('conflict', `${what}: the object is no longer a file (ifMatch)`);
  if (!sameVersion(expect, fingerprintOf(node))) throw new RemoteError('conflict', `${what}: not the expected version (ifMatch)`);
}

/** Reads the whole source (copies: the source may reuse its buffers). Errors as in LocalRemote. */
async function readSource(source: ContentSource, signal: AbortSignal, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of source.open(signal)) {
      if (signal.aborted) throw abortError(signal, what);
      if (total + chunk.byteLength > source.sizeBytes) {
        throw new RemoteError('invalid', `${what}: the source yielded more than its ${source.sizeBytes} bytes`, { retryable: false });
      }
      parts.push(Buffer.from(chunk));
      total += chunk.byteLength;
    }
  } catch (err) {
    if (signal.aborted) throw abortError(signal, what, err);
    throw err;
  }
  if (signal.aborted) throw abortError(signal, what);
  if (total !== source.sizeBytes) throw new RemoteError('invalid', `${what}: the source yielded ${total} of its ${source.sizeBytes} bytes`, { retryable: false });
  return Buffer.concat(parts, total);
}
