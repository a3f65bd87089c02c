// Read-ahead: per open handle, a window that starts small (readAheadInitialBytes), doubles on
// each sequential read up to readAheadMaxBytes and resets on a seek. Only sequential reads
// prefetch: a read is sequential when it continues the stream (see isSequential), or
// is the handle's first read and starts at offset 0. A seek prefetches nothing, so random
// access fetches only what it reads (the fetcher also aligns its reads to pages, not chunks). Prefetches go through
// the range fetcher (so they share downloads with readers) and are bounded by one global
// ReadAheadBudget: bytes asked for by read-ahead and not yet landed, over all handles.
//
// Invariants:
// - budget.usedBytes <= budget.capBytes at all times; every grant is given back exactly once
//   (when its prefetch ends, is cancelled, or the handle closes);
// - a seek or close cancels this handle's outstanding prefetches (their downloads stop when
//   no reader waits on them either);
// - read-ahead never waits: when the budget is full or the download pool is saturated it
//   simply does not prefetch.
//
// Lock order: no locks; all state changes are synchronous.

export class ReadAheadBudget {
  readonly capBytes: number;
  #used = 0;

  constructor(capBytes: number) {
    this.capBytes = capBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** Grants up to `wantedBytes` (trimmed to what is free); 0 means refused. */
  take(wantedBytes: number): number {
    const granted = Math.max(0, Math.min(wantedBytes, this.capBytes - this.#used));
    this.#used += granted;
    return granted;
  }

  give(bytes: number): void {
    if (bytes < 0 || bytes > this.#used) throw new RangeError(`read-ahead budget: giving back ${bytes} of ${this.#used}`);
    this.#used -= bytes;
  }
}

/** An outstanding prefetch, as returned by the fetcher. */
export interface PrefetchHandle {
  /** Settles (never rejects) when the prefetch's downloads have ended, however they ended. */
  readonly done: Promise<void>;
  /** Stops caring about the prefetch: its downloads are cancelled unless a reader waits on them. */
  cancel(): void;
}

/** Starts a prefetch of [start, end); undefined when nothing needed fetching. */
export type StartPrefetch = (start: number, end: number) => PrefetchHandle | undefined;

export interface ReadAheadOptions {
  initialBytes: number;
  maxBytes: number;
  sizeBytes: number;
  budget: ReadAheadBudget;
  /** True when the download pool has no free slot: prefetching then would only queue. */
  saturated: () => boolean;
  start: StartPrefetch;
}

export class ReadAhead {
  readonly #o: ReadAheadOptions;
  #windowBytes: number;
  #nextExpected = -1;
  #prefetchedUntil = 0;
  readonly #outstanding = new Set<PrefetchHandle>();
  #closed = false;

  constructor(options: ReadAheadOptions) {
    this.#o = options;
    this.#windowBytes = options.initialBytes;
  }

  get windowBytes(): number {
    return this.#windowBytes;
  }

  get outstanding(): number {
    return this.#outstanding.size;
  }

  /**
   * Tells the policy a read of [offset, end) happened (end already clamped to the size) and
   * starts a prefetch when the window asks for one. Returns the range it prefetched, if any.
   */
  /**
   * Whether a read at `offset` continues this handle's stream: it starts where the stream has
   * reached or up to a window before (the kernel's readahead READs may overlap, but they never
   * skip ahead), or it is the handle's first read and starts at 0. Does not change state.
   */
  isSequential(offset: number): boolean {
    if (this.#nextExpected < 0) return offset === 0;
    return offset <= this.#nextExpected && offset >= this.#nextExpected - this.#windowBytes;
  }

  onRead(offset: number, end: number): { start: number; end: number } | undefined {
    if (this.#closed) return undefined;
    const first = this.#nextExpected < 0;
    if (!this.isSequential(offset)) {
      // A seek: forget the stream, prefetch nothing until the reader proves sequential again.
      if (!first) this.#cancelAll();
      this.#windowBytes = this.#o.initialBytes;
      this.#nextExpected = end;
      this.#prefetchedUntil = end;
      return undefined;
    }
    if (first) {
      this.#nextExpected = end;
      this.#prefetchedUntil = end;
    } else {
      this.#windowBytes = Math.min(this.#windowBytes * 2, this.#o.maxBytes);
      this.#nextExpected = Math.max(this.#nextExpected, end);
    }
    const target = Math.min(end + this.#windowBytes, this.#o.sizeBytes);
    // Top up once less than half a window is left in front of the reader.
    if (this.#prefetchedUntil - end >= this.#windowBytes / 2) return undefined;
    const start = Math.max(this.#prefetchedUntil, end);
    if (target <= start || this.#o.saturated()) return undefined;
    const granted = this.#o.budget.take(target - start);
    if (granted === 0) return undefined;
    let handle: PrefetchHandle | undefined;
    try {
      handle = this.#o.start(start, start + granted);
    } catch (err) {
      this.#o.budget.give(granted);
      throw err;
    }
    this.#prefetchedUntil = start + granted;
    if (!handle) {
      this.#o.budget.give(granted);
      return { start, end: start + granted };
    }
    const h = handle;
    this.#outstanding.add(h);
    void h.done.then(() => {
      this.#outstanding.delete(h);
      this.#o.budget.give(granted);
    });
    return { start, end: start + granted };
  }

  /** Cancels every outstanding prefetch; later reads prefetch nothing. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#cancelAll();
  }

  /** Resolves when every prefetch this handle started has ended (after close/cancel). */
  async settled(): Promise<void> {
    while (this.#outstanding.size > 0) await Promise.all([...this.#outstanding].map((h) => h.done));
  }

  #cancelAll(): void {
    for (const h of this.#outstanding) h.cancel();
  }
}
