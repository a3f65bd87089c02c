// The dispatch table and the session's one error policy, driven through a FuseSession over an
// in-memory device (no mount): which opcode reaches which FuseOps method, ENOSYS for a missing
// handler (logged once per opcode), EIO for anything unknown (logged once, with its stack),
// an FsError's own errno, and reply-once when a handler result races INTERRUPT or unmount.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred } from '../../src/base/async.js';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import type { Ino } from '../../src/base/ids.js';
import * as abi from '../../src/kernel/abi.js';
import type { AttrOut, FuseOps, RequestContext } from '../../src/kernel/ops.js';
import { ROUTES } from '../../src/kernel/session/dispatch.js';
import { ReadBuffers } from '../../src/kernel/device.js';
import { getattrBody, initRequest, interruptRequest, nameBody, request, startSession, writeBody, type LogRecord } from './fake-device.js';

/**
 * Which opcodes each FuseOps method answers. A Record over keyof FuseOps: adding a method to
 * FuseOps does not compile until it is listed here, and the tests below then demand its route.
 */
const HANDLER_OPCODES: Record<keyof FuseOps, readonly number[]> = {
  init: [abi.FUSE_INIT],
  destroy: [abi.FUSE_DESTROY],
  forget: [abi.FUSE_FORGET, abi.FUSE_BATCH_FORGET],
  lookup: [abi.FUSE_LOOKUP],
  getattr: [abi.FUSE_GETATTR],
  setattr: [abi.FUSE_SETATTR],
  readlink: [abi.FUSE_READLINK],
  symlink: [abi.FUSE_SYMLINK],
  mknod: [abi.FUSE_MKNOD],
  mkdir: [abi.FUSE_MKDIR],
  unlink: [abi.FUSE_UNLINK],
  rmdir: [abi.FUSE_RMDIR],
  rename: [abi.FUSE_RENAME, abi.FUSE_RENAME2],
  link: [abi.FUSE_LINK],
  open: [abi.FUSE_OPEN],
  read: [abi.FUSE_READ],
  write: [abi.FUSE_WRITE],
  statfs: [abi.FUSE_STATFS],
  release: [abi.FUSE_RELEASE],
  fsync: [abi.FUSE_FSYNC],
  flush: [abi.FUSE_FLUSH],
  opendir: [abi.FUSE_OPENDIR],
  readdir: [abi.FUSE_READDIR, abi.FUSE_READDIRPLUS],
  releasedir: [abi.FUSE_RELEASEDIR],
  fsyncdir: [abi.FUSE_FSYNCDIR],
  access: [abi.FUSE_ACCESS],
  create: [abi.FUSE_CREATE],
  fallocate: [abi.FUSE_FALLOCATE],
  getxattr: [abi.FUSE_GETXATTR],
  listxattr: [abi.FUSE_LISTXATTR],
  setxattr: [abi.FUSE_SETXATTR],
  removexattr: [abi.FUSE_REMOVEXATTR],
  lseek: [abi.FUSE_LSEEK],
};

/** Handled by the session itself (state changes, no handler call or no reply). */
const CONTROL = new Set([abi.FUSE_INIT, abi.FUSE_INTERRUPT, abi.FUSE_FORGET, abi.FUSE_BATCH_FORGET]);

/** Opcodes of abi.ts we knowingly answer ENOSYS (no FuseOps method for them yet). */
const UNSUPPORTED = new Set([
  abi.FUSE_GETLK, abi.FUSE_SETLK, abi.FUSE_SETLKW, abi.FUSE_BMAP, abi.FUSE_IOCTL, abi.FUSE_POLL, abi.FUSE_NOTIFY_REPLY,
  abi.FUSE_COPY_FILE_RANGE, abi.FUSE_SETUPMAPPING, abi.FUSE_REMOVEMAPPING, abi.FUSE_SYNCFS, abi.FUSE_TMPFILE,
  abi.FUSE_STATX, abi.FUSE_COPY_FILE_RANGE_64,
]);

const attr = (ino: Ino): AttrOut => ({ attrTtlMs: 1000, attr: { ino, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, mode: abi.S_IFREG | 0o644, nlink: 1, uid: 0, gid: 0 } });

/** Lets every settled handler promise reach its reply (bounded, no sleep). */
async function settle(session: { settled(ms: number): Promise<boolean> }): Promise<void> {
  assert.ok(await session.settled(2000), 'handler promises settle');
}

const at = (records: LogRecord[], level: number): LogRecord[] => records.filter((r) => r.level === level);

