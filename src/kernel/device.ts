// The /dev/fuse device: reading requests and writing replies. Two reader designs, both of
// which keep the libuv thread pool free (RESEARCH.md measured a real deadlock when blocking
// /dev/fuse reads sit on the pool while handlers need it for cache-file I/O):
//
// - 'uvpipe' (default): the fd is wrapped in a libuv stream handle and polled by epoll on the
//   main loop. No threads; each read(2) returns exactly one request. Node reads into 64 KiB
//   buffers and the kernel refuses read buffers smaller than 80 + max_write, so max_write is
//   capped at 61440 here (it only limits the size of WRITE requests; READ replies are ours).
// - 'worker': one worker thread loops on a blocking readSync and transfers each request to the
//   main thread. Allows max_write up to 1 MiB (faster large writes), costs a thread hop.
//
// Replies and notifications are written synchronously from the main thread (one writev per
// message: the kernel rejects partial replies). The device owns the fd: close() closes it.
import { writevSync, closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.js';

export type ReaderKind = 'uvpipe' | 'worker';

export interface DeviceCallbacks {
  /** One or more whole requests (the session splits on in_header.len). */
  onData(buf: Buffer): void;
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

const UVPIPE_MAX_WRITE = 61440;
const WORKER_MAX_WRITE = 1 << 20;

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

/** The event-loop reader. Relies on process.binding('pipe_wrap') (allow-listed legacy API). */
class UvPipeDevice extends BaseDevice {
  readonly kind = 'uvpipe';
  readonly maxWrite = UVPIPE_MAX_WRITE;
  #socket: Socket | undefined;

  start(cb: DeviceCallbacks): void {
    const binding = (process as unknown as { binding(name: string): PipeWrapBinding }).binding('pipe_wrap');
    const handle = new binding.Pipe(binding.constants.SOCKET);
    const rc = handle.open(this.fd);
    if (rc !== 0) throw new Error(`cannot attach /dev/fuse fd ${this.fd} to the event loop (uv error ${rc})`);
    const socket = new Socket({ handle, readable: true, writable: false } as ConstructorParameters<typeof Socket>[0]);
    this.#socket = socket;
    const end = this.endOnce(cb);
    socket.on('data', (buf: Buffer) => cb.onData(buf));
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
  readonly maxWrite = WORKER_MAX_WRITE;
  #worker: Worker | undefined;

  start(cb: DeviceCallbacks): void {
    const worker = new Worker(new URL('./device-worker.js', import.meta.url), {
      workerData: { fd: this.fd, bufferSize: WORKER_MAX_WRITE + 4096 },
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
