// MemoryFs without a kernel: lookup counting and forget, readdir paging with a tiny sink over
// 10,000 entries (with changes between calls), rename variants and their errnos, directory
// nlink, truncate grow/shrink, a virtual 1 GiB ramp file, times, xattrs, access, hooks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, within } from '../../src/base/async.js';
import { ManualClock } from '../../src/base/clock.js';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { asFh, ROOT_INO, type Ino } from '../../src/base/ids.js';
import { F_OK, RENAME_EXCHANGE, RENAME_NOREPLACE, R_OK, S_IFMT, S_IFREG, W_OK, X_OK } from '../../src/base/posix.js';
import { MemoryFs } from '../../src/core/memory-fs.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Dirent, DirentSink, EntryOut } from '../../src/base/fs-types.js';
import type { OpContext } from '../../src/core/filesystem.js';
import { rampByte } from '../support/ramp.js';

const ctx = (uid = 0, gid = uid, signal = new AbortController().signal): OpContext => ({
  uid,
  gid,
  pid: 1,
  signal,
  log: silentLogger(),
});
const c = ctx();
const errno = (n: number) => (e: unknown) => e instanceof FsError && e.errno === n;
const O_RDWR = 2;

/** A sink with room for `room` entries per call, like a tiny READDIR buffer. */
class SmallSink implements DirentSink {
  readonly got: { d: Dirent; e: EntryOut | undefined }[] = [];
  constructor(
    readonly plus: boolean,
    readonly room: number,
  ) {}
  add(d: Dirent, e?: EntryOut): boolean {
    if (this.got.length >= this.room) return false;
    this.got.push({ d, e });
    return true;
  }
}

/** Lists a whole directory `room` entries at a time; `between` runs after each call. */
async function listAll(fs: MemoryFs, dir: Ino, plus: boolean, room: number, between?: (names: string[]) => Promise<void> | void): Promise<{ d: Dirent; e: EntryOut | undefined }[]> {
  const all: { d: Dirent; e: EntryOut | undefined }[] = [];
  let offset = 0n;
  for (;;) {
    const sink = new SmallSink(plus, room);
    await fs.readdir(c, dir, asFh(0n), offset, sink);
    if (sink.got.length === 0) return all;
    for (const g of sink.got) {
      assert.ok(g.d.offset > offset, `offsets grow: ${g.d.name} has ${g.d.offset} after ${offset}`);
      offset = g.d.offset;
      all.push(g);
    }
    await between?.(all.map((g) => g.d.name));
  }
}

async function lookupIno(fs: MemoryFs, parent: Ino, name: string): Promise<Ino> {
  return (await fs.lookup(c, parent, name)).nodeid;
}

async function readAll(fs: MemoryFs, parent: Ino, name: string): Promise<string> {
  const ino = await lookupIno(fs, parent, name);
  const fh = (await fs.open(c, ino, 0)).fh;
  try {
    return (await fs.read(c, ino, fh, 0, 1 << 20)).toString();
  } finally {
    await fs.release(c, ino, fh, 0);
  }
}

