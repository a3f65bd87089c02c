// MemoryFs without a kernel: lookup counting and forget, readdir paging with a tiny sink,
// rename variants and their errnos, truncate, a virtual 1 GiB file, xattrs, access.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { asFh, asIno, asUnique, ROOT_INO, type Ino } from '../../src/base/ids.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, W_OK } from '../../src/kernel/abi.js';
import { MemoryFs } from '../../src/kernel/memory-fs.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Dirent, DirentSink, EntryOut, RequestContext } from '../../src/kernel/ops.js';

const ctx = (uid = 0): RequestContext => ({ unique: asUnique(2n), opcode: 0, nodeid: ROOT_INO, uid, gid: uid, pid: 1, signal: new AbortController().signal, log: silentLogger() });
const errno = (n: number) => (e: unknown) => e instanceof FsError && e.errno === n;

class SmallSink implements DirentSink {
  readonly got: { d: Dirent; e: EntryOut | undefined }[] = [];
  constructor(readonly plus: boolean, readonly room: number) {}
  add(d: Dirent, e?: EntryOut): boolean {
    if (this.got.length >= this.room) return false;
    this.got.push({ d, e });
    return true;
  }
}

describe('MemoryFs', () => {
  test('lookup counts and forget free an unlinked node', async () => {
    const fs = new MemoryFs();
    fs.addFile('f', Buffer.from('x'));
    const e = await fs.lookup(ctx(), ROOT_INO, 'f');
    await fs.lookup(ctx(), ROOT_INO, 'f');
    assert.equal(fs.lookupCount(e.nodeid), 2n);
    const before = fs.nodeCount;
    await fs.unlink(ctx(), ROOT_INO, 'f');
    assert.equal(fs.nodeCount, before, 'still referenced by the kernel');
    fs.forget(e.nodeid, 2n);
    assert.equal(fs.nodeCount, before - 1);
    await assert.rejects(fs.lookup(ctx(), ROOT_INO, 'f'), errno(Errno.ENOENT));
    await assert.rejects(fs.lookup(ctx(), ROOT_INO, 'x'.repeat(256)), errno(Errno.ENAMETOOLONG));
  });

  test('readdir paging with 3 entries per call lists 10,000 names exactly once; plus counts only accepted entries', async () => {
    const fs = new MemoryFs();
    fs.addDir('d');
    for (let i = 0; i < 10_000; i++) fs.addFile(`d/n${i}`, Buffer.alloc(0));
    const d = (await fs.lookup(ctx(), ROOT_INO, 'd')).nodeid;
    const seen: string[] = [];
    let offset = 0n;
    for (;;) {
      const sink = new SmallSink(true, 3);
      await fs.readdir(ctx(), d, asFh(0n), offset, sink);
      if (sink.got.length === 0) break;
      for (const g of sink.got) seen.push(g.d.name);
      offset = sink.got.at(-1)?.d.offset ?? offset;
      if (seen.length === 9) {
        await fs.unlink(ctx(), d, 'n20'); // concurrent change: later names keep their cookies
        fs.addFile('d/late', Buffer.alloc(0));
      }
    }
    const names = seen.filter((n) => n !== '.' && n !== '..');
    assert.equal(new Set(names).size, names.length, 'no name twice');
    assert.equal(names.length, 10_000, '10,000 - n20 + late');
    assert.ok(names.includes('late') && !names.includes('n20'));
    const n5 = (await fs.lookup(ctx(), d, 'n5')).nodeid;
    assert.equal(fs.lookupCount(n5), 2n, 'one reference from READDIRPLUS, one from lookup');
    // a refused entry takes no reference
    const refuse = new SmallSink(true, 2); // ".", ".." only
    await fs.readdir(ctx(), d, asFh(0n), 0n, refuse);
    assert.equal(fs.lookupCount(n5), 2n);
  });

  test('rename: plain, NOREPLACE, EXCHANGE and the errnos', async () => {
    const fs = new MemoryFs();
    fs.addFile('a', Buffer.from('A'));
    fs.addFile('b', Buffer.from('B'));
    fs.addDir('d');
    fs.addDir('d/sub');
    fs.addDir('full');
    fs.addFile('full/x', Buffer.from('x'));
    const c = ctx();
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', RENAME_NOREPLACE), errno(Errno.EEXIST));
    await fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'b', RENAME_EXCHANGE);
    const read = async (name: string): Promise<string> => {
      const ino = (await fs.lookup(c, ROOT_INO, name)).nodeid;
      const fh = (await fs.open(c, ino, 0)).fh;
      return (await fs.read(c, ino, fh, 0, 10)).toString();
    };
    assert.equal(await read('a'), 'B');
    assert.equal(await read('b'), 'A');
    const d = (await fs.lookup(c, ROOT_INO, 'd')).nodeid;
    const sub = (await fs.lookup(c, d, 'sub')).nodeid;
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', sub, 'loop', 0), errno(Errno.EINVAL));
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', ROOT_INO, 'full', 0), errno(Errno.ENOTEMPTY));
    await assert.rejects(fs.rename(c, ROOT_INO, 'd', ROOT_INO, 'a', 0), errno(Errno.ENOTDIR));
    await assert.rejects(fs.rename(c, ROOT_INO, 'a', ROOT_INO, 'd', 0), errno(Errno.EISDIR));
    await assert.rejects(fs.rename(c, ROOT_INO, 'nope', ROOT_INO, 'x', 0), errno(Errno.ENOENT));
    await fs.rename(c, ROOT_INO, 'a', d, 'moved', 0);
    assert.equal((await fs.getattr(c, d)).attr.nlink, 3, 'd has . and sub');
    await assert.rejects(fs.rmdir(c, ROOT_INO, 'd'), errno(Errno.ENOTEMPTY));
  });

  test('truncate grows with zeros and shrinks; a virtual 1 GiB file reads without holding 1 GiB', async () => {
    const fs = new MemoryFs();
    const gen = (off: number): number => (off * 7 + (off >>> 16)) & 0xff;
    fs.addFile('big', { size: 1024 ** 3, generator: gen });
    const c = ctx();
    const ino = (await fs.lookup(c, ROOT_INO, 'big')).nodeid;
    const fh = (await fs.open(c, ino, 0)).fh;
    for (const off of [0, 65535, 1024 ** 3 - 10, 123_456_789]) {
      const b = await fs.read(c, ino, fh, off, 100);
      assert.equal(b.length, Math.min(100, 1024 ** 3 - off));
      b.forEach((v, i) => assert.equal(v, gen(off + i)));
    }
    await fs.write(c, ino, fh, 100, Buffer.from('hello'));
    assert.equal((await fs.read(c, ino, fh, 98, 9)).subarray(2, 7).toString(), 'hello');
    assert.ok((await fs.getattr(c, ino)).attr.blocks! <= 256, 'one 64 KiB chunk materialised');
    await fs.setattr(c, ino, { valid: 0, size: 50 });
    assert.equal((await fs.read(c, ino, fh, 0, 1000)).length, 50);
    await fs.setattr(c, ino, { valid: 0, size: 200 });
    const grown = await fs.read(c, ino, fh, 0, 1000);
    assert.equal(grown.length, 200);
    assert.ok(grown.subarray(50).every((v) => v === 0), 'growth reads as zeros, not old bytes');
  });

  test('xattrs and access', async () => {
    const fs = new MemoryFs();
    fs.addFile('f', Buffer.alloc(0), 0o600);
    const c = ctx();
    const ino: Ino = (await fs.lookup(c, ROOT_INO, 'f')).nodeid;
    await fs.setxattr(c, ino, 'user.k', Buffer.from('v'), 0);
    assert.equal((await fs.getxattr(c, ino, 'user.k')).toString(), 'v');
    assert.equal((await fs.listxattr(c, ino)).toString(), 'user.k\0');
    await assert.rejects(fs.setxattr(c, ino, 'user.k', Buffer.from('w'), 1), errno(Errno.EEXIST));
    await fs.removexattr(c, ino, 'user.k');
    await assert.rejects(fs.getxattr(c, ino, 'user.k'), errno(Errno.ENODATA));
    await fs.access(c, ino, W_OK);
    await assert.rejects(fs.access(ctx(1000), ino, W_OK), errno(Errno.EACCES));
    await assert.rejects(fs.getattr(c, asIno(999n)), errno(Errno.ESTALE));
  });
});
