// A fake Remote for deterministic data-layer tests. Objects are ramp data (byte i of an object
// with seed s is rampByte(i, s), support/ramp.ts). Each read() is recorded as a FakeRead; in 'auto' mode its body
// delivers everything in `chunkBytes` pieces, in 'manual' mode nothing moves until the test
// calls deliver()/fail()/stall on that read. Every body honours its AbortSignal and is counted
// while open, so tests can assert that aborted downloads really closed their request.
//
// With `transfers: true` it also has `readToFile` (the off-thread path of the range fetcher).
// A FakeTransfer runs on the caller's thread but keeps the whole FileTransfer contract of
// remote.ts: its bytes come from a FakeRead (so deliver/fail/abort drive it like a body), it
// writes them into the target file itself with positional fs.promises writes, never writes a
// byte at or past `allowTo` until allow() raises it (bytes wait, the body is not pulled
// further), reports each write through `onWritten` in order with growing offsets, and settles
// `done` only after its last report and after it closed its own fd. Tests may inject write
// failures (FileWriteError) and a pause before each write.
import { open as fsOpen, type FileHandle } from 'node:fs/promises';
import { Deferred, raceAbort } from '../../src/base/async.js';
import { fingerprintChange } from '../../src/remote/fingerprint.js';
import { FileWriteError, RemoteError } from '../../src/remote/remote-error.js';
import type {
  FileTransfer,
  Fingerprint,
  ReadRangeOptions,
  ReadToFileOptions,
  Remote,
  RemoteCapabilities,
  RemoteEntry,
  RemoteReadStream,
  RemoteStat,
} from '../../src/remote/remote.js';
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

/** One readToFile: a FakeRead as its body, written into `filePath` under flow control. */
export class FakeTransfer implements FileTransfer {
  readonly read: FakeRead;
  readonly filePath: string;
  readonly #options: ReadToFileOptions;
  readonly #remote: FakeRemote;
  readonly #fingerprint: Fingerprint;
  readonly #result = new Deferred<Fingerprint>();
  #allowTo: number;
  #allowKick = new Deferred<void>();
  #writeFailure: FileWriteError | undefined;
  #reported: number;
  #reporting: Promise<void> | undefined;
  /** Highest offset the transfer wrote up to (and reported). */
  writtenTo: number;
  /** Times it had bytes to write and waited for allow(). */
  allowWaits = 0;
  /** The highest `allowTo` it was given. */
  get allowTo(): number {
    return this.#allowTo;
  }

  constructor(remote: FakeRemote, read: FakeRead, filePath: string, options: ReadToFileOptions, fingerprint: Fingerprint) {
    this.#remote = remote;
    this.read = read;
    this.filePath = filePath;
    this.#options = options;
    this.#fingerprint = fingerprint;
    this.#allowTo = options.allowTo;
    this.writtenTo = read.offset;
    this.#reported = read.offset;
    remote.onAllow?.(this, options.allowTo);
    this.#result.promise.catch(() => undefined); // observed through `done`
    void this.#run();
  }

  get done(): Promise<Fingerprint> {
    return this.#result.promise;
  }

  /** What it has reported written (through onWritten). */
  get reportedTo(): number {
    return this.#reported;
  }

