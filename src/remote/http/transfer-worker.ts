// A transfer worker thread: runs ranged GETs on its own undici Pool and writes each body
// straight into the target file with positional writes, so bulk bytes never cross the
// caller's thread. It reports how far the file is written ('written') and how the transfer
// ended ('end'). See transfer-pool.ts for the caller's side.
//
// Invariants (per transfer):
// - Nothing is written before the response passed checkRangeResponse, and no byte at or past
//   `allowTo` is written: such bytes are held and the response paused until 'allow'.
// - The body yields exactly the checked number of bytes, else the transfer fails ('protocol').
// - 'end' is posted exactly once, after the file was closed and after the last 'written'; after
//   it no callback of that transfer touches the file (`finished` guards every entry point).
// - 'abort' ends the transfer promptly: a response in progress is aborted; one not started yet
//   is ended at once and aborted if it ever starts.
import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Pool, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Fingerprint } from '../remote.js';
import { RemoteError, isRemoteError } from '../remote-error.js';
import { errorCode, mapBodyError } from './http-errors.js';
import { checkRangeResponse, isDataStatus } from './range-response.js';
import type { FromWorker, ToWorker, TransferFailure, TransferJob, TransferWorkerSetup } from './transfer-messages.js';

const port = parentPort;
if (port === null) throw new Error('transfer-worker.js runs only as a worker thread');
const setup = workerData as TransferWorkerSetup;

const pool = new Pool(setup.origin, {
  connections: setup.connections,
  keepAliveTimeout: setup.timeouts.keepAliveTimeoutMs,
  headersTimeout: setup.timeouts.headersTimeoutMs,
  bodyTimeout: setup.timeouts.bodyTimeoutMs,
  connect: { rejectUnauthorized: true, timeout: setup.timeouts.connectTimeoutMs, ...(setup.ca === undefined ? {} : { ca: setup.ca }) },
});

const post = (m: FromWorker): void => port.postMessage(m);

class LocalFileError extends Error {
  override readonly name = 'LocalFileError';
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

class Transfer implements Dispatcher.DispatchHandler {
  readonly #id: number;
  readonly #job: TransferJob;
  readonly #expect: Fingerprint | undefined;
  readonly #abort = new AbortController();
  #allowTo: number;
  #controller: Dispatcher.DispatchController | undefined;
  #mode: 'waiting' | 'data' | 'drain' = 'waiting';
  #failure: Error | undefined;
  #fingerprint: Fingerprint | undefined;
  #fd = -1;
  /** Bytes [offset, pos) are in the file. */
  #pos: number;
  #end: number;
  #reported: number;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #drained = 0;
  #responseEnded = false;
  #reportScheduled = false;
  #finished = false;

  constructor(id: number, job: TransferJob, allowTo: number, expect: Fingerprint | undefined) {
    this.#id = id;
    this.#job = job;
    this.#expect = expect;
    this.#allowTo = allowTo;
    this.#pos = job.offset;
    this.#end = job.offset + job.length;
    this.#reported = job.offset;
  }

