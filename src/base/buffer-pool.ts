// BufferPool: reuses the large buffers of the read path. Every READ reply is up to 1 MiB;
// allocating each one fresh makes V8 run a full mark-compact every ~10 MiB of external
// memory, which measured as half the CPU of a cold sequential read (bench:data). A buffer from
// the pool goes back when its user says it is done with it (`release`); a buffer that is never
// released is simply garbage collected, so releasing is an optimisation, never a duty.
//
// Ownership rule: whoever calls `release(buf)` promises that nobody reads or writes `buf` (or
// any view of its memory) afterwards. The read path's owner is the FUSE session: it releases a
// READ reply's data right after writing it to /dev/fuse (a synchronous write). Layers in
// between pass the buffer up and keep no reference.
//
// Invariants: a backing store is handed out by `acquire` at most once until it is released;
// `release` ignores buffers it did not hand out and second releases (so passing any buffer,
// e.g. a view into a file's contents in MemoryFs, is harmless). A pooled buffer's store is not
// shared with any other live buffer (allocUnsafeSlow gives each its own).

export class BufferPool {
  readonly bufferBytes: number;
  readonly minPooledBytes: number;
  readonly #maxFree: number;
  readonly #free: ArrayBuffer[] = [];
  readonly #lent = new WeakSet<ArrayBuffer>();

  constructor(bufferBytes: number, maxFree: number, minPooledBytes = 64 * 1024) {
    this.bufferBytes = bufferBytes;
    this.minPooledBytes = minPooledBytes;
    this.#maxFree = maxFree;
  }

  /** Buffers waiting for reuse. */
  get freeCount(): number {
    return this.#free.length;
  }

  /**
   * A buffer of exactly `length` bytes, uninitialised. Pooled when it is at least
   * `minPooledBytes` and fits `bufferBytes`; smaller ones come from Node's own small-buffer
   * slab, which is cheaper than lending a whole pooled buffer.
   */
  acquire(length: number): Buffer {
    if (length > this.bufferBytes || length < this.minPooledBytes) return Buffer.allocUnsafe(length);
    const ab = this.#free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes).buffer;
    this.#lent.add(ab);
    return Buffer.from(ab, 0, length);
  }

  /** Gives `buf`'s memory back for reuse. See the ownership rule above. */
  release(buf: Uint8Array): void {
    const ab = buf.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.#lent.delete(ab)) return;
    if (this.#free.length < this.#maxFree) this.#free.push(ab);
  }
}

/** The pool of READ reply buffers (1 MiB, the largest READ the kernel sends us). */
export const readBuffers = new BufferPool(1024 * 1024, 16);
