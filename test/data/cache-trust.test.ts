// "The cache never vouches for bytes it does not hold": a cache file that is missing, short or
// replaced (between two DataCache instances, or under an open CacheFile) never serves zeros or
// foreign bytes; the cache bed.dir is reconciled at start (orphans reclaimed, rows without a
// trustworthy file dropped, accounting recounted); a row is always gone before its file is
// unlinked; a full cache disk (ENOSPC) serves reads uncached instead of failing them.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Deferred, within } from '../../src/base/async.js';
import type { DataCache } from '../../src/data/data-cache.js';
import type { DataConfig } from '../../src/data/config.js';
import type { DataHooks } from '../../src/data/hooks.js';
import { FileWriteError } from '../../src/remote/remote-error.js';
import type { FileTransfer, Fingerprint, ReadToFileOptions } from '../../src/remote/remote.js';
import { FakeRemote } from '../fakes/fake-remote.js';
import { rampBuffer } from '../support/ramp.js';
import { KiB, MiB, openCache, useCacheTestbed } from '../support/cache-harness.js';
import { assertRamp } from '../support/ramp.js';

const T = 10_000;

/**
 * A FakeRemote that also implements readToFile the way the transfer thread does: it opens
 * `filePath` by name ('r+') when the response starts and writes with positional writes, only
 * below `allowTo`. Write errors reject `done` with a FileWriteError carrying the errno code.
 */
class FileFakeRemote extends FakeRemote {
  readonly filePaths: string[] = [];
  /** errno codes of failed writes. */
  readonly writeErrors: (string | undefined)[] = [];

  override readonly readToFile = (path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer => this.#transfer(path, offset, length, filePath, options);

  #transfer(path: string, offset: number, length: number, filePath: string, options: ReadToFileOptions): FileTransfer {
    const o = this.objects.get(path);
    if (!o) throw new Error(`no object ${path}`);
    this.filePaths.push(filePath);
    const fp: Fingerprint = { etag: o.etag, size: o.size };
    const end = Math.min(offset + length, o.size);
    const done = new Deferred<Fingerprint>();
    let allowTo = options.allowTo;
    let pos = offset;
    let fd = -1;
    const finish = (err?: Error): void => {
      if (fd >= 0) closeSync(fd);
      fd = -1;
      if (err) done.reject(err);
      else done.resolve(fp);
    };
    const pump = (): void => {
      if (done.settled) return;
      if (options.signal.aborted) {
        finish(new Error('aborted'));
        return;
      }
      try {
        if (fd < 0) fd = openSync(filePath, 'r+');
        const to = Math.min(allowTo, end);
        if (to > pos) {
          const buf = rampBuffer(pos, to - pos, o.seed);
          let w = 0;
          while (w < buf.length) w += writeSync(fd, buf, w, buf.length - w, pos + w);
          pos = to;
          options.onWritten(pos);
        }
        if (pos >= end) finish();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.writeErrors.push(code);
        finish(new FileWriteError(`writing ${filePath}: ${String(err)}`, code));
      }
    };
    options.signal.addEventListener('abort', () => setImmediate(pump), { once: true });
    setImmediate(pump);
    return {
      done: done.promise,
      allow: (to: number) => {
        if (to > allowTo) allowTo = to;
        setImmediate(pump);
      },
    };
  }
}

