// Wire codec tests: annotated byte fixtures per opcode (one field per line), truncated and
// oversized inputs, and the encoders' layouts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { asIno, asFh } from '../../src/base/ids.js';
import * as abi from '../../src/kernel/abi.js';
import { ProtocolError } from '../../src/kernel/codec/cursor.js';
import * as d from '../../src/kernel/codec/decode.js';
import { DirentPacker } from '../../src/kernel/codec/dirents.js';
import { encodeAttrOut, encodeEntryOut, encodeInitOut, encodeOpenOut } from '../../src/kernel/codec/encode.js';
import { encodeNotifyInvalEntry, encodeNotifyInvalInode } from '../../src/kernel/codec/notify.js';
import { decodeRequest as decodeDispatched, type DecodedRequest } from '../../src/kernel/session/dispatch.js';
import { hex, le } from '../support/hex.js';

const opts = { minor: 45, setxattrExt: false };

/** The 40-byte fuse_in_header, annotated. */
function header(len: number, opcode: number, unique: number, nodeid: number): string {
  return `
    ${le(len, 4)}               # in_header.len
    ${le(opcode, 4)}            # in_header.opcode
    ${le(unique, 8)}            # in_header.unique
    ${le(nodeid, 8)}            # in_header.nodeid
    e8030000                    # in_header.uid = 1000
    e9030000                    # in_header.gid = 1001
    39300000                    # in_header.pid = 12345
    0000                        # in_header.total_extlen
    0000                        # in_header.padding
  `;
}

/** Decodes one whole request the way the session does (dispatch.ts picks the decoder). */
function decodeRequest(buf: Buffer): DecodedRequest {
  return decodeDispatched(buf, d.decodeInHeader(buf), opts);
}

/** Decodes the arguments of one whole request with the struct decoder its opcode uses. */
function args<T>(buf: Buffer, decode: d.BodyDecoder<T>): T {
  return d.decodeArgs(buf, d.decodeInHeader(buf), opts, decode);
}

describe('decode: header', () => {
  test('fields', () => {
    const h = d.decodeInHeader(hex(header(40, abi.FUSE_STATFS, 0x1234, 1)));
    assert.deepEqual(h, { len: 40, opcode: 17, unique: 0x1234n, nodeid: 1n, uid: 1000, gid: 1001, pid: 12345, totalExtlen: 0 });
  });
  test('truncated header is a ProtocolError', () => {
    const full = hex(header(40, abi.FUSE_STATFS, 2, 1));
    for (const n of [0, 1, 16, 39]) assert.throws(() => d.decodeInHeader(full.subarray(0, n)), ProtocolError);
  });
  test('len larger than what was read is a ProtocolError', () => {
    assert.throws(() => d.decodeInHeader(hex(header(41, abi.FUSE_STATFS, 2, 1))), /does not match/);
  });
});

