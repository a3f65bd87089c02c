// WorkingFile on its own: a sparse local copy over a base reader. A gated base reader makes a
// fill and a write overlap deterministically (the fill's fetch is parked at the gate while the
// write lands); a fake DirtySpace records every reserve and release, so the dirty accounting
// is checked to balance (and never to go below zero). Ramp data throughout: the base is seed
// 1, writes use other seeds.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deferred, Gate, within } from '../../src/base/async.js';
import { CacheFullError } from '../../src/data/errors.js';
import { WorkingFile, type BaseReader, type DirtySpace } from '../../src/data/write/working-file.js';
import { openFds, removeDir, tempDir } from '../support/cache-harness.js';
import { assertRamp, rampBuffer } from '../support/ramp.js';

const MS = 5000;
const BASE_SEED = 1;
const signal = (): AbortSignal => new AbortController().signal;

/** A DirtySpace that records what it is told; `capBytes` makes reserves past it fail as the cache does. */
class RecordingSpace implements DirtySpace {
  reserved = 0;
  released = 0;
  readonly log: string[] = [];
  /** Releases of more than was held (accounting gone below zero). */
  readonly overReleases: string[] = [];
  constructor(readonly capBytes = Number.POSITIVE_INFINITY) {}

  get held(): number {
    return this.reserved - this.released;
  }

  async reserve(bytes: number, _signal: AbortSignal): Promise<void> {
    if (this.held + bytes > this.capBytes) throw new CacheFullError(`fake cap ${this.capBytes}: ${this.held} held, ${bytes} more asked`);
    this.reserved += bytes;
    this.log.push(`+${bytes}`);
  }

  release(bytes: number): void {
    if (bytes > this.held) this.overReleases.push(`-${bytes} with ${this.held} held`);
    this.released += bytes;
    this.log.push(`-${bytes}`);
  }
}

/** A base reader of ramp seed 1 that records its calls; `gate` (optional) parks every call until opened. */
function baseReader(size: number, gate?: Gate): { base: BaseReader; calls: [number, number][]; entered: Promise<void> } {
  const calls: [number, number][] = [];
  const entered = new Deferred<void>();
  const base: BaseReader = async (offset, length, sig) => {
    calls.push([offset, length]);
    entered.resolve();
    await gate?.wait(sig);
    return rampBuffer(offset, Math.max(0, Math.min(length, size - offset)), BASE_SEED);
  };
  return { base, calls, entered: entered.promise };
}