describe('dispatch table', () => {
  test('every opcode a FuseOps method answers has a dispatch entry calling that method', () => {
    for (const [handler, opcodes] of Object.entries(HANDLER_OPCODES)) {
      for (const opcode of opcodes) {
        if (CONTROL.has(opcode)) continue;
        const route = ROUTES.get(opcode);
        assert.ok(route, `${abi.opcodeName(opcode)} (${handler}) has a dispatch entry`);
        if (handler === 'destroy') assert.equal(route.handler, undefined, 'DESTROY is answered by the table; FuseServer calls destroy');
        else assert.equal(route.handler, handler, `${abi.opcodeName(opcode)} calls ${handler}`);
      }
    }
  });

  test('every dispatch entry is an opcode of abi.ts that gets a reply, listed under its handler', () => {
    for (const [opcode, route] of ROUTES) {
      const info = abi.OPCODES.get(opcode);
      assert.ok(info, `opcode ${opcode} is in abi.OPCODES`);
      assert.equal(info.noReply, false, `${info.name} gets a reply`);
      const handler = route.handler ?? 'destroy';
      assert.ok(HANDLER_OPCODES[handler].includes(opcode), `${info.name} is listed under ${handler}`);
    }
  });

  test('every opcode of abi.ts is routed, a control opcode, or knowingly unsupported', () => {
    for (const [opcode, info] of abi.OPCODES) {
      const places = [ROUTES.has(opcode), CONTROL.has(opcode), UNSUPPORTED.has(opcode)].filter(Boolean).length;
      assert.equal(places, 1, `${info.name} is in exactly one of routes / control / unsupported`);
    }
  });
});

describe('the session error policy', () => {
  test('an op the filesystem lacks answers ENOSYS, logged once per opcode', async () => {
    const { session, device, records } = startSession({ ops: {} });
    device.send(request(abi.FUSE_LOOKUP, 2, 1, nameBody('a')));
    device.send(request(abi.FUSE_LOOKUP, 4, 1, nameBody('b')));
    device.send(request(abi.FUSE_MKDIR, 6, 1, Buffer.concat([Buffer.alloc(8), nameBody('d')])));
    device.send(request(9999, 8, 1));
    device.send(request(9999, 10, 1));
    await settle(session);
    for (const u of [2, 4, 6, 8, 10]) assert.deepEqual(device.repliesTo(u).map((r) => r.error), [-Errno.ENOSYS], `request ${u}`);
    const logged = records.filter((r) => r.msg === 'operation not implemented; answering ENOSYS').map((r) => r.opcode);
    assert.deepEqual(logged, ['LOOKUP', 'MKDIR', 'OPCODE_9999']);
  });

  test('without a handler, STATFS answers neutral figures and RELEASE succeeds', async () => {
    const { session, device } = startSession({ ops: {} });
    device.send(request(abi.FUSE_STATFS, 2, 1));
    device.send(request(abi.FUSE_RELEASE, 4, 5, Buffer.alloc(24)));
    await settle(session);
    const [statfs] = device.repliesTo(2);
    assert.equal(statfs?.error, 0);
    assert.equal(statfs?.payload.length, abi.FUSE_KSTATFS_SIZE);
    assert.equal(statfs?.payload.readUInt32LE(40), 4096, 'bsize');
    assert.deepEqual(device.repliesTo(4).map((r) => [r.error, r.payload.length]), [[0, 0]]);
  });

  test('a handler throwing a plain Error answers EIO and is logged once, with its stack', async () => {
    const { session, device, records } = startSession({
      ops: {
        getattr: async () => {
          throw new Error('boom in getattr');
        },
      },
    });
    device.send(request(abi.FUSE_GETATTR, 2, 5, getattrBody()));
    await settle(session);
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.EIO]);
    const errors = at(records, 50);
    assert.equal(errors.length, 1, 'one error line');
    assert.match(errors[0]?.err?.stack ?? '', /boom in getattr\n\s+at /);
    assert.equal(at(records, 40).length, 0, 'and nothing at warn');
  });

  test('a Node system error is EIO here too: the bridge, not the session, maps error codes', async () => {
    const { session, device, records } = startSession({
      ops: {
        lookup: async () => {
          throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
        },
      },
    });
    device.send(request(abi.FUSE_LOOKUP, 2, 1, nameBody('x')));
    await settle(session);
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.EIO]);
    assert.equal(at(records, 50).length, 1);
  });

  test('an FsError answers its errno, logged only when its level is warn or error', async () => {
    const { session, device, records } = startSession({
      ops: {
        lookup: async (_ctx, _parent, name) => {
          throw name === 'loud' ? new FsError(Errno.EACCES, 'denied loudly', { level: 'warn' }) : new FsError(Errno.ENOENT);
        },
      },
    });
    device.send(request(abi.FUSE_LOOKUP, 2, 1, nameBody('quiet')));
    device.send(request(abi.FUSE_LOOKUP, 4, 1, nameBody('loud')));
    await settle(session);
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.ENOENT]);
    assert.deepEqual(device.repliesTo(4).map((r) => r.error), [-Errno.EACCES]);
    assert.deepEqual(at(records, 40).map((r) => r.msg), ['denied loudly']);
    assert.equal(at(records, 50).length, 0);
  });

  test('a malformed request is answered with its ProtocolError errno (EIO), a bad name with EINVAL', async () => {
    const { session, device, records } = startSession({ ops: { lookup: async () => Promise.reject(new Error('not reached')) } });
    device.send(request(abi.FUSE_GETATTR, 2, 5, Buffer.alloc(3))); // fuse_getattr_in truncated
    device.send(request(abi.FUSE_LOOKUP, 4, 1, Buffer.from([0xff, 0xfe, 0]))); // not UTF-8
    await settle(session);
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.EIO]);
    assert.deepEqual(device.repliesTo(4).map((r) => r.error), [-Errno.EINVAL]);
    assert.equal(records.filter((r) => r.msg === 'malformed fuse request').length, 2);
    assert.equal(at(records, 50).length, 0);
  });

  test('GETXATTR larger than the caller asked for is ERANGE (an encoder error, same policy)', async () => {
    const { session, device } = startSession({ ops: { getxattr: async () => Buffer.from('0123456789') } });
    const body = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), nameBody('user.a')]); // size 4
    device.send(request(abi.FUSE_GETXATTR, 2, 5, body));
    await settle(session);
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.ERANGE]);
  });

  test('a request before INIT is answered EIO; INIT then answers fuse_init_out', async () => {
    const { session, device } = startSession({ ops: { getattr: async (_ctx, ino) => attr(ino) } }, { init: false });
    device.send(request(abi.FUSE_GETATTR, 2, 1, getattrBody()));
    assert.deepEqual(device.repliesTo(2).map((r) => r.error), [-Errno.EIO]);
    device.send(initRequest(3));
    assert.deepEqual(device.repliesTo(3).map((r) => [r.error, r.payload.length]), [[0, abi.FUSE_INIT_OUT_SIZE]]);
    device.send(request(abi.FUSE_GETATTR, 4, 1, getattrBody()));
    await settle(session);
    assert.deepEqual(device.repliesTo(4).map((r) => r.error), [0]);
  });
});