  start(): void {
    try {
      pool.dispatch({ method: 'GET', path: this.#job.urlPath, headers: this.#job.headers }, this);
    } catch (err) {
      this.#fail(mapBodyError(err, this.#abort.signal, this.#job.what));
    }
  }

  allow(to: number): void {
    if (this.#finished || to <= this.#allowTo) return;
    this.#allowTo = to;
    this.#writeHeld();
    if (this.#finished) return;
    if (this.#heldBytes === 0) {
      if (this.#responseEnded) this.#complete();
      else if (this.#controller?.paused === true) this.#controller.resume();
    }
  }

  abort(): void {
    if (this.#finished) return;
    const err = new RemoteError('aborted', `${this.#job.what}: aborted`);
    this.#abort.abort(err);
    this.#fail(err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#finished) controller.abort(this.#failure ?? new RemoteError('aborted', `${this.#job.what}: aborted`));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.#finished) return;
    let bodyBytes: number;
    try {
      const ok = checkRangeResponse(status, headers, this.#job.offset, this.#job.length, this.#expect, this.#job.what);
      this.#fingerprint = ok.fingerprint;
      bodyBytes = ok.bodyBytes;
    } catch (err) {
      if (isDataStatus(status)) {
        this.#fail(err as Error); // the body is the data we refused: drop the connection
      } else {
        this.#failure = err as Error; // an error page: read it (bounded) to keep the connection
        this.#mode = 'drain';
      }
      return;
    }
    this.#end = this.#job.offset + bodyBytes;
    if (bodyBytes === 0) {
      this.#mode = 'drain';
      return;
    }
    try {
      this.#fd = openSync(this.#job.filePath, 'r+');
    } catch (err) {
      this.#fail(localError(`cannot open ${this.#job.filePath}`, err));
      return;
    }
    this.#mode = 'data';
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#finished) return;
    if (this.#mode === 'drain') {
      this.#drained += chunk.length;
      if (this.#drained > setup.drainLimitBytes) this.#fail(this.#failure ?? new RemoteError('protocol', `${this.#job.what}: body after an empty answer`));
      return;
    }
    if (this.#pos + this.#heldBytes + chunk.length > this.#end) {
      this.#fail(new RemoteError('protocol', `${this.#job.what}: body longer than the ${this.#end - this.#job.offset} bytes announced`));
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    this.#writeHeld();
    if (!this.#finished && this.#heldBytes > 0 && !controller.paused) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#finished) return;
    this.#responseEnded = true;
    if (this.#mode === 'drain') {
      if (this.#failure !== undefined) this.#fail(this.#failure);
      else this.#complete();
      return;
    }
    if (this.#heldBytes === 0) this.#complete();
    // else: the rest is written (and the transfer completed) when 'allow' lets it land
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#finished) return;
    const what = `${this.#job.what} (after ${this.#pos - this.#job.offset} of ${this.#end - this.#job.offset} bytes)`;
    this.#fail(this.#failure ?? mapBodyError(err, this.#abort.signal, what));
  }

  /** Writes held bytes below allowTo; the rest stays held. */
  #writeHeld(): void {
    try {
      while (this.#held.length > 0 && this.#pos < this.#allowTo) {
        const buf = this.#held[0] as Buffer;
        const n = Math.min(buf.length, this.#allowTo - this.#pos);
        let done = 0;
        while (done < n) {
          const w = writeSync(this.#fd, buf, done, n - done, this.#pos + done);
          if (w <= 0) throw new LocalFileError(`write made no progress at ${this.#pos + done}`, 'EIO');
          done += w;
        }
        this.#pos += n;
        this.#heldBytes -= n;
        if (n === buf.length) this.#held.shift();
        else this.#held[0] = buf.subarray(n);
      }
    } catch (err) {
      this.#fail(err instanceof LocalFileError ? err : localError(`writing ${this.#job.filePath} failed at ${this.#pos}`, err));
      return;
    }
    if (this.#pos - this.#reported >= setup.reportEveryBytes) this.#report();
    else if (this.#pos > this.#reported && !this.#reportScheduled) {
      this.#reportScheduled = true;
      setImmediate(() => {
        this.#reportScheduled = false;
        if (!this.#finished) this.#report();
      });
    }
  }

  #report(): void {
    if (this.#pos <= this.#reported) return;
    this.#reported = this.#pos;
    post({ t: 'written', id: this.#id, to: this.#pos });
  }

  #complete(): void {
    if (this.#pos < this.#end) {
      this.#fail(new RemoteError('protocol', `${this.#job.what}: body ended after ${this.#pos - this.#job.offset} of ${this.#end - this.#job.offset} bytes`));
      return;
    }
    this.#finish();
    post({ t: 'end', id: this.#id, fingerprint: this.#fingerprint ?? { size: 0 } });
  }

  #fail(err: Error): void {
    if (this.#finished) return;
    this.#failure = err;
    this.#finish();
    this.#controller?.abort(err);
    post({ t: 'end', id: this.#id, failure: toFailure(err) });
  }

  /** Closes the file and reports the last written bytes; the transfer is over after this. */
  #finish(): void {
    this.#finished = true;
    transfers.delete(this.#id);
    this.#held = [];
    this.#heldBytes = 0;
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd);
      } catch {
        // a close error after positional writes loses nothing the page cache does not hold
      }
      this.#fd = -1;
    }
    this.#report();
  }
}

function localError(message: string, err: unknown): LocalFileError {
  return new LocalFileError(`${message}: ${err instanceof Error ? err.message : String(err)}`, errorCode(err));
}

function toFailure(err: Error): TransferFailure {
  if (isRemoteError(err)) {
    const f: TransferFailure = { remote: true, kind: err.kind, message: err.message, retryable: err.retryable, connectionLost: err.connectionLost };
    if (err.status !== undefined) f.status = err.status;
    if (err.retryAfterMs !== undefined) f.retryAfterMs = err.retryAfterMs;
    return f;
  }
  const code = err instanceof LocalFileError ? err.code : undefined;
  return code === undefined ? { remote: false, message: err.message } : { remote: false, message: err.message, code };
}

const transfers = new Map<number, Transfer>();

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'start': {
      const t = new Transfer(m.id, m.job, m.allowTo, m.expect);
      transfers.set(m.id, t);
      t.start();
      break;
    }
    case 'allow':
      transfers.get(m.id)?.allow(m.to);
      break;
    case 'abort':
      transfers.get(m.id)?.abort();
      break;
  }
});
