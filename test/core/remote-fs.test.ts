// RemoteFs without a kernel: the semantics the bridge used to own, now the core's. A LocalRemote
// over a temp dir (a real Remote) and a real DataCache; a counting wrapper sees every listing
// request. The clock is injected, so TTLs are driven, not slept through.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/base/clock.js';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import type { Dirent, DirentSink, EntryOut } from '../../src/base/fs-types.js';
import { asFh, ROOT_INO, type Ino } from '../../src/base/ids.js';
import { O_RDONLY, O_RDWR, O_WRONLY, S_IFDIR, S_IFMT, S_IFREG, W_OK, R_OK } from '../../src/base/posix.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Remote, RemoteEntry } from '../../src/remote/remote.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import type { OpContext } from '../../src/core/filesystem.js';
import { RemoteFs } from '../../src/core/remote-fs.js';

const op = (signal = new AbortController().signal): OpContext => ({ uid: 0, gid: 0, pid: 1, signal, log: silentLogger() });
const errno = (n: number) => (e: unknown) => e instanceof FsError && e.errno === n;

/** A Remote whose listings are counted (the figure `ls -l` costs). */
function counting(remote: Remote): { remote: Remote; lists: string[] } {
  const lists: string[] = [];
  const wrapped: Remote = {
    id: remote.id,
    capabilities: remote.capabilities,
    stat: (path, signal) => remote.stat(path, signal),
    list: (path: string, signal: AbortSignal): Promise<RemoteEntry[]> => {
      lists.push(path);
      return remote.list(path, signal);
    },
    read: (path, offset, length, options) => remote.read(path, offset, length, options),
    close: () => remote.close(),
  };
  return { remote: wrapped, lists };
}

class Sink implements DirentSink {
  readonly got: { d: Dirent; e: EntryOut | undefined }[] = [];
  constructor(
    readonly plus: boolean,
    readonly room = Infinity,
  ) {}
  add(d: Dirent, e?: EntryOut): boolean {
    if (this.got.length >= this.room) return false;
    this.got.push({ d, e });
    return true;
  }
}

