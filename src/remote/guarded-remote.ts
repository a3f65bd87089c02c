// GuardedRemote: a Remote seen through its RemoteHealth (health.ts). The CLI wraps the remote it
// picked in one; everything above (data, core) talks to the guard and never learns the
// difference, except that while the remote is offline every call fails at once with
// OfflineError instead of waiting for a dead server.
//
// Invariants:
// - Every call is admitted first (offline: OfflineError, no I/O) and its outcome reported:
//   success resets the failure count, a failure may take the remote offline. A read body's
//   errors while streaming count too, and so does a transfer thread's result.
// - A caller that waited a whole deadline (`reportTimeout`) counts as a timeout.
// - The guard owns the health state and closes it; the inner remote is closed with it.
// - Writes (put, delete, rename...) go through the same admission and reporting as reads.
import type { FileTransfer, ReadRangeOptions, ReadToFileOptions, Remote, RemoteCapabilities, RemoteEntry, RemoteReadStream, RemoteStat } from './remote.js';

/** The write operations, forwarded through the health state when the inner remote has them. */
const WRITES = ['put', 'delete', 'rename', 'mkdir', 'rmdir', 'symlink', 'setMtime'] as const;
import { RemoteError } from './remote-error.js';
import type { RemoteHealth } from './health.js';

export class GuardedRemote implements Remote {
  readonly id: string;
  readonly health: RemoteHealth;
  readonly #inner: Remote;

  constructor(inner: Remote, health: RemoteHealth) {
    this.#inner = inner;
    this.id = inner.id;
    this.health = health;
    if (inner.readlink !== undefined) this.readlink = (path, signal) => this.#call(`readlink /${path}`, () => inner.readlink!(path, signal));
    if (inner.readToFile !== undefined) {
      this.readToFile = (path, offset, length, filePath, options) => this.#transfer(inner, path, offset, length, filePath, options);
    }
    const self = this as Record<(typeof WRITES)[number], unknown>;
    for (const op of WRITES) {
      if (inner[op] === undefined) continue;
      self[op] = (...args: unknown[]) => this.#call(`${op} /${String(args[0])}`, () => (inner[op] as (...a: unknown[]) => Promise<unknown>).apply(inner, args));
    }
  }

  readonly put?: NonNullable<Remote['put']>;
  readonly delete?: NonNullable<Remote['delete']>;
  readonly rename?: NonNullable<Remote['rename']>;
  readonly mkdir?: NonNullable<Remote['mkdir']>;
  readonly rmdir?: NonNullable<Remote['rmdir']>;
  readonly symlink?: NonNullable<Remote['symlink']>;
  readonly setMtime?: NonNullable<Remote['setMtime']>;

  get capabilities(): RemoteCapabilities {
    return this.#inner.capabilities;
  }

  readonly readlink?: (path: string, signal: AbortSignal) => Promise<string>;
  readonly readToFile?: (path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions) => FileTransfer;

  stat(path: string, signal: AbortSignal): Promise<RemoteStat> {
    return this.#call(`stat /${path}`, () => this.#inner.stat(path, signal));
  }

  list(path: string, signal: AbortSignal): Promise<RemoteEntry[]> {
    return this.#call(`list /${path}`, () => this.#inner.list(path, signal));
  }

  async read(path: string, offset: number, length: number, options: ReadRangeOptions): Promise<RemoteReadStream> {
    const stream = await this.#call(`read /${path}`, () => this.#inner.read(path, offset, length, options));
    return { fingerprint: stream.fingerprint, body: this.#watch(stream.body) };
  }

  reportTimeout(what: string): void {
    this.health.failed(new RemoteError('timeout', `${what}: waited a whole deadline for ${this.id}`));
  }

  async close(): Promise<void> {
    await this.health.close();
    await this.#inner.close();
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.health.admit(what);
    try {
      const r = await fn();
      this.health.succeeded();
      return r;
    } catch (err) {
      this.health.failed(err);
      throw err;
    }
  }

  async *#watch(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      yield* body;
    } catch (err) {
      this.health.failed(err);
      throw err;
    }
  }

  #transfer(inner: Remote, path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    this.health.admit(`read /${path}`);
    const t = (inner.readToFile as NonNullable<Remote['readToFile']>).call(inner, path, offset, length, filePath, options);
    return {
      allow: (to) => t.allow(to),
      done: t.done.then(
        (fp) => {
          this.health.succeeded();
          return fp;
        },
        (err: unknown) => {
          this.health.failed(err);
          throw err;
        },
      ),
    };
  }
}
