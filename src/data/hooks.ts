// Test hooks of the data layer. Production code passes none; tests use them to observe
// invariants at the exact points where they could break (every chunk that lands, the
// check-and-register step), to hold a download between "written" and "present", to hold a read
// between "bytes present" and "copied out", to see a close start waiting for reads, and to land a held chunk at one exact point
// (`BeforeLandedInfo.land`, e.g. from inside `onSawMissing`, between a reader's look and its
// registration: the missed-wakeup window). Cost when no hook is installed: one property test
// per point, nothing allocated.
//
// Invariant: a hook never changes the data layer's behaviour except by the time it takes
// (async hooks), by what it does through public APIs, or by landing a held chunk early with
// `land` (the same step, run sooner); sync hooks run inside the step they observe, so
// whatever they do lands in the same tick.

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

export interface BeforeLandedInfo {
  debugId: string;
  start: number;
  end: number;
  /**
   * Lands the chunk now, synchronously in the caller's step (marks it present, wakes the
   * waiters it covers, accounts it: exactly what happens after the hook otherwise), instead of
   * after the hook settles. Idempotent; the download does not land it again. Lets a test make
   * written bytes arrive at one exact point, e.g. inside `onSawMissing`.
   */
  land: () => void;
}

export interface DataHooks {
  /**
   * Synchronous, inside a reader's check-and-register step, after it saw [start, end) not
   * fully present and before its waiter is registered. Whatever it does happens "in the
   * window"; the waiter must still not miss it.
   */
  onSawMissing?: (info: SawMissingInfo) => void;
  /**
   * Awaited when a reader found all its bytes present, right before it copies them out of the
   * cache file; the read is still in flight (in the file's gate) and past its last abort check,
   * so a close meanwhile waits for it and it returns its bytes.
   */
  beforeCopyOut?: (info: { debugId: string; start: number; end: number }) => Promise<void> | void;
  /**
   * Awaited after a chunk was written to disk and before it is marked present (both paths:
   * in-thread writes and transfer-thread reports). It may land the chunk itself (`land`).
   */
  beforeLanded?: (info: BeforeLandedInfo) => Promise<void> | void;
  /**
   * Synchronous, when a reader's close found reads still in flight and starts waiting for them
   * (it completes only once they left). A close that does not wait never calls it.
   */
  onCloseWaitsForReads?: (info: { debugId: string; inFlightReads: number }) => void;
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