describe('reply-once through the session', () => {
  function blockedGetattr() {
    const gate = new Deferred<void>();
    const seen: RequestContext[] = [];
    const ops: FuseOps = {
      getattr: async (ctx, ino) => {
        seen.push(ctx);
        await gate.promise;
        return attr(ino);
      },
    };
    return { gate, seen, ops };
  }

  test('INTERRUPT answers EINTR; the handler result that comes later is dropped', async () => {
    const { gate, seen, ops } = blockedGetattr();
    const { session, device } = startSession({ ops });
    device.send(request(abi.FUSE_GETATTR, 10, 5, getattrBody()));
    assert.equal(session.inFlightCount, 1);
    device.send(interruptRequest(11, 10));
    assert.deepEqual(device.repliesTo(10).map((r) => r.error), [-Errno.EINTR]);
    assert.equal(seen[0]?.signal.aborted, true);
    gate.resolve();
    await settle(session);
    assert.deepEqual(device.repliesTo(10).map((r) => r.error), [-Errno.EINTR], 'still one reply');
    assert.equal(device.repliesTo(11).length, 0, 'a matched INTERRUPT gets no reply');
    assert.equal(session.inFlightCount, 0);
  });

  test('result first: the INTERRUPT that follows is answered EAGAIN, the result stands', async () => {
    const { gate, ops } = blockedGetattr();
    const { session, device } = startSession({ ops });
    device.send(request(abi.FUSE_GETATTR, 10, 5, getattrBody()));
    gate.resolve();
    await settle(session);
    device.send(interruptRequest(11, 10));
    assert.deepEqual(device.repliesTo(10).map((r) => [r.error, r.payload.length]), [[0, abi.FUSE_ATTR_OUT_SIZE]]);
    assert.deepEqual(device.repliesTo(11).map((r) => r.error), [-Errno.EAGAIN]);
  });

  test('a handler failing after its request was interrupted is neither answered again nor logged', async () => {
    const gate = new Deferred<void>();
    const { session, device, records } = startSession({
      ops: {
        getattr: async () => {
          await gate.promise;
          throw new Error('late failure');
        },
      },
    });
    device.send(request(abi.FUSE_GETATTR, 10, 5, getattrBody()));
    device.send(interruptRequest(11, 10));
    gate.resolve();
    await settle(session);
    assert.deepEqual(device.repliesTo(10).map((r) => r.error), [-Errno.EINTR]);
    assert.equal(at(records, 50).length, 0);
  });

  test('unmount: abortAll answers once; the connection ending drops the rest without writing', async () => {
    const { gate, seen, ops } = blockedGetattr();
    const { session, device } = startSession({ ops });
    device.send(request(abi.FUSE_GETATTR, 10, 5, getattrBody()));
    session.abortAll(Errno.EIO);
    device.send(request(abi.FUSE_GETATTR, 12, 5, getattrBody()));
    const before = device.replies.length;
    device.end();
    assert.equal(device.replies.length, before, 'nothing is written after the end');
    assert.equal(session.isEnded, true);
    assert.equal((seen[1]?.signal.reason as { why?: string } | undefined)?.why, 'unmount');
    gate.resolve();
    await settle(session);
    assert.deepEqual(device.repliesTo(10).map((r) => r.error), [-Errno.EIO]);
    assert.equal(device.repliesTo(12).length, 0);
    assert.equal(session.inFlightCount, 0);
  });
});