describe('MemoryFs: lookup counts', () => {
  test('a node lives while the kernel references it, and is freed at the last forget after unlink', async () => {
    const fs = new MemoryFs();
    fs.addFile('f', Buffer.from('x'));
    const ino = await lookupIno(fs, ROOT_INO, 'f');
    await fs.lookup(c, ROOT_INO, 'f');
    assert.equal(fs.lookupCount(ino), 2n);
    const before = fs.nodeCount;
    await fs.unlink(c, ROOT_INO, 'f');
    assert.equal(fs.nodeCount, before, 'still referenced by the kernel');
    assert.equal((await fs.getattr(c, ino)).attr.nlink, 0, 'unlinked but alive');
    fs.forget(ino, 1n);
    assert.equal(fs.lookupCount(ino), 1n);
    fs.forget(ino, 1n);
    assert.equal(fs.nodeCount, before - 1);
    assert.equal(fs.lookupCount(ino), undefined);
    await assert.rejects(fs.getattr(c, ino), errno(Errno.ESTALE));
    await assert.rejects(fs.lookup(c, ROOT_INO, 'f'), errno(Errno.ENOENT));
    fs.forget(ino, 1n); // a late forget for a freed node is harmless
  });

  test('a linked node survives forget to zero; an open unlinked file lives until release; the root never goes', async () => {
    const fs = new MemoryFs();
    fs.addFile('kept', Buffer.from('k'));
    const kept = await lookupIno(fs, ROOT_INO, 'kept');
    fs.forget(kept, 1n);
    assert.equal(fs.lookupCount(kept), 0n, 'still there with no references: it has a name');

    const created = await fs.create(c, ROOT_INO, 'tmp', 0o644, O_RDWR, 0o022);
    const ino = created.entry.nodeid;
    await fs.write(c, ino, created.open.fh, 0, Buffer.from('still readable'));
    await fs.unlink(c, ROOT_INO, 'tmp');
    fs.forget(ino, 1n);
    assert.equal((await fs.read(c, ino, created.open.fh, 0, 100)).toString(), 'still readable');
    assert.equal(fs.openHandleCount, 1);
    await fs.release(c, ino, created.open.fh, 0);
    assert.equal(fs.lookupCount(ino), undefined, 'freed at release');
    assert.equal(fs.openHandleCount, 0);

    fs.forget(ROOT_INO, 1000n);
    assert.equal((await fs.getattr(c, ROOT_INO)).attr.ino, ROOT_INO);
  });

  test('names longer than 255 bytes are ENAMETOOLONG; inode numbers grow, generation is 0', async () => {
    const fs = new MemoryFs();
    await assert.rejects(fs.lookup(c, ROOT_INO, 'x'.repeat(256)), errno(Errno.ENAMETOOLONG));
    await assert.rejects(fs.lookup(c, ROOT_INO, 'é'.repeat(128)), errno(Errno.ENAMETOOLONG), '256 bytes in UTF-8');
    await assert.rejects(fs.lookup(c, ROOT_INO, 'x'.repeat(255)), errno(Errno.ENOENT));
    await assert.rejects(fs.mkdir(c, ROOT_INO, 'x'.repeat(256), 0o755, 0), errno(Errno.ENAMETOOLONG));
    const a = await fs.mkdir(c, ROOT_INO, 'a', 0o755, 0);
    const b = await fs.create(c, ROOT_INO, 'b', 0o644, 0, 0);
    assert.ok(b.entry.nodeid > a.nodeid);
    assert.equal(a.generation, 0n);
    await assert.rejects(fs.create(c, ROOT_INO, 'b', 0o644, 0, 0), errno(Errno.EEXIST));
    await assert.rejects(fs.mkdir(c, ROOT_INO, 'a', 0o755, 0), errno(Errno.EEXIST));
    await assert.rejects(fs.lookup(c, b.entry.nodeid, 'x'), errno(Errno.ENOTDIR));
  });
});

