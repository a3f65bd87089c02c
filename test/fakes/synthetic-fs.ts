// A minimal FuseOps for measuring the kernel layer alone: a root directory with one large
// synthetic file whose bytes repeat the first 1 MiB of the ramp (no generator cost, no copies),
// and a small file for stat loops. Timeouts are configurable so stat() can be forced to make
// LOOKUP + GETATTR round trips.
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { asFh, asIno, ROOT_INO, type Ino } from '../../src/base/ids.js';
import { DT, S_IFDIR, S_IFREG } from '../../src/kernel/abi.js';
import { rampBuffer } from '../support/ramp.js';
import type { Attr, AttrOut, DirentSink, EntryOut, FuseOps, OpenOut, RequestContext } from '../../src/kernel/ops.js';

const PATTERN = rampBuffer(0, 1 << 20);

export class SyntheticFs implements FuseOps {
  readonly #bigSize: number;
  readonly #ttlMs: number;
  readonly #files = new Map<string, { ino: Ino; size: number }>();
  readonly #now = Date.now();

  constructor(bigSize: number, ttlMs: number) {
    this.#bigSize = bigSize;
    this.#ttlMs = ttlMs;
    this.#files.set('big.bin', { ino: asIno(2n), size: bigSize });
    this.#files.set('small.txt', { ino: asIno(3n), size: 10 });
  }

  #attr(ino: Ino): Attr {
    const base = { atimeMs: this.#now, mtimeMs: this.#now, ctimeMs: this.#now, uid: 0, gid: 0 };
    if (ino === ROOT_INO) return { ino, size: 0, mode: S_IFDIR | 0o755, nlink: 2, ...base };
    const size = ino === 2n ? this.#bigSize : 10;
    return { ino, size, mode: S_IFREG | 0o444, nlink: 1, ...base };
  }

  async lookup(_ctx: RequestContext, parent: Ino, name: string): Promise<EntryOut> {
    const f = parent === ROOT_INO ? this.#files.get(name) : undefined;
    if (!f) throw new FsError(Errno.ENOENT);
    return { nodeid: f.ino, generation: 0n, entryTtlMs: this.#ttlMs, attrTtlMs: this.#ttlMs, attr: this.#attr(f.ino) };
  }

  async getattr(_ctx: RequestContext, ino: Ino): Promise<AttrOut> {
    return { attrTtlMs: this.#ttlMs, attr: this.#attr(ino) };
  }

  async open(): Promise<OpenOut> {
    return { fh: asFh(1n), openFlags: 0 };
  }

  async read(_ctx: RequestContext, ino: Ino, _fh: unknown, offset: number, size: number): Promise<Buffer> {
    const total = ino === 2n ? this.#bigSize : 10;
    const n = Math.max(0, Math.min(size, total - offset));
    const start = offset % PATTERN.length;
    if (start + n <= PATTERN.length) return PATTERN.subarray(start, start + n);
    return Buffer.concat([PATTERN.subarray(start), PATTERN.subarray(0, n - (PATTERN.length - start))]);
  }

  async opendir(): Promise<OpenOut> {
    return { fh: asFh(1n), openFlags: 0 };
  }

  async readdir(_ctx: RequestContext, _ino: Ino, _fh: unknown, offset: bigint, sink: DirentSink): Promise<void> {
    const entries = [...this.#files.entries()];
    for (let i = Number(offset); i < entries.length; i++) {
      const [name, f] = entries[i]!;
      if (!sink.add({ name, ino: f.ino, type: DT.REG, offset: BigInt(i + 1) })) return;
    }
  }
}
