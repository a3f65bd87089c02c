// NotifyThread: sends FUSE_NOTIFY_* messages (INVAL_INODE, INVAL_ENTRY, DELETE) from a worker
// thread (notify-worker.ts). Why a thread: the kernel handles a notification inside our write
// and may wait there for a lock that a request in flight holds; a synchronous write from the
// main thread would then block the very loop that has to answer that request: a deadlock of
// the whole mount. From a worker, the write waits, the main thread answers, the lock goes.
//
// Invariants:
// - Messages are written in the order they were sent (one worker, one queue).
// - Each send resolves once with the kernel's verdict: 'ok', 'ENOENT' (nothing cached for that
//   inode or name: fine), 'ENODEV' (the connection is gone), or another errno code.
// - The worker starts on the first send and is unreferenced while idle, so it never keeps the
//   process alive; close() terminates it and resolves every pending send with 'closed'.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.js';

/** 'ok', 'closed' (the thread was closed first), or the errno code the kernel answered. */
export type NotifyResult = string;

export class NotifyThread {
  readonly #fd: number;
  readonly #log: Logger;
  readonly #pending = new Map<number, (r: NotifyResult) => void>();
  #worker: Worker | undefined;
  #nextId = 1;
  #closed = false;

  constructor(fd: number, log: Logger) {
    this.#fd = fd;
    this.#log = log;
  }

  /** Writes one notification message (header and payload) from the worker. */
  send(chunks: readonly Buffer[]): Promise<NotifyResult> {
    if (this.#closed) return Promise.resolve('closed');
    const worker = this.#start();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const ab = new ArrayBuffer(total);
    const view = Buffer.from(ab);
    let off = 0;
    for (const c of chunks) off += c.copy(view, off);
    const id = this.#nextId++;
    return new Promise<NotifyResult>((resolve) => {
      this.#pending.set(id, resolve);
      worker.ref();
      worker.postMessage({ id, buf: ab }, [ab]);
    });
  }

  /** Starts the thread now, so the first notification does not wait for it to boot. */
  warm(): void {
    if (!this.#closed) this.#start();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const resolve of this.#pending.values()) resolve('closed');
    this.#pending.clear();
    await this.#worker?.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./notify-worker.js', import.meta.url), { workerData: { fd: this.#fd } });
    worker.on('message', (m: { id: number; result: NotifyResult }) => {
      const resolve = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      resolve?.(m.result);
      if (this.#pending.size === 0) worker.unref();
    });
    worker.on('error', (err) => this.#log.error({ err }, 'notify thread failed'));
    worker.on('exit', () => {
      for (const resolve of this.#pending.values()) resolve('closed');
      this.#pending.clear();
      this.#worker = undefined;
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}