describe('decode: per opcode', () => {
  test('INIT with flags2 (INIT_EXT)', () => {
    const b = hex(`${header(104, abi.FUSE_INIT, 2, 0)}
      07000000      # init_in.major = 7
      2d000000      # init_in.minor = 45
      00000200      # init_in.max_readahead = 131072
      fbffff73      # init_in.flags = 0x73fffffb (INIT_EXT set)
      fd050000      # init_in.flags2 = 0x5fd
      ${'00'.repeat(44)} # init_in.unused[11]
    `);
    const r = args(b, d.initIn);
    assert.equal(r.major, 7);
    assert.equal(r.minor, 45);
    assert.equal(r.maxReadahead, 131072);
    assert.equal(r.flags, 0x73fffffbn | (0x5fdn << 32n));
    assert.ok((r.flags & abi.FUSE_MAX_PAGES) !== 0n);
  });

  test('LOOKUP', () => {
    const b = hex(`${header(44, abi.FUSE_LOOKUP, 4, 1)}
      666f6f00      # name "foo" NUL
    `);
    assert.deepEqual(args(b, d.nameIn), { name: 'foo' });
  });

  test('LOOKUP of a name without NUL is a ProtocolError', () => {
    const b = hex(`${header(43, abi.FUSE_LOOKUP, 4, 1)}
      666f6f        # name "foo", no NUL
    `);
    assert.throws(() => args(b, d.nameIn), /not NUL-terminated/);
  });

  test('LOOKUP of a non-UTF-8 name is EINVAL, not EIO', () => {
    const b = hex(`${header(43, abi.FUSE_LOOKUP, 4, 1)}
      ff fe 00      # invalid UTF-8, NUL
    `);
    assert.throws(() => args(b, d.nameIn), (e: unknown) => e instanceof FsError && e.errno === Errno.EINVAL);
  });

  test('FORGET', () => {
    const b = hex(`${header(48, abi.FUSE_FORGET, 6, 7)}
      0300000000000000  # forget_in.nlookup = 3
    `);
    assert.deepEqual(args(b, d.forgetIn), { nlookup: 3n });
  });

  test('BATCH_FORGET', () => {
    const b = hex(`${header(80, abi.FUSE_BATCH_FORGET, 8, 0)}
      02000000          # batch_forget_in.count = 2
      00000000          # batch_forget_in.dummy
      0500000000000000  # forget_one[0].nodeid = 5
      0100000000000000  # forget_one[0].nlookup = 1
      0600000000000000  # forget_one[1].nodeid = 6
      0200000000000000  # forget_one[1].nlookup = 2
    `);
    assert.deepEqual(args(b, d.batchForgetIn), { items: [{ nodeid: 5n, nlookup: 1n }, { nodeid: 6n, nlookup: 2n }] });
  });

  test('BATCH_FORGET with a count larger than the request is refused', () => {
    const b = hex(`${header(64, abi.FUSE_BATCH_FORGET, 8, 0)}
      ffff0000          # batch_forget_in.count = 65535 (lies)
      00000000          # batch_forget_in.dummy
      0500000000000000  # forget_one[0].nodeid
      0100000000000000  # forget_one[0].nlookup
    `);
    assert.throws(() => args(b, d.batchForgetIn), /exceeds/);
  });

  test('GETATTR with fh', () => {
    const b = hex(`${header(56, abi.FUSE_GETATTR, 10, 9)}
      01000000          # getattr_in.getattr_flags = FUSE_GETATTR_FH
      00000000          # getattr_in.dummy
      2a00000000000000  # getattr_in.fh = 42
    `);
    assert.deepEqual(args(b, d.getattrIn), { getattrFlags: 1, fh: 42n });
  });

  test('SETATTR (size + mtime)', () => {
    const b = hex(`${header(128, abi.FUSE_SETATTR, 12, 9)}
      28000000          # setattr_in.valid = FATTR_SIZE|FATTR_MTIME
      00000000          # setattr_in.padding
      0000000000000000  # setattr_in.fh
      0010000000000000  # setattr_in.size = 4096
      0000000000000000  # setattr_in.lock_owner
      0000000000000000  # setattr_in.atime
      d2029649 00000000 # setattr_in.mtime = 1234567890
      0000000000000000  # setattr_in.ctime
      00000000          # setattr_in.atimensec
      40420f00          # setattr_in.mtimensec = 1000000
      00000000          # setattr_in.ctimensec
      a4810000          # setattr_in.mode = 0100644
      00000000          # setattr_in.unused4
      00000000          # setattr_in.uid
      00000000          # setattr_in.gid
      00000000          # setattr_in.unused5
    `);
    const r = args(b, d.setattrWire);
    assert.equal(r.valid, abi.FATTR_SIZE | abi.FATTR_MTIME);
    assert.equal(r.size, 4096n);
    assert.equal(r.mtime, 1234567890n);
    assert.equal(r.mtimensec, 1_000_000);
    assert.equal(r.mode, 0o100644);
    // setattrIn keeps only what FATTR_* says is valid, times in epoch ms.
    assert.deepEqual(d.setattrIn(r), { valid: abi.FATTR_SIZE | abi.FATTR_MTIME, size: 4096, mtime: 1234567890001 });
  });

  test('READ', () => {
    const b = hex(`${header(80, abi.FUSE_READ, 14, 9)}
      0300000000000000  # read_in.fh = 3
      0000100000000000  # read_in.offset = 1 MiB
      00000200          # read_in.size = 128 KiB
      00000000          # read_in.read_flags
      0000000000000000  # read_in.lock_owner
      02800000          # read_in.flags = O_RDONLY|O_LARGEFILE
      00000000          # read_in.padding
    `);
    assert.deepEqual(args(b, d.readIn), { fh: 3n, offset: 1048576n, size: 131072, readFlags: 0, lockOwner: 0n, flags: 0x8002 });
  });

  test('WRITE carries its data as a view', () => {
    const b = hex(`${header(85, abi.FUSE_WRITE, 16, 9)}
      0300000000000000  # write_in.fh = 3
      0a00000000000000  # write_in.offset = 10
      05000000          # write_in.size = 5
      00000000          # write_in.write_flags
      0000000000000000  # write_in.lock_owner
      01000000          # write_in.flags = O_WRONLY
      00000000          # write_in.padding
      68656c6c6f        # data "hello"
    `);
    const r = args(b, d.writeIn);
    assert.equal(r.offset, 10n);
    assert.equal(r.data.toString(), 'hello');
  });

  test('WRITE whose size exceeds the request is refused', () => {
    const b = hex(`${header(82, abi.FUSE_WRITE, 16, 9)}
      0300000000000000  # write_in.fh
      0000000000000000  # write_in.offset
      00100000          # write_in.size = 4096 (only 2 bytes follow)
      00000000          # write_in.write_flags
      0000000000000000  # write_in.lock_owner
      00000000          # write_in.flags
      00000000          # write_in.padding
      6869              # data "hi"
    `);
    assert.throws(() => args(b, d.writeIn), ProtocolError);
  });

  test('RENAME2 with RENAME_NOREPLACE', () => {
    const b = hex(`${header(60, abi.FUSE_RENAME2, 18, 1)}
      0500000000000000  # rename2_in.newdir = 5
      01000000          # rename2_in.flags = RENAME_NOREPLACE
      00000000          # rename2_in.padding
      6100              # old name "a"
      6200              # new name "b"
    `);
    assert.deepEqual(args(b, d.rename2In), { newdir: 5n, flags: abi.RENAME_NOREPLACE, name: 'a', newName: 'b' });
  });

  test('SYMLINK: name first, then target', () => {
    const b = hex(`${header(50, abi.FUSE_SYMLINK, 20, 1)}
      6c6e6b00          # name "lnk"
      2f746d7000        # target "/tmp"
      00                # (trailing byte tolerated)
    `);
    assert.deepEqual(args(b, d.symlinkIn), { name: 'lnk', target: '/tmp' });
  });

  test('CREATE', () => {
    const b = hex(`${header(58, abi.FUSE_CREATE, 22, 1)}
      41000000          # create_in.flags = O_CREAT|O_WRONLY
      a4810000          # create_in.mode = 0100644
      12000000          # create_in.umask = 022
      00000000          # create_in.open_flags
      6600              # name "f"
    `);
    assert.deepEqual(args(b, d.createIn), { flags: 0x41, mode: 0o100644, umask: 0o22, openFlags: 0, name: 'f' });
  });

  test('INTERRUPT', () => {
    const b = hex(`${header(48, abi.FUSE_INTERRUPT, 0x0b, 0)}
      0a00000000000000  # interrupt_in.unique = 10 (header.unique = 10|1)
    `);
    assert.deepEqual(args(b, d.interruptIn), { target: 10n });
  });

  test('RELEASE, FLUSH, FSYNC', () => {
    const rel = hex(`${header(64, abi.FUSE_RELEASE, 24, 9)}
      0300000000000000  # release_in.fh = 3
      02800000          # release_in.flags
      01000000          # release_in.release_flags = FUSE_RELEASE_FLUSH
      0700000000000000  # release_in.lock_owner = 7
    `);
    assert.deepEqual(args(rel, d.releaseIn), { fh: 3n, flags: 0x8002, releaseFlags: 1, lockOwner: 7n });
    const flush = hex(`${header(64, abi.FUSE_FLUSH, 26, 9)}
      0300000000000000  # flush_in.fh = 3
      00000000          # flush_in.unused
      00000000          # flush_in.padding
      0700000000000000  # flush_in.lock_owner = 7
    `);
    assert.deepEqual(args(flush, d.flushIn), { fh: 3n, lockOwner: 7n });
    const fsync = hex(`${header(56, abi.FUSE_FSYNC, 28, 9)}
      0300000000000000  # fsync_in.fh = 3
      01000000          # fsync_in.fsync_flags = FDATASYNC
      00000000          # fsync_in.padding
    `);
    assert.deepEqual(args(fsync, d.fsyncIn), { fh: 3n, fsyncFlags: 1 });
  });

  test('GETXATTR, MKDIR', () => {
    const gx = hex(`${header(55, abi.FUSE_GETXATTR, 30, 9)}
      00000000          # getxattr_in.size = 0 (asks for the size)
      00000000          # getxattr_in.padding
      757365722e6100    # name "user.a"
    `);
    assert.deepEqual(args(gx, d.getxattrIn), { size: 0, name: 'user.a' });
    const md = hex(`${header(52, abi.FUSE_MKDIR, 32, 1)}
      ed410000          # mkdir_in.mode = 040755
      12000000          # mkdir_in.umask = 022
      6400              # name "d"
      0000              # (padding)
    `);
    assert.deepEqual(args(md, d.mkdirIn), { mode: 0o40755, umask: 0o22, name: 'd' });
  });

  test('an unknown opcode decodes to a call (answered ENOSYS by dispatch), its arguments unread', () => {
    const r = decodeRequest(hex(header(40, 9999, 34, 1)));
    assert.equal(r.kind, 'call');
  });

  test('every known opcode with a truncated body is a ProtocolError, never a crash', () => {
    const withBody = [abi.FUSE_LOOKUP, abi.FUSE_FORGET, abi.FUSE_GETATTR, abi.FUSE_SETATTR, abi.FUSE_MKNOD, abi.FUSE_MKDIR,
      abi.FUSE_RENAME, abi.FUSE_RENAME2, abi.FUSE_LINK, abi.FUSE_OPEN, abi.FUSE_READ, abi.FUSE_WRITE, abi.FUSE_RELEASE,
      abi.FUSE_FSYNC, abi.FUSE_SETXATTR, abi.FUSE_GETXATTR, abi.FUSE_LISTXATTR, abi.FUSE_FLUSH, abi.FUSE_INIT,
      abi.FUSE_OPENDIR, abi.FUSE_READDIR, abi.FUSE_RELEASEDIR, abi.FUSE_FSYNCDIR, abi.FUSE_ACCESS, abi.FUSE_CREATE,
      abi.FUSE_INTERRUPT, abi.FUSE_BATCH_FORGET, abi.FUSE_FALLOCATE, abi.FUSE_READDIRPLUS, abi.FUSE_LSEEK,
      abi.FUSE_SYMLINK, abi.FUSE_UNLINK, abi.FUSE_RMDIR, abi.FUSE_REMOVEXATTR];
    for (const opcode of withBody) {
      for (const extra of [0, 3]) {
        const b = Buffer.concat([hex(header(40 + extra, opcode, 36, 1)), Buffer.alloc(extra, 0x41)]);
        assert.throws(() => decodeRequest(b), ProtocolError, `opcode ${abi.opcodeName(opcode)} with ${extra} body bytes`);
      }
    }
  });

  test('oversized input: extension length past the request is refused', () => {
    const b = hex(`${header(40, abi.FUSE_STATFS, 38, 1)}`);
    b.writeUInt16LE(4, 36); // total_extlen = 32 bytes, but there are none
    assert.throws(() => decodeRequest(b), /extension length/);
  });
});

