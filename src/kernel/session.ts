// The FUSE session: one per mount. It turns device bytes into requests, negotiates INIT,
// dispatches to FuseOps, and guarantees the reply discipline.
//
// Request lifecycle (docs/ARCHITECTURE.md has the long form):
//   read → decode header → INIT / INTERRUPT / FORGET handled here → decode body →
//   in-flight entry {unique, opcode, node, pid, startedAt, AbortController} → handler →
//   reply exactly once → entry removed.
// Invariants:
// - Every request except FORGET, BATCH_FORGET and a matched INTERRUPT gets exactly one reply.
//   `#reply` is the only writer of replies and is idempotent per entry: the first of
//   {handler result, handler error, INTERRUPT, deadline, unmount} wins; later ones are dropped.
// - A reply that fails with ENOENT (request interrupted or already answered in the kernel's
//   view) is ignored; ENODEV means the connection is gone and ends the session.
// - A handler that throws answers that one request (its errno, or EIO with a logged stack).
//   Nothing a handler does can end the session.
// - The in-flight Map is in arrival order, so the deadline sweep stops at the first entry that
//   is not yet due.
// - Handler promises are tracked until they settle (even after their request was answered), so
//   shutdown can wait for them: no task outlives the session unobserved.
import { Errno, errnoFromCode, errnoName } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import { toSafeNumber, type Ino, type Unique } from '../base/ids.js';
import { Deferred } from '../base/async.js';
import { readBuffers } from '../base/buffer-pool.js';
import type { Logger } from '../observability/logger.js';
import * as abi from './abi.js';
import { ProtocolError } from './codec/cursor.js';
import { decodeInHeader, decodeRequest, setattrIn, type FuseRequest, type InHeader, type RequestBody } from './codec/decode.js';
import { DirentPacker } from './codec/dirents.js';
import {
  encodeAttrOut,
  encodeCreateOut,
  encodeEntryOut,
  encodeInitOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
  encodeXattrSizeOut,
} from './codec/encode.js';
import { encodeNotifyDelete, encodeNotifyInvalEntry, encodeNotifyInvalInode } from './codec/notify.js';
import type { FuseDevice } from './device.js';
import type { FuseOps, InitInfo, RequestContext } from './ops.js';

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

export interface InFlightInfo {
  unique: bigint;
  opcode: string;
  nodeid: bigint;
  pid: number;
  ageMs: number;
}

/** Why a request's signal fired. The session answers with `errno` if the handler has not. */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
  readonly errno: number;
  readonly why: 'interrupt' | 'deadline' | 'unmount';
  constructor(why: 'interrupt' | 'deadline' | 'unmount', errno: number, message: string) {
    super(message);
    this.why = why;
    this.errno = errno;
  }
}

class NotImplementedError extends Error {
  override readonly name = 'NotImplementedError';
}

/**
 * One request in flight. Its AbortController is created lazily, the first time a handler
 * reads `ctx.signal` or the session aborts it: most requests (a GETATTR from memory) never
 * need one, and the allocation is measurable at 10k+ requests/s.
 */
class InFlight {
  replied = false;
  /** The watchdog has already reported this request. */
  reported = false;
  #controller: AbortController | undefined;
  #abortReason: unknown;
  #aborted = false;

  constructor(
    readonly unique: Unique,
    readonly opcode: number,
    readonly nodeid: Ino,
    readonly pid: number,
    readonly startedAt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}

const PREFERRED_FLAGS =
  abi.FUSE_ASYNC_READ |
  abi.FUSE_BIG_WRITES |
  abi.FUSE_PARALLEL_DIROPS |
  abi.FUSE_DO_READDIRPLUS |
  abi.FUSE_READDIRPLUS_AUTO |
  abi.FUSE_MAX_PAGES |
  abi.FUSE_ABORT_ERROR |
  abi.FUSE_CACHE_SYMLINKS |
  abi.FUSE_HAS_EXPIRE_ONLY |
  abi.FUSE_INIT_EXT;

/** 256 pages of 4 KiB: 1 MiB READ requests. */
const MAX_PAGES = 256;

export class FuseSession {
  readonly #device: FuseDevice;
  readonly #ops: FuseOps;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  readonly #options: SessionOptions;
  readonly #now: () => number;
  readonly #inFlight = new Map<bigint, InFlight>();
  readonly #running = new Set<Promise<void>>();
  readonly #unimplementedLogged = new Set<number>();
  readonly #initialized = new Deferred<InitInfo>();
  readonly #ended = new Deferred<NodeJS.ErrnoException | undefined>();
  #minor: number = abi.FUSE_KERNEL_MINOR_VERSION;
  #flags = 0n;
  #sweepTimer: NodeJS.Timeout | undefined;
  #ending = false;