describe('lent request buffers (the uvpipe reader)', () => {
  test('a lent buffer is given back once, after the handler settled, even when an INTERRUPT answered first', async () => {
    const gate = new Deferred<void>();
    const seen: Buffer[] = [];
    const { session, device } = startSession({
      ops: {
        write: async (_ctx, _ino, _fh, _offset, data) => {
          await gate.promise;
          seen.push(Buffer.from(data)); // the payload is still the request's when the handler reads it
          return data.length;
        },
      },
    });
    const payload = Buffer.alloc(70 * 1024, 7);
    let releases = 0;
    device.send(request(abi.FUSE_WRITE, 10, 5, writeBody(1, 0, payload)), () => releases++);
    device.send(interruptRequest(11, 10));
    assert.deepEqual(device.repliesTo(10).map((r) => r.error), [-Errno.EINTR]);
    assert.equal(releases, 0, 'answered, but the handler may still read the payload: not given back');
    gate.resolve();
    await settle(session);
    assert.equal(releases, 1, 'given back once the handler settled');
    assert.ok(seen[0]?.equals(payload));
  });

  test('a request answered without a handler (malformed, control) gives its buffer back at once', () => {
    const { device } = startSession({ ops: {} });
    let releases = 0;
    device.send(request(abi.FUSE_WRITE, 20, 5, Buffer.alloc(8)), () => releases++); // truncated write_in
    assert.deepEqual(device.repliesTo(20).map((r) => r.error), [-Errno.EIO]);
    device.send(interruptRequest(21, 99), () => releases++);
    assert.equal(releases, 2);
  });

  test('ReadBuffers: small requests are copied out and their buffer reused; large ones lent until released', () => {
    const rb = new ReadBuffers(1024, 1);
    const a = rb.next();
    a.fill(1, 0, 100);
    const small = rb.delivered(a, 100);
    assert.equal(small.release, undefined);
    assert.notEqual(small.data.buffer, a.buffer, 'a copy');
    assert.equal(rb.next(), a, 'the same buffer is read into again');
    a.fill(2);
    assert.equal(small.data[0], 1, 'the copy does not change when the buffer is read into again');
    // Large requests (over 64 KiB) are lent: needs a buffer that big.
    const big = new ReadBuffers(128 * 1024, 1);
    const b = big.next();
    const lent = big.delivered(b, 100 * 1024);
    assert.equal(lent.data.buffer, b.buffer, 'no copy');
    assert.equal(big.lent, 1);
    const c = big.next();
    assert.notEqual(c, b, 'a lent buffer is never read into: a fresh one while it is out');
    lent.release?.();
    lent.release?.();
    assert.equal(big.lent, 0, 'released once, whatever the calls');
    assert.equal(big.next(), b, 'given back: reused');
  });
});