describe('MemoryFs: readdir', () => {
  test('10,000 entries, 3 per call: every name exactly once, "." and ".." first', async () => {
    const fs = new MemoryFs();
    const d = fs.addDir('d');
    for (let i = 0; i < 10_000; i++) fs.addFile(`d/n${i}`, Buffer.alloc(0));
    const all = await listAll(fs, d, false, 3);
    assert.deepEqual(
      all.slice(0, 2).map((g) => g.d.name),
      ['.', '..'],
    );
    assert.equal(all[1]?.d.ino, ROOT_INO, '".." is the parent');
    const names = all.slice(2).map((g) => g.d.name);
    assert.equal(names.length, 10_000);
    assert.equal(new Set(names).size, 10_000);
    assert.equal(all[2]?.d.type, 8, 'DT_REG');
  });

  test('changes between calls: removed names are skipped, added and renamed-in names come once, nothing twice', async () => {
    const fs = new MemoryFs();
    const d = fs.addDir('d');
    for (let i = 0; i < 10_000; i++) fs.addFile(`d/n${i}`, Buffer.alloc(0));
    let step = 0;
    const all = await listAll(fs, d, false, 3, async (seen) => {
      step++;
      if (step === 3) {
        await fs.unlink(c, d, 'n0'); // already listed
        await fs.unlink(c, d, 'n20'); // not yet listed
        fs.addFile('d/late', Buffer.alloc(0));
        await fs.rename(c, d, 'n30', d, 'renamed', 0); // not yet listed: comes once, new name
      }
      if (step === 10) {
        // Enough removals to compact the entry list in the middle of the listing.
        for (let i = 100; i < 5100; i++) await fs.unlink(c, d, `n${i}`);
      }
      if (seen.length > 20_000) throw new Error('listing does not terminate');
    });
    const names = all.slice(2).map((g) => g.d.name);
    assert.equal(new Set(names).size, names.length, 'no name twice');
    assert.ok(names.includes('n0'), 'listed before it was removed');
    assert.ok(!names.includes('n20') && !names.includes('n30') && !names.includes('n4000'));
    assert.ok(names.includes('late') && names.includes('renamed'));
    const listedBeforeBulk = names.filter((n) => /^n\d+$/.test(n) && Number(n.slice(1)) >= 100 && Number(n.slice(1)) < 5100);
    assert.ok(listedBeforeBulk.length < 30, 'bulk-removed names only appear if listed before the removal');
    assert.equal(names.length, 10_000 - 2 + 2 - 5000 + listedBeforeBulk.length);
  });

  test('READDIRPLUS: a reference per accepted entry only; "." and ".." carry nodeid 0', async () => {
    const fs = new MemoryFs();
    const d = fs.addDir('d');
    for (let i = 0; i < 10; i++) fs.addFile(`d/n${i}`, Buffer.from(`file ${i}`));
    const first = new SmallSink(true, 3);
    await fs.readdir(c, d, asFh(0n), 0n, first);
    assert.deepEqual(
      first.got.map((g) => [g.d.name, g.e?.nodeid]),
      [
        ['.', 0n],
        ['..', 0n],
        ['n0', first.got[2]?.d.ino],
      ],
    );
    const n0 = first.got[2]?.d.ino as Ino;
    assert.equal(first.got[2]?.e?.attr.size, 6);
    assert.equal(fs.lookupCount(n0), 1n);
    const n1 = await lookupIno(fs, d, 'n1');
    assert.equal(fs.lookupCount(n1), 1n, 'only the lookup: n1 was refused by the full sink');
    const all = await listAll(fs, d, true, 4);
    assert.equal(all.length, 12);
    assert.equal(fs.lookupCount(n0), 2n);
    assert.equal(fs.lookupCount(n1), 2n);
    assert.equal(fs.lookupCount(d), 0n, '"." took no reference');
  });

  test('readdir of a non-directory is ENOTDIR; an emptied directory lists only dots', async () => {
    const fs = new MemoryFs();
    const f = fs.addFile('f', Buffer.alloc(0));
    await assert.rejects(fs.readdir(c, f, asFh(0n), 0n, new SmallSink(false, 10)), errno(Errno.ENOTDIR));
    await assert.rejects(fs.opendir(c, f, 0), errno(Errno.ENOTDIR));
    const d = fs.addDir('d');
    fs.addFile('d/x', Buffer.alloc(0));
    await fs.unlink(c, d, 'x');
    assert.deepEqual(
      (await listAll(fs, d, false, 100)).map((g) => g.d.name),
      ['.', '..'],
    );
  });
});