  constructor(device: FuseDevice, options: SessionOptions) {
    this.#device = device;
    this.#ops = options.ops;
    this.#log = options.logger;
    this.#deadlineMs = options.deadlineMs;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
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
    const now = this.#now();
    return [...this.#inFlight.values()].map((e) => ({
      unique: e.unique,
      opcode: abi.opcodeName(e.opcode),
      nodeid: e.nodeid,
      pid: e.pid,
      ageMs: Math.round(now - e.startedAt),
    }));
  }

  start(): void {
    this.#device.start({
      onData: (buf) => this.#onData(buf),
      onEnd: (err) => this.#end(err),
    });
    const watchdogMs = this.#options.watchdogMs ?? 0;
    if (this.#deadlineMs > 0 || watchdogMs > 0) {
      const periods = [this.#deadlineMs, watchdogMs].filter((ms) => ms > 0);
      const tick = Math.min(1000, Math.max(20, Math.floor(Math.min(...periods) / 4)));
      this.#sweepTimer = setInterval(() => {
        if (watchdogMs > 0) this.#watchdog(watchdogMs);
        if (this.#deadlineMs > 0) this.#sweepDeadlines();
      }, tick);
      this.#sweepTimer.unref();
    }
  }

  /**
   * Answers every in-flight request with `errno` and fires its signal (for unmount). Their
   * handlers keep running until they notice; `settled()` waits for them.
   */
  abortAll(errno: number = Errno.EIO): void {
    for (const e of [...this.#inFlight.values()]) {
      this.#abort(e, new RequestAbortedError('unmount', errno, 'the filesystem is shutting down'));
    }
  }

  /** Waits until no request is in flight, or `timeoutMs` passes. Returns whether it drained. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = this.#now() + timeoutMs;
    while (this.#inFlight.size > 0 && this.#now() < until) {
      const pending = [...this.#running];
      if (pending.length === 0) break;
      await raceTimeout(Promise.race(pending), until - this.#now());
    }
    return this.#inFlight.size === 0;
  }

  /** Waits for every handler promise to settle, at most `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const until = this.#now() + timeoutMs;
    while (this.#running.size > 0 && this.#now() < until) {
      await raceTimeout(Promise.allSettled([...this.#running]), until - this.#now());
    }
    return this.#running.size === 0;
  }

  // ---- notifications (never call these from inside a handler of the same inode/dir: the
  // kernel may hold the lock the notification needs, and the write would block the loop) ----

  /** Drops cached data (off ≥ 0, len ≤ 0 = to EOF) or only attributes (off < 0) of an inode. */
  notifyInvalInode(ino: Ino, off = 0n, len = 0n): boolean {
    return this.#notify('INVAL_INODE', encodeNotifyInvalInode(ino, off, len));
  }

  /** Drops a cached name → inode entry. */
  notifyInvalEntry(parent: Ino, name: string, expireOnly = false): boolean {
    const flags = expireOnly && (this.#flags & abi.FUSE_HAS_EXPIRE_ONLY) !== 0n ? abi.FUSE_EXPIRE_ONLY : 0;
    return this.#notify('INVAL_ENTRY', encodeNotifyInvalEntry(parent, name, flags));
  }

  /** Tells the kernel an entry was deleted (also invalidates the child's dentry). */
  notifyDelete(parent: Ino, child: Ino, name: string): boolean {
    return this.#notify('DELETE', encodeNotifyDelete(parent, child, name));
  }

  #notify(what: string, chunks: Buffer[]): boolean {
    if (!this.#initialized.settled || this.#ending) return false;
    try {
      const r = this.#device.write(chunks);
      if (r === 'ENODEV') this.#end(undefined);
      return r === undefined;
    } catch (err) {
      // ENOENT-like answers for unknown inodes come back as errors on some kernels.
      this.#log.debug({ err, what }, 'notify not delivered');
      return false;
    }
  }

  // ---- input ----

  #onData(buf: Buffer): void {
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
      this.#onRequest(len === rest.length ? rest : rest.subarray(0, len));
      off += len;
    }
  }

  #onRequest(buf: Buffer): void {
    let header: InHeader;
    try {
      header = decodeInHeader(buf);
    } catch (err) {
      this.#log.error({ err }, 'undecodable fuse request header');
      return;
    }
    const info = abi.OPCODES.get(header.opcode);
    let req: FuseRequest;
    try {
      req = decodeRequest(buf, { minor: this.#minor, setxattrExt: (this.#flags & abi.FUSE_SETXATTR_EXT) !== 0n }, header);
    } catch (err) {
      if (info?.noReply) {
        this.#log.error({ err, opcode: info.name }, 'malformed no-reply request dropped');
        return;
      }
      const errno = err instanceof ProtocolError || err instanceof FsError ? err.errno : Errno.EIO;
      this.#log.warn({ err, opcode: abi.opcodeName(header.opcode), unique: header.unique }, 'malformed fuse request');
      this.#writeError(header.unique, errno);
      return;
    }
    const body = req.body;
    switch (body.op) {
      case 'INIT':
        this.#handleInit(header, body);
        return;
      case 'INTERRUPT':
        this.#handleInterrupt(header, body.target);
        return;
      case 'FORGET':
        this.#forget(header.nodeid, body.nlookup);
        return;
      case 'BATCH_FORGET':
        for (const item of body.items) this.#forget(item.nodeid, item.nlookup);
        return;
      default:
        break;
    }
    if (!this.#initialized.settled) {
      this.#log.warn({ opcode: abi.opcodeName(header.opcode) }, 'request before INIT');
      this.#writeError(header.unique, Errno.EIO);
      return;
    }
    const entry = new InFlight(header.unique, header.opcode, header.nodeid, header.pid, this.#now());
    const log = this.#log;
    this.#inFlight.set(header.unique, entry);
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
    const tracked: Promise<void> = this.#dispatch(ctx, body).then(
      (payload) => {
        this.#running.delete(tracked);
        this.#reply(entry, 0, payload);
        // The reply is written (synchronously): READ data from the pool can be reused.
        for (const b of payload) readBuffers.release(b);
      },
      (err: unknown) => {
        this.#running.delete(tracked);
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

  #handleInit(header: InHeader, body: Extract<RequestBody, { op: 'INIT' }>): void {
    if (this.#initialized.settled) {
      this.#log.warn('second INIT ignored');
      this.#writeError(header.unique, Errno.EPROTO);
      return;
    }
    if (body.major > abi.FUSE_KERNEL_VERSION) {
      // The kernel will retry INIT with our major.
      const out = encodeInitOut({ major: abi.FUSE_KERNEL_VERSION, minor: abi.FUSE_KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0n, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0 });
      this.#write([encodeOutHeader(16 + out.length, 0, header.unique), out]);
      return;
    }
    if (body.major < abi.FUSE_KERNEL_VERSION || body.minor < abi.FUSE_MIN_MINOR_VERSION) {
      this.#log.error({ major: body.major, minor: body.minor }, `kernel FUSE protocol too old (need 7.${abi.FUSE_MIN_MINOR_VERSION})`);
      this.#writeError(header.unique, Errno.EPROTO);
      this.#initialized.reject(new Error(`kernel FUSE protocol ${body.major}.${body.minor} is older than 7.${abi.FUSE_MIN_MINOR_VERSION}`));
      return;
    }
    this.#minor = Math.min(body.minor, abi.FUSE_KERNEL_MINOR_VERSION);
    let want = PREFERRED_FLAGS;
    if (this.#options.writebackCache) want |= abi.FUSE_WRITEBACK_CACHE;
    if (this.#options.autoInvalData) want |= abi.FUSE_AUTO_INVAL_DATA;
    this.#flags = want & body.flags;
    const maxReadahead = Math.min(body.maxReadahead, this.#options.maxReadahead ?? body.maxReadahead);
    const maxBackground = this.#options.maxBackground ?? 64;
    const info: InitInfo = { minor: this.#minor, maxWrite: this.#device.maxWrite, maxReadahead, flags: this.#flags };
    const out = encodeInitOut({
      major: abi.FUSE_KERNEL_VERSION,
      minor: this.#minor,
      maxReadahead,
      flags: this.#flags,
      maxBackground,
      congestionThreshold: Math.floor((maxBackground * 3) / 4),
      maxWrite: this.#device.maxWrite,
      timeGran: 1,
      maxPages: MAX_PAGES,
    });
    const finish = (): void => {
      this.#write([encodeOutHeader(16 + out.length, 0, header.unique), out]);
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

  #handleInterrupt(header: InHeader, target: Unique): void {
    const entry = this.#inFlight.get(target);
    if (!entry) {
      // Not (yet) seen, or already answered. EAGAIN makes the kernel requeue the interrupt if
      // the target is still pending, and is ignored if it was answered.
      this.#writeError(header.unique, Errno.EAGAIN);
      return;
    }
    this.#log.debug({ unique: target, opcode: abi.opcodeName(entry.opcode) }, 'request interrupted');
    this.#abort(entry, new RequestAbortedError('interrupt', Errno.EINTR, 'interrupted'));
  }

  /** Logs, once each, requests older than `thresholdMs` (oldest first; stops at a young one). */
  #watchdog(thresholdMs: number): void {
    const now = this.#now();
    for (const e of this.#inFlight.values()) {
      const ageMs = now - e.startedAt;
      if (ageMs < thresholdMs) break;
      if (e.reported) continue;
      e.reported = true;
      this.#log.warn(
        { unique: e.unique, opcode: abi.opcodeName(e.opcode), nodeid: e.nodeid, path: this.#options.describeNode?.(e.nodeid), pid: e.pid, ageMs: Math.round(ageMs) },
        'request still running (watchdog)',
      );
    }
  }

  #sweepDeadlines(): void {
    const now = this.#now();
    for (const e of this.#inFlight.values()) {
      if (now - e.startedAt < this.#deadlineMs) break;
      this.#log.warn({ unique: e.unique, opcode: abi.opcodeName(e.opcode), nodeid: e.nodeid, pid: e.pid, ageMs: Math.round(now - e.startedAt) }, 'request exceeded its deadline; answered EIO');
      this.#abort(e, new RequestAbortedError('deadline', Errno.EIO, `deadline of ${this.#deadlineMs} ms exceeded`));
    }
  }

  #abort(entry: InFlight, reason: RequestAbortedError): void {
    // Reply first, then fire the signal: whatever the handler does on abort comes too late.
    this.#reply(entry, reason.errno, []);
    entry.abort(reason);
  }

  // ---- output ----

  #replyError(entry: InFlight, err: unknown): void {
    if (entry.replied) return;
    let errno: number;
    if (err instanceof FsError || err instanceof ProtocolError || err instanceof RequestAbortedError) {
      errno = err.errno;
      if (err instanceof FsError && (err.level === 'warn' || err.level === 'error')) {
        this.#log[err.level]({ err, opcode: abi.opcodeName(entry.opcode), nodeid: entry.nodeid }, err.message);
      }
    } else if (err instanceof NotImplementedError) {
      errno = Errno.ENOSYS;
      if (!this.#unimplementedLogged.has(entry.opcode)) {
        this.#unimplementedLogged.add(entry.opcode);
        this.#log.info({ opcode: abi.opcodeName(entry.opcode) }, 'operation not implemented; answering ENOSYS');
      }
    } else {
      const code = (err as { code?: unknown } | null)?.code;
      const fromCode = errnoFromCode(code);
      errno = fromCode ?? Errno.EIO;
      if (fromCode === undefined) {
        this.#log.error({ err, opcode: abi.opcodeName(entry.opcode), nodeid: entry.nodeid }, 'handler failed; answering EIO');
      } else {
        this.#log.debug({ err, errno: errnoName(errno) }, 'handler failed with a system error');
      }
    }
    this.#reply(entry, errno, []);
  }

  #reply(entry: InFlight, errno: number, payload: readonly Buffer[]): void {
    if (entry.replied) return;
    entry.replied = true;
    this.#inFlight.delete(entry.unique);
    if (errno !== 0) {
      this.#writeError(entry.unique, errno);
      return;
    }
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
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    for (const e of [...this.#inFlight.values()]) {
      e.replied = true;
      this.#inFlight.delete(e.unique);
      e.abort(new RequestAbortedError('unmount', Errno.ENODEV, 'the filesystem was unmounted'));
    }
    this.#initialized.reject(new Error('fuse session ended before INIT'));
    const code = err?.code;
    this.#log.info({ code }, 'fuse session ended');
    this.#ended.resolve(err);
  }

  // ---- dispatch ----

  async #dispatch(ctx: RequestContext, body: RequestBody): Promise<Buffer[]> {
    const ops = this.#ops;
    const ino = ctx.nodeid;
    switch (body.op) {
      case 'LOOKUP':
        return [encodeEntryOut(await invoke(ops, 'lookup', ctx, ino, body.name))];
      case 'GETATTR': {
        const fh = (body.getattrFlags & abi.FUSE_GETATTR_FH) !== 0 ? body.fh : undefined;
        return [encodeAttrOut(await invoke(ops, 'getattr', ctx, ino, fh))];
      }
      case 'SETATTR':
        return [encodeAttrOut(await invoke(ops, 'setattr', ctx, ino, setattrIn(body)))];
      case 'READLINK':
        return [Buffer.from(await invoke(ops, 'readlink', ctx, ino), 'utf8')];
      case 'SYMLINK':
        return [encodeEntryOut(await invoke(ops, 'symlink', ctx, ino, body.name, body.target))];
      case 'MKNOD':
        return [encodeEntryOut(await invoke(ops, 'mknod', ctx, ino, body.name, body.mode, body.rdev, body.umask))];
      case 'MKDIR':
        return [encodeEntryOut(await invoke(ops, 'mkdir', ctx, ino, body.name, body.mode, body.umask))];
      case 'UNLINK':
        await invoke(ops, 'unlink', ctx, ino, body.name);
        return [];
      case 'RMDIR':
        await invoke(ops, 'rmdir', ctx, ino, body.name);
        return [];
      case 'RENAME':
        await invoke(ops, 'rename', ctx, ino, body.name, body.newdir, body.newName, body.flags);
        return [];
      case 'LINK':
        return [encodeEntryOut(await invoke(ops, 'link', ctx, body.oldnodeid, ino, body.name))];
      case 'OPEN':
        return [encodeOpenOut(await invoke(ops, 'open', ctx, ino, body.flags))];
      case 'OPENDIR':
        return [encodeOpenOut(await invoke(ops, 'opendir', ctx, ino, body.flags))];
      case 'READ': {
        const data = await invoke(ops, 'read', ctx, ino, body.fh, toSafeNumber(body.offset, 'read offset'), body.size);
        return [data.length > body.size ? data.subarray(0, body.size) : data];
      }
      case 'WRITE': {
        const n = await invoke(ops, 'write', ctx, ino, body.fh, toSafeNumber(body.offset, 'write offset'), body.data, body.writeFlags, body.flags);
        return [encodeWriteOut(n)];
      }
      case 'READDIR':
      case 'READDIRPLUS': {
        const packer = new DirentPacker(body.size, body.op === 'READDIRPLUS');
        await invoke(ops, 'readdir', ctx, ino, body.fh, body.offset, packer);
        return [packer.finish()];
      }
      case 'STATFS': {
        const s = ops.statfs
          ? await invoke(ops, 'statfs', ctx, ino)
          : { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
        return [encodeStatfsOut(s)];
      }
      case 'RELEASE':
        if (ops.release) await invoke(ops, 'release', ctx, ino, body.fh, body.flags);
        return [];
      case 'RELEASEDIR':
        if (ops.releasedir) await invoke(ops, 'releasedir', ctx, ino, body.fh, body.flags);
        return [];
      case 'FSYNC':
        await invoke(ops, 'fsync', ctx, ino, body.fh, (body.fsyncFlags & abi.FUSE_FSYNC_FDATASYNC) !== 0);
        return [];
      case 'FSYNCDIR':
        await invoke(ops, 'fsyncdir', ctx, ino, body.fh, (body.fsyncFlags & abi.FUSE_FSYNC_FDATASYNC) !== 0);
        return [];
      case 'FLUSH':
        await invoke(ops, 'flush', ctx, ino, body.fh, body.lockOwner);
        return [];
      case 'SETXATTR':
        await invoke(ops, 'setxattr', ctx, ino, body.name, body.value, body.flags);
        return [];
      case 'GETXATTR':
        return xattrReply(await invoke(ops, 'getxattr', ctx, ino, body.name, body.size), body.size);
      case 'LISTXATTR':
        return xattrReply(await invoke(ops, 'listxattr', ctx, ino, body.size), body.size);
      case 'REMOVEXATTR':
        await invoke(ops, 'removexattr', ctx, ino, body.name);
        return [];
      case 'ACCESS':
        await invoke(ops, 'access', ctx, ino, body.mask);
        return [];
      case 'CREATE': {
        const r = await invoke(ops, 'create', ctx, ino, body.name, body.mode, body.flags, body.umask);
        return [encodeCreateOut(r.entry, r.open)];
      }
      case 'FALLOCATE':
        await invoke(ops, 'fallocate', ctx, ino, body.fh, toSafeNumber(body.offset, 'fallocate offset'), toSafeNumber(body.length, 'fallocate length'), body.mode);
        return [];
      case 'LSEEK':
        return [encodeLseekOut(await invoke(ops, 'lseek', ctx, ino, body.fh, toSafeNumber(body.offset, 'lseek offset'), body.whence))];
      case 'DESTROY':
        // The owner (FuseServer.unmount) calls ops.destroy once, after the device is closed.
        return [];
      case 'UNSUPPORTED':
        throw new NotImplementedError(abi.opcodeName(body.opcode));
      case 'INIT':
      case 'INTERRUPT':
      case 'FORGET':
      case 'BATCH_FORGET':
        throw new Error(`${body.op} reached dispatch`); // handled before dispatch
    }
  }
}

/**
 * Waits for `p` or `ms`, whichever is first. The timer is referenced on purpose: a shutdown
 * waiting on a hung handler must keep the process alive until its bound, not exit early.
 */
async function raceTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, Math.max(1, ms))))]);
  } finally {
    clearTimeout(timer);
  }
}

type OpName = Exclude<keyof FuseOps, 'init' | 'destroy' | 'forget'>;
type OpFn<K extends OpName> = Extract<NonNullable<FuseOps[K]>, (...args: never[]) => unknown>;

/** Calls ops[name] with `this` = ops, or throws NotImplementedError when it is not defined. */
function invoke<K extends OpName>(ops: FuseOps, name: K, ...args: Parameters<OpFn<K>>): ReturnType<OpFn<K>> {
  const fn = ops[name] as ((...a: unknown[]) => ReturnType<OpFn<K>>) | undefined;
  if (fn === undefined) throw new NotImplementedError(`${name} is not implemented`);
  return fn.apply(ops, args);
}

function xattrReply(value: Buffer, size: number): Buffer[] {
  if (size === 0) return [encodeXattrSizeOut(value.length)];
  if (value.length > size) throw new FsError(Errno.ERANGE);
  return [value];
}
