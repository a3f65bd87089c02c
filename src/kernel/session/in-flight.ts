// The in-flight table: one entry per request handed to the filesystem and not yet answered,
// with everything that can answer a request other than its handler: INTERRUPT, the deadline
// sweep, the watchdog report and abort-on-unmount. The session owns one table.
//
// Invariants:
// - Reply-once lives here: `claim(entry)` is the only way to the right to answer a request; it
//   succeeds once per entry and removes the entry. Every path (handler result, handler error,
//   INTERRUPT, deadline, unmount) claims first, so the first one wins and later ones are
//   dropped without a write.
// - When the table answers a request itself it answers first and fires the signal second:
//   whatever the handler does on abort comes too late to reach the kernel.
// - The Map is in arrival order, so the deadline sweep and the watchdog stop at the first
//   entry that is not yet due: a sweep costs O(due entries + 1), not O(in flight).
// - The watchdog reports an entry at most once; a deadline answers it at most once (claim).
// - Time comes from the injected `now` (ms, any origin); the sweep timer is the only timer,
//   owned here, unref'd, cleared by close() (idempotent).
// INTERRUPT (struct fuse_interrupt_in, 7.8; header.unique = target | 1): a known target is
// answered EINTR at once; an unknown one (not read yet, or already answered) makes us answer
// the INTERRUPT itself with EAGAIN, which the kernel requeues in the first case and ignores in
// the second.
import { Errno } from '../../base/errno.js';
import type { Ino, Unique } from '../../base/ids.js';
import type { Logger } from '../../observability/logger.js';
import * as abi from '../abi.js';

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

/** A snapshot of one in-flight request, for logs and `fusestream` status output. */
export interface InFlightInfo {
  unique: bigint;
  opcode: string;
  nodeid: bigint;
  pid: number;
  ageMs: number;
}

/**
 * One request in flight. Its AbortController is created lazily, the first time a handler
 * reads `signal` or the table aborts it: most requests (a GETATTR from memory) never need
 * one, and the allocation is measurable at 10k+ requests/s.
 */
export class InFlight {
  /** Set by `InFlightTable.claim`: someone has answered (or given up answering) this request. */
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

export interface InFlightTableOptions {
  /** Milliseconds since an arbitrary origin. */
  now: () => number;
  logger: Logger;
  /** A request still unanswered this long is answered EIO (0: no deadline). */
  deadlineMs: number;
  /** A request older than this is logged once as stuck (0: off). */
  watchdogMs: number;
  /** Names a node for the watchdog's log line (the kernel layer only has numbers). */
  describeNode?: ((ino: Ino) => string | undefined) | undefined;
  /** Writes an error reply for `unique`. The table calls it only after a successful claim. */
  answer: (unique: Unique, errno: number) => void;
}

export class InFlightTable {
  readonly #entries = new Map<bigint, InFlight>();
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  readonly #watchdogMs: number;
  readonly #describeNode: ((ino: Ino) => string | undefined) | undefined;
  readonly #answer: (unique: Unique, errno: number) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: InFlightTableOptions) {
    this.#now = options.now;
    this.#log = options.logger;
    this.#deadlineMs = options.deadlineMs;
    this.#watchdogMs = options.watchdogMs;
    this.#describeNode = options.describeNode;
    this.#answer = options.answer;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Registers a request that is about to be handed to its handler. */
  add(unique: Unique, opcode: number, nodeid: Ino, pid: number): InFlight {
    const entry = new InFlight(unique, opcode, nodeid, pid, this.#now());
    this.#entries.set(unique, entry);
    return entry;
  }

  /** The right to answer `entry`: true exactly once; the entry leaves the table. */
  claim(entry: InFlight): boolean {
    if (entry.replied) return false;
    entry.replied = true;
    this.#entries.delete(entry.unique);
    return true;
  }

  /** Handles FUSE_INTERRUPT `interruptUnique` for request `target` (see the file header). */
  interrupt(interruptUnique: Unique, target: Unique): void {
    const entry = this.#entries.get(target);
    if (!entry) {
      this.#answer(interruptUnique, Errno.EAGAIN);
      return;
    }
    this.#log.debug({ unique: target, opcode: abi.opcodeName(entry.opcode) }, 'request interrupted');
    this.#abort(entry, new RequestAbortedError('interrupt', Errno.EINTR, 'interrupted'));
  }

  /** Answers every entry with `errno` and fires its signal (unmount with requests left). */
  abortAll(errno: number): void {
    for (const e of [...this.#entries.values()]) {
      this.#abort(e, new RequestAbortedError('unmount', errno, 'the filesystem is shutting down'));
    }
  }

  /**
   * The connection is gone: nothing can be answered any more. Claims every entry without a
   * write and fires its signal with `reason`.
   */
  dropAll(reason: RequestAbortedError): void {
    for (const e of [...this.#entries.values()]) {
      this.claim(e);
      e.abort(reason);
    }
  }

  /** One sweep: the watchdog report, then the deadline answers. The timer calls it. */
  tick(): void {
    if (this.#watchdogMs > 0) this.#watchdog();
    if (this.#deadlineMs > 0) this.#sweepDeadlines();
  }

  /** Starts the sweep timer, at a quarter of the shorter period (20 ms to 1 s); no-op if both are off. */
  start(): void {
    if (this.#timer) return;
    const periods = [this.#deadlineMs, this.#watchdogMs].filter((ms) => ms > 0);
    if (periods.length === 0) return;
    const tickMs = Math.min(1000, Math.max(20, Math.floor(Math.min(...periods) / 4)));
    this.#timer = setInterval(() => this.tick(), tickMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  snapshot(): InFlightInfo[] {
    const now = this.#now();
    return [...this.#entries.values()].map((e) => ({
      unique: e.unique,
      opcode: abi.opcodeName(e.opcode),
      nodeid: e.nodeid,
      pid: e.pid,
      ageMs: Math.round(now - e.startedAt),
    }));
  }

  #abort(entry: InFlight, reason: RequestAbortedError): void {
    if (this.claim(entry)) this.#answer(entry.unique, reason.errno);
    entry.abort(reason);
  }

  /** Logs, once each, requests older than watchdogMs (oldest first; stops at a young one). */
  #watchdog(): void {
    const now = this.#now();
    for (const e of this.#entries.values()) {
      const ageMs = now - e.startedAt;
      if (ageMs < this.#watchdogMs) break;
      if (e.reported) continue;
      e.reported = true;
      this.#log.warn(
        { unique: e.unique, opcode: abi.opcodeName(e.opcode), nodeid: e.nodeid, path: this.#describeNode?.(e.nodeid), pid: e.pid, ageMs: Math.round(ageMs) },
        'request still running (watchdog)',
      );
    }
  }

  #sweepDeadlines(): void {
    const now = this.#now();
    // Deleting the current entry while iterating a Map is safe, and keeps the early stop.
    for (const e of this.#entries.values()) {
      if (now - e.startedAt < this.#deadlineMs) break;
      this.#log.warn({ unique: e.unique, opcode: abi.opcodeName(e.opcode), nodeid: e.nodeid, pid: e.pid, ageMs: Math.round(now - e.startedAt) }, 'request exceeded its deadline; answered EIO');
      this.#abort(e, new RequestAbortedError('deadline', Errno.EIO, `deadline of ${this.#deadlineMs} ms exceeded`));
    }
  }
}