describe('encode', () => {
  const attr = {
    ino: asIno(5n), size: 1000, atimeMs: 1_000_500, mtimeMs: 2_000_000, ctimeMs: 3_000_000.25,
    mode: 0o100644, nlink: 1, uid: 1000, gid: 1001,
  };

  test('fuse_entry_out layout', () => {
    const b = encodeEntryOut({ nodeid: asIno(5n), generation: 1n, entryTtlMs: 1500, attrTtlMs: 2000, attr });
    assert.equal(b.length, abi.FUSE_ENTRY_OUT_SIZE);
    assert.deepEqual(b.subarray(0, 40), hex(`
      0500000000000000  # nodeid = 5
      0100000000000000  # generation = 1
      0100000000000000  # entry_valid = 1 s
      0200000000000000  # attr_valid = 2 s
      0065cd1d          # entry_valid_nsec = 500000000
      00000000          # attr_valid_nsec = 0
    `));
    assert.deepEqual(b.subarray(40, 128), hex(`
      0500000000000000  # attr.ino = 5
      e803000000000000  # attr.size = 1000
      0200000000000000  # attr.blocks = ceil(1000/512) = 2
      e803000000000000  # attr.atime = 1000 s
      d007000000000000  # attr.mtime = 2000 s
      b80b000000000000  # attr.ctime = 3000 s
      0065cd1d          # attr.atimensec = 500000000
      00000000          # attr.mtimensec
      90d00300          # attr.ctimensec = 250000
      a4810000          # attr.mode = 0100644
      01000000          # attr.nlink = 1
      e8030000          # attr.uid = 1000
      e9030000          # attr.gid = 1001
      00000000          # attr.rdev
      00100000          # attr.blksize = 4096
      00000000          # attr.flags
    `));
  });

  test('fuse_attr_out and fuse_open_out', () => {
    const a = encodeAttrOut({ attrTtlMs: 1000, attr });
    assert.equal(a.length, abi.FUSE_ATTR_OUT_SIZE);
    assert.equal(a.readBigUInt64LE(0), 1n);
    assert.equal(a.readBigUInt64LE(16), 5n);
    assert.deepEqual(encodeOpenOut({ fh: asFh(9n), openFlags: abi.FOPEN_KEEP_CACHE }), hex(`
      0900000000000000  # fh = 9
      02000000          # open_flags = FOPEN_KEEP_CACHE
      00000000          # backing_id
    `));
  });

  test('fuse_init_out splits flags into flags and flags2', () => {
    const b = encodeInitOut({ major: 7, minor: 45, maxReadahead: 131072, flags: abi.FUSE_ASYNC_READ | abi.FUSE_INIT_EXT | abi.FUSE_HAS_EXPIRE_ONLY, maxBackground: 64, congestionThreshold: 48, maxWrite: 61440, timeGran: 1, maxPages: 256 });
    assert.deepEqual(b, hex(`
      07000000          # major
      2d000000          # minor = 45
      00000200          # max_readahead = 131072
      01000040          # flags = ASYNC_READ | INIT_EXT
      4000              # max_background = 64
      3000              # congestion_threshold = 48
      00f00000          # max_write = 61440
      01000000          # time_gran = 1
      0001              # max_pages = 256
      0000              # map_alignment
      08000000          # flags2 = HAS_EXPIRE_ONLY >> 32
      ${'00'.repeat(28)} # max_stack_depth, request_timeout, unused
    `));
  });

  test('dirents are 8-byte aligned and the packer refuses what does not fit', () => {
    const p = new DirentPacker(64, false);
    // 24 + 1 → a 32-byte record
    assert.equal(p.add({ name: 'a', ino: asIno(2n), type: abi.DT.REG, offset: 1n }), true);
    // 24 + 9 → a 40-byte record: 32 + 40 = 72 > 64, so it must be refused
    assert.equal(p.add({ name: 'abcdefghi', ino: asIno(3n), type: abi.DT.DIR, offset: 2n }), false);
    const out = p.finish();
    assert.equal(p.count, 1);
    assert.deepEqual(out, hex(`
      0200000000000000  # dirent.ino = 2
      0100000000000000  # dirent.off = 1
      01000000          # dirent.namelen = 1
      08000000          # dirent.type = DT_REG
      61                # name "a"
      00000000000000    # padding to 8
    `));
  });

  test('direntplus records carry the entry and are 8-byte aligned', () => {
    const p = new DirentPacker(4096, true);
    assert.ok(p.add({ name: '.', ino: asIno(1n), type: abi.DT.DIR, offset: 1n }));
    assert.ok(p.add({ name: 'file', ino: asIno(7n), type: abi.DT.REG, offset: 2n }, { nodeid: asIno(7n), generation: 0n, entryTtlMs: 1000, attrTtlMs: 1000, attr: { ...attr, ino: asIno(7n) } }));
    const out = p.finish();
    assert.equal(out.length, 160 + 160);
    assert.equal(out.readBigUInt64LE(0), 0n, '"." has nodeid 0: no lookup reference');
    assert.equal(out.readBigUInt64LE(160), 7n, 'entry_out.nodeid');
    assert.equal(out.readBigUInt64LE(160 + 128), 7n, 'dirent.ino');
    assert.equal(out.subarray(160 + 152, 160 + 156).toString(), 'file');
  });

  test('notify INVAL_ENTRY and INVAL_INODE', () => {
    const [h, b] = encodeNotifyInvalEntry(asIno(1n), 'f0');
    assert.deepEqual(Buffer.concat([h!, b!]), hex(`
      23000000          # out_header.len = 35
      03000000          # out_header.error = FUSE_NOTIFY_INVAL_ENTRY
      0000000000000000  # out_header.unique = 0
      0100000000000000  # inval_entry_out.parent = 1
      02000000          # inval_entry_out.namelen = 2
      00000000          # inval_entry_out.flags
      663000            # name "f0" NUL
    `));
    const [h2, b2] = encodeNotifyInvalInode(asIno(9n), -1n, 0n);
    assert.deepEqual(Buffer.concat([h2!, b2!]), hex(`
      28000000          # out_header.len = 40
      02000000          # out_header.error = FUSE_NOTIFY_INVAL_INODE
      0000000000000000  # out_header.unique
      0900000000000000  # inval_inode_out.ino = 9
      ffffffffffffffff  # inval_inode_out.off = -1 (attributes only)
      0000000000000000  # inval_inode_out.len = 0
    `));
  });
});