describe('RemoteFs (core, no kernel)', () => {
  let dir: string;
  let clock: ManualClock;
  let data: DataCache;
  let lists: string[];
  let fs: RemoteFs;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-core-'));
    const root = join(dir, 'remote');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'a.txt'), 'alpha\n');
    writeFileSync(join(root, 'b.bin'), Buffer.alloc(10_000, 7));
    for (let i = 0; i < 5; i++) writeFileSync(join(root, 'sub', `f${i}`), `file ${i}\n`);
    clock = new ManualClock();
    const c = counting(new LocalRemote({ root }));
    lists = c.lists;
    data = await DataCache.open({ cacheDir: join(dir, 'cache'), remote: c.remote, logger: silentLogger() });
    fs = new RemoteFs({ remote: c.remote, data, logger: silentLogger(), clock, config: { attrTtlMs: 1000, entryTtlMs: 1000, dirTtlMs: 1000, negativeTtlMs: 500, uid: 1234, gid: 5678 } });
  });

  afterEach(async () => {
    await fs.close();
    await data.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('lookup: attributes and modes come from the core; each entry is one reference, forget gives it back', async () => {
    const e = await fs.lookup(op(), ROOT_INO, 'a.txt');
    assert.notEqual(e.nodeid, 0n);
    assert.equal(e.attr.size, 6);
    assert.equal(e.attr.mode & S_IFMT, S_IFREG);
    assert.equal(e.attr.mode & 0o777, 0o444, 'read-only remote: r--r--r--');
    assert.equal(e.attr.uid, 1234);
    assert.equal(e.attr.gid, 5678);
    assert.equal(e.entryTtlMs, 1000);
    assert.equal(fs.lookupCount(e.nodeid), 1n);
    await fs.lookup(op(), ROOT_INO, 'a.txt');
    assert.equal(fs.lookupCount(e.nodeid), 2n);
    fs.forget(e.nodeid, 2n);
    assert.equal(fs.lookupCount(e.nodeid), undefined, 'no reference and no handle: dropped from the live table');
    const again = await fs.lookup(op(), ROOT_INO, 'a.txt');
    assert.equal(again.nodeid, e.nodeid, 'a path keeps its inode number for the life of the mount');
    const d = await fs.lookup(op(), ROOT_INO, 'sub');
    assert.equal(d.attr.mode & S_IFMT, S_IFDIR);
    assert.equal(d.attr.nlink, 1, 'directory links not counted: 1, never a wrong 2');
  });

  test('a missing name is a negative entry (nodeid 0, negative TTL); with no negative TTL it is ENOENT', async () => {
    const e = await fs.lookup(op(), ROOT_INO, 'nope');
    assert.equal(e.nodeid, 0n);
    assert.equal(e.entryTtlMs, 500);
    const strict = new RemoteFs({ remote: new LocalRemote({ root: join(dir, 'remote') }), data, logger: silentLogger(), clock, config: { negativeTtlMs: 0 } });
    await assert.rejects(strict.lookup(op(), ROOT_INO, 'nope'), errno(Errno.ENOENT));
    await assert.rejects(fs.lookup(op(), (await fs.lookup(op(), ROOT_INO, 'a.txt')).nodeid, 'x'), errno(Errno.ENOTDIR));
  });

  test('one listing request per directory per dir TTL, shared by concurrent lookups', async () => {
    await Promise.all(['a.txt', 'b.bin', 'sub', 'nope'].map((n) => fs.lookup(op(), ROOT_INO, n)));
    assert.deepEqual(lists, [''], 'four concurrent lookups, one listing');
    clock.advance(999);
    await fs.lookup(op(), ROOT_INO, 'a.txt');
    assert.equal(lists.length, 1, 'still fresh');
    clock.advance(1);
    await fs.lookup(op(), ROOT_INO, 'a.txt');
    assert.equal(lists.length, 2, 'expired: listed again');
  });

  test('readdir: "." and ".." first with nodeid 0, cookies resume, only accepted READDIRPLUS entries take references', async () => {
    const sub = await fs.lookup(op(), ROOT_INO, 'sub');
    const { fh } = await fs.opendir(op(), sub.nodeid);
    const first = new Sink(true, 4);
    await fs.readdir(op(), sub.nodeid, fh, 0n, first);
    assert.deepEqual(first.got.map((g) => [g.d.name, g.d.offset]), [['.', 1n], ['..', 2n], ['f0', 3n], ['f1', 4n]]);
    assert.equal(first.got[0]?.e, undefined, '"." takes no reference');
    const refs = (name: string): bigint | undefined => {
      const g = first.got.find((x) => x.d.name === name);
      return g === undefined ? undefined : fs.lookupCount(g.d.ino);
    };
    assert.equal(refs('f0'), 1n);
    assert.equal(refs('f1'), 1n);
    const rest = new Sink(true);
    await fs.readdir(op(), sub.nodeid, fh, 4n, rest);
    assert.deepEqual(rest.got.map((g) => g.d.name), ['f2', 'f3', 'f4'], 'resumes after cookie 4, nothing twice');
    const refused = new Sink(true, 0);
    await fs.readdir(op(), sub.nodeid, fh, 6n, refused);
    const f4 = rest.got.find((g) => g.d.name === 'f4');
    assert.equal(f4 && fs.lookupCount(f4.d.ino), 1n, 'a refused entry took no reference');
    await fs.releasedir(op(), sub.nodeid, fh);
    assert.equal(fs.openDirs, 0);
  });

  test('an open directory pages through one snapshot; a rewind takes a new one', async () => {
    const sub = await fs.lookup(op(), ROOT_INO, 'sub');
    const { fh } = await fs.opendir(op(), sub.nodeid);
    const page1 = new Sink(false, 3);
    await fs.readdir(op(), sub.nodeid, fh, 0n, page1);
    writeFileSync(join(dir, 'remote', 'sub', 'late'), 'x');
    clock.advance(5000); // the listing has expired, but the open directory keeps its snapshot
    const page2 = new Sink(false);
    await fs.readdir(op(), sub.nodeid, fh, 3n, page2);
    assert.deepEqual(page2.got.map((g) => g.d.name), ['f1', 'f2', 'f3', 'f4']);
    assert.equal(fs.dirSnapshots, 1);
    const again = new Sink(false);
    await fs.readdir(op(), sub.nodeid, fh, 0n, again);
    assert.ok(again.got.some((g) => g.d.name === 'late'), 'a rewind sees the new name');
    assert.equal(fs.dirSnapshots, 2);
    await fs.releasedir(op(), sub.nodeid, fh);
  });

  test('an entry of an open directory that FORGET dropped meanwhile is handed out alive (no ESTALE later)', async () => {
    const sub = await fs.lookup(op(), ROOT_INO, 'sub');
    const f3 = await fs.lookup(op(), sub.nodeid, 'f3');
    const { fh } = await fs.opendir(op(), sub.nodeid);
    const page1 = new Sink(true, 3);
    await fs.readdir(op(), sub.nodeid, fh, 0n, page1); // the snapshot now holds f3's inode
    fs.forget(f3.nodeid, 1n);
    assert.equal(fs.lookupCount(f3.nodeid), undefined, 'f3 was dropped from the live table');
    const rest = new Sink(true);
    await fs.readdir(op(), sub.nodeid, fh, 3n, rest);
    const got = rest.got.find((g) => g.d.name === 'f3');
    assert.equal(got?.e?.nodeid, f3.nodeid, 'the same inode number');
    assert.equal(fs.lookupCount(f3.nodeid), 1n, 'live again, with the reference READDIRPLUS gave');
    const a = await fs.getattr(op(), f3.nodeid, undefined);
    assert.equal(a.attr.size, 7);
    await fs.releasedir(op(), sub.nodeid, fh);
  });

  test('cached listings stay within their entry budget on a crawl, oldest dropped first', async () => {
    const root = join(dir, 'remote');
    for (let d = 0; d < 6; d++) {
      mkdirSync(join(root, `crawl${d}`));
      for (let i = 0; i < 4; i++) writeFileSync(join(root, `crawl${d}`, `x${i}`), 'x');
    }
    const small = new RemoteFs({ remote: new LocalRemote({ root }), data, logger: silentLogger(), clock, config: { listingCacheMaxEntries: 10 } });
    for (let d = 0; d < 6; d++) {
      const e = await small.lookup(op(), ROOT_INO, `crawl${d}`);
      await small.lookup(op(), e.nodeid, 'x0'); // lists crawl<d>: 4 entries
      assert.ok(small.listingCache.entries <= 10, `within budget after crawl${d}: ${JSON.stringify(small.listingCache)}`);
    }
    // The root (9 entries) and crawl5 (4) do not fit together: the older one, the root, went.
    assert.deepEqual(small.listingCache, { listings: 1, entries: 4 });
  });

  test('read-only: opening for writing, access W_OK and every changing op answer EROFS', async () => {
    const a = await fs.lookup(op(), ROOT_INO, 'a.txt');
    await assert.rejects(fs.open(op(), a.nodeid, O_WRONLY), errno(Errno.EROFS));
    await assert.rejects(fs.open(op(), a.nodeid, O_RDWR), errno(Errno.EROFS));
    await assert.rejects(fs.access(op(), a.nodeid, W_OK), errno(Errno.EROFS));
    await fs.access(op(), a.nodeid, R_OK);
    const ops: (() => Promise<unknown>)[] = [
      () => fs.mkdir(op(), ROOT_INO, 'd', 0o755, 0),
      () => fs.unlink(op(), ROOT_INO, 'a.txt'),
      () => fs.rmdir(op(), ROOT_INO, 'sub'),
      () => fs.rename(op(), ROOT_INO, 'a.txt', ROOT_INO, 'z', 0),
      () => fs.create(op(), ROOT_INO, 'n', 0o644, O_WRONLY, 0),
      () => fs.symlink(op(), ROOT_INO, 's', 'a.txt'),
      () => fs.setattr(op(), a.nodeid, { valid: 0 }),
      () => fs.write(op(), a.nodeid, asFh(1n), 0, Buffer.from('x'), 0, 0),
    ];
    for (const call of ops) await assert.rejects(call(), errno(Errno.EROFS));
  });

  test('open, read and release; a directory is EISDIR, an unknown inode ESTALE, an unknown handle EBADF', async () => {
    const b = await fs.lookup(op(), ROOT_INO, 'b.bin');
    const { fh } = await fs.open(op(), b.nodeid, O_RDONLY);
    assert.equal(fs.openHandles, 1);
    const bytes = await fs.read(op(), b.nodeid, fh, 9_990, 100);
    assert.deepEqual(bytes, Buffer.alloc(10, 7), 'short at EOF, never past it');
    await fs.release(op(), b.nodeid, fh);
    assert.equal(fs.openHandles, 0);
    await assert.rejects(fs.read(op(), b.nodeid, fh, 0, 1), errno(Errno.EBADF));
    const sub = await fs.lookup(op(), ROOT_INO, 'sub');
    await assert.rejects(fs.open(op(), sub.nodeid, O_RDONLY), errno(Errno.EISDIR));
    await assert.rejects(fs.getattr(op(), 987654n as Ino, undefined), errno(Errno.ESTALE));
  });
});