describe('MemoryFs: namespace ops', () => {
  test('rename: plain, across directories, NOREPLACE, EXCHANGE and the errnos', async () => {
    const fs = new MemoryFs();
    fs.addFile('a', Buffer.from('A'));
    fs.addFile('b', Buffer.from('B'));
    const d = fs.addDir('d');
    const sub = fs.addDir('d/sub');
    fs.addDir('full');
    fs.addFile('full/x', Buffer.from('x'));
    fs.addDir('empty');

    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', RENAME_NOREPLACE), errno(Errno.EEXIST));
    await fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', RENAME_EXCHANGE);
    assert.equal(await readAll(fs, ROOT_INO, 'a'), 'B');
    assert.equal(await readAll(fs, ROOT_INO, 'b'), 'A');
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'nope', RENAME_EXCHANGE), errno(Errno.ENOENT));
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', RENAME_EXCHANGE | RENAME_NOREPLACE), errno(Errno.EINVAL));
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', 1 << 7), errno(Errno.EINVAL));

    await assert.rejects(fs.rename(c, ROOT_INO, 'd', sub, 'loop', 0), errno(Errno.EINVAL), 'into its own subtree');
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', d, 'self', 0), errno(Errno.EINVAL), 'into itself');
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', ROOT_INO, 'full', 0), errno(Errno.ENOTEMPTY));
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', ROOT_INO, 'a', 0), errno(Errno.ENOTDIR));
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'd', 0), errno(Errno.EISDIR));
    await assert.rejects(fs.rename(c, ROOT_INO, 'nope', ROOT_INO, 'x', 0), errno(Errno.ENOENT));
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'x'.repeat(256), 0), errno(Errno.ENAMETOOLONG));

    // A file over a file: the replaced one loses its link.
    const replaced = await lookupIno(fs, ROOT_INO, 'b');
    await fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', 0);
    assert.equal(await readAll(fs, ROOT_INO, 'b'), 'B');
    await assert.rejects(fs.lookup(c, ROOT_INO, 'a'), errno(Errno.ENOENT));
    assert.equal((await fs.getattr(c, replaced)).attr.nlink, 0);

    // A directory over an empty directory, and across parents: nlink follows.
    const rootLinks = (await fs.getattr(c, ROOT_INO)).attr.nlink;
    await fs.rename(c, ROOT_INO, 'empty', d, 'sub', 0);
    assert.equal((await fs.getattr(c, d)).attr.nlink, 3, 'd: ., .. and the new sub');
    assert.equal((await fs.getattr(c, ROOT_INO)).attr.nlink, rootLinks - 1);
    await assert.rejects(fs.getattr(c, sub), errno(Errno.ESTALE), 'the replaced directory is freed: the kernel held no reference');

    // EXCHANGE of a file and a directory across parents moves the directory's ".." link.
    const full = await lookupIno(fs, ROOT_INO, 'full');
    await fs.rename(c, ROOT_INO, 'full', d, 'sub', RENAME_EXCHANGE);
    assert.equal((await fs.lookup(c, d, 'sub')).nodeid, full);
    assert.equal((await fs.getattr(c, d)).attr.nlink, 3);
    assert.equal((await fs.getattr(c, ROOT_INO)).attr.nlink, rootLinks - 1);
    const dotdot = await listAll(fs, full, false, 10);
    assert.equal(dotdot[1]?.d.ino, d, '".." of the exchanged directory is its new parent');

    // Renaming one hard link over another of the same inode does nothing.
    const b = await lookupIno(fs, ROOT_INO, 'b');
    await fs.link(c, b, ROOT_INO, 'b2');
    await fs.rename(c, ROOT_INO, 'b', ROOT_INO, 'b2', 0);
    assert.equal(await lookupIno(fs, ROOT_INO, 'b'), b);
    assert.equal((await fs.getattr(c, b)).attr.nlink, 2);
  });

  test('mkdir, rmdir, unlink, link, symlink: errnos and nlink', async () => {
    const fs = new MemoryFs();
    const d = (await fs.mkdir(c, ROOT_INO, 'd', 0o777, 0o022)).nodeid;
    assert.equal((await fs.getattr(c, d)).attr.mode & 0o777, 0o755, 'umask applied');
    assert.equal((await fs.getattr(c, ROOT_INO)).attr.nlink, 3);
    await fs.mkdir(c, d, 'e', 0o755, 0);
    await fs.mkdir(c, d, 'f', 0o755, 0);
    assert.equal((await fs.getattr(c, d)).attr.nlink, 4, '2 + two subdirectories');
    await assert.rejects(fs.rmdir(c, ROOT_INO, 'd'), errno(Errno.ENOTEMPTY));
    await assert.rejects(fs.unlink(c, ROOT_INO, 'd'), errno(Errno.EISDIR));
    await fs.rmdir(c, d, 'e');
    assert.equal((await fs.getattr(c, d)).attr.nlink, 3);

    const f = fs.addFile('d/file', Buffer.from('data'));
    await assert.rejects(fs.rmdir(c, d, 'file'), errno(Errno.ENOTDIR));
    await assert.rejects(fs.rmdir(c, d, 'none'), errno(Errno.ENOENT));
    const l = await fs.link(c, f, ROOT_INO, 'hard');
    assert.equal(l.attr.nlink, 2);
    await assert.rejects(fs.link(c, d, ROOT_INO, 'dirlink'), errno(Errno.EPERM));
    await assert.rejects(fs.link(c, f, ROOT_INO, 'hard'), errno(Errno.EEXIST));
    await fs.unlink(c, d, 'file');
    assert.equal((await fs.getattr(c, f)).attr.nlink, 1);
    assert.equal(await readAll(fs, ROOT_INO, 'hard'), 'data');

    const s = await fs.symlink(c, ROOT_INO, 'sl', 'd/f');
    assert.equal(s.attr.mode & S_IFMT, 0o120000);
    assert.equal(s.attr.size, 3);
    assert.equal(await fs.readlink(c, s.nodeid), 'd/f');
    await assert.rejects(fs.readlink(c, f), errno(Errno.EINVAL));
    await assert.rejects(fs.symlink(c, ROOT_INO, 'sl', 'x'), errno(Errno.EEXIST));

    await fs.rmdir(c, d, 'f');
    await fs.rmdir(c, ROOT_INO, 'd');
    await assert.rejects(fs.mkdir(c, d, 'orphan', 0o755, 0), errno(Errno.ENOENT), 'creating in a removed directory');
  });

  test('times: create touches the parent, write sets mtime and ctime, setattr handles now and explicit times', async () => {
    const clock = new ManualClock();
    const fs = new MemoryFs({ clock });
    const t0 = clock.wallNow();
    clock.advance(1000);
    const created = await fs.create(c, ROOT_INO, 'f', 0o644, O_RDWR, 0);
    const ino = created.entry.nodeid;
    const root = (await fs.getattr(c, ROOT_INO)).attr;
    assert.equal(root.mtimeMs, t0 + 1000);
    clock.advance(1000);
    await fs.write(c, ino, created.open.fh, 0, Buffer.from('abc'));
    let a = (await fs.getattr(c, ino)).attr;
    assert.deepEqual([a.atimeMs, a.mtimeMs, a.ctimeMs], [t0 + 1000, t0 + 2000, t0 + 2000]);
    clock.advance(1000);
    await fs.read(c, ino, created.open.fh, 0, 3);
    a = (await fs.getattr(c, ino)).attr;
    assert.deepEqual([a.atimeMs, a.mtimeMs], [t0 + 3000, t0 + 2000]);
    clock.advance(1000);
    a = (await fs.setattr(c, ino, { valid: 0, atime: 5, mtime: 'now' })).attr;
    assert.deepEqual([a.atimeMs, a.mtimeMs, a.ctimeMs], [5, t0 + 4000, t0 + 4000]);
    clock.advance(1000);
    a = (await fs.setattr(c, ino, { valid: 0, mode: 0o600, uid: 7, gid: 8 })).attr;
    assert.deepEqual([a.mode, a.uid, a.gid, a.mtimeMs, a.ctimeMs], [S_IFREG | 0o600, 7, 8, t0 + 4000, t0 + 5000]);
    clock.advance(1000);
    await fs.setxattr(c, ino, 'user.k', Buffer.from('v'), 0);
    assert.equal((await fs.getattr(c, ino)).attr.ctimeMs, t0 + 6000);
  });
});

