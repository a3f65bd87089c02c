// The FUSE session: one per mount. It frames device bytes into requests, routes each one
// (INIT to init.ts, INTERRUPT to the in-flight table, FORGET to the filesystem, the rest
// through the dispatch table), writes every reply, and owns the session's lifecycle
// (initialized, ended) and its handler promises.
//
// Request lifecycle (docs/ARCHITECTURE.md has the long form):
//   read → frame by in_header.len → decode header → decode arguments (dispatch.ts says which
//   struct) → control opcodes handled here → in-flight entry (in-flight.ts) → handler →
//   reply exactly once → entry removed.
// Invariants:
// - Every request except FORGET, BATCH_FORGET and a matched INTERRUPT gets exactly one reply.
//   Replies to in-flight requests go through `InFlightTable.claim` (the reply-once latch):
//   the first of {handler result, handler error, INTERRUPT, deadline, unmount} wins.
// - A reply that fails with ENOENT (request interrupted or already answered in the kernel's
//   view) is ignored; ENODEV means the connection is gone and ends the session.
// - One error policy for the kernel layer, in `#errnoFor`: FsError / ProtocolError /
//   RequestAbortedError → their errno; a handler the filesystem lacks → ENOSYS, logged once
//   per opcode; anything else → EIO, logged once with its stack. Node system errors are not
//   special here: the bridge maps them (bridge/errno-map.ts) before they reach us.
// - Nothing a handler does can end the session.
// - Handler promises are tracked until they settle (even after their request was answered), so
//   shutdown can wait for them: no task outlives the session unobserved.
import { TimeoutError, Deferred, within } from '../../base/async.js';
import { readBuffers } from '../../base/buffer-pool.js';
import { Errno } from '../../base/errno.js';
import { FsError } from '../../base/fs-error.js';
import type { Ino } from '../../base/ids.js';
import type { Logger } from '../../observability/logger.js';
import * as abi from '../abi.js';
import { ProtocolError } from '../codec/cursor.js';
import { decodeInHeader, type InHeader } from '../codec/decode.js';
import { encodeOutHeader } from '../codec/encode.js';
import { encodeNotifyDelete, encodeNotifyInvalEntry, encodeNotifyInvalInode } from '../codec/notify.js';
import { NotifyThread } from '../notify-thread.js';
import type { FuseDevice } from '../device.js';
import type { FuseOps, InitInfo, RequestContext } from '../ops.js';
import { NotImplementedError, decodeRequest, type DecodedRequest } from './dispatch.js';
import { InFlightTable, RequestAbortedError, type InFlight, type InFlightInfo } from './in-flight.js';
import { negotiateInit, type InitOffer } from './init.js';

export interface SessionOptions {
  ops: FuseOps;
  logger: Logger;
  /** Per-request deadline in ms; a request still unanswered then gets EIO. 0 disables. */
  deadlineMs: number;
  /** Ask for FUSE_WRITEBACK_CACHE (the kernel then owns size/mtime while files are open). */
  writebackCache?: boolean;
  /** Ask for FUSE_AUTO_INVAL_DATA (drop page cache when a getattr shows a new size/mtime). */
  autoInvalData?: boolean;
  /** Upper bound for the kernel's readahead, bytes. */
  maxReadahead?: number;
  /** Kernel-side limit of background (async) requests. */
  maxBackground?: number;
  /** Milliseconds since an arbitrary origin, for ages; injectable for tests. */
  now?: () => number;
  /** Requests older than this are logged once as stuck, with their opcode and node (0: off). */
  watchdogMs?: number;
  /** Names a node for logs (the core knows paths; the kernel layer only has numbers). */
  describeNode?: (ino: Ino) => string | undefined;
}

/** A wait bounded by `within` that ran out is not an error for drained()/settled(). */
function ignoreTimeout(err: unknown): void {
  if (!(err instanceof TimeoutError)) throw err;
}

export class FuseSession {
  readonly #device: FuseDevice;
  readonly #ops: FuseOps;
  readonly #log: Logger;
  readonly #options: SessionOptions;
  readonly #now: () => number;
  readonly #inFlight: InFlightTable;
  readonly #running = new Set<Promise<void>>();
  readonly #unimplementedLogged = new Set<number>();
  readonly #initialized = new Deferred<InitInfo>();
  readonly #ended = new Deferred<NodeJS.ErrnoException | undefined>();
  #minor: number = abi.FUSE_KERNEL_MINOR_VERSION;
  #flags = 0n;
  #ending = false;
  /** The notification writer thread, started by the first notification. */
  #notifier: NotifyThread | undefined;

