// Test hooks of the data layer. Production code passes none; tests use them to observe
// invariants at the exact points where they could break (every chunk that lands, the
// check-and-register step) and to hold a download between "written" and "present".
//
// Invariant: a hook never changes the data layer's behaviour except by the time it takes
// (async hooks) or by what it does through public APIs; sync hooks run inside the step they
// observe, so whatever they do lands in the same tick.

export interface ChunkLandedInfo {
  debugId: string;
  objectId: number;
  start: number;
  end: number;
  /** Cache bytes accounted (present) after this chunk. */
  usedBytes: number;
  /** Bytes reserved for chunks being written right now (after this chunk's release). */
  reservedBytes: number;
  capBytes: number;
  /** Present bytes of this object after the chunk. */
  fileBytes: number;
  perFileCapBytes: number;
}

export interface SawMissingInfo {
  debugId: string;
  start: number;
  end: number;
}

export interface DataHooks {
  /**
   * Synchronous, inside a reader's check-and-register step, after it saw [start, end) not
   * fully present and before its waiter is registered. Whatever it does happens "in the
   * window"; the waiter must still not miss it.
   */
  onSawMissing?: (info: SawMissingInfo) => void;
  /** Awaited after a chunk was written to disk and before it is marked present. */
  beforeLanded?: (info: { debugId: string; start: number; end: number }) => Promise<void> | void;
  /** Synchronous, right after a chunk was marked present and accounted. */
  afterChunkLanded?: (info: ChunkLandedInfo) => void;
  /** Synchronous, after an object was evicted (file deleted, store rows gone). */
  onEvicted?: (info: { objectId: number; bytes: number }) => void;
  /**
   * Synchronous, right before a cache file is unlinked (eviction, a replaced or invalidated
   * version, a file that is not trusted, an orphan). No store row vouches for it any more: the
   * row is gone, or (a file not trusted) its ranges and identity are forgotten, committed.
   */
  beforeUnlink?: (info: { fileName: string }) => void;
}