describe('MemoryFs: data', () => {
  test('truncate grows with zeros and shrinks, on a plain file', async () => {
    const fs = new MemoryFs();
    const ino = fs.addFile('f', Buffer.from('0123456789'));
    const fh = (await fs.open(c, ino, O_RDWR)).fh;
    await fs.setattr(c, ino, { valid: 0, size: 4 });
    assert.equal((await fs.read(c, ino, fh, 0, 100)).toString(), '0123');
    const grown = await fs.setattr(c, ino, { valid: 0, size: 200_000 });
    assert.equal(grown.attr.size, 200_000);
    assert.equal(grown.attr.blocks, Math.ceil(200_000 / 4096) * 8);
    const all = await fs.read(c, ino, fh, 0, 300_000);
    assert.equal(all.length, 200_000);
    assert.equal(all.subarray(0, 4).toString(), '0123');
    assert.ok(all.subarray(4).every((v) => v === 0), 'growth reads as zeros, not old bytes');
    await assert.rejects(fs.setattr(c, ROOT_INO, { valid: 0, size: 0 }), errno(Errno.EISDIR));
    assert.equal((await fs.read(c, ino, fh, 500_000, 10)).length, 0, 'a read past EOF is empty');
  });

  test('a virtual 1 GiB ramp file is read at several offsets without holding it; writes materialise chunks', async () => {
    const fs = new MemoryFs();
    const size = 1024 ** 3;
    const ino = fs.addFile('big', { size, generator: rampByte });
    const fh = (await fs.open(c, ino, O_RDWR)).fh;
    const heapBefore = process.memoryUsage().arrayBuffers;
    for (const off of [0, 65_535, 123_456_789, size - 10, size]) {
      const b = await fs.read(c, ino, fh, off, 128 * 1024);
      assert.equal(b.length, Math.min(128 * 1024, size - off));
      for (let i = 0; i < b.length; i++) if (b[i] !== rampByte(off + i)) assert.fail(`byte ${off + i} is ${b[i]}, not ${rampByte(off + i)}`);
    }
    assert.equal(fs.heldBytes(ino), 0, 'reads held nothing');
    assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 64 * 1024 * 1024, 'no big allocation');
    const attr = (await fs.getattr(c, ino)).attr;
    assert.equal(attr.size, size);
    assert.equal(attr.blocks, size / 512, 'data everywhere');

    // A write across a chunk boundary materialises two 64 KiB chunks, keeping the ramp around it.
    const at = 3 * 65_536 - 2;
    await fs.write(c, ino, fh, at, Buffer.from('hello'));
    assert.equal(fs.heldBytes(ino), 2 * 65_536);
    const around = await fs.read(c, ino, fh, at - 2, 9);
    assert.deepEqual([...around.subarray(0, 2)], [rampByte(at - 2), rampByte(at - 1)]);
    assert.equal(around.subarray(2, 7).toString(), 'hello');
    assert.deepEqual([...around.subarray(7)], [rampByte(at + 5), rampByte(at + 6)]);

    // Shrink then grow: the old ramp must not come back.
    await fs.setattr(c, ino, { valid: 0, size: 100 });
    await fs.setattr(c, ino, { valid: 0, size: 4 * 65_536 });
    const regrown = await fs.read(c, ino, fh, 0, 4 * 65_536);
    for (let i = 0; i < 100; i++) assert.equal(regrown[i], rampByte(i));
    assert.ok(regrown.subarray(100).every((v) => v === 0));
    await fs.release(c, ino, fh, 0);
  });

  test('size limits, fallocate and lseek', async () => {
    const fs = new MemoryFs({ maxFileBytes: 1 << 20 });
    const ino = fs.addFile('f', Buffer.from('abc'));
    const fh = (await fs.open(c, ino, O_RDWR)).fh;
    await assert.rejects(fs.write(c, ino, fh, (1 << 20) - 1, Buffer.from('xy')), errno(Errno.EFBIG));
    await assert.rejects(fs.setattr(c, ino, { valid: 0, size: (1 << 20) + 1 }), errno(Errno.EFBIG));
    await assert.rejects(fs.fallocate(c, ino, fh, 0, 10, 1), errno(Errno.EOPNOTSUPP));
    await fs.fallocate(c, ino, fh, 0, 1000, 0);
    assert.equal((await fs.getattr(c, ino)).attr.size, 1000);
    await fs.fallocate(c, ino, fh, 0, 10, 0);
    assert.equal((await fs.getattr(c, ino)).attr.size, 1000, 'fallocate never shrinks');
    assert.equal(await fs.lseek(c, ino, fh, 10, 3), 10, 'SEEK_DATA: data everywhere');
    assert.equal(await fs.lseek(c, ino, fh, 10, 4), 1000, 'SEEK_HOLE: the hole at EOF');
    await assert.rejects(fs.lseek(c, ino, fh, 1000, 3), errno(Errno.ENXIO));
    await assert.rejects(fs.read(c, ino, asFh(999n), 0, 1), errno(Errno.EBADF));
    await assert.rejects(fs.open(c, ROOT_INO, 0), errno(Errno.EISDIR));
  });
});