describe('WorkingFile', () => {
  let dir: string;
  let work: string;
  let snaps: string;
  let fdsBefore: number;

  beforeEach(() => {
    dir = tempDir('fusestream-working-');
    work = join(dir, 'work');
    snaps = join(dir, 'snapshots');
    mkdirSync(work);
    mkdirSync(snaps);
    fdsBefore = openFds();
  });

  afterEach(() => {
    try {
      assert.equal(openFds(), fdsBefore, 'file descriptors leaked');
    } finally {
      removeDir(dir);
    }
  });

  test('a fill from the base racing with a write into the same range never overwrites the written bytes', async () => {
    const size = 64 * 1024;
    const gate = new Gate();
    const b = baseReader(size, gate);
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size, baseBytes: size, base: b.base }, signal());
    try {
      const reading = wf.read(0, size, signal());
      await within(b.entered, MS, 'the read to ask the base for its bytes');
      assert.equal(gate.waiters, 1, 'the fill is parked at the gate, holding no lock');
      await within(wf.write(1000, rampBuffer(0, 500, 2), signal()), MS, 'a write while the fill fetches (it must not wait for remote I/O)');
      gate.open();
      const got = await within(reading, MS, 'the read to finish once the base answers');
      const expected = rampBuffer(0, size, BASE_SEED);
      rampBuffer(0, 500, 2).copy(expected, 1000);
      assert.deepEqual(got, expected, 'the fill landed around the write, not over it');
      assert.deepEqual(await wf.read(0, size, signal()), expected, 'and it stays so');
      assert.deepEqual(b.calls, [[0, size]], 'one fetch: the rest was present');
    } finally {
      await wf.close();
    }
    assert.equal(space.held, 0);
  });

  test('a truncate while a fill fetches: the late base bytes never come back past the new end', async () => {
    const size = 64 * 1024;
    const gate = new Gate();
    const b = baseReader(size, gate);
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size, baseBytes: size, base: b.base }, signal());
    try {
      const reading = wf.read(0, size, signal());
      await within(b.entered, MS, 'the read to ask the base for its bytes');
      await within(wf.truncate(2000, signal()), MS, 'a truncate while the fill fetches');
      gate.open();
      assertRamp(await within(reading, MS, 'the read to finish'), 0, BASE_SEED, 'the read ends at the new size');
      assert.equal((await wf.read(0, size, signal())).length, 2000);
      await wf.truncate(size, signal());
      const after = await wf.read(0, size, signal());
      assertRamp(after.subarray(0, 2000), 0, BASE_SEED, 'below the truncate: the base');
      assert.deepEqual(after.subarray(2000), Buffer.alloc(size - 2000), 'past the truncate: zeros, not the late base bytes');
    } finally {
      await wf.close();
    }
    assert.equal(space.held, 0);
  });

  test('truncate shrink then grow reads zeros past the shrink, and the base is never asked for them', async () => {
    const size = 10_000;
    const b = baseReader(size);
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size, baseBytes: size, base: b.base }, signal());
    try {
      await wf.truncate(4000, signal());
      await wf.truncate(8000, signal());
      assert.equal(wf.size, 8000);
      const got = await wf.read(0, 10_000, signal());
      assert.equal(got.length, 8000);
      assertRamp(got.subarray(0, 4000), 0, BASE_SEED, 'below the shrink');
      assert.deepEqual(got.subarray(4000), Buffer.alloc(4000), 'between the shrink and the grow: zeros');
      assert.ok(b.calls.every(([o, n]) => o + n <= 4000), `the base was asked only below the shrink: ${JSON.stringify(b.calls)}`);
      await wf.write(9000, Buffer.from('abc'), signal());
      const grown = await wf.read(7990, 2000, signal());
      assert.deepEqual(grown, Buffer.concat([Buffer.alloc(1010), Buffer.from('abc')]), 'a write past the end leaves zeros in the gap');
      assert.equal(wf.missingBytes, 0);
    } finally {
      await wf.close();
    }
    assert.equal(space.held, 0);
  });

  test('freeze by move: the working file becomes the snapshot (no copy); its dirty bytes pass to the snapshot\'s owner', async () => {
    const size = 30_000;
    const b = baseReader(size);
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size, baseBytes: size, base: b.base }, signal());
    const snap = join(snaps, 'snap-move');
    let frozenBytes: number;
    try {
      await wf.write(100, rampBuffer(0, 50, 3), signal());
      frozenBytes = await wf.freeze(snap, true, signal());
      assert.equal(frozenBytes, size);
      assert.equal(wf.frozen, true);
      assert.deepEqual(readdirSync(work), [], 'moved, not copied: nothing left in the work dir');
      const expected = rampBuffer(0, size, BASE_SEED);
      rampBuffer(0, 50, 3).copy(expected, 100);
      assert.deepEqual(readFileSync(snap), expected, 'the snapshot is the complete file (the base fetched for it)');
      assert.deepEqual(await wf.read(0, size, signal()), expected, 'reads go on, from the snapshot');
      assert.deepEqual(space.log, [`+${size}`], 'no reserve for a copy');
    } finally {
      await wf.close();
    }
    assert.ok(existsSync(snap), 'close leaves the snapshot: it is not the working file\'s to delete');
    assert.equal(space.held, frozenBytes, 'the snapshot\'s bytes stay counted, for its owner to release');
    space.release(frozenBytes);
    assert.equal(space.held, 0);
    assert.deepEqual(space.overReleases, []);
  });

  test('freeze by copy: the snapshot is an independent copy (counted once more); later writes do not reach it', async () => {
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size: 0, baseBytes: 0 }, signal());
    const snap = join(snaps, 'snap-copy');
    try {
      await wf.write(0, rampBuffer(0, 3000, 4), signal());
      const n = await wf.freeze(snap, false, signal());
      assert.equal(n, 3000);
      assert.equal(wf.frozen, false);
      assert.equal(space.held, 6000, 'the working file and its copy');
      await wf.write(1000, rampBuffer(0, 3000, 5), signal());
      assert.deepEqual(readFileSync(snap), rampBuffer(0, 3000, 4), 'the snapshot keeps the bytes it was frozen with');
      assert.equal(wf.size, 4000);
    } finally {
      await wf.close();
    }
    assert.deepEqual(readdirSync(work), [], 'close deletes the working file');
    assert.equal(space.held, 3000, 'only the copy is still counted (its owner releases it)');
    space.release(3000);
    assert.deepEqual(space.overReleases, []);
  });

  test('thaw: a write to a frozen file copies the snapshot back first; the snapshot never changes', async () => {
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size: 0, baseBytes: 0 }, signal());
    const snap = join(snaps, 'snap-thaw');
    try {
      await wf.write(0, rampBuffer(0, 5000, 6), signal());
      await wf.freeze(snap, true, signal());
      assert.equal(space.held, 5000, 'the snapshot owner\'s bytes');
      await wf.write(2000, rampBuffer(0, 10, 7), signal());
      assert.equal(wf.frozen, false, 'thawed by the write');
      assert.equal(space.held, 10_000, 'the thawed copy counts on its own');
      assert.deepEqual(readFileSync(snap), rampBuffer(0, 5000, 6), 'the snapshot is untouched');
      const expected = rampBuffer(0, 5000, 6);
      rampBuffer(0, 10, 7).copy(expected, 2000);
      assert.deepEqual(await wf.read(0, 5000, signal()), expected);
    } finally {
      await wf.close();
    }
    assert.equal(space.held, 5000, 'the thawed copy was released at close');
    space.release(5000);
    assert.deepEqual(space.overReleases, []);
  });

  test('ofSnapshot: reads a snapshot counted by its owner; a truncate thaws it into a copy of its own', async () => {
    const first = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space: first, size: 0, baseBytes: 0 }, signal());
    const snap = join(snaps, 'snap-of');
    await wf.write(0, rampBuffer(0, 8000, 8), signal());
    await wf.freeze(snap, true, signal());
    await wf.close();
    const space = new RecordingSpace();
    const again = await WorkingFile.ofSnapshot({ dir: work, space, size: 8000 }, snap);
    try {
      assert.equal(again.frozen, true);
      assertRamp(await again.read(0, 8000, signal()), 0, 8, 'the snapshot\'s bytes');
      assert.equal(space.held, 0, 'reading a snapshot counts nothing here');
      await again.truncate(3000, signal());
      assert.equal(again.frozen, false);
      assert.deepEqual(readFileSync(snap), rampBuffer(0, 8000, 8), 'the snapshot is untouched');
      assertRamp(await again.read(0, 8000, signal()), 0, 8, 'the truncated copy');
      assert.equal((await again.read(0, 8000, signal())).length, 3000);
      assert.equal(space.held, 3000);
    } finally {
      await again.close();
    }
    assert.equal(space.held, 0);
    assert.deepEqual(space.overReleases, []);
  });

  test('dirty accounting balances to zero after close, through growth, shrink, regrowth and a refused reserve', async () => {
    const size = 20_000;
    const b = baseReader(size);
    const space = new RecordingSpace(64_000);
    const wf = await WorkingFile.create({ dir: work, space, size, baseBytes: size, base: b.base }, signal());
    try {
      assert.equal(space.held, size, 'the extent is counted at create');
      await wf.write(size + 5000, rampBuffer(0, 1000, 9), signal());
      assert.equal(space.held, size + 6000, 'a write past the end counts the new extent, gap included');
      await wf.write(0, rampBuffer(0, 1000, 10), signal());
      assert.equal(space.held, size + 6000, 'a write inside the extent counts nothing more');
      await wf.truncate(5000, signal());
      assert.equal(space.held, 5000, 'a shrink gives back the extent past the new end');
      await wf.truncate(15_000, signal());
      assert.equal(space.held, 15_000);
      await assert.rejects(wf.write(60_000, Buffer.alloc(10_000, 1), signal()), CacheFullError);
      assert.equal(wf.size, 15_000, 'a refused write changes nothing');
      assert.equal(space.held, 15_000, 'and counts nothing');
      const got = await wf.read(0, 15_000, signal());
      assertRamp(got.subarray(0, 1000), 0, 10, 'the write at 0');
      assertRamp(got.subarray(1000, 5000), 1000, BASE_SEED, 'the base below the shrink');
      assert.deepEqual(got.subarray(5000), Buffer.alloc(10_000), 'zeros past the shrink');
    } finally {
      await wf.close();
    }
    assert.equal(space.held, 0, `balanced: ${space.log.join(' ')}`);
    assert.deepEqual(space.overReleases, []);
    await wf.close(); // idempotent: nothing released twice
    assert.equal(space.held, 0);
  });
  // Fails on 0e4fedd: write() reserves room (#count → space.reserve, which can wait up to the
  // operation deadline for uploads) while holding #mutex, and read() takes #mutex.
  test('a writer waiting for dirty room does not hold up reads of bytes already there', async () => {
    // Room is granted at once until `full` is set; then reserves park at that gate (a cache full
    // of data not uploaded yet makes a writer wait up to the operation deadline).
    let full: Gate | undefined;
    const parked = new Deferred<void>();
    const space: DirtySpace = {
      reserve: async (_bytes, sig) => {
        if (full === undefined) return;
        parked.resolve();
        await full.wait(sig);
      },
      release: () => undefined,
    };
    const wf = await WorkingFile.create({ dir: work, space, size: 0, baseBytes: 0 }, signal());
    try {
      await wf.write(0, rampBuffer(0, 4000, 11), signal());
      const gate = new Gate();
      full = gate;
      const growing = wf.write(4000, rampBuffer(4000, 4000, 11), signal());
      await within(parked.promise, MS, 'the growing write to wait for room');
      const read = await within(wf.read(0, 4000, signal()), MS, 'a read of present bytes while a writer waits for room');
      assertRamp(read, 0, 11, 'the present bytes');
      gate.open();
      await within(growing, MS, 'the write once room is there');
      assertRamp(await wf.read(0, 8000, signal()), 0, 11, 'both writes');
    } finally {
      full?.open();
      await wf.close();
    }
  });
  test('large writes land behind their replies: every read, truncate and freeze sees them, in order', async () => {
    const MiB = 1024 * 1024;
    const space = new RecordingSpace();
    const wf = await WorkingFile.create({ dir: work, space, size: 0, baseBytes: 0 }, signal());
    try {
      // Back to back, no await in between: each write queues behind the one still landing.
      const writes = [0, 1, 2, 3].map((i) => wf.write(i * MiB, rampBuffer(i * MiB, MiB, 21), signal()));
      const early = wf.read(MiB - 10, 20, signal()); // across the first two, issued before they landed
      await within(Promise.all(writes), MS, 'the writes');
      assertRamp(await within(early, MS, 'the early read'), MiB - 10, 21, 'a read issued before the bytes landed');
      // An overlapping write lands after the earlier one, never under it.
      await wf.write(MiB / 2, rampBuffer(MiB / 2, MiB, 22), signal());
      const got = await wf.read(0, 4 * MiB, signal());
      assertRamp(got.subarray(0, MiB / 2), 0, 21, 'before the overwrite');
      assertRamp(got.subarray(MiB / 2, MiB / 2 + MiB), MiB / 2, 22, 'the overwrite');
      assertRamp(got.subarray(MiB / 2 + MiB), MiB / 2 + MiB, 21, 'after it');
      await wf.write(4 * MiB, rampBuffer(4 * MiB, MiB, 23), signal());
      const snap = join(snaps, 'snap-behind');
      assert.equal(await wf.freeze(snap, true, signal(), false), 5 * MiB, 'the freeze waits for the last write');
      const frozen = readFileSync(snap);
      assertRamp(frozen.subarray(4 * MiB), 4 * MiB, 23, 'the last write is in the snapshot');
      assertRamp(frozen.subarray(0, MiB / 2), 0, 21, 'and the first');
    } finally {
      await wf.close();
    }
    assert.deepEqual(space.overReleases, []);
  });

  describe('a write that fails after its reply (the working file\'s disk is full)', () => {
    let disk: string | undefined;

    beforeEach(() => {
      disk = join(dir, 'disk');
      mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
    });

    afterEach(() => {
      if (disk !== undefined) execFileSync('umount', [disk]);
      disk = undefined;
    });

    test('makes every later read, write, truncate and freeze fail with its error; nothing reads as zeros', async () => {
      const MiB = 1024 * 1024;
      const wf = await WorkingFile.create({ dir: disk as string, space: new RecordingSpace(), size: 0, baseBytes: 0 }, signal());
      try {
        // 1 MiB of tmpfs cannot hold 2 MiB: the first or the second write fails on the pool,
        // after its reply.
        await wf.write(0, rampBuffer(0, MiB, 31), signal());
        await wf.write(MiB, rampBuffer(MiB, MiB, 31), signal()).catch(() => undefined); // the first may have failed already
        const failures: unknown[] = [];
        for (const op of [() => wf.read(0, 10, signal()), () => wf.write(0, Buffer.from('x'), signal()), () => wf.truncate(1, signal()), () => wf.freeze(join(snaps, 'snap-full'), true, signal(), false)]) {
          failures.push(await op().then(() => 'succeeded', (err: unknown) => (err as { code?: string }).code));
        }
        assert.deepEqual(failures, ['ENOSPC', 'ENOSPC', 'ENOSPC', 'ENOSPC']);
        assert.equal(existsSync(join(snaps, 'snap-full')), false, 'no snapshot of a file that lost bytes');
      } finally {
        await wf.close();
      }
    });
  });
});
