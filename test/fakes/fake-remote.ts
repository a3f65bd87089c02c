// A fake Remote for deterministic data-layer tests. Objects are ramp data (byte i of an object
// with seed s is rampByte(i, s), support/ramp.ts). Each read() is recorded as a FakeRead; in 'auto' mode its body
// delivers everything in `chunkBytes` pieces, in 'manual' mode nothing moves until the test
// calls deliver()/fail()/stall on that read. Every body honours its AbortSignal and is counted
// while open, so tests can assert that aborted downloads really closed their request.
import { Deferred, raceAbort } from '../../src/base/async.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import type { Fingerprint, ReadRangeOptions, Remote, RemoteCapabilities, RemoteEntry, RemoteReadStream, RemoteStat } from '../../src/remote/remote.js';
import { rampBuffer } from '../support/ramp.js';

export interface FakeObject {
  size: number;
  etag: string;
  seed: number;
}

export class FakeRead {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  readonly signal: AbortSignal;
  readonly seed: number;
  /** Bytes the body has yielded so far. */
  yielded = 0;
  /** The body finished (completely, with an error, or by abort/return). */
  closed = false;
  aborted = false;
  #allowance = 0;
  #failure: Error | undefined;
  #kick = new Deferred<void>();
  readonly #closedD = new Deferred<void>();

  constructor(path: string, offset: number, length: number, signal: AbortSignal, seed: number, auto: boolean) {
    this.path = path;
    this.offset = offset;
    this.length = length;
    this.signal = signal;
    this.seed = seed;
    if (auto) this.#allowance = Number.POSITIVE_INFINITY;
  }

  /** Resolves when the body is done (for any reason). */
  get whenClosed(): Promise<void> {
    return this.#closedD.promise;
  }

  /** Lets the body yield `n` more bytes (Infinity: the rest). */
  deliver(n: number = Number.POSITIVE_INFINITY): void {
    this.#allowance += n;
    this.#wake();
  }

  /** Makes the body throw `err` at its next step. */
  fail(err: Error): void {
    this.#failure = err;
    this.#wake();
  }

  #wake(): void {
    const k = this.#kick;
    this.#kick = new Deferred<void>();
    k.resolve();
  }

  async *body(chunkBytes: number): AsyncGenerator<Uint8Array> {
    try {
      while (this.yielded < this.length) {
        if (this.#failure !== undefined) throw this.#failure;
        if (this.signal.aborted) throw new RemoteError('aborted', 'fake read aborted', { cause: this.signal.reason });
        if (this.#allowance <= 0) {
          try {
            await raceAbort(this.#kick.promise, this.signal);
          } catch (err) {
            throw new RemoteError('aborted', 'fake read aborted', { cause: err });
          }
          continue;
        }
        const n = Math.min(chunkBytes, this.length - this.yielded, this.#allowance);
        const start = this.offset + this.yielded;
        this.#allowance -= n;
        this.yielded += n;
        yield rampBuffer(start, n, this.seed);
        // Give the consumer's continuation a turn between chunks, as a socket would.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      if (this.yielded < this.length) this.aborted = true;
      this.closed = true;
      this.#closedD.resolve();
    }
  }
}

export interface FakeRemoteOptions {
  mode?: 'auto' | 'manual';
  chunkBytes?: number;
}

export class FakeRemote implements Remote {
  readonly id = 'fake://test/';
  readonly capabilities: RemoteCapabilities = { writable: false, ranges: true, exactListing: true };
  readonly objects = new Map<string, FakeObject>();
  readonly reads: FakeRead[] = [];
  mode: 'auto' | 'manual';
  /** Paths whose reads are manual whatever `mode` says. */
  readonly manualPaths = new Set<string>();
  chunkBytes: number;
  /** Errors thrown by the next read() calls, in order, before any body exists. */
  readonly failNext: Error[] = [];
  /** Called synchronously for every read() (after it is recorded). */
  onRead: ((r: FakeRead) => void) | undefined;
  #readWaiters: { n: number; d: Deferred<void> }[] = [];

  constructor(o: FakeRemoteOptions = {}) {
    this.mode = o.mode ?? 'auto';
    this.chunkBytes = o.chunkBytes ?? 64 * 1024;
  }

  setObject(path: string, size: number, seed = 0, etag = `"e-${seed}-${size}"`): Fingerprint {
    this.objects.set(path, { size, seed, etag });
    return { etag, size };
  }

  fingerprint(path: string): Fingerprint {
    const o = this.objects.get(path);
    if (!o) throw new Error(`no object ${path}`);
    return { etag: o.etag, size: o.size };
  }

  /** Body streams not finished yet. */
  get openBodies(): number {
    return this.reads.filter((r) => !r.closed).length;
  }

  /** Resolves when at least `n` read() calls happened. */
  readsReached(n: number): Promise<void> {
    if (this.reads.length >= n) return Promise.resolve();
    const d = new Deferred<void>();
    this.#readWaiters.push({ n, d });
    return d.promise;
  }

  async stat(path: string): Promise<RemoteStat> {
    const o = this.objects.get(path);
    if (!o) throw new RemoteError('not-found', path);
    return { name: path.split('/').pop() ?? path, type: 'file', size: o.size, etag: o.etag };
  }

  async list(): Promise<RemoteEntry[]> {
    return [...this.objects.entries()].map(([name, o]) => ({ name, type: 'file' as const, size: o.size, etag: o.etag }));
  }

  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    if (options.signal.aborted) throw new RemoteError('aborted', 'aborted before start', { cause: options.signal.reason });
    const next = this.failNext.shift();
    if (next !== undefined) throw next;
    const o = this.objects.get(path);
    if (!o) throw new RemoteError('not-found', path);
    if (options.expect && (options.expect.etag !== o.etag || options.expect.size !== o.size)) {
      throw new RemoteError('changed', `${path} changed`);
    }
    if (offset > o.size) throw new RemoteError('invalid', 'range past EOF');
    const len = Math.min(length, o.size - offset);
    const r = new FakeRead(path, offset, len, options.signal, o.seed, this.mode === 'auto' && !this.manualPaths.has(path));
    this.reads.push(r);
    this.onRead?.(r);
    this.#readWaiters = this.#readWaiters.filter((w) => {
      if (this.reads.length >= w.n) w.d.resolve();
      return this.reads.length < w.n;
    });
    return { fingerprint: { etag: o.etag, size: o.size }, body: r.body(this.chunkBytes) };
  }

  async close(): Promise<void> {}
}