describe('MemoryFs: attributes and hooks', () => {
  test('xattrs: set, get, list, remove, CREATE and REPLACE', async () => {
    const fs = new MemoryFs();
    const ino = fs.addFile('f', Buffer.alloc(0));
    await assert.rejects(fs.getxattr(c, ino, 'user.k', 0), errno(Errno.ENODATA));
    assert.equal((await fs.listxattr(c, ino, 0)).length, 0);
    await fs.setxattr(c, ino, 'user.k', Buffer.from('v'), 0);
    await fs.setxattr(c, ino, 'user.j', Buffer.from('w'), 0);
    assert.equal((await fs.getxattr(c, ino, 'user.k', 100)).toString(), 'v');
    assert.equal((await fs.listxattr(c, ino, 100)).toString(), 'user.k\0user.j\0');
    await assert.rejects(fs.setxattr(c, ino, 'user.k', Buffer.from('w'), 1), errno(Errno.EEXIST));
    await assert.rejects(fs.setxattr(c, ino, 'user.new', Buffer.from('w'), 2), errno(Errno.ENODATA));
    await fs.setxattr(c, ino, 'user.k', Buffer.from('replaced'), 2);
    assert.equal((await fs.getxattr(c, ino, 'user.k', 100)).toString(), 'replaced');
    await fs.removexattr(c, ino, 'user.k');
    await assert.rejects(fs.getxattr(c, ino, 'user.k', 100), errno(Errno.ENODATA));
    await assert.rejects(fs.removexattr(c, ino, 'user.k'), errno(Errno.ENODATA));
  });

  test('access checks the mode bits against the caller; root needs an x bit only for X_OK', async () => {
    const fs = new MemoryFs();
    const f = fs.addFile('f', Buffer.alloc(0), 0o640);
    await fs.setattr(c, f, { valid: 0, uid: 1000, gid: 100 });
    await fs.access(ctx(1000, 100), f, R_OK | W_OK);
    await assert.rejects(fs.access(ctx(1000, 100), f, X_OK), errno(Errno.EACCES));
    await fs.access(ctx(2000, 100), f, R_OK);
    await assert.rejects(fs.access(ctx(2000, 100), f, W_OK), errno(Errno.EACCES));
    await assert.rejects(fs.access(ctx(2000, 200), f, R_OK), errno(Errno.EACCES));
    await fs.access(ctx(2000, 200), f, F_OK);
    await fs.access(c, f, R_OK | W_OK);
    await assert.rejects(fs.access(c, f, X_OK), errno(Errno.EACCES), 'root cannot execute a file with no x bit');
    await fs.setattr(c, f, { valid: 0, mode: 0o604 });
    await assert.rejects(fs.access(c, f, X_OK), errno(Errno.EACCES), '0o604 has no x bit');
    await fs.setattr(c, f, { valid: 0, mode: 0o001 });
    await fs.access(c, f, X_OK);
    await fs.access(c, ROOT_INO, X_OK);
    await assert.rejects(fs.open(ctx(2000, 200), f, O_RDWR), errno(Errno.EACCES), 'open checks too');
  });

  test('a hook can hang an op until its signal fires, or make it throw', async () => {
    const reached = new Deferred<void>();
    const fs = new MemoryFs({
      hooks: {
        beforeOp: async (op, _ino, rc) => {
          if (op === 'getattr') throw new FsError(Errno.EIO, 'injected');
          if (op !== 'read') return;
          reached.resolve();
          await new Promise<void>((resolve) => rc.signal.addEventListener('abort', () => resolve(), { once: true }));
          throw rc.signal.reason;
        },
      },
    });
    const ino = fs.addFile('f', Buffer.from('x'));
    await assert.rejects(fs.getattr(c, ino), errno(Errno.EIO));
    const fh = (await fs.open(c, ino, 0)).fh;
    const ac = new AbortController();
    const pending = fs.read(ctx(0, 0, ac.signal), ino, fh, 0, 1);
    await within(reached.promise, 1000, 'the read to reach its hook');
    ac.abort(new FsError(Errno.EINTR, 'interrupted'));
    await assert.rejects(within(pending, 1000, 'the hung read to end when its signal fires'), errno(Errno.EINTR));
    fs.hooks = {};
    assert.equal((await fs.read(c, ino, fh, 0, 1)).toString(), 'x');
    await fs.release(c, ino, fh, 0);
    assert.equal(fs.openHandleCount, 0);
  });

  test('statfs reports held bytes, not virtual ones', async () => {
    const fs = new MemoryFs();
    fs.addFile('big', { size: 1024 ** 3, generator: rampByte });
    fs.addFile('small', Buffer.from('x'));
    const s = await fs.statfs(c, ROOT_INO);
    assert.equal(s.blocks - s.bfree, 16, 'one 64 KiB chunk for "small"');
    assert.equal(s.namelen, 255);
  });
});
