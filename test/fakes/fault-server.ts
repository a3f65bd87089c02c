// A fault-injecting HTTP server (node:http, 127.0.0.1, port 0) that serves ramp objects and
// honours Range / If-Range like a static file server, with faults queued at runtime. It is a
// test fixture for the failure paths, not a stand-in for real servers (see nginx.ts).
//
// Faults are queued: each request to an object takes the next queued fault (a fault with a
// count applies to that many requests). An outage (`outage(kind)`) instead hits every request,
// listings and HEADs included, until it is lifted: a black hole (accept, never answer), 503s,
// resets, a 1 B/s trickle, or a refused port (the listener closes; `outage(undefined)` listens
// again on the same port). Counters let tests check what the server saw; the
// onRequest hook lets a test hold a request at a barrier before it is answered.
// Invariants: stop() closes every socket and releases every stall, so no handler outlives it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Deferred, Gate } from '../../src/base/async.js';
import { rampBuffer } from '../support/ramp.js';

export interface StallHandle {
  /** Open it to let the stalled body continue. */
  gate: Gate;
  /** Resolves when a response has sent its first `bytes` bytes and stalled. */
  reached: Promise<void>;
  /** Resolves when the stalled response's socket has closed. */
  closed: Promise<void>;
}

type Fault =
  | { kind: 'stall'; bytes: number; handle: StallHandle; reached: Deferred<void>; closed: Deferred<void> }
  | { kind: 'trickle'; bytesPerSec: number }
  | { kind: 'reset'; bytes: number }
  | { kind: 'status'; code: number; retryAfter: string | undefined }
  | { kind: 'truncate'; bytes: number }
  | { kind: 'wrong-content-range' }
  | { kind: 'ignore-range' };

/** A whole-server failure (see `outage`). */
export type Outage = 'black-hole' | 'status-503' | 'reset' | 'trickle' | 'refused';

interface QueuedFault {
  fault: Fault;
  remaining: number;
}

interface ServedObject {
  size: number;
  version: number;
  etag: string | undefined;
  requests: number;
}

export interface RequestInfo {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** 1-based count of requests seen by the server, this one included. */
  n: number;
}

export interface FaultServerStats {
  requests: number;
  /** Connections accepted so far. */
  connections: number;
  bytesSent: number;
  openSockets: number;
  socketsClosed: number;
}

const LAST_MODIFIED_BASE = Date.UTC(2025, 10, 19, 21, 2, 3);

export class FaultServer {
  readonly stats: FaultServerStats = { requests: 0, connections: 0, bytesSent: 0, openSockets: 0, socketsClosed: 0 };
  /** Awaited before each request is answered (place barriers here). */
  onRequest: ((info: RequestInfo) => Promise<void> | void) | undefined;
  readonly #server: Server;
  readonly #objects = new Map<string, ServedObject>();
  readonly #faults: QueuedFault[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #gates = new Set<Gate>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #changeEtagEvery = 0;
  #refuseHead = false;
  #port = 0;
  #outage: Outage | undefined;
  /** Requests held by a black hole, released (destroyed) when it is lifted or at stop. */
  readonly #held = new Set<ServerResponse>();