  allow(to: number): void {
    if (to <= this.#allowTo || this.#result.settled) return;
    this.#remote.onAllow?.(this, to);
    this.#allowTo = to;
    const k = this.#allowKick;
    this.#allowKick = new Deferred<void>();
    k.resolve();
  }

  /**
   * Reports what is written: at once, or (when `reportDelay` says so) a little later and
   * coalesced with the writes made meanwhile, as the transfer thread batches its reports.
   * The writer does not wait for a delayed report, so it runs on to its allowTo.
   */
  #report(): void {
    if (this.#reporting) return;
    const delay = this.#remote.reportDelay?.(this);
    if (delay === undefined) {
      this.#reportNow();
      return;
    }
    this.#reporting = delay.then(() => {
      this.#reporting = undefined;
      this.#reportNow();
    });
  }

  #reportNow(): void {
    if (this.writtenTo <= this.#reported) return;
    this.#reported = this.writtenTo;
    this.#options.onWritten(this.writtenTo);
  }

  /** Makes the next write into the file fail as a local write error (code ENOSPC). */
  failWrite(): void {
    this.#writeFailure = new FileWriteError(`writing ${this.filePath} failed: fake ENOSPC`, 'ENOSPC');
  }

  async #run(): Promise<void> {
    const signal = this.#options.signal;
    let fh: FileHandle | undefined;
    let failure: unknown;
    try {
      let pos = this.read.offset;
      for await (const chunk of this.read.body(this.#remote.chunkBytes)) {
        // Opened once data arrives (as the worker does at response start), inside the loop
        // so that a failure here still ends the body.
        fh ??= await fsOpen(this.filePath, 'r+');
        let off = 0;
        while (off < chunk.length) {
          // Flow control: bytes at or past allowTo wait (and the body is not pulled further).
          while (!this.#remote.ignoreAllowTo && pos >= this.#allowTo) {
            this.allowWaits++;
            try {
              await raceAbort(this.#allowKick.promise, signal);
            } catch (err) {
              throw new RemoteError('aborted', 'fake transfer aborted while waiting for allow()', { cause: err });
            }
          }
          const n = this.#remote.ignoreAllowTo ? chunk.length - off : Math.min(chunk.length - off, this.#allowTo - pos);
          await this.#remote.beforeTransferWrite?.(this);
          if (this.#writeFailure) throw this.#writeFailure;
          let done = 0;
          while (done < n) {
            const { bytesWritten } = await fh.write(chunk, off + done, n - done, pos + done);
            if (bytesWritten <= 0) throw new FileWriteError(`write made no progress at ${pos + done}`, 'EIO');
            done += bytesWritten;
          }
          pos += n;
          off += n;
          this.writtenTo = pos;
          this.#report();
        }
      }
    } catch (err) {
      // Remote failures as they are; anything the file did is a local write error, with its code.
      failure =
        err instanceof RemoteError || err instanceof FileWriteError
          ? err
          : new FileWriteError(`writing ${this.filePath} failed: ${String(err)}`, errnoCode(err));
    }
    try {
      await fh?.close();
    } catch {
      // positional writes are in the page cache; a close error loses nothing
    }
    // The last report goes out before `done` settles.
    while (this.#reporting) await this.#reporting;
    this.#reportNow();
    if (failure === undefined) this.#result.resolve(this.#fingerprint);
    else this.#result.reject(failure);
  }
}

export interface FakeRemoteOptions {
  mode?: 'auto' | 'manual';
  chunkBytes?: number;
  /** Offer `readToFile` (FakeTransfer). */
  transfers?: boolean;
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
  /** Every readToFile, in order (present only with `transfers`). */
  readonly transfers: FakeTransfer[] = [];
  /** Awaited by a transfer before each write into the file (tests add delays here). */
  beforeTransferWrite: ((t: FakeTransfer) => Promise<void> | undefined) | undefined;
  /** Called with each allowTo a transfer is given (at the start, then by allow()). */
  onAllow: ((t: FakeTransfer, to: number) => void) | undefined;
  /** Called after each transfer write: a promise delays (and coalesces) its report. */
  reportDelay: ((t: FakeTransfer) => Promise<void> | undefined) | undefined;
  /** Breaks flow control on purpose (tests that must catch it): transfers ignore allowTo. */
  ignoreAllowTo = false;
  readonly readToFile?: (path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions) => FileTransfer;
  #readWaiters: { n: number; d: Deferred<void> }[] = [];

  constructor(o: FakeRemoteOptions = {}) {
    this.mode = o.mode ?? 'auto';
    this.chunkBytes = o.chunkBytes ?? 64 * 1024;
    if (o.transfers === true) this.readToFile = (...args) => this.#readToFile(...args);
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
    const { r, fingerprint } = this.#startRead(path, offset, length, options);
    return { fingerprint, body: r.body(this.chunkBytes) };
  }

  /** Same checks and errors as read(); failures reject `done` (the file was not touched). */
  #readToFile(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    let started: { r: FakeRead; fingerprint: Fingerprint };
    try {
      started = this.#startRead(path, offset, length, options);
    } catch (err) {
      const failed = Promise.reject(err);
      failed.catch(() => undefined);
      return { done: failed, allow: () => undefined };
    }
    const t = new FakeTransfer(this, started.r, filePath, options, started.fingerprint);
    this.transfers.push(t);
    return t;
  }

  #startRead(path: string, offset: number, length: number, options: ReadRangeOptions): { r: FakeRead; fingerprint: Fingerprint } {
    if (options.signal.aborted) throw new RemoteError('aborted', 'aborted before start', { cause: options.signal.reason });
    const next = this.failNext.shift();
    if (next !== undefined) throw next;
    const o = this.objects.get(path);
    if (!o) throw new RemoteError('not-found', path);
    // The one comparison (remote/fingerprint.ts), as every real remote uses it.
    if (options.expect && fingerprintChange(options.expect, { etag: o.etag, size: o.size }) !== undefined) {
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
    return { r, fingerprint: { etag: o.etag, size: o.size } };
  }

  async close(): Promise<void> {}
}

function errnoCode(err: unknown): string | undefined {
  const code: unknown = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
