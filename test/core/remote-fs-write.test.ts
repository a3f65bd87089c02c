// The write path of RemoteFs, called directly (no kernel): the save patterns editors and tools
// use, reads of one's own writes, a cache full of data not uploaded yet, fsync, a restart with
// uploads pending, unlink of an open file and statfs. The remote is a MemoryRemote (holds and
// injected faults are the gates; calls() counts requests) and the core runs on a ManualClock,
// so the write-back delay and retries move only when a test says so. No sleeps: uploads are
// awaited through RemoteFs.drain, held ones through the hold's `reached`, and every wait is
// bounded by `within` with a sentence naming it. Two kinds of real time remain, both bounds
// rather than hopes: the data layer's operation deadline (AbortSignal.timeout, not the injected
// clock) that turns a writer's wait for room into ENOSPC, and the restart tests' system clock
// (closing without drain waits 0 ms on the queue's clock, which a manual clock never lets pass).
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { RangeSet } from '../../src/base/range-set.js';
import { ManualClock } from '../../src/base/clock.js';
import { Errno, errnoName } from '../../src/base/errno.js';
import { ROOT_INO } from '../../src/base/ids.js';
import { O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/base/posix.js';
import { toFsError } from '../../src/bridge/errno-map.js';
import { conflictName } from '../../src/data/upload/upload-queue.js';
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { openFds } from '../support/cache-harness.js';
import { DriverError } from '../support/fs-driver.js';
import { assertRamp, checkRamp, rampBuffer } from '../support/ramp.js';
import { allDirtyReleased, openWritableFs, opContext, recordReads, releaseAll, type WritableFs, type WritableFsOptions } from '../support/writable-fs.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Bound of every wait that should take milliseconds. */
const MS = 10_000;
const WRITE_BACK_MS = 5000;

/** The names the remote lists at `dir`, sorted. */
async function remoteNames(remote: Remote, dir = ''): Promise<string[]> {
  return (await remote.list(dir, new AbortController().signal)).map((e) => e.name).sort();
}

/** The errno name a driver call failed with (it must fail). */
async function errnoOf(p: Promise<unknown>, what: string): Promise<string> {
  try {
    await within(p, MS, what);
  } catch (err) {
    if (err instanceof DriverError) return err.code;
    throw err;
  }
  assert.fail(`${what}: expected an error`);
}

/** Every byte of `buf` (read at `offset`) is one version's: `seeds` names the versions it may be. */
function assertOneVersion(buf: Buffer, offset: number, seeds: Record<string, number>, what: string): string {
  for (const [name, seed] of Object.entries(seeds)) if (checkRamp(buf, offset, seed) === -1) return name;
  const firsts = Object.entries(seeds).map(([name, seed]) => `${name}: first wrong byte at ${offset + checkRamp(buf, offset, seed)}`);
  assert.fail(`${what}: ${buf.length} bytes at ${offset} are no single version (${firsts.join('; ')})`);
}

describe('RemoteFs write path (core, no kernel)', () => {
  let dir: string;
  let clock: ManualClock;
  let remote: MemoryRemote;
  const opened: WritableFs[] = [];
  let fdsBefore = 0;

  beforeEach(() => {
    fdsBefore = openFds();
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-'));
    clock = new ManualClock();
    remote = new MemoryRemote({ clock });
  });

  afterEach(async () => {
    releaseAll(remote);
    for (const w of opened.splice(0)) await within(w.close(), MS, 'the writable filesystem to close');
    await remote.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(openFds(), fdsBefore, 'file descriptors leaked');
  });

  /** A writable RemoteFs over `remote` on the manual clock, closed at teardown. */
  async function open(o: Partial<WritableFsOptions> = {}): Promise<WritableFs> {
    const w = await openWritableFs({ cacheDir: join(dir, 'cache'), remote, clock, ...o });
    opened.push(w);
    return w;
  }

  const drain = (w: WritableFs, what = 'pending uploads to reach the remote'): Promise<unknown> => within(w.fs.drain(60_000), MS, what);

  describe('save patterns', () => {
    test('temp file + rename over the original: open readers keep the old bytes, new opens see the new ones, the remote gets one put at the original name', async () => {
      remote.setFile('doc.txt', rampBuffer(0, 200 * KiB, 1));
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const reader = await d.open('doc.txt', O_RDONLY);
      assertRamp(await d.read(reader, 64 * KiB, 0), 0, 1, 'the old version before the save');
      remote.resetCalls();

      const tmp = await d.open('.doc.txt.swp', O_WRONLY | O_CREAT | O_EXCL);
      await d.write(tmp, rampBuffer(0, 150 * KiB, 2), 0);
      await d.close(tmp);
      await d.rename('.doc.txt.swp', 'doc.txt');

      const rest = await d.read(reader, 200 * KiB, 64 * KiB);
      assert.equal(rest.length, 136 * KiB, 'the open reader still sees the old length');
      assertRamp(rest, 64 * KiB, 1, 'the open reader, after the rename, reads the old version to its end');
      const fresh = await d.readFile('doc.txt');
      assert.equal(fresh.length, 150 * KiB);
      assertRamp(fresh, 0, 2, 'a new open reads the new bytes before any upload');
      assert.deepEqual(await d.readdir(''), ['doc.txt'], 'the temp name is gone at once');
      assert.equal(remote.calls('put'), 0, 'nothing uploaded yet (write-back delay)');

      await drain(w);
      assert.deepEqual(remote.fileBytes('doc.txt'), rampBuffer(0, 150 * KiB, 2));
      assert.deepEqual(await remoteNames(remote), ['doc.txt'], 'no temp file on the remote');
      assert.equal(remote.calls('put'), 1, 'one put, straight to the original name');
      assert.equal(remote.calls('rename'), 0, 'the temp name never reached the remote');

      // After the upload the old handle reads the old version (cached) or fails; never new bytes.
      try {
        assertOneVersion(await d.read(reader, 200 * KiB, 0), 0, { old: 1 }, 'the old handle after the upload');
      } catch (err) {
        assert.ok(err instanceof DriverError && err.code === 'ESTALE', `the old handle after the upload: old bytes or ESTALE, got ${String(err)}`);
      }
      await d.close(reader);
      assertRamp(await d.readFile('doc.txt'), 0, 2, 'after the upload, a new open reads the remote\'s new version');
    });

    test('a reader interleaved with a temp+rename save sees whole versions only, old then new', async () => {
      remote.setFile('page.html', rampBuffer(0, 96 * KiB, 3));
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const seen: string[] = [];
      const readWhole = async (what: string): Promise<void> => {
        const fd = await d.open('page.html', O_RDONLY);
        try {
          const parts: Buffer[] = [];
          for (let at = 0; ; at += 16 * KiB) {
            const b = await d.read(fd, 16 * KiB, at);
            if (b.length === 0) break;
            parts.push(b);
          }
          seen.push(assertOneVersion(Buffer.concat(parts), 0, { old: 3, new: 4 }, what));
        } finally {
          await d.close(fd);
        }
      };
      await readWhole('before the save');
      const tmp = await d.open('page.html.tmp', O_WRONLY | O_CREAT | O_TRUNC);
      await d.write(tmp, rampBuffer(0, 48 * KiB, 4), 0);
      await readWhole('while the temp file is written');
      await d.close(tmp);
      await readWhole('after the temp file is closed');
      await d.rename('page.html.tmp', 'page.html');
      await readWhole('after the rename');
      await drain(w);
      await readWhole('after the upload');
      assert.deepEqual(seen, ['old', 'old', 'old', 'new', 'new']);
      assert.deepEqual(remote.fileBytes('page.html'), rampBuffer(0, 48 * KiB, 4));
      assert.deepEqual(await remoteNames(remote), ['page.html']);
    });

    test('O_TRUNC then rewrite: the old bytes are never fetched, readers see the new length at once, the remote gets the new bytes', async () => {
      const rec = recordReads(remote);
      remote.setFile('notes.txt', rampBuffer(0, 100 * KiB, 5));
      const w = await open({ remote: rec.remote, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await d.open('notes.txt', O_WRONLY | O_TRUNC);
      assert.equal((await d.stat('notes.txt')).size, 0, 'truncated at open');
      assert.deepEqual(await d.readFile('notes.txt'), Buffer.alloc(0));
      await d.write(fd, rampBuffer(0, 40 * KiB, 6), 0);
      assert.equal((await d.stat('notes.txt')).size, 40 * KiB);
      assertRamp(await d.readFile('notes.txt'), 0, 6, 'the rewrite, before close');
      await d.close(fd);
      assertRamp(await d.readFile('notes.txt'), 0, 6, 'the rewrite, after close, before upload');
      assert.equal(rec.reads.length, 0, `nothing of the truncated version was read from the remote: ${JSON.stringify(rec.reads)}`);
      await drain(w);
      assert.deepEqual(remote.fileBytes('notes.txt'), rampBuffer(0, 40 * KiB, 6));
      assert.equal(remote.calls('put'), 1);
    });

    test('rename of a file whose upload is in flight: after release the remote has it at the new name only, byte-identical', async () => {
      const w = await open();
      const d = w.driver;
      const hold = remote.hold('put');
      const bytes = rampBuffer(0, 300 * KiB, 7);
      await d.writeFile('a.bin', bytes);
      await within(hold.reached(1), MS, 'the put of a.bin to reach the hold');
      await d.rename('a.bin', 'b.bin');
      assert.deepEqual(await d.readdir(''), ['b.bin'], 'the new name shows at once');
      assert.deepEqual(await d.readFile('b.bin'), bytes, 'readable at the new name while the upload is held');
      assert.equal(await errnoOf(d.stat('a.bin'), 'stat a.bin'), 'ENOENT');
      hold.open();
      await drain(w);
      assert.deepEqual(await remoteNames(remote), ['b.bin']);
      assert.deepEqual(remote.fileBytes('b.bin'), bytes);
      assert.deepEqual(await d.readdir(''), ['b.bin']);
      assert.deepEqual(await d.readFile('b.bin'), bytes, 'after the upload');
      assert.deepEqual(w.fs.pendingUploads(), []);
    });

    test('delete of a file whose upload is in flight: after release nothing is left on the remote', async () => {
      const w = await open();
      const d = w.driver;
      const hold = remote.hold('put');
      await d.writeFile('gone.bin', rampBuffer(0, 100 * KiB, 8));
      await within(hold.reached(1), MS, 'the put of gone.bin to reach the hold');
      await d.unlink('gone.bin');
      assert.equal(await errnoOf(d.stat('gone.bin'), 'stat gone.bin'), 'ENOENT');
      assert.deepEqual(await d.readdir(''), []);
      hold.open();
      await drain(w);
      assert.deepEqual(await remoteNames(remote), [], 'the put landed, then the delete removed it');
      assert.deepEqual(w.fs.pendingUploads(), []);
      assert.deepEqual(readdirSync(w.data.snapshotDir), [], 'no snapshot left');
      await allDirtyReleased(w.data, MS, 'the deleted file\'s bytes to leave the cache');
    });

    test('a file created and deleted before its upload costs no remote request', async () => {
      remote.setDir('d');
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      await d.readdir('d');
      remote.resetCalls();
      // Saved, then deleted, before the write-back delay.
      await d.writeFile('d/scratch', rampBuffer(0, 10 * KiB, 9));
      await d.unlink('d/scratch');
      // Never saved: deleted while still open.
      const fd = await d.open('d/never', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 10 * KiB, 10), 0);
      await d.unlink('d/never');
      await d.close(fd);
      assert.deepEqual(w.fs.pendingUploads(), [], 'the put and the delete cancelled out');
      clock.advance(WRITE_BACK_MS);
      await drain(w);
      for (const op of ['put', 'delete', 'rename'] as const) assert.equal(remote.calls(op), 0, `${op} requests`);
      assert.deepEqual(await remoteNames(remote, 'd'), []);
      assert.deepEqual(readdirSync(w.data.snapshotDir), [], 'no snapshot left');
      await allDirtyReleased(w.data, MS, 'the deleted files\' bytes to leave the cache');
    });

    test('two temp+rename saves in a row, the first still uploading: the remote ends with the second version only', async () => {
      remote.setFile('doc.txt', rampBuffer(0, 40 * KiB, 40));
      const w = await open();
      const d = w.driver;
      const hold = remote.hold('put');
      const save = async (tmp: string, seed: number, size: number): Promise<void> => {
        await d.writeFile(tmp, rampBuffer(0, size, seed));
        await d.rename(tmp, 'doc.txt');
      };
      await save('doc.txt.tmp1', 41, 30 * KiB);
      await within(hold.reached(1), MS, 'the first save\'s put to reach the hold');
      await save('doc.txt.tmp2', 42, 20 * KiB);
      assertRamp(await d.readFile('doc.txt'), 0, 42, 'the second save, at once');
      assert.equal((await d.stat('doc.txt')).size, 20 * KiB);
      assert.deepEqual(await d.readdir(''), ['doc.txt']);
      hold.open();
      await drain(w);
      assert.deepEqual(await remoteNames(remote), ['doc.txt'], 'no temp file left on the remote');
      assert.deepEqual(remote.fileBytes('doc.txt'), rampBuffer(0, 20 * KiB, 42));
      assert.deepEqual(w.fs.pendingUploads(), []);
      assertRamp(await d.readFile('doc.txt'), 0, 42, 'after the uploads');
    });

    test('a save whose temp file was never uploaded, renamed over a file whose put is in flight: one put each, no rename on the remote', async () => {
      remote.setFile('doc.txt', rampBuffer(0, 40 * KiB, 43));
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const hold = remote.hold('put');
      await d.writeFile('doc.txt', rampBuffer(0, 30 * KiB, 44));
      clock.advance(WRITE_BACK_MS);
      await within(hold.reached(1), MS, 'the put of doc.txt to reach the hold');
      await d.writeFile('doc.txt.tmp', rampBuffer(0, 20 * KiB, 45)); // due in WRITE_BACK_MS: not sent
      await d.rename('doc.txt.tmp', 'doc.txt');
      assertRamp(await d.readFile('doc.txt'), 0, 45, 'the second save, at once');
      hold.open();
      await drain(w);
      assert.deepEqual(await remoteNames(remote), ['doc.txt']);
      assert.deepEqual(remote.fileBytes('doc.txt'), rampBuffer(0, 20 * KiB, 45));
      assert.equal(remote.calls('put'), 2, 'the first save, then the second straight to doc.txt');
      assert.equal(remote.calls('rename'), 0, 'the temp name never reached the remote');
    });

    test('saving again while the previous save uploads: readers see the newest bytes at once; the remote ends with them', async () => {
      const w = await open();
      const d = w.driver;
      const hold = remote.hold('put');
      await d.writeFile('s.bin', rampBuffer(0, 64 * KiB, 51));
      await within(hold.reached(1), MS, 'the first save\'s put to reach the hold');
      const fd = await d.open('s.bin', O_RDWR);
      await d.write(fd, rampBuffer(0, 8 * KiB, 52), 16 * KiB);
      const expected = rampBuffer(0, 64 * KiB, 51);
      rampBuffer(0, 8 * KiB, 52).copy(expected, 16 * KiB);
      assert.deepEqual(await d.read(fd, 64 * KiB, 0), expected, 'the second edit over the first save, while the first uploads');
      await d.close(fd);
      assert.deepEqual(await d.readFile('s.bin'), expected);
      hold.open();
      await drain(w);
      assert.deepEqual(remote.fileBytes('s.bin'), expected, 'the newest bytes won');
      assert.deepEqual(w.fs.pendingUploads(), []);
      assert.deepEqual(await d.readFile('s.bin'), expected, 'after the uploads');
    });

    test('conflict: the remote changes while our edit waits for upload: both versions are kept, ours under <name>.conflict-<stamp>-<host>', async () => {
      remote.setFile('c.txt', rampBuffer(0, 20 * KiB, 11));
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await d.open('c.txt', O_RDWR);
      await d.write(fd, rampBuffer(0, 2 * KiB, 12), 4 * KiB);
      await d.close(fd);
      const ours = Buffer.concat([rampBuffer(0, 4 * KiB, 11), rampBuffer(0, 2 * KiB, 12), rampBuffer(6 * KiB, 14 * KiB, 11)]);
      assert.deepEqual(await d.readFile('c.txt'), ours, 'our edit, before upload');
      const theirs = rampBuffer(0, 30 * KiB, 13);
      remote.setFile('c.txt', theirs); // someone else saves meanwhile
      clock.advance(WRITE_BACK_MS);
      const expectedName = conflictName('c.txt', clock.wallNow(), hostname());
      await drain(w);
      assert.deepEqual(await remoteNames(remote), ['c.txt', expectedName].sort());
      assert.deepEqual(remote.fileBytes('c.txt'), theirs, 'theirs stays at the name');
      assert.deepEqual(remote.fileBytes(expectedName), ours, 'ours, whole, under the conflict name');
      assert.deepEqual(w.fs.pendingUploads(), [], 'nothing left to upload');
      assert.deepEqual(await d.readdir(''), ['c.txt', expectedName].sort(), 'the mount shows both');
      assert.deepEqual(await d.readFile('c.txt'), theirs, 'the mount reads theirs at the name');
      assert.deepEqual(await d.readFile(expectedName), ours);
    });

    test('conflict while the edit is still open (its base was read): at close both versions are kept', async () => {
      remote.setFile('e.txt', rampBuffer(0, 24 * KiB, 53));
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await d.open('e.txt', O_RDWR);
      assertRamp(await d.read(fd, 24 * KiB, 0), 0, 53, 'the editor reads the file it edits');
      await d.write(fd, rampBuffer(0, 1 * KiB, 54), 10 * KiB);
      const theirs = rampBuffer(0, 12 * KiB, 55);
      remote.setFile('e.txt', theirs);
      await d.close(fd);
      const ours = rampBuffer(0, 24 * KiB, 53);
      rampBuffer(0, 1 * KiB, 54).copy(ours, 10 * KiB);
      const expectedName = conflictName('e.txt', clock.wallNow(), hostname());
      await drain(w);
      assert.deepEqual(await remoteNames(remote), ['e.txt', expectedName].sort());
      assert.deepEqual(remote.fileBytes('e.txt'), theirs);
      assert.deepEqual(remote.fileBytes(expectedName), ours);
      assert.deepEqual(await d.readFile('e.txt'), theirs);
    });
  });

  describe('reads see own writes', () => {
    test('a new file: every handle reads what was written at once, before any upload', async () => {
      const w = await open({ upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await d.open('new.bin', O_RDWR | O_CREAT | O_EXCL);
      await d.write(fd, rampBuffer(0, 70 * KiB, 14), 0);
      assertRamp(await d.read(fd, 70 * KiB, 0), 0, 14, 'the writing handle');
      const other = await d.open('new.bin', O_RDONLY);
      assertRamp(await d.read(other, 70 * KiB, 0), 0, 14, 'another handle');
      await d.write(fd, rampBuffer(70 * KiB, 10 * KiB, 14), 70 * KiB);
      assertRamp(await d.read(other, 80 * KiB, 0), 0, 14, 'another handle, after the file grew');
      assert.equal((await d.stat('new.bin')).size, 80 * KiB);
      await d.close(other);
      await d.close(fd);
      assert.equal(remote.calls('put'), 0, 'not uploaded yet');
      await drain(w);
      assert.deepEqual(remote.fileBytes('new.bin'), rampBuffer(0, 80 * KiB, 14));
    });

    test('a write into the middle of a remote file fetches nothing; reads fetch only around what they read until close completes the file', async () => {
      const size = 4 * MiB;
      remote.setFile('big.bin', rampBuffer(0, size, 15));
      const rec = recordReads(remote);
      const w = await open({ remote: rec.remote, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const at = 2 * MiB + 10;
      const fd = await d.open('big.bin', O_RDWR);
      await d.write(fd, rampBuffer(0, 100, 16), at);
      assert.equal(rec.reads.length, 0, `a write fetches nothing: ${JSON.stringify(rec.reads)}`);
      const got = await d.read(fd, 200, 2 * MiB);
      assert.deepEqual(got, Buffer.concat([rampBuffer(2 * MiB, 10, 15), rampBuffer(0, 100, 16), rampBuffer(2 * MiB + 110, 90, 15)]), 'own write with the remote bytes around it');
      // The read's own page, and at most the first read-ahead window after it.
      const near = { start: 2 * MiB - 4 * KiB, end: 2 * MiB + 200 + 128 * KiB + 4 * KiB };
      assert.ok(rec.reads.length > 0, 'the bytes around the write came from the remote');
      const far = rec.reads.filter((r) => r.path !== 'big.bin' || r.offset < near.start || r.offset + r.length > near.end);
      assert.equal(far.length, 0, `only bytes near the read were fetched before close: ${JSON.stringify(rec.reads)}`);
      await d.close(fd);
      const expected = rampBuffer(0, size, 15);
      rampBuffer(0, 100, 16).copy(expected, at);
      const fetched = new RangeSet();
      for (const r of rec.reads) fetched.add(r.offset, r.offset + r.length);
      const notFetched = fetched.missing(0, size).filter((r) => r.start < at || r.end > at + 100);
      assert.deepEqual(notFetched, [], 'close fetched every byte not written, for the snapshot');
      await drain(w);
      assert.deepEqual(remote.fileBytes('big.bin'), expected);
    });
  });

  describe('a cache full of data not uploaded yet', () => {
    const CAP = 256 * KiB;
    const DEADLINE_MS = 1000;
    const small = { cacheCapBytes: CAP, operationDeadlineMs: DEADLINE_MS, chunkSizeBytes: 64 * KiB, readAheadInitialBytes: 64 * KiB, readAheadMaxBytes: 64 * KiB };

    // Sizes: a file is saved by copy while its handle is open (close flushes first), so every
    // file here stays at or below half the cap; the last test of this group is about that.
    test('writers wait, then get ENOSPC; once the held upload is released, writing works again', async () => {
      const w = await open({ data: small });
      const d = w.driver;
      const hold = remote.hold('put');
      await d.writeFile('a.bin', rampBuffer(0, 120 * KiB, 17));
      await within(hold.reached(1), MS, 'the put of a.bin to reach the hold');
      assert.equal(w.data.dirtyBytes, 120 * KiB, 'a.bin\'s snapshot is dirty until uploaded');
      const fd = await d.open('b.bin', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 120 * KiB, 18), 0);
      const started = performance.now();
      assert.equal(await errnoOf(d.write(fd, rampBuffer(120 * KiB, 40 * KiB, 18), 120 * KiB), 'a write past the cap'), 'ENOSPC');
      const waitedMs = performance.now() - started;
      assert.ok(waitedMs >= DEADLINE_MS * 0.9, `the writer waited for room (the deadline) before ENOSPC, waited ${Math.round(waitedMs)} ms`);
      assert.equal((await d.stat('b.bin')).size, 120 * KiB, 'the failed write did not grow the file');
      assertRamp(await d.read(fd, 200 * KiB, 0), 0, 18, 'the failed write changed nothing');
      hold.open();
      await within(d.write(fd, rampBuffer(120 * KiB, 4 * KiB, 18), 120 * KiB), MS, 'the write to get room once a.bin is uploaded');
      await d.close(fd);
      await drain(w);
      assert.deepEqual(remote.fileBytes('a.bin'), rampBuffer(0, 120 * KiB, 17));
      assert.deepEqual(remote.fileBytes('b.bin'), rampBuffer(0, 124 * KiB, 18));
    });

    test('a writer waiting for room proceeds when an upload frees it (no ENOSPC)', async () => {
      const w = await open({ data: { ...small, operationDeadlineMs: 30_000 } });
      const d = w.driver;
      const hold = remote.hold('put');
      await d.writeFile('a.bin', rampBuffer(0, 120 * KiB, 19));
      await within(hold.reached(1), MS, 'the put of a.bin to reach the hold');
      const fd = await d.open('b.bin', O_RDWR | O_CREAT);
      let settled = false;
      const writing = d.write(fd, rampBuffer(0, 200 * KiB, 20), 0).finally(() => (settled = true));
      // A bounded negative check: event-loop turns pass and the writer is still waiting.
      for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
      assert.equal(settled, false, 'the writer waits while the cap is full of dirty data');
      hold.open();
      await within(writing, MS, 'the waiting writer to proceed once a.bin is uploaded');
      assertRamp(await d.read(fd, 200 * KiB, 0), 0, 20, 'what the writer wrote');
      await d.unlink('b.bin'); // not saved: 200 KiB cannot be saved by copy in a 256 KiB cap (see below)
      await d.close(fd);
    });

    test('clean cached bytes are evicted for dirty ones; dirty bytes are never evicted', async () => {
      remote.setFile('clean.bin', rampBuffer(0, 150 * KiB, 21));
      const w = await open({ data: small, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      assertRamp(await d.readFile('clean.bin'), 0, 21, 'clean.bin, cached');
      assert.ok(w.data.stats().cacheBytes >= 150 * KiB, `clean.bin is in the cache: ${w.data.stats().cacheBytes}`);
      const fd = await d.open('dirty.bin', O_RDWR | O_CREAT);
      const started = performance.now();
      await d.write(fd, rampBuffer(0, 120 * KiB, 22), 0);
      assert.ok(performance.now() - started < DEADLINE_MS / 2, 'the write did not wait for uploads: clean bytes made room');
      assert.ok(w.data.stats().evictedObjects >= 1, 'clean.bin was evicted');
      assert.ok(w.data.stats().cacheBytes <= CAP, `within the cap: ${w.data.stats().cacheBytes}`);
      assertRamp(await d.read(fd, 120 * KiB, 0), 0, 22, 'the dirty bytes');
      assertRamp(await d.readFile('clean.bin'), 0, 21, 'clean.bin again, with the cap full of dirty data');
      assertRamp(await d.read(fd, 120 * KiB, 0), 0, 22, 'the dirty bytes after clean reads wanted room');
      await d.close(fd);
      assertRamp(await d.readFile('clean.bin'), 0, 21, 'clean.bin once dirty.bin is a snapshot');
      assertRamp(await d.readFile('dirty.bin'), 0, 22, 'dirty.bin from its snapshot, before upload');
      assert.equal(remote.calls('put'), 0);
      await drain(w);
      assert.deepEqual(remote.fileBytes('dirty.bin'), rampBuffer(0, 120 * KiB, 22));
    });

    // Failed on 0e4fedd (the bug this test is named after; fixed in b73798c): #openLocal opens the working file at the old size (reserving all of it as
    // dirty) before truncating it; a file larger than the cap is ENOSPC at once.
    test('O_TRUNC of a remote file larger than the cap: the truncated bytes need no room', async () => {
      remote.setFile('huge.bin', rampBuffer(0, 1 * MiB, 46));
      const w = await open({ data: small, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await within(d.open('huge.bin', O_WRONLY | O_TRUNC), MS, 'open(O_TRUNC) of a 1 MiB file in a 256 KiB cache');
      await d.write(fd, Buffer.from('short\n'), 0);
      await d.close(fd);
      await drain(w);
      assert.deepEqual(remote.fileBytes('huge.bin'), Buffer.from('short\n'));
    });

    // Failed on 0e4fedd (the bug this test is named after; fixed in b73798c): setattr makes the file local and opens its working file at the old size
    // (reserving all of it) before the truncate.
    test('truncate(path, 0) of a remote file larger than the cap: the truncated bytes need no room', async () => {
      remote.setFile('huge.bin', rampBuffer(0, 1 * MiB, 47));
      const w = await open({ data: small, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      await within(d.truncate('huge.bin', 0), MS, 'truncate of a 1 MiB file to 0 in a 256 KiB cache');
      assert.equal((await d.stat('huge.bin')).size, 0);
      await drain(w);
      assert.deepEqual(remote.fileBytes('huge.bin'), Buffer.alloc(0));
    });

    // Failed on 0e4fedd (the bug this test is named after; fixed in b73798c): FLUSH runs while the handle still counts as a writer, so #snapshot freezes
    // by copy (wf.freeze(..., lf.writers === 0)), which needs the file's size in room once more.
    test('close of a file larger than half the free room: flush saves it without needing a second copy\'s room', async () => {
      const w = await open({ data: small, upload: { writeBackDelayMs: WRITE_BACK_MS } });
      const ctx = opContext();
      const { entry, open: opened } = await w.fs.create(ctx, ROOT_INO, 'half.bin', 0o644, O_RDWR | O_CREAT, 0o022);
      await w.fs.write(ctx, entry.nodeid, opened.fh, 0, rampBuffer(0, 160 * KiB, 23));
      // close(2) is FLUSH then RELEASE; the application sees FLUSH's answer.
      const flushed = await within(w.fs.flush(ctx, entry.nodeid, opened.fh).then(() => 'ok', (err: unknown) => errnoName(toFsError(err).errno)), MS, 'flush of a 160 KiB file in a 256 KiB cache');
      await within(w.fs.release(ctx, entry.nodeid, opened.fh), MS, 'release');
      w.fs.forget(entry.nodeid, 1n);
      await drain(w);
      assert.deepEqual(remote.fileBytes('half.bin'), rampBuffer(0, 160 * KiB, 23), 'the bytes reached the remote (release saved them)');
      assert.equal(flushed, 'ok', 'close(2) reported an error for a save that succeeded');
    });
  });

  describe('fsync', () => {
    test('default: returns once the bytes are snapshotted and journaled; the remote may not have them yet', async () => {
      const w = await open();
      const d = w.driver;
      const hold = remote.hold('put');
      const fd = await d.open('f.bin', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 50 * KiB, 24), 0);
      await within(d.fsync(fd), MS, 'fsync (local)');
      await within(hold.reached(1), MS, 'the upload fsync journaled to start');
      assert.equal(await remoteNames(remote).then((n) => n.includes('f.bin')), false, 'not on the remote: the upload is held');
      assert.deepEqual(w.fs.pendingUploads().map((r) => [r.kind, r.path]), [['put', 'f.bin']]);
      hold.open();
      await d.close(fd);
      await drain(w);
      assert.deepEqual(remote.fileBytes('f.bin'), rampBuffer(0, 50 * KiB, 24));
    });

    test('--fsync remote: fsync waits for the upload', async () => {
      const w = await open({ upload: { fsync: 'remote', writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const hold = remote.hold('put');
      const fd = await d.open('f.bin', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 50 * KiB, 25), 0);
      let settled = false;
      const syncing = d.fsync(fd).finally(() => (settled = true));
      await within(hold.reached(1), MS, 'the upload to start at once (foreground, despite the write-back delay)');
      assert.equal(settled, false, 'fsync waits while the upload is held');
      hold.open();
      await within(syncing, MS, 'fsync to return once uploaded');
      assert.deepEqual(remote.fileBytes('f.bin'), rampBuffer(0, 50 * KiB, 25), 'on the remote when fsync returned');
      await d.close(fd);
    });

    test('--fsync remote: a permanently failing upload makes fsync fail with EIO; the change stays journaled and a later retry lands it', async () => {
      const w = await open({ upload: { fsync: 'remote', writeBackDelayMs: WRITE_BACK_MS } });
      const d = w.driver;
      const fd = await d.open('f.bin', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 50 * KiB, 26), 0);
      remote.failNext('put', 'permission');
      assert.equal(await errnoOf(d.fsync(fd), 'fsync with a failing upload'), 'EIO');
      const rows = w.fs.pendingUploads();
      assert.deepEqual(rows.map((r) => [r.kind, r.path, r.state]), [['put', 'f.bin', 'failed']]);
      assert.match(rows[0]?.lastError ?? '', /permission/);
      await d.close(fd);
      clock.advance(60_000); // past the retry backoff
      await drain(w);
      assert.deepEqual(remote.fileBytes('f.bin'), rampBuffer(0, 50 * KiB, 26), 'nothing lost');
    });
  });

  test('restart: a change closed but not uploaded survives closing without drain; the next mount shows it at once and uploads it', async () => {
    // The system clock here: closing without drain waits zero ms on the queue's clock, which a
    // manual clock would never let pass.
    const sys = new MemoryRemote();
    try {
      sys.setFile('old.bin', rampBuffer(0, 200 * KiB, 27));
      const cacheDir = join(dir, 'restart-cache');
      const first = await openWritableFs({ cacheDir, remote: sys, upload: { writeBackDelayMs: 60_000, drainTimeoutMs: 0 } });
      const hold = sys.hold('put');
      await first.driver.writeFile('new.bin', rampBuffer(0, 120 * KiB, 28));
      const fd = await first.driver.open('old.bin', O_RDWR);
      await first.driver.write(fd, rampBuffer(0, 1000, 29), 50 * KiB);
      await first.driver.close(fd);
      await within(first.close(), MS, 'the first mount to close without draining');
      assert.equal(first.fs.leftPending.length, 2, 'both changes left journaled');
      assert.deepEqual(await remoteNames(sys), ['old.bin'], 'new.bin did not reach the remote');
      assertRamp(sys.fileBytes('old.bin'), 0, 27, 'old.bin unchanged on the remote');
      hold.open();

      const hold2 = sys.hold('put');
      const second = await openWritableFs({ cacheDir, remote: sys, upload: { writeBackDelayMs: 60_000 } });
      try {
        const oldExpected = rampBuffer(0, 200 * KiB, 27);
        rampBuffer(0, 1000, 29).copy(oldExpected, 50 * KiB);
        assert.deepEqual(await second.driver.readdir(''), ['new.bin', 'old.bin']);
        assert.equal((await second.driver.stat('new.bin')).size, 120 * KiB);
        assertRamp(await second.driver.readFile('new.bin'), 0, 28, 'new.bin after the restart, before upload');
        assert.deepEqual(await second.driver.readFile('old.bin'), oldExpected, 'old.bin with our edit, before upload');
        assert.deepEqual(await remoteNames(sys), ['old.bin']);
        hold2.open();
        await within(second.fs.drain(MS), MS, 'the second mount to upload what the first left');
        assert.deepEqual(sys.fileBytes('new.bin'), rampBuffer(0, 120 * KiB, 28));
        assert.deepEqual(sys.fileBytes('old.bin'), oldExpected);
        assert.deepEqual(second.fs.pendingUploads(), []);
      } finally {
        releaseAll(sys);
        await within(second.close(), MS, 'the second mount to close');
      }
    } finally {
      releaseAll(sys);
      await sys.close();
    }
  });

  test('restart: pending mkdir, a put inside it, a rename of a remote file and a delete are shown by the next mount, then applied in order', async () => {
    const sys = new MemoryRemote();
    try {
      sys.setFile('keep.bin', rampBuffer(0, 64 * KiB, 48));
      sys.setFile('drop.bin', rampBuffer(0, 8 * KiB, 49));
      const cacheDir = join(dir, 'restart-names');
      const first = await openWritableFs({ cacheDir, remote: sys, upload: { writeBackDelayMs: 60_000 } });
      for (const op of ['put', 'mkdir', 'rename', 'delete'] as const) sys.hold(op);
      await first.driver.mkdir('d', 0o755);
      await first.driver.writeFile('d/inner.bin', rampBuffer(0, 30 * KiB, 50));
      await first.driver.rename('keep.bin', 'd/kept.bin');
      await first.driver.unlink('drop.bin');
      await within(first.close(), MS, 'the first mount to close without draining');
      assert.equal(first.fs.leftPending.length, 4, `left journaled: ${first.fs.leftPending.map((r) => `${r.kind} ${r.path}`).join(', ')}`);
      releaseAll(sys);
      assert.deepEqual(await remoteNames(sys), ['drop.bin', 'keep.bin'], 'nothing applied yet');

      for (const op of ['put', 'mkdir', 'rename', 'delete'] as const) sys.hold(op);
      const second = await openWritableFs({ cacheDir, remote: sys, upload: { writeBackDelayMs: 60_000 } });
      try {
        const d = second.driver;
        assert.deepEqual(await d.readdir(''), ['d']);
        assert.deepEqual(await d.readdir('d'), ['inner.bin', 'kept.bin']);
        assertRamp(await d.readFile('d/inner.bin'), 0, 50, 'the new file, before upload');
        assertRamp(await d.readFile('d/kept.bin'), 0, 48, 'the renamed file, read from its old name on the remote');
        assert.equal(await errnoOf(d.stat('drop.bin'), 'stat drop.bin'), 'ENOENT');
        releaseAll(sys);
        await within(second.fs.drain(MS), MS, 'the second mount to apply what the first left');
        assert.deepEqual(await remoteNames(sys), ['d']);
        assert.deepEqual(await remoteNames(sys, 'd'), ['inner.bin', 'kept.bin']);
        assert.deepEqual(sys.fileBytes('d/inner.bin'), rampBuffer(0, 30 * KiB, 50));
        assert.deepEqual(sys.fileBytes('d/kept.bin'), rampBuffer(0, 64 * KiB, 48));
        assert.deepEqual(second.fs.pendingUploads(), []);
        assertRamp(await d.readFile('d/kept.bin'), 0, 48, 'the renamed file, after the rename was applied');
      } finally {
        releaseAll(sys);
        await within(second.close(), MS, 'the second mount to close');
      }
    } finally {
      releaseAll(sys);
      await sys.close();
    }
  });

  // Found by the model checker (seeds 7101-7103 of test/e2e/write-model.test.ts, fixed together).
  describe('handles across renames and removals applied on the remote', () => {
    // Failed before the fix: the reading handle was not counted by the local file, so the
    // unlink closed its working file under it and it read the uploaded version's bytes from a
    // remote that had deleted them (zeros through the kernel's page cache).
    test('a handle opened for reading before another handle wrote the file reads the written bytes, also after unlink and the delete reached the remote', async () => {
      remote.setFile('r.bin', rampBuffer(0, 256 * KiB, 60));
      const w = await open({ upload: { writeBackDelayMs: 0 } });
      const d = w.driver;
      const reader = await d.open('r.bin', O_RDONLY);
      assertRamp(await d.read(reader, 4 * KiB, 0), 0, 60, 'the remote version, before the write');
      const writer = await d.open('r.bin', O_WRONLY);
      await d.write(writer, rampBuffer(256 * KiB, 8 * KiB, 61), 256 * KiB);
      await d.close(writer);
      await drain(w, 'the put of r.bin');
      await d.unlink('r.bin');
      await drain(w, 'the delete of r.bin');
      assert.deepEqual(await remoteNames(remote), [], 'deleted on the remote');
      const expected = Buffer.concat([rampBuffer(0, 256 * KiB, 60), rampBuffer(256 * KiB, 8 * KiB, 61)]);
      assert.deepEqual(await d.read(reader, 512 * KiB, 0), expected, 'the reading handle reads the file as written, to its new end');
      await d.close(reader);
    });

    // Failed before the fix: the handle fetched what it had not read yet from the remote,
    // which held the other file by then (ESTALE; ENOENT on memfs when renamed on).
    test('a rename over a remote file open for reading: once it is applied on the remote, the handle still reads every old byte', async () => {
      remote.setFile('old.bin', rampBuffer(0, 2 * MiB, 62));
      remote.setFile('new.bin', rampBuffer(0, 1 * MiB, 63));
      const w = await open({ upload: { writeBackDelayMs: 0 } });
      const d = w.driver;
      const fd = await d.open('old.bin', O_RDONLY);
      assertRamp(await d.read(fd, 4 * KiB, MiB), MiB, 62, 'one page, before the rename');
      await d.rename('new.bin', 'old.bin');
      await drain(w, 'the rename to reach the remote');
      assert.deepEqual(remote.fileBytes('old.bin'), rampBuffer(0, 1 * MiB, 63), 'the remote holds the new file at the name');
      assertRamp(await d.read(fd, 2 * MiB, 0), 0, 62, 'the open handle reads the file it opened, to its end');
      await d.close(fd);
      assertRamp(await d.readFile('old.bin'), 0, 63, 'a new open reads the new file');
    });

    // Failed before the fix (the model checker under stress, seed 247785038): the handle
    // followed only one rename, to the file's final name, which the remote did not have yet.
    test('a remote file open for reading, renamed twice: between the two renames applied on the remote, the handle reads at the intermediate name', async () => {
      remote.setFile('a.bin', rampBuffer(0, 32 * MiB, 67));
      const w = await open({ upload: { writeBackDelayMs: 0 } });
      const d = w.driver;
      const fd = await d.open('a.bin', O_RDONLY);
      assertRamp(await d.read(fd, 4 * KiB, 0), 0, 67, 'one page, before the renames');
      let hold = remote.hold('rename');
      await d.rename('a.bin', 'y.bin');
      await d.rename('y.bin', 'x.bin');
      await within(hold.reached(1), MS, 'rename 1 to reach the hold');
      hold = remote.hold('rename');
      await within(hold.reached(1), MS, 'rename 2 to reach the hold');
      assert.deepEqual(await remoteNames(remote), ['y.bin'], 'the bytes are at the intermediate name');
      assertRamp(await d.read(fd, 64 * KiB, 24 * MiB), 24 * MiB, 67, 'the handle reads bytes it had not fetched');
      hold.open();
      await drain(w, 'the second rename');
      assertRamp(await d.read(fd, 64 * KiB, 30 * MiB), 30 * MiB, 67, 'and after the second rename');
      await d.close(fd);
    });

    // Failed before the fix (the model checker under stress, seed 66939210): the handle read
    // the old name, where a new file was by then: ESTALE.
    test('a remote file open for reading, renamed, and a new file saved at its old name: the handle reads its own bytes at the new name', async () => {
      remote.setFile('p.bin', rampBuffer(0, 32 * MiB, 68));
      const w = await open({ upload: { writeBackDelayMs: 0 } });
      const d = w.driver;
      const fd = await d.open('p.bin', O_RDONLY);
      assertRamp(await d.read(fd, 4 * KiB, 0), 0, 68, 'one page, before the rename');
      await d.rename('p.bin', 'q.bin');
      await d.writeFile('p.bin', rampBuffer(0, 64 * KiB, 69));
      await drain(w, 'the rename and the new file to reach the remote');
      assert.deepEqual(remote.fileBytes('p.bin'), rampBuffer(0, 64 * KiB, 69), 'the new file is at the old name');
      assertRamp(await d.read(fd, 64 * KiB, 24 * MiB), 24 * MiB, 68, 'the handle reads bytes it had not fetched, at the new name');
      await d.close(fd);
    });

    // Failed before the fix (the model checker under stress, seed 506800577): a new file at
    // the name journaled the waiting delete (or replaced the old file) while the removed
    // file's handle still needed bytes from the remote: ENOENT or ESTALE.
    for (const how of ['a new file saved', 'a file renamed'] as const) {
      test(`a remote file open for reading, unlinked, then ${how} at its name: the handle reads every old byte`, async () => {
        remote.setFile('r.bin', rampBuffer(0, 32 * MiB, 70));
        remote.setFile('other.bin', rampBuffer(0, 64 * KiB, 71));
        const w = await open({ upload: { writeBackDelayMs: 0 } });
        const d = w.driver;
        const fd = await d.open('r.bin', O_RDONLY);
        assertRamp(await d.read(fd, 4 * KiB, 0), 0, 70, 'one page, before the unlink');
        await d.unlink('r.bin');
        if (how === 'a new file saved') await d.writeFile('r.bin', rampBuffer(0, 64 * KiB, 71));
        else await d.rename('other.bin', 'r.bin');
        await drain(w, 'the new file to reach the remote');
        assert.deepEqual(remote.fileBytes('r.bin'), rampBuffer(0, 64 * KiB, 71), 'the new file is at the name');
        assertRamp(await d.read(fd, 64 * KiB, 24 * MiB), 24 * MiB, 70, 'the handle reads bytes it had not fetched');
        await d.close(fd);
        await drain(w);
        assert.deepEqual(remote.fileBytes('r.bin'), rampBuffer(0, 64 * KiB, 71), 'the last close deletes nothing');
      });
    }

    // Failed before the fix (the kill -9 test, run 22 of seed base 488821552): the working
    // file read its unfetched bytes at the name the remote had when it opened; the chain of
    // renames moved them on (ENOENT or ESTALE at close: the save failed).
    test('a file renamed in a chain, then written: its unfetched bytes are read where the renames applied so far left them', async () => {
      remote.setFile('a.bin', rampBuffer(0, 512 * KiB, 64));
      const w = await open({ upload: { writeBackDelayMs: 0 } });
      const d = w.driver;
      let hold = remote.hold('rename');
      await d.rename('a.bin', 'y.bin');
      await d.rename('y.bin', 'x.bin');
      await d.rename('x.bin', 'b.bin');
      await d.rename('b.bin', 'x.bin');
      const fd = await d.open('x.bin', O_RDWR);
      await d.write(fd, rampBuffer(0, 1000, 65), 0);
      // One rename at a time through the hold (a new hold lets the waiting one go): three are
      // applied, the fourth (b.bin to x.bin) waits.
      for (let i = 1; i <= 3; i++) {
        await within(hold.reached(1), MS, `rename ${i} to reach the hold`);
        hold = remote.hold('rename');
      }
      await within(hold.reached(1), MS, 'rename 4 to reach the hold');
      assert.deepEqual(await remoteNames(remote), ['b.bin'], 'the bytes are at b.bin now');
      await d.close(fd); // completes the file: the unfetched bytes are read at b.bin
      hold.open();
      await drain(w, 'the last rename and the put of x.bin');
      const expected = rampBuffer(0, 512 * KiB, 64);
      rampBuffer(0, 1000, 65).copy(expected);
      assert.deepEqual(await remoteNames(remote), ['x.bin'], 'no conflict copy, nothing else');
      assert.deepEqual(remote.fileBytes('x.bin'), expected, 'the remote holds the old bytes with the write over them');
    });
  });

  describe('unlink of an open file', () => {
    test('a new file: still readable and writable through the handle; nothing is uploaded for it', async () => {
      const w = await open();
      const d = w.driver;
      remote.resetCalls();
      const fd = await d.open('u.bin', O_RDWR | O_CREAT);
      await d.write(fd, rampBuffer(0, 40 * KiB, 30), 0);
      await d.unlink('u.bin');
      assert.equal(await errnoOf(d.stat('u.bin'), 'stat u.bin'), 'ENOENT');
      assertRamp(await d.read(fd, 40 * KiB, 0), 0, 30, 'read through the handle after unlink');
      await d.write(fd, rampBuffer(40 * KiB, 8 * KiB, 30), 40 * KiB);
      assertRamp(await d.read(fd, 48 * KiB, 0), 0, 30, 'a write after unlink, read back');
      await d.fsync(fd);
      await d.close(fd);
      await drain(w);
      assert.equal(remote.calls('put'), 0, 'nothing uploaded');
      assert.equal(remote.calls('delete'), 0, 'nothing to delete');
      assert.deepEqual(await remoteNames(remote), []);
      assert.deepEqual(readdirSync(w.data.snapshotDir), []);
      await allDirtyReleased(w.data, MS, 'the unlinked file\'s bytes to leave the cache');
    });

    // Failed on 0e4fedd (the bug this test is named after; fixed in b73798c): unlink journals the delete without first fetching the bytes the open
    // handle has not read yet (rename does: wf.complete()); once applied, the base reads ENOENT.
    test('a remote file opened for writing: after unlink its handle still reads every byte (also ones not fetched before the delete reached the remote), and nothing is uploaded for it', async () => {
      remote.setFile('r.bin', rampBuffer(0, 512 * KiB, 31));
      const w = await open();
      const d = w.driver;
      const fd = await d.open('r.bin', O_RDWR);
      await d.write(fd, rampBuffer(0, 1000, 32), 0);
      await d.unlink('r.bin');
      await drain(w, 'the delete of r.bin to reach the remote');
      assert.deepEqual(await remoteNames(remote), [], 'deleted on the remote');
      const expected = rampBuffer(0, 512 * KiB, 31);
      rampBuffer(0, 1000, 32).copy(expected);
      assert.deepEqual(await d.read(fd, 512 * KiB, 0), expected, 'the open handle reads the file it opened');
      await d.close(fd);
      assert.equal(remote.calls('put'), 0, 'nothing uploaded');
    });
    // Failed on 0e4fedd (the bug this test is named after; fixed in b73798c): the delete is applied while the handle is open (the header's "deleted on
    // the remote when their last handle closes" is not implemented); uncached reads get ENOENT.
    test('a remote file open for reading: unlink hides it at once, its handle still reads every byte, the remote delete follows the last close', async () => {
      remote.setFile('ro.bin', rampBuffer(0, 4 * MiB, 34));
      const w = await open();
      const d = w.driver;
      const fd = await d.open('ro.bin', O_RDONLY);
      assertRamp(await d.read(fd, 4 * KiB, 2 * MiB), 2 * MiB, 34, 'one page in the middle, before unlink (fetches little)');
      await d.unlink('ro.bin');
      assert.equal(await errnoOf(d.stat('ro.bin'), 'stat ro.bin'), 'ENOENT', 'gone from the mount at once');
      await drain(w, 'nothing journaled while the handle is open');
      assert.deepEqual(await remoteNames(remote), ['ro.bin'], 'the delete waits for the last close (the handle reads from the remote)');
      assertRamp(await d.read(fd, 4 * MiB, 0), 0, 34, 'the open handle reads the file it opened');
      await d.close(fd);
      await drain(w, 'the delete of ro.bin to reach the remote');
      assert.deepEqual(await remoteNames(remote), [], 'deleted on the remote after the last close');
    });
  });

  test('statfs: the cache cap, and the room left (cap less the bytes not uploaded yet)', async () => {
    const cap = 1 * MiB;
    const w = await open({ data: { cacheCapBytes: cap }, upload: { writeBackDelayMs: WRITE_BACK_MS } });
    const d = w.driver;
    const expectFree = async (dirty: number, what: string): Promise<void> => {
      const s = await w.fs.statfs();
      assert.equal(s.bsize, 4096);
      assert.equal(s.blocks, cap / 4096, `${what}: blocks`);
      assert.equal(w.data.dirtyBytes, dirty, `${what}: dirty bytes`);
      assert.equal(s.bfree, Math.floor((cap - dirty) / 4096), `${what}: bfree`);
      assert.equal(s.bavail, s.bfree, `${what}: bavail`);
    };
    await expectFree(0, 'nothing written');
    const fd = await d.open('s.bin', O_RDWR | O_CREAT);
    await d.write(fd, rampBuffer(0, 100 * KiB, 33), 0);
    await expectFree(100 * KiB, 'an open file with 100 KiB written');
    await d.close(fd);
    await expectFree(100 * KiB, 'closed, its snapshot waiting for upload');
    await drain(w);
    await allDirtyReleased(w.data, MS, 'the uploaded file\'s bytes to leave the cache');
    await expectFree(0, 'uploaded');
  });

  test('direct ops: a write larger than the whole cap is ENOSPC at once; a write on a read-only handle is EBADF', async () => {
    const w = await open({ data: { cacheCapBytes: 64 * KiB, operationDeadlineMs: 50 } });
    const ctx = opContext();
    const { entry, open: opened } = await w.fs.create(ctx, ROOT_INO, 'x.bin', 0o644, O_RDWR, 0o022);
    await assert.rejects(w.fs.write(ctx, entry.nodeid, opened.fh, 0, Buffer.alloc(128 * KiB)), (err: unknown) => toFsError(err).errno === Errno.ENOSPC);
    const ro = await w.fs.open(ctx, entry.nodeid, O_RDONLY);
    await assert.rejects(w.fs.write(ctx, entry.nodeid, ro.fh, 0, Buffer.alloc(1)), (err: unknown) => toFsError(err).errno === Errno.EBADF);
    await w.fs.release(ctx, entry.nodeid, ro.fh);
    await w.fs.release(ctx, entry.nodeid, opened.fh);
    w.fs.forget(entry.nodeid, 1n);
  });
});

