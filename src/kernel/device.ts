// The /dev/fuse device: reading requests and writing replies. Two reader designs, both of
// which keep the libuv thread pool free (RESEARCH.md measured a real deadlock when blocking
// /dev/fuse reads sit on the pool while handlers need it for cache-file I/O):
//
// - 'uvpipe' (default): the fd is wrapped in a libuv stream handle and polled by epoll on the
//   main loop. No threads; each read(2) returns exactly one request. The kernel refuses read
//   buffers smaller than 80 + max_write, and Node's own stream buffers are 64 KiB, so we hand
//   libuv our own buffers (net.Socket's `onread`, which reads into the whole buffer it is
//   given): max_write is 1 MiB with no thread hop and no allocation per request.
// - 'worker': one worker thread loops on a blocking readSync and transfers each request to the
//   main thread. Also 1 MiB; costs a thread hop and a copy per request. Kept as a fallback that
//   needs no internal Node API.
//
// Read buffers of the uvpipe reader (`ReadBuffers`): a request of at most SMALL_REQUEST_BYTES
// (everything but a large WRITE) is copied out at once and its buffer read into again; a
// larger one is lent to the session with the request, which gives it back (`release`) once
// nothing reads it any more (its handler settled). Only lent buffers are ever out, so a new
// read always has a free buffer: at most READ_BUFFERS_KEPT idle ones are kept, and a read
// while they are all lent gets a fresh one (so a hung handler never stops the reader).
//
// Replies and notifications are written synchronously from the main thread (one writev per
// message: the kernel rejects partial replies). The device owns the fd: close() closes it.
import { writevSync, closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.js';

export type ReaderKind = 'uvpipe' | 'worker';

export interface DeviceCallbacks {
  /**
   * One or more whole requests (the session splits on in_header.len). With `release`, `buf`
   * is lent: the session calls `release` exactly once, when no handler reads it any more; the
   * device then reads other requests into it. Without, `buf` is the session's.
   */
  onData(buf: Buffer, release?: () => void): void;
  /** The device stopped: ENODEV after unmount, ECONNABORTED after abort, or another error. */
  onEnd(err: NodeJS.ErrnoException | undefined): void;
}

export interface FuseDevice {
  readonly fd: number;
  readonly kind: ReaderKind;
  /** The largest max_write this reader's buffer allows. */
  readonly maxWrite: number;
  start(callbacks: DeviceCallbacks): void;
  /**
   * Writes one message. Returns undefined on success or the errno code string of a failure
   * the caller may expect (ENOENT: the request was interrupted or already answered;
   * ENODEV: the connection is gone). Anything else is thrown.
   */
  write(chunks: readonly Buffer[]): 'ENOENT' | 'ENODEV' | undefined;
  close(): void;
}

/** max_write of both readers: 1 MiB WRITE requests (256 pages, as max_pages). */
const MAX_WRITE = 1 << 20;
/** A read buffer: the kernel needs room for fuse_in_header + fuse_write_in + max_write. */
const READ_BUFFER_BYTES = MAX_WRITE + 4096;
/** Requests up to this size are copied out of the read buffer (a copy costs less than a lent 1 MiB buffer). */
const SMALL_REQUEST_BYTES = 64 * 1024;
/** Idle read buffers kept for reuse (more are made while they are all lent, and dropped after). */
const READ_BUFFERS_KEPT = 4;

function writeMessage(fd: number, chunks: readonly Buffer[]): 'ENOENT' | 'ENODEV' | undefined {
  try {
    writevSync(fd, chunks);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'ENOENT';
    if (code === 'ENODEV' || code === 'ECONNABORTED' || code === 'EBADF') return 'ENODEV';
    throw err;
  }
}

interface PipeWrapBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/**
 * What both readers share: the fd, the close latch, writing, and reporting the end once.
 * Subclasses start their reader in `start` and release it in `release`.
 */
abstract class BaseDevice implements FuseDevice {
  abstract readonly kind: ReaderKind;
  abstract readonly maxWrite: number;
  readonly fd: number;
  protected readonly logger: Logger;
  #closed = false;

  constructor(fd: number, logger: Logger) {
    this.fd = fd;
    this.logger = logger;
  }

  abstract start(callbacks: DeviceCallbacks): void;

  /** Releases the reader (and with it, or explicitly, the fd). Called once, from close(). */
  protected abstract release(): void;

  /** Wraps `onEnd` so the end is reported exactly once, whichever event reports it first. */
  protected endOnce(cb: DeviceCallbacks): (err: NodeJS.ErrnoException | undefined) => void {
    let ended = false;
    return (err) => {
      if (ended) return;
      ended = true;
      cb.onEnd(err);
    };
  }

  write(chunks: readonly Buffer[]): 'ENOENT' | 'ENODEV' | undefined {
    if (this.#closed) return 'ENODEV';
    return writeMessage(this.fd, chunks);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
  }
}

/**
 * The uvpipe reader's buffers (see the file header): `next` gives libuv the buffer of the next
 * read, `delivered` copies a small request out (the buffer is read into again) or lends a
 * large one with its `release`.
 */
export class ReadBuffers {
  readonly #idle: Buffer[] = [];
  readonly #bytes: number;
  readonly #kept: number;
  /** Buffers lent with a request and not given back yet (a gauge for tests). */
  lent = 0;

  constructor(bytes = READ_BUFFER_BYTES, kept = READ_BUFFERS_KEPT) {
    this.#bytes = bytes;
    this.#kept = kept;
  }

  next(): Buffer {
    return this.#idle.pop() ?? Buffer.allocUnsafeSlow(this.#bytes);
  }

  /** What the session gets for `n` bytes read into `buf` (which `next` handed out). */
  delivered(buf: Buffer, n: number): { data: Buffer; release: (() => void) | undefined } {
    if (n <= SMALL_REQUEST_BYTES) {
      const data = Buffer.from(buf.subarray(0, n));
      this.#giveBack(buf);
      return { data, release: undefined };
    }
    this.lent++;
    let released = false;
    return {
      data: buf.subarray(0, n),
      release: () => {
        if (released) return;
        released = true;
        this.lent--;
        this.#giveBack(buf);
      },
    };
  }

  #giveBack(buf: Buffer): void {
    if (this.#idle.length < this.#kept) this.#idle.push(buf);
  }
}

/** The event-loop reader. Relies on process.binding('pipe_wrap') (allow-listed legacy API). */
class UvPipeDevice extends BaseDevice {
  readonly kind = 'uvpipe';
  readonly maxWrite = MAX_WRITE;
  readonly #buffers = new ReadBuffers();
  #socket: Socket | undefined;

  start(cb: DeviceCallbacks): void {
    const binding = (process as unknown as { binding(name: string): PipeWrapBinding }).binding('pipe_wrap');
    const handle = new binding.Pipe(binding.constants.SOCKET);
    const rc = handle.open(this.fd);
    if (rc !== 0) throw new Error(`cannot attach /dev/fuse fd ${this.fd} to the event loop (uv error ${rc})`);
    // `onread`: libuv reads into the buffer `buffer()` returns, all of it (Node's own buffers
    // are 64 KiB, too small for 1 MiB WRITEs), and Node asks for the next one after each
    // callback. No 'data' events are emitted.
    const buffers = this.#buffers;
    const socket = new Socket({
      handle,
      readable: true,
      writable: false,
      onread: {
        buffer: () => buffers.next(),
        callback: (n: number, buf: Uint8Array) => {
          const { data, release } = buffers.delivered(buf as Buffer, n);
          cb.onData(data, release);
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    this.#socket = socket;
    const end = this.endOnce(cb);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENODEV') this.logger.warn({ err }, 'fuse device read failed');
      end(err);
    });
    socket.on('end', () => end(undefined));
    socket.on('close', () => end(undefined));
  }

  protected release(): void {
    if (this.#socket) this.#socket.destroy(); // closes the handle, and with it the fd
    else closeSync(this.fd);
  }
}

/** The worker-thread reader: blocking reads off the main thread, requests transferred in. */
class WorkerDevice extends BaseDevice {
  readonly kind = 'worker';
  readonly maxWrite = MAX_WRITE;
  #worker: Worker | undefined;

  start(cb: DeviceCallbacks): void {
    const worker = new Worker(new URL('./device-worker.js', import.meta.url), {
      workerData: { fd: this.fd, bufferSize: READ_BUFFER_BYTES },
    });
    this.#worker = worker;
    const end = this.endOnce(cb);
    worker.on('message', (m: ArrayBuffer | { end: string | undefined }) => {
      if (m instanceof ArrayBuffer) {
        cb.onData(Buffer.from(m));
        return;
      }
      const err = m.end === undefined ? undefined : Object.assign(new Error(`fuse device: ${m.end}`), { code: m.end });
      if (m.end !== 'ENODEV') this.logger.warn({ err }, 'fuse device reader stopped');
      end(err);
    });
    worker.on('error', (err) => {
      this.logger.error({ err }, 'fuse device worker failed');
      end(err);
    });
    worker.on('exit', () => end(undefined));
    // The worker stays referenced: it is what keeps the process alive while mounted (as the
    // socket does for uvpipe). It exits by itself once unmount makes its read fail with ENODEV.
  }

  protected release(): void {
    // After unmount the worker's read returns ENODEV and it exits by itself; closing the fd
    // aborts the connection if it is still there, which also ends the read.
    closeSync(this.fd);
    void this.#worker?.terminate();
  }
}

export function openDevice(fd: number, kind: ReaderKind, logger: Logger): FuseDevice {
  return kind === 'worker' ? new WorkerDevice(fd, logger) : new UvPipeDevice(fd, logger);
}
