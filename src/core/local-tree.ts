// LocalTree: what the mount shows that the remote does not have yet, laid over its listings.
// One entry per path with a local change: a file whose bytes are local (written, or waiting
// for upload), a directory created here, a remote file renamed here (the rename not applied
// yet), or a tombstone (removed here, maybe still on the remote). A listing of a directory is
// the remote's listing with these entries laid over it (tombstones hide names, the others add
// or replace them).
//
// Invariants:
// - An entry exists while the change is local: from the op that made it until the journal has
//   no pending row touching the path and (for a file) no handle is open and nothing is dirty
//   (RemoteFs retires it then, after updating its listing cache with what the remote has now).
// - `children(dir)` is kept in step with the path map (one index, updated in `set`/`delete`).
// No locks: synchronous.
import type { WorkingFile } from '../data/write/working-file.js';
import type { FileReader } from '../data/data-cache.js';
import type { Base } from '../store/journal.js';
import type { Fingerprint } from '../remote/fingerprint.js';
import type { InodeAttrs } from './inode-table.js';

/** A file whose bytes are local. */
export interface LocalFile {
  /** Where it lives now (renames move it). */
  path: string;
  /** The local copy; undefined while parked (no handle: the bytes are in `snapshot`). */
  wf: WorkingFile | undefined;
  /** Opening `wf` (single flight). */
  opening: Promise<WorkingFile> | undefined;
  /** The last snapshot journaled (its bytes are the file's when not dirty). */
  snapshot: string | undefined;
  /**
   * Our own hard link to the last snapshot (in the work dir): its bytes stay readable after the
   * queue uploaded and deleted the snapshot, until the file retires. `ownsBytes`: the snapshot
   * is gone, so the link's bytes count as dirty on our account.
   */
  kept: { name: string; path: string; ownsBytes: boolean; bytes: number } | undefined;
  /** Length and mtime while parked (else the working file's length). */
  size: number;
  mtimeMs: number;
  /** What the remote has at `path` (the next put's base when no row of the path is pending). */
  base: Base;
  /** The remote has, or a journaled row will give it, something at `path` for this file. */
  onRemote: boolean;
  /** Changed since the last snapshot (bytes, length or time). */
  dirty: boolean;
  /** The bytes or length changed since the last snapshot (not only the time). */
  contentDirty: boolean;
  /** The last snapshot (and its row) survive the process being killed, not yet a power loss. */
  unsynced: boolean;
  handles: number;
  writers: number;
  /** Snapshots being made now: the file is not retired or parked meanwhile. */
  busy: number;
  /** Removed while open: its handles still read and write it; nothing is uploaded. */
  unlinked: boolean;
  /** Serialises snapshots of this file. */
  committing: Promise<void>;
  /** The remote version whose bytes fill what was not written: where it is and which it is. */
  source: { path: string; fingerprint: Fingerprint; size: number } | undefined;
  /** The reader of the source's bytes (at `path` on the remote), opened on first need. */
  baseReader: { path: string; reader: Promise<FileReader> } | undefined;
}

export type LocalEntry =
  | { kind: 'file'; file: LocalFile }
  /** A remote file renamed here; its bytes are at `source` on the remote until the rename is applied. */
  | { kind: 'moved'; source: string; attrs: InodeAttrs | undefined }
  /** A directory made here; `created`: the remote does not have it yet (nothing to list there). */
  | { kind: 'dir'; created: boolean }
  /** Removed here. `pendingDelete`: the remote file is still open for reading, its delete (against this base) is journaled at the last close. */
  | { kind: 'gone'; pendingDelete?: Base };

const parentOf = (path: string): string => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
};
const nameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

export class LocalTree {
  readonly #byPath = new Map<string, LocalEntry>();
  readonly #children = new Map<string, Map<string, LocalEntry>>();

  get size(): number {
    return this.#byPath.size;
  }

  get(path: string): LocalEntry | undefined {
    return this.#byPath.get(path);
  }

  has(path: string): boolean {
    return this.#byPath.has(path);
  }

  set(path: string, e: LocalEntry): void {
    this.#byPath.set(path, e);
    const dir = parentOf(path);
    let kids = this.#children.get(dir);
    if (kids === undefined) {
      kids = new Map();
      this.#children.set(dir, kids);
    }
    kids.set(nameOf(path), e);
  }

  delete(path: string): void {
    if (!this.#byPath.delete(path)) return;
    const dir = parentOf(path);
    const kids = this.#children.get(dir);
    kids?.delete(nameOf(path));
    if (kids?.size === 0) this.#children.delete(dir);
  }

  /** The entries directly in `dir`, by name. */
  children(dir: string): ReadonlyMap<string, LocalEntry> {
    return this.#children.get(dir) ?? new Map();
  }

  /** A path strictly below `dir` has an entry. */
  hasBelow(dir: string): boolean {
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const p of this.#byPath.keys()) if (p.startsWith(prefix) && p !== dir) return true;
    return false;
  }

  /** `path` or one of its ancestors was created here and is not on the remote yet. */
  createdHere(path: string): boolean {
    for (let p = path; ; p = parentOf(p)) {
      const e = this.#byPath.get(p);
      if (e?.kind === 'dir' && e.created) return true;
      if (p === '') return false;
    }
  }

  /** Every local file (for shutdown and status). */
  files(): LocalFile[] {
    const out: LocalFile[] = [];
    for (const e of this.#byPath.values()) if (e.kind === 'file') out.push(e.file);
    return out;
  }

  entries(): IterableIterator<[string, LocalEntry]> {
    return this.#byPath.entries();
  }

  values(): IterableIterator<LocalEntry> {
    return this.#byPath.values();
  }
}

export { parentOf, nameOf };