void describe('cache trust', () => {
  const bed = useCacheTestbed({ beforeEach, afterEach }, T);

  async function open(remote: FakeRemote, config?: Partial<DataConfig>, hooks?: DataHooks): Promise<DataCache> {
    return bed.track(await openCache({ remote, dir: bed.dir, ...(config ? { config } : {}), ...(hooks ? { hooks } : {}) }));
  }

  const closeCache = (c: DataCache): Promise<void> => bed.close(c);

  /** First instance: caches all of `path` and closes; returns the cache file's path. */
  async function cacheFully(path: string, size: number, seed: number): Promise<{ file: string; fp: Fingerprint }> {
    const remote = new FakeRemote();
    const fp = remote.setObject(path, size, seed);
    const c = await open(remote);
    const r = await c.openFile(path, fp, size);
    assertRamp(await within(r.read(0, size), T, 'the first full read'), 0, seed, 'first read');
    await r.close();
    const [obj] = c.store.listObjects();
    assert.ok(obj, 'one object cached');
    assert.equal(obj.presentBytes, size);
    const file = join(c.objectsDir, obj.cacheFileName);
    await closeCache(c);
    return { file, fp };
  }

  /** Second instance over the same dir: every byte is right, and the bytes were fetched again. */
  async function readsRefetched(path: string, size: number, seed: number, fp: Fingerprint): Promise<DataCache> {
    const remote = new FakeRemote();
    remote.setObject(path, size, seed, fp.etag);
    const c = await open(remote);
    const r = await c.openFile(path, fp, size);
    for (let off = 0; off < size; off += 256 * KiB) {
      assertRamp(await within(r.read(off, 256 * KiB), T, `read at ${off}`), off, seed, `second instance, read at ${off}`);
    }
    await r.close();
    assert.ok(remote.reads.length > 0, 'the untrusted bytes were fetched again');
    assert.equal(c.stats().cacheBytes, c.store.totalPresentBytes(), 'accounting matches the store');
    return c;
  }

  void test('one version named more fully later (a listing\'s size and mtime, then a HEAD\'s ETag) keeps its bytes; another ETag does not', async () => {
    const remote = new FakeRemote();
    const size = 300 * KiB;
    remote.setObject('v.bin', size, 7);
    const byListing: Fingerprint = { size, mtimeMs: 1_700_000_000_000 };
    const c = await open(remote);
    const r1 = await c.openFile('v.bin', byListing, size);
    assertRamp(await within(r1.read(0, size), T, 'the first read'), 0, 7, 'first read');
    await r1.close();
    const readsBefore = remote.reads.length;
    // The same version, as a HEAD names it: the bytes stay, and the catalogue learns the ETag.
    const etag = remote.fingerprint('v.bin').etag;
    assert.ok(etag !== undefined);
    const byHead: Fingerprint = { ...byListing, etag };
    const r2 = await c.openFile('v.bin', byHead, size);
    assertRamp(await within(r2.read(0, size), T, 'the read of the same version'), 0, 7, 'same version');
    assert.equal(remote.reads.length, readsBefore, 'no byte fetched again');
    assert.deepEqual(r2.fingerprint, byHead, 'filed under the fuller name');
    await r2.close();
    // Back to the listing's name: still the same version (the catalogue keeps the ETag).
    const r3 = await c.openFile('v.bin', byListing, size);
    assert.deepEqual(r3.fingerprint, byHead);
    await r3.close();
    // Another ETag with the same size and mtime is another version: never the cached bytes.
    const other = remote.setObject('v.bin', size, 8).etag;
    assert.ok(other !== undefined && other !== etag);
    const r4 = await c.openFile('v.bin', { ...byListing, etag: other }, size);
    assert.equal(r4.fingerprint.etag, other);
    assertRamp(await within(r4.read(0, 4096), T, 'the read of the other version'), 0, 8, 'the other version');
    assert.ok(remote.reads.length > readsBefore, 'the other version is fetched');
    await r4.close();
  });

  void test('a cache file deleted between two opens is fetched again, never read as zeros', async () => {
    const size = 2 * MiB + 77;
    const { file, fp } = await cacheFully('a', size, 3);
    unlinkSync(file);
    await readsRefetched('a', size, 3, fp);
  });

  void test('a truncated cache file (shorter than its ranges claim) loses its ranges', async () => {
    const size = 2 * MiB + 77;
    const { file, fp } = await cacheFully('a', size, 4);
    truncateSync(file, MiB);
    await readsRefetched('a', size, 4, fp);
  });

  void test('a cache file replaced by another file of the same size is not trusted', async () => {
    const size = 2 * MiB + 77;
    const { file, fp } = await cacheFully('a', size, 5);
    // Same name, same size, other bytes, another inode (what a restore or a stray tool makes).
    writeFileSync(`${file}.tmp`, Buffer.alloc(size, 0xee));
    renameSync(`${file}.tmp`, file);
    await readsRefetched('a', size, 5, fp);
  });

  void test('a cache file deleted under an open CacheFile: reads keep using the open fd', async () => {
    const size = 2 * MiB;
    const remote = new FakeRemote();
    const fp = remote.setObject('d', size, 6);
    const c = await open(remote);
    const r = await c.openFile('d', fp, size);
    assertRamp(await r.read(0, MiB), 0, 6, 'before the delete');
    const [obj] = c.store.listObjects();
    assert.ok(obj);
    unlinkSync(join(c.objectsDir, obj.cacheFileName));
    // Cached bytes come from the open fd; missing ones are downloaded into it.
    for (let off = 0; off < size; off += 128 * KiB) assertRamp(await r.read(off, 128 * KiB), off, 6, `after the delete, at ${off}`);
    await r.close();
    // Reopened (fd closed): the file is missing, so its ranges are dropped and refetched.
    const before = remote.reads.length;
    const r2 = await c.openFile('d', fp, size);
    assertRamp(await r2.read(0, size), 0, 6, 'reopened');
    await r2.close();
    assert.ok(remote.reads.length > before, 'the bytes of the deleted file were fetched again');
    assert.equal(c.stats().cacheBytes, c.store.totalPresentBytes());
  });

  void test('a cache file replaced under an open CacheFile: off-thread transfers still write into the open file', async () => {
    const size = 4 * MiB;
    const remote = new FileFakeRemote();
    const fp = remote.setObject('t', size, 7);
    const c = await open(remote, { offThreadMinBytes: 4 * KiB });
    const r = await c.openFile('t', fp, size);
    const [obj] = c.store.listObjects();
    assert.ok(obj);
    const file = join(c.objectsDir, obj.cacheFileName);
    writeFileSync(`${file}.tmp`, Buffer.alloc(size));
    renameSync(`${file}.tmp`, file);
    for (let off = 0; off < size; off += 64 * KiB) assertRamp(await within(r.read(off, 64 * KiB), T, `read at ${off}`), off, 7, `read at ${off}`);
    assert.ok(remote.filePaths.length > 0, 'read-ahead went through readToFile');
    await r.close();
  });

  void test('start reconciles the dir: orphans are deleted, rows without a trustworthy file are dropped, bytes recounted', async () => {
    const remote = new FakeRemote();
    const sizes = { keep: MiB + 1, gone: MiB + 2, short: MiB + 3 };
    const fps = new Map<string, Fingerprint>();
    let i = 10;
    for (const [p, s] of Object.entries(sizes)) fps.set(p, remote.setObject(p, s, i++));
    const c1 = await open(remote);
    for (const [p, s] of Object.entries(sizes)) {
      const r = await c1.openFile(p, fps.get(p) as Fingerprint, s);
      await r.read(0, s);
      await r.close();
    }
    const objectsDir = c1.objectsDir;
    const byPath = new Map(c1.store.listObjects().map((o) => [o.path, o]));
    await closeCache(c1);
    unlinkSync(join(objectsDir, byPath.get('gone')?.cacheFileName ?? ''));
    truncateSync(join(objectsDir, byPath.get('short')?.cacheFileName ?? ''), 100);
    // Orphans: a file of an object whose row is gone (a crash between the delete and the unlink).
    writeFileSync(join(objectsDir, '999-deadbeef.bin'), Buffer.alloc(64 * KiB, 1));
    writeFileSync(join(objectsDir, '1000-cafecafe.bin'), '');

    const c2 = await open(remote);
    const files = readdirSync(c2.objectsDir).sort();
    const rows = c2.store.listObjects();
    assert.deepEqual(rows.map((o) => o.path), ['keep'], 'only the object with a trustworthy file keeps its row');
    assert.deepEqual(files, rows.map((o) => o.cacheFileName).sort(), 'no orphan left, every row has its file');
    assert.equal(c2.store.totalPresentBytes(), sizes.keep);
    assert.equal(c2.stats().cacheBytes, sizes.keep, 'used bytes recounted from what remains');
    // And the kept object is served from the cache.
    const r = await c2.openFile('keep', fps.get('keep') as Fingerprint, sizes.keep);
    const before = remote.reads.length;
    assertRamp(await r.read(0, sizes.keep), 0, 10, 'kept object');
    assert.equal(remote.reads.length, before, 'kept object served without remote reads');
    await r.close();
  });

  void test('a row is gone (committed) before its cache file is unlinked: evict, replace, invalidate', async () => {
    const remote = new FakeRemote();
    const checked: string[] = [];
    const ref: { cache?: DataCache } = {};
    const hooks: DataHooks = {
      beforeUnlink: ({ fileName }) => {
        const vouching = ref.cache?.store.listObjects().filter((o) => o.cacheFileName === fileName && (o.presentBytes > 0 || o.fileIdentity !== undefined));
        assert.deepEqual(vouching, [], `a row still vouches for ${fileName} when it is unlinked`);
        checked.push(fileName);
      },
    };
    const size = 512 * KiB;
    const cache = (ref.cache = await open(remote, { cacheCapBytes: 2 * MiB, chunkSizeBytes: 256 * KiB, maxRequestBytes: 512 * KiB }, hooks));
    // Eviction: five objects through a 2 MiB cap.
    for (let k = 0; k < 5; k++) {
      const fp = remote.setObject(`e${k}`, size, k);
      const r = await cache.openFile(`e${k}`, fp, size);
      assertRamp(await r.read(0, size), 0, k, `e${k}`);
      await r.close();
    }
    assert.ok(cache.stats().evictedObjects > 0, 'something was evicted');
    const evicted = checked.length;
    // Replacement: a new version of a closed object.
    const fp2 = remote.setObject('e4', size, 40, '"v2"');
    const r = await cache.openFile('e4', fp2, size);
    assertRamp(await r.read(0, 10), 0, 40, 'new version');
    await r.close();
    assert.ok(checked.length > evicted, 'the replaced file was unlinked');
    const replaced = checked.length;
    await cache.invalidate('e4');
    assert.ok(checked.length > replaced, 'the invalidated file was unlinked');
    // A file that is not trusted any more (truncated behind our back) at its next open.
    const [kept] = cache.store.listObjects();
    assert.ok(kept);
    truncateSync(join(cache.objectsDir, kept.cacheFileName), 1);
    const invalidated = checked.length;
    const again = await cache.openFile(kept.path, remote.fingerprint(kept.path), size);
    await again.close();
    assert.deepEqual(checked.slice(invalidated), [kept.cacheFileName], 'the untrusted file was unlinked after its ranges were forgotten');
  });

  void describe('ENOSPC on the cache disk', () => {
    let mountDir: string | undefined;

    beforeEach(() => {
      mountDir = join(bed.dir, 'cache');
      mkdirSync(mountDir);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountDir]);
    });

    afterEach(async () => {
      try {
        await bed.closeAll();
      } finally {
        if (mountDir !== undefined) execFileSync('umount', [mountDir]);
        mountDir = undefined;
      }
    });

    for (const offThread of [false, true]) {
      void test(`a 16 MiB object through a 2 MiB cache disk reads correctly (${offThread ? 'transfer thread' : 'main thread'} writes)`, async () => {
        const size = 16 * MiB;
        const remote = offThread ? new FileFakeRemote() : new FakeRemote();
        const fp = remote.setObject('big', size, 21);
        const c = await open(remote, offThread ? { offThreadMinBytes: 4 * KiB } : {});
        const r = await c.openFile('big', fp, size);
        for (let off = 0; off < size; off += 256 * KiB) {
          assertRamp(await within(r.read(off, 256 * KiB), T, `read at ${off}`), off, 21, `read at ${off}`);
        }
        assert.ok(c.stats().uncachedReads > 0, 'some reads were served uncached');
        await r.close();
        if (remote instanceof FileFakeRemote) assert.ok(remote.writeErrors.includes('ENOSPC'), 'a transfer thread write met ENOSPC');
        // Opened again on a disk that is still full: cached bytes from disk, the rest uncached.
        const r2 = await c.openFile('big', fp, size);
        for (let off = size - 1; off > 0; off = Math.floor(off / 2)) {
          assertRamp(await within(r2.read(off, 100 * KiB), T, `read at ${off}`), off, 21, `reopened, read at ${off}`);
        }
        await r2.close();
        assert.ok(existsSync(c.objectsDir) && statSync(c.objectsDir).isDirectory());
      });
    }
  });
});