  constructor(device: FuseDevice, options: SessionOptions) {
    this.#device = device;
    this.#ops = options.ops;
    this.#log = options.logger;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#inFlight = new InFlightTable({
      now: this.#now,
      logger: options.logger,
      deadlineMs: options.deadlineMs,
      watchdogMs: options.watchdogMs ?? 0,
      describeNode: options.describeNode,
      answer: (unique, errno) => this.#writeError(unique, errno),
    });
    // Observed so a session that ends before anyone awaits these does not leave rejections.
    this.#initialized.promise.catch(() => undefined);
  }

  /** Resolves once INIT has been answered; rejects if the session ends first. */
  get initialized(): Promise<InitInfo> {
    return this.#initialized.promise;
  }

  /** Resolves when the device reports the end (ENODEV after unmount, abort, DESTROY). */
  get ended(): Promise<NodeJS.ErrnoException | undefined> {
    return this.#ended.promise;
  }

  get isEnded(): boolean {
    return this.#ended.settled;
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Handler promises not yet settled (including ones whose request was already answered). */
  get runningCount(): number {
    return this.#running.size;
  }

  /** The negotiated capability flags (after INIT). */
  get flags(): bigint {
    return this.#flags;
  }

  inFlight(): InFlightInfo[] {
    return this.#inFlight.snapshot();
  }

  start(): void {
    this.#device.start({
      onData: (buf, release) => this.#onData(buf, release),
      onEnd: (err) => this.#end(err),
    });
    this.#inFlight.start();
  }

  /**
   * Answers every in-flight request with `errno` and fires its signal (for unmount). Their
   * handlers keep running until they notice; `settled()` waits for them.
   */
  abortAll(errno: number = Errno.EIO): void {
    this.#inFlight.abortAll(errno);
  }

  /** Waits until no request is in flight, or `timeoutMs` passes. Returns whether it drained. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = this.#now() + timeoutMs;
    while (this.#inFlight.size > 0 && this.#now() < until) {
      const pending = [...this.#running];
      if (pending.length === 0) break;
      await within(Promise.race(pending), until - this.#now(), 'in-flight requests to drain').catch(ignoreTimeout);
    }
    return this.#inFlight.size === 0;
  }

  /** Waits for every handler promise to settle, at most `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const until = this.#now() + timeoutMs;
    while (this.#running.size > 0 && this.#now() < until) {
      await within(Promise.allSettled([...this.#running]), until - this.#now(), 'handler promises to settle').catch(ignoreTimeout);
    }
    return this.#running.size === 0;
  }

  // ---- notifications: written from a worker thread (notify-thread.ts), because the kernel may
  // wait inside the write for a lock that a request we are answering holds. Each resolves with
  // whether the kernel took it ('ENOENT', nothing cached, counts as delivered). ----

  /** Drops cached data (off ≥ 0, len ≤ 0 = to EOF) or only attributes (off < 0) of an inode. */
  notifyInvalInode(ino: Ino, off = 0n, len = 0n): Promise<boolean> {
    return this.#notify('INVAL_INODE', encodeNotifyInvalInode(ino, off, len));
  }

  /** Drops a cached name → inode entry. */
  notifyInvalEntry(parent: Ino, name: string, expireOnly = false): Promise<boolean> {
    const flags = expireOnly && (this.#flags & abi.FUSE_HAS_EXPIRE_ONLY) !== 0n ? abi.FUSE_EXPIRE_ONLY : 0;
    return this.#notify('INVAL_ENTRY', encodeNotifyInvalEntry(parent, name, flags));
  }

  /** Tells the kernel an entry was deleted (also invalidates the child's dentry). */
  notifyDelete(parent: Ino, child: Ino, name: string): Promise<boolean> {
    return this.#notify('DELETE', encodeNotifyDelete(parent, child, name));
  }

  /** Starts the notification thread ahead of the first notification (it takes ~50 ms to boot). */
  prepareNotifications(): void {
    if (this.#ending) return;
    this.#notifier ??= new NotifyThread(this.#device.fd, this.#log);
    this.#notifier.warm();
  }

  async #notify(what: string, chunks: Buffer[]): Promise<boolean> {
    if (!this.#initialized.settled || this.#ending) return false;
    this.#notifier ??= new NotifyThread(this.#device.fd, this.#log);
    const r = await this.#notifier.send(chunks);
    if (r === 'ENODEV') this.#end(undefined);
    if (r !== 'ok' && r !== 'ENOENT') this.#log.debug({ what, result: r }, 'notify not delivered');
    return r === 'ok' || r === 'ENOENT';
  }

  // ---- input ----

  /**
   * `release` (a lent read buffer, device.ts): called once no request of `buf` is read any
   * more, i.e. after every handler started from it settled (its WRITE payload is a view of
   * `buf`: a handler answered early by INTERRUPT or its deadline may still be writing it out).
   */
  #onData(buf: Buffer, release?: () => void): void {
    let holds = 1;
    const hold = release === undefined ? undefined : (): (() => void) => {
      holds++;
      return done;
    };
    const done = (): void => {
      if (--holds === 0) release?.();
    };
    try {
      this.#frame(buf, hold);
    } finally {
      done();
    }
  }

  #frame(buf: Buffer, hold: (() => () => void) | undefined): void {
    // One read is one request, but be robust to several in one chunk.
    let off = 0;
    while (off < buf.length) {
      const rest = off === 0 ? buf : buf.subarray(off);
      if (rest.length < abi.FUSE_IN_HEADER_SIZE) {
        this.#log.error({ bytes: rest.length }, 'short fuse request ignored');
        return;
      }
      const len = rest.readUInt32LE(0);
      if (len < abi.FUSE_IN_HEADER_SIZE || len > rest.length) {
        // We cannot frame what follows; answer this one (we know its unique) and drop the rest.
        const unique = rest.readBigUInt64LE(8);
        this.#log.error({ len, bytes: rest.length, unique }, 'malformed fuse request length');
        this.#writeError(unique, Errno.EIO);
        return;
      }
      this.#onRequest(len === rest.length ? rest : rest.subarray(0, len), hold);
      off += len;
    }
  }

  #onRequest(buf: Buffer, hold?: () => () => void): void {
    let header: InHeader;
    try {
      header = decodeInHeader(buf);
    } catch (err) {
      this.#log.error({ err }, 'undecodable fuse request header');
      return;
    }
    let req: DecodedRequest;
    try {
      req = decodeRequest(buf, header, { minor: this.#minor, setxattrExt: (this.#flags & abi.FUSE_SETXATTR_EXT) !== 0n });
    } catch (err) {
      if (abi.OPCODES.get(header.opcode)?.noReply) {
        this.#log.error({ err, opcode: abi.opcodeName(header.opcode) }, 'malformed no-reply request dropped');
        return;
      }
      const errno = this.#errnoFor(err, header);
      if (err instanceof ProtocolError || err instanceof FsError) {
        this.#log.warn({ err, opcode: abi.opcodeName(header.opcode), unique: header.unique }, 'malformed fuse request');
      }
      this.#writeError(header.unique, errno);
      return;
    }
    switch (req.kind) {
      case 'init':
        this.#handleInit(header, req.offer);
        return;
      case 'interrupt':
        this.#inFlight.interrupt(header.unique, req.target);
        return;
      case 'forget':
        for (const item of req.items) this.#forget(item.nodeid, item.nlookup);
        return;
      case 'call':
        break;
    }
    if (!this.#initialized.settled) {
      this.#log.warn({ opcode: abi.opcodeName(header.opcode) }, 'request before INIT');
      this.#writeError(header.unique, Errno.EIO);
      return;
    }
    const entry = this.#inFlight.add(header.unique, header.opcode, header.nodeid, header.pid);
    const log = this.#log;
    const ctx: RequestContext = {
      unique: header.unique,
      opcode: header.opcode,
      nodeid: header.nodeid,
      uid: header.uid,
      gid: header.gid,
      pid: header.pid,
      get signal() {
        return entry.signal;
      },
      get log() {
        return log.child({ req: header.unique, op: abi.opcodeName(header.opcode), ino: header.nodeid });
      },
    };
    const unhold = hold?.();
    const tracked: Promise<void> = req.call(this.#ops, ctx).then(
      (payload) => {
        this.#running.delete(tracked);
        this.#reply(entry, payload);
        // The reply is written (synchronously): READ data from the pool can be reused, and
        // the request's own bytes are read by nobody now.
        for (const b of payload) readBuffers.release(b);
        unhold?.();
      },
      (err: unknown) => {
        this.#running.delete(tracked);
        unhold?.();
        this.#replyError(entry, err);
      },
    );
    this.#running.add(tracked);
  }

  #forget(ino: Ino, nlookup: bigint): void {
    try {
      this.#ops.forget?.(ino, nlookup);
    } catch (err) {
      this.#log.error({ err, ino }, 'forget handler threw');
    }
  }

  #handleInit(header: InHeader, offer: InitOffer): void {
    if (this.#initialized.settled) {
      this.#log.warn('second INIT ignored');
      this.#writeError(header.unique, Errno.EPROTO);
      return;
    }
    const outcome = negotiateInit(offer, this.#options, this.#device.maxWrite);
    switch (outcome.kind) {
      case 'retry':
        this.#write([encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE + outcome.out.length, 0, header.unique), outcome.out]);
        return;
      case 'refuse':
        this.#log.error({ major: offer.major, minor: offer.minor }, `kernel FUSE protocol too old (need 7.${abi.FUSE_MIN_MINOR_VERSION})`);
        this.#writeError(header.unique, Errno.EPROTO);
        this.#initialized.reject(new Error(outcome.reason));
        return;
      case 'accept':
        break;
    }
    const { info, out } = outcome;
    this.#minor = info.minor;
    this.#flags = info.flags;
    const finish = (): void => {
      this.#write([encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE + out.length, 0, header.unique), out]);
      this.#log.info({ minor: this.#minor, flags: `0x${this.#flags.toString(16)}`, maxWrite: info.maxWrite, reader: this.#device.kind }, 'fuse session initialized');
      this.#initialized.resolve(info);
    };
    if (!this.#ops.init) {
      finish();
      return;
    }
    const tracked = Promise.resolve()
      .then(() => this.#ops.init?.(info))
      .then(finish, (err: unknown) => {
        this.#log.error({ err }, 'filesystem init failed');
        this.#writeError(header.unique, Errno.EIO);
        this.#initialized.reject(err);
      })
      .finally(() => this.#running.delete(tracked));
    this.#running.add(tracked);
  }

  // ---- output ----

  #replyError(entry: InFlight, err: unknown): void {
    if (entry.replied) return; // answered already (INTERRUPT, deadline, unmount): nothing to say
    const errno = this.#errnoFor(err, entry);
    if (this.#inFlight.claim(entry)) this.#writeError(entry.unique, errno);
  }

  /**
   * The kernel layer's one error → errno rule (see the file header), for handler failures and
   * malformed requests alike; it logs what the header says it logs, and nothing else does.
   */
  #errnoFor(err: unknown, req: { readonly opcode: number; readonly nodeid: Ino }): number {
    if (err instanceof FsError || err instanceof ProtocolError || err instanceof RequestAbortedError) {
      if (err instanceof FsError && (err.level === 'warn' || err.level === 'error')) {
        this.#log[err.level]({ err, opcode: abi.opcodeName(req.opcode), nodeid: req.nodeid }, err.message);
      }
      return err.errno;
    }
    if (err instanceof NotImplementedError) {
      if (!this.#unimplementedLogged.has(req.opcode)) {
        this.#unimplementedLogged.add(req.opcode);
        this.#log.info({ opcode: abi.opcodeName(req.opcode) }, 'operation not implemented; answering ENOSYS');
      }
      return Errno.ENOSYS;
    }
    // Unknown to the kernel layer (a handler bug, or an error the bridge did not map): EIO,
    // logged here with its stack, the only place that logs it.
    this.#log.error({ err, opcode: abi.opcodeName(req.opcode), nodeid: req.nodeid }, 'request failed; answering EIO');
    return Errno.EIO;
  }

  #reply(entry: InFlight, payload: readonly Buffer[]): void {
    if (!this.#inFlight.claim(entry)) return;
    let len = abi.FUSE_OUT_HEADER_SIZE;
    for (const b of payload) len += b.length;
    this.#write([encodeOutHeader(len, 0, entry.unique), ...payload]);
  }

  #writeError(unique: bigint, errno: number): void {
    this.#write([encodeOutHeader(abi.FUSE_OUT_HEADER_SIZE, -errno, unique)]);
  }

  #write(chunks: Buffer[]): void {
    if (this.#ended.settled) return;
    try {
      const r = this.#device.write(chunks);
      if (r === 'ENODEV') this.#end(undefined);
      // 'ENOENT': the kernel no longer waits for this reply (interrupted/aborted); fine.
    } catch (err) {
      // EINVAL etc.: our reply was malformed. A bug, but one request's bug.
      this.#log.error({ err }, 'fuse reply rejected by the kernel');
    }
  }

  #end(err: NodeJS.ErrnoException | undefined): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#inFlight.close();
    this.#inFlight.dropAll(new RequestAbortedError('unmount', Errno.ENODEV, 'the filesystem was unmounted'));
    this.#initialized.reject(new Error('fuse session ended before INIT'));
    const code = err?.code;
    this.#log.info({ code }, 'fuse session ended');
    const notifier = this.#notifier;
    this.#notifier = undefined;
    // Terminating the writer thread settles every pending notification ('closed').
    void notifier?.close().catch((e: unknown) => this.#log.debug({ err: e }, 'notify thread close failed'));
    this.#ended.resolve(err);
  }
}