  private constructor() {
    this.#server = createServer((req, res) => {
      void this.#handle(req, res).catch(() => res.destroy());
    });
    this.#server.keepAliveTimeout = 60_000;
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      this.stats.connections++;
      this.stats.openSockets++;
      s.once('close', () => {
        this.#sockets.delete(s);
        this.stats.openSockets--;
        this.stats.socketsClosed++;
      });
    });
  }

  static async start(): Promise<FaultServer> {
    const fs = new FaultServer();
    await new Promise<void>((resolve, reject) => {
      fs.#server.once('error', reject);
      fs.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = fs.#server.address();
    if (addr === null || typeof addr === 'string') throw new Error('fault server has no port');
    fs.#port = addr.port;
    return fs;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/`;
  }

  /** Serves `size` ramp bytes at `path` (e.g. "/a.bin"). */
  addObject(path: string, size: number): void {
    this.#objects.set(path, { size, version: 1, etag: undefined, requests: 0 });
  }

  etagOf(path: string): string {
    const o = this.#object(path);
    return o.etag ?? defaultEtag(o);
  }

  lastModifiedOf(path: string): number {
    return lastModified(this.#object(path));
  }

  /** Sets the ETag (with quotes) served for `path`. */
  setEtag(path: string, etag: string): void {
    this.#object(path).etag = etag;
  }

  /** From now on, every n-th request to an object gets a new version (new ETag, new date) first. */
  changeEtagEvery(n: number): void {
    this.#changeEtagEvery = n;
  }

  /** Answer HEAD with 405 (for the stat fallback). */
  refuseHead(on = true): void {
    this.#refuseHead = on;
  }

  stallAfter(bytes: number, opts: { count?: number; gate?: Gate } = {}): StallHandle {
    const gate = opts.gate ?? new Gate();
    this.#gates.add(gate);
    const reached = new Deferred<void>();
    const closed = new Deferred<void>();
    const handle: StallHandle = { gate, reached: reached.promise, closed: closed.promise };
    this.#queue({ kind: 'stall', bytes, handle, reached, closed }, opts.count);
    return handle;
  }

  trickle(bytesPerSec: number, opts: { count?: number } = {}): void {
    this.#queue({ kind: 'trickle', bytesPerSec }, opts.count);
  }

  /** Sends `bytes` of the body, then resets the connection (RST). */
  resetAfter(bytes: number, opts: { count?: number } = {}): void {
    this.#queue({ kind: 'reset', bytes }, opts.count);
  }

  /** Answers the next `count` requests with `code` (no body). */
  status(code: number, opts: { retryAfter?: string | number; count?: number } = {}): void {
    this.#queue({ kind: 'status', code, retryAfter: opts.retryAfter === undefined ? undefined : String(opts.retryAfter) }, opts.count);
  }

  /** Announces the full Content-Length, sends `bytes`, then closes the connection (FIN). */
  truncate(bytes: number, opts: { count?: number } = {}): void {
    this.#queue({ kind: 'truncate', bytes }, opts.count);
  }

  /** Answers a range with a Content-Range shifted by one byte (same length). */
  wrongContentRange(opts: { count?: number } = {}): void {
    this.#queue({ kind: 'wrong-content-range' }, opts.count);
  }

  /** Answers a range request with 200 and the whole object. */
  ignoreRange(opts: { count?: number } = {}): void {
    this.#queue({ kind: 'ignore-range' }, opts.count);
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /**
   * Makes the whole server fail in one way until `outage(undefined)`. While refused, nothing
   * listens on the port; lifting it listens again on the same port.
   */
  async outage(kind: Outage | undefined): Promise<void> {
    const was = this.#outage;
    this.#outage = kind;
    if (was === 'black-hole' && kind !== 'black-hole') {
      for (const res of this.#held) res.destroy();
      this.#held.clear();
    }
    if (kind === 'refused' && was !== 'refused') {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#server.closeAllConnections();
      for (const sock of this.#sockets) sock.destroy();
      await closed;
    }
    if (was === 'refused' && kind !== 'refused') {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(this.#port, '127.0.0.1', () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    }
  }

  get pendingFaults(): number {
    return this.#faults.reduce((n, f) => n + f.remaining, 0);
  }

  async stop(): Promise<void> {
    this.clearFaults();
    for (const res of this.#held) res.destroy();
    this.#held.clear();
    if (this.#outage === 'refused') return; // nothing listens, every socket is gone
    for (const g of this.#gates) g.open();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #queue(fault: Fault, count = 1): void {
    this.#faults.push({ fault, remaining: count });
  }

  #take(): Fault | undefined {
    const q = this.#faults[0];
    if (q === undefined) return undefined;
    q.remaining--;
    if (q.remaining <= 0) this.#faults.shift();
    return q.fault;
  }

  #object(path: string): ServedObject {
    const o = this.#objects.get(path);
    if (o === undefined) throw new Error(`fault server has no object ${path}`);
    return o;
  }

  #listing(dir: string): { name: string; type: 'file' | 'directory'; mtime: string; size?: number }[] {
    const out = new Map<string, { name: string; type: 'file' | 'directory'; mtime: string; size?: number }>();
    for (const [p, o] of this.#objects) {
      if (!p.startsWith(dir)) continue;
      const rest = p.slice(dir.length);
      const slash = rest.indexOf('/');
      const mtime = new Date(lastModified(o)).toUTCString();
      if (slash < 0) out.set(rest, { name: rest, type: 'file', mtime, size: o.size });
      else out.set(rest.slice(0, slash), { name: rest.slice(0, slash), type: 'directory', mtime });
    }
    return [...out.values()];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const n = ++this.stats.requests;
    const method = req.method ?? 'GET';
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    await this.onRequest?.({ method, path, headers: req.headers, n });
    switch (this.#outage) {
      case 'black-hole':
        this.#held.add(res);
        res.once('close', () => this.#held.delete(res));
        return;
      case 'status-503':
        res.writeHead(503, { 'content-length': '0' }).end();
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'trickle':
      case 'refused':
      case undefined:
        break;
    }
    if (path.endsWith('/') && method === 'GET') {
      // A directory: an nginx-style JSON listing of the objects directly under it, so the
      // fault server can back a whole mount. Listings are never faulted.
      const body = Buffer.from(JSON.stringify(this.#listing(path)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body);
      return;
    }
    const obj = this.#objects.get(path);
    if (obj === undefined) {
      res.writeHead(404, { 'content-length': '0' }).end();
      return;
    }
    if (method === 'HEAD' && this.#refuseHead) {
      res.writeHead(405, { 'content-length': '0', allow: 'GET' }).end();
      return;
    }
    const fault: Fault | undefined = this.#outage === 'trickle' ? { kind: 'trickle', bytesPerSec: 1 } : this.#take();
    if (fault?.kind === 'status') {
      const h: Record<string, string> = { 'content-length': '0' };
      if (fault.retryAfter !== undefined) h['retry-after'] = fault.retryAfter;
      res.writeHead(fault.code, h).end();
      return;
    }
    obj.requests++;
    if (this.#changeEtagEvery > 0 && obj.requests % this.#changeEtagEvery === 0) {
      obj.version++;
      obj.etag = undefined;
    }
    const etag = obj.etag ?? defaultEtag(obj);
    const lm = new Date(lastModified(obj)).toUTCString();
    const headers: Record<string, string> = { etag, 'last-modified': lm, 'content-type': 'application/octet-stream' };
    let start = 0;
    let end = obj.size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    const ifRangeOk = ifRange === undefined || ifRange === etag || ifRange === lm;
    if (range !== undefined && ifRangeOk && fault?.kind !== 'ignore-range') {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m !== null) {
        const a = Number(m[1]);
        const b = m[2] === '' ? obj.size - 1 : Math.min(Number(m[2]), obj.size - 1);
        if (a >= obj.size || b < a) {
          res.writeHead(416, { 'content-range': `bytes */${obj.size}`, 'content-length': '0' }).end();
          return;
        }
        start = a;
        end = b;
        status = 206;
        const shift = fault?.kind === 'wrong-content-range' ? 1 : 0;
        headers['content-range'] = `bytes ${a + shift}-${b + shift}/${obj.size}`;
      }
    }
    const length = end - start + 1;
    headers['content-length'] = String(length);
    if (status === 200) headers['accept-ranges'] = 'bytes';
    res.writeHead(status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    const body = rampBuffer(start, Math.max(0, length));
    await this.#send(req, res, body, fault);
  }

  async #send(req: IncomingMessage, res: ServerResponse, body: Buffer, fault: Fault | undefined): Promise<void> {
    const socket = req.socket;
    const socketClosed = new Deferred<void>();
    const onSocketClose = (): boolean => socketClosed.resolve();
    socket.once('close', onSocketClose);
    try {
      await this.#sendWith(req, res, body, fault, socketClosed);
    } finally {
      socket.off('close', onSocketClose);
    }
  }

  async #sendWith(req: IncomingMessage, res: ServerResponse, body: Buffer, fault: Fault | undefined, socketClosed: Deferred<void>): Promise<void> {
    const socket = req.socket;
    const write = async (chunk: Buffer): Promise<void> => {
      if (chunk.length === 0 || socket.destroyed) return;
      this.stats.bytesSent += chunk.length;
      await new Promise<void>((resolve) => res.write(chunk, () => resolve()));
    };
    switch (fault?.kind) {
      case 'stall': {
        await write(body.subarray(0, fault.bytes));
        fault.reached.resolve();
        const onClose = (): boolean => fault.closed.resolve();
        if (socket.destroyed) onClose();
        else socket.once('close', onClose);
        const ac = new AbortController();
        void socketClosed.promise.then(() => ac.abort());
        try {
          await fault.handle.gate.wait(ac.signal);
        } catch {
          return; // the client went away while stalled
        }
        await write(body.subarray(fault.bytes));
        res.end();
        return;
      }
      case 'reset':
        await write(body.subarray(0, fault.bytes));
        socket.resetAndDestroy();
        return;
      case 'truncate':
        await write(body.subarray(0, fault.bytes));
        socket.end();
        return;
      case 'trickle': {
        const tickMs = 50;
        const per = Math.max(1, Math.floor((fault.bytesPerSec * tickMs) / 1000));
        for (let off = 0; off < body.length && !socket.destroyed; off += per) {
          await write(body.subarray(off, off + per));
          if (off + per < body.length) {
            await new Promise<void>((resolve) => {
              const t = setTimeout(() => {
                this.#timers.delete(t);
                resolve();
              }, tickMs);
              this.#timers.add(t);
              void socketClosed.promise.then(() => {
                clearTimeout(t);
                this.#timers.delete(t);
                resolve();
              });
            });
          }
        }
        if (!socket.destroyed) res.end();
        return;
      }
      case 'status':
      case 'wrong-content-range':
      case 'ignore-range':
      case undefined:
        this.stats.bytesSent += body.length;
        res.end(body);
        return;
    }
  }
}

function defaultEtag(o: ServedObject): string {
  return `"v${o.version}-${o.size.toString(16)}"`;
}

function lastModified(o: ServedObject): number {
  return LAST_MODIFIED_BASE + (o.version - 1) * 1000;
}

/** Starts a fault server on 127.0.0.1, port 0. */
export function startFaultServer(): Promise<FaultServer> {
  return FaultServer.start();
}
