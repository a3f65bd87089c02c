// The dispatch table: for every opcode the session routes to the filesystem, one entry that
// says how to read its arguments, which FuseOps method answers it and how the answer goes on
// the wire (go-fuse's operationHandlers, typed). Adding an opcode is one entry here plus one
// FuseOps method (and its argument decoder in codec/decode.ts if its struct is new).
//
// Opcode names, minimum minors and the no-reply flag stay in abi.ts (the ABI as data, imported
// by everything and importing nothing); entries here are keyed by abi's FUSE_* constants and a
// test checks both tables agree. Control opcodes (INIT, INTERRUPT, FORGET, BATCH_FORGET) change
// session state rather than call a handler, so the session handles them and they are not here.
//
// Invariants:
// - `prepare` only decodes: it throws ProtocolError / FsError for a malformed request and never
//   calls the filesystem. The returned call runs the handler and encodes its result; everything
//   it throws (including encoding errors such as ERANGE) comes out as a rejection, never
//   synchronously, so the session has exactly one place that turns errors into replies.
// - A handler the filesystem does not define rejects with NotImplementedError (the session
//   answers ENOSYS), except where the entry says what to answer without one (`absent`).
// - Offsets and lengths reach handlers through toSafeNumber (EOVERFLOW past 2^53).
import { Errno } from '../../base/errno.js';
import { FsError } from '../../base/fs-error.js';
import { toSafeNumber, type Ino, type Unique } from '../../base/ids.js';
import * as abi from '../abi.js';
import type { Cursor } from '../codec/cursor.js';
import * as d from '../codec/decode.js';
import type { BodyDecoder, DecodeOptions, InHeader } from '../codec/decode.js';
import { DirentPacker } from '../codec/dirents.js';
import {
  encodeAttrOut,
  encodeCreateOut,
  encodeEntryOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeStatfsOut,
  encodeWriteOut,
  encodeXattrSizeOut,
} from '../codec/encode.js';
import type { FuseOps, RequestContext, StatfsOut } from '../ops.js';
import type { InitOffer } from './init.js';

/** The FuseOps methods that answer a request (init/destroy/forget are lifecycle, not routed). */
export type HandlerName = Exclude<keyof FuseOps, 'init' | 'destroy' | 'forget'>;

/** Thrown (as a rejection) when the filesystem does not define the handler an opcode needs. */
export class NotImplementedError extends Error {
  override readonly name = 'NotImplementedError';
}

/** A decoded request, ready to run: calls the handler and returns the reply payload. */
export type PreparedCall = (ops: FuseOps, ctx: RequestContext) => Promise<Buffer[]>;

export interface Route {
  readonly opcode: number;
  /** The FuseOps method that answers it; undefined when the table answers by itself (DESTROY). */
  readonly handler: HandlerName | undefined;
  /** Reads the arguments (throws ProtocolError/FsError); does not call the filesystem. */
  prepare(c: Cursor, opts: DecodeOptions): PreparedCall;
}

interface RouteSpec<K extends HandlerName, A, R> {
  handler: K;
  decode: BodyDecoder<A>;
  /** Calls the handler; `ops` is known to define it. */
  call: (ops: Required<Pick<FuseOps, K>>, ctx: RequestContext, args: A) => Promise<R>;
  /** The reply payload for the handler's result. */
  encode: (result: R, args: A) => Buffer[];
  /** What to answer when the filesystem lacks the handler (default: ENOSYS). */
  absent?: (args: A) => R;
}

function route<K extends HandlerName, A, R>(opcode: number, spec: RouteSpec<K, A, R>): Route {
  const run = async (ops: FuseOps, ctx: RequestContext, args: A): Promise<Buffer[]> => {
    let result: R;
    if (ops[spec.handler] !== undefined) {
      // The one cast of the table: the presence check above is what makes it true.
      result = await spec.call(ops as Required<Pick<FuseOps, K>>, ctx, args);
    } else if (spec.absent) {
      result = spec.absent(args);
    } else {
      throw new NotImplementedError(`${spec.handler} is not implemented`);
    }
    return spec.encode(result, args);
  };
  return {
    opcode,
    handler: spec.handler,
    prepare(c, opts) {
      const args = spec.decode(c, opts);
      return (ops, ctx) => run(ops, ctx, args);
    },
  };
}

const none = (): Buffer[] => [];

function xattrReply(value: Buffer, size: number): Buffer[] {
  if (size === 0) return [encodeXattrSizeOut(value.length)];
  if (value.length > size) throw new FsError(Errno.ERANGE);
  return [value];
}

/** STATFS without a handler: neutral figures, so `df` on the mount works. */
const NEUTRAL_STATFS: StatfsOut = { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };

/** READDIR and READDIRPLUS share fuse_read_in and the handler; `plus` picks the record layout. */
const readdir = (plus: boolean): RouteSpec<'readdir', ReturnType<typeof d.readIn>, DirentPacker> => ({
  handler: 'readdir',
  decode: d.readIn,
  call: async (ops, ctx, a) => {
    const packer = new DirentPacker(a.size, plus);
    await ops.readdir(ctx, ctx.nodeid, a.fh, a.offset, packer);
    return packer;
  },
  encode: (packer) => [packer.finish()],
});

const ROUTE_LIST: readonly Route[] = [
  route(abi.FUSE_LOOKUP, {
    handler: 'lookup',
    decode: d.nameIn,
    call: (ops, ctx, a) => ops.lookup(ctx, ctx.nodeid, a.name),
    encode: (e) => [encodeEntryOut(e)],
  }),
  route(abi.FUSE_GETATTR, {
    handler: 'getattr',
    decode: d.getattrIn,
    call: (ops, ctx, a) => ops.getattr(ctx, ctx.nodeid, (a.getattrFlags & abi.FUSE_GETATTR_FH) !== 0 ? a.fh : undefined),
    encode: (r) => [encodeAttrOut(r)],
  }),
  route(abi.FUSE_SETATTR, {
    handler: 'setattr',
    decode: d.setattrWire,
    call: (ops, ctx, a) => ops.setattr(ctx, ctx.nodeid, d.setattrIn(a)),
    encode: (r) => [encodeAttrOut(r)],
  }),
  route(abi.FUSE_READLINK, {
    handler: 'readlink',
    decode: d.noArgs,
    call: (ops, ctx) => ops.readlink(ctx, ctx.nodeid),
    encode: (target) => [Buffer.from(target, 'utf8')],
  }),
  route(abi.FUSE_SYMLINK, {
    handler: 'symlink',
    decode: d.symlinkIn,
    call: (ops, ctx, a) => ops.symlink(ctx, ctx.nodeid, a.name, a.target),
    encode: (e) => [encodeEntryOut(e)],
  }),
  route(abi.FUSE_MKNOD, {
    handler: 'mknod',
    decode: d.mknodIn,
    call: (ops, ctx, a) => ops.mknod(ctx, ctx.nodeid, a.name, a.mode, a.rdev, a.umask),
    encode: (e) => [encodeEntryOut(e)],
  }),
  route(abi.FUSE_MKDIR, {
    handler: 'mkdir',
    decode: d.mkdirIn,
    call: (ops, ctx, a) => ops.mkdir(ctx, ctx.nodeid, a.name, a.mode, a.umask),
    encode: (e) => [encodeEntryOut(e)],
  }),
  route(abi.FUSE_UNLINK, {
    handler: 'unlink',
    decode: d.nameIn,
    call: (ops, ctx, a) => ops.unlink(ctx, ctx.nodeid, a.name),
    encode: none,
  }),
  route(abi.FUSE_RMDIR, {
    handler: 'rmdir',
    decode: d.nameIn,
    call: (ops, ctx, a) => ops.rmdir(ctx, ctx.nodeid, a.name),
    encode: none,
  }),
  route(abi.FUSE_RENAME, {
    handler: 'rename',
    decode: d.renameIn,
    call: (ops, ctx, a) => ops.rename(ctx, ctx.nodeid, a.name, a.newdir, a.newName, a.flags),
    encode: none,
  }),
  route(abi.FUSE_LINK, {
    handler: 'link',
    decode: d.linkIn,
    call: (ops, ctx, a) => ops.link(ctx, a.oldnodeid, ctx.nodeid, a.name),
    encode: (e) => [encodeEntryOut(e)],
  }),
  route(abi.FUSE_OPEN, {
    handler: 'open',
    decode: d.openIn,
    call: (ops, ctx, a) => ops.open(ctx, ctx.nodeid, a.flags),
    encode: (o) => [encodeOpenOut(o)],
  }),
  route(abi.FUSE_READ, {
    handler: 'read',
    decode: d.readIn,
    call: (ops, ctx, a) => ops.read(ctx, ctx.nodeid, a.fh, toSafeNumber(a.offset, 'read offset'), a.size),
    // A handler returning more than asked for must not overrun the kernel's buffer.
    encode: (data, a) => [data.length > a.size ? data.subarray(0, a.size) : data],
  }),
  route(abi.FUSE_WRITE, {
    handler: 'write',
    decode: d.writeIn,
    call: (ops, ctx, a) => ops.write(ctx, ctx.nodeid, a.fh, toSafeNumber(a.offset, 'write offset'), a.data, a.writeFlags, a.flags),
    encode: (n) => [encodeWriteOut(n)],
  }),
  route(abi.FUSE_STATFS, {
    handler: 'statfs',
    decode: d.noArgs,
    call: (ops, ctx) => ops.statfs(ctx, ctx.nodeid),
    encode: (s) => [encodeStatfsOut(s)],
    absent: () => NEUTRAL_STATFS,
  }),
  route(abi.FUSE_RELEASE, {
    handler: 'release',
    decode: d.releaseIn,
    call: (ops, ctx, a) => ops.release(ctx, ctx.nodeid, a.fh, a.flags),
    encode: none,
    absent: () => undefined, // nothing to release: success
  }),
  route(abi.FUSE_FSYNC, {
    handler: 'fsync',
    decode: d.fsyncIn,
    call: (ops, ctx, a) => ops.fsync(ctx, ctx.nodeid, a.fh, (a.fsyncFlags & abi.FUSE_FSYNC_FDATASYNC) !== 0),
    encode: none,
  }),
  route(abi.FUSE_SETXATTR, {
    handler: 'setxattr',
    decode: d.setxattrIn,
    call: (ops, ctx, a) => ops.setxattr(ctx, ctx.nodeid, a.name, a.value, a.flags),
    encode: none,
  }),
  route(abi.FUSE_GETXATTR, {
    handler: 'getxattr',
    decode: d.getxattrIn,
    call: (ops, ctx, a) => ops.getxattr(ctx, ctx.nodeid, a.name, a.size),
    encode: (value, a) => xattrReply(value, a.size),
  }),
  route(abi.FUSE_LISTXATTR, {
    handler: 'listxattr',
    decode: d.listxattrIn,
    call: (ops, ctx, a) => ops.listxattr(ctx, ctx.nodeid, a.size),
    encode: (value, a) => xattrReply(value, a.size),
  }),
  route(abi.FUSE_REMOVEXATTR, {
    handler: 'removexattr',
    decode: d.removexattrIn,
    call: (ops, ctx, a) => ops.removexattr(ctx, ctx.nodeid, a.name),
    encode: none,
  }),
  route(abi.FUSE_FLUSH, {
    handler: 'flush',
    decode: d.flushIn,
    call: (ops, ctx, a) => ops.flush(ctx, ctx.nodeid, a.fh, a.lockOwner),
    encode: none,
  }),
  route(abi.FUSE_OPENDIR, {
    handler: 'opendir',
    decode: d.openIn,
    call: (ops, ctx, a) => ops.opendir(ctx, ctx.nodeid, a.flags),
    encode: (o) => [encodeOpenOut(o)],
  }),
  route(abi.FUSE_READDIR, readdir(false)),
  route(abi.FUSE_RELEASEDIR, {
    handler: 'releasedir',
    decode: d.releaseIn,
    call: (ops, ctx, a) => ops.releasedir(ctx, ctx.nodeid, a.fh, a.flags),
    encode: none,
    absent: () => undefined, // nothing to release: success
  }),
  route(abi.FUSE_FSYNCDIR, {
    handler: 'fsyncdir',
    decode: d.fsyncIn,
    call: (ops, ctx, a) => ops.fsyncdir(ctx, ctx.nodeid, a.fh, (a.fsyncFlags & abi.FUSE_FSYNC_FDATASYNC) !== 0),
    encode: none,
  }),
  route(abi.FUSE_ACCESS, {
    handler: 'access',
    decode: d.accessIn,
    call: (ops, ctx, a) => ops.access(ctx, ctx.nodeid, a.mask),
    encode: none,
  }),
  route(abi.FUSE_CREATE, {
    handler: 'create',
    decode: d.createIn,
    call: (ops, ctx, a) => ops.create(ctx, ctx.nodeid, a.name, a.mode, a.flags, a.umask),
    encode: (r) => [encodeCreateOut(r.entry, r.open)],
  }),
  {
    // The owner (FuseServer.unmount) calls ops.destroy once, after the device is closed.
    opcode: abi.FUSE_DESTROY,
    handler: undefined,
    prepare: () => async () => [],
  },
  route(abi.FUSE_FALLOCATE, {
    handler: 'fallocate',
    decode: d.fallocateIn,
    call: (ops, ctx, a) => ops.fallocate(ctx, ctx.nodeid, a.fh, toSafeNumber(a.offset, 'fallocate offset'), toSafeNumber(a.length, 'fallocate length'), a.mode),
    encode: none,
  }),
  route(abi.FUSE_READDIRPLUS, readdir(true)),
  route(abi.FUSE_RENAME2, {
    handler: 'rename',
    decode: d.rename2In,
    call: (ops, ctx, a) => ops.rename(ctx, ctx.nodeid, a.name, a.newdir, a.newName, a.flags),
    encode: none,
  }),
  route(abi.FUSE_LSEEK, {
    handler: 'lseek',
    decode: d.lseekIn,
    call: (ops, ctx, a) => ops.lseek(ctx, ctx.nodeid, a.fh, toSafeNumber(a.offset, 'lseek offset'), a.whence),
    encode: (offset) => [encodeLseekOut(offset)],
  }),
];

/** Routed opcodes → their entry. Built once; a duplicate opcode is a programming error. */
export const ROUTES: ReadonlyMap<number, Route> = (() => {
  const m = new Map<number, Route>();
  for (const r of ROUTE_LIST) {
    if (m.has(r.opcode)) throw new Error(`dispatch table: ${abi.opcodeName(r.opcode)} routed twice`);
    m.set(r.opcode, r);
  }
  return m;
})();

/** The entry for an opcode we do not route (known to abi.ts or not): its arguments are not read. */
function unsupported(opcode: number): Route {
  return {
    opcode,
    handler: undefined,
    prepare: () => async () => {
      throw new NotImplementedError(abi.opcodeName(opcode));
    },
  };
}

/** The route for `opcode`; opcodes without one answer ENOSYS through NotImplementedError. */
export function routeFor(opcode: number): Route {
  return ROUTES.get(opcode) ?? unsupported(opcode);
}

/** A request after decoding: a control opcode the session handles itself, or a call to make. */
export type DecodedRequest =
  | { kind: 'init'; offer: InitOffer }
  | { kind: 'interrupt'; target: Unique }
  | { kind: 'forget'; items: readonly { nodeid: Ino; nlookup: bigint }[] }
  | { kind: 'call'; call: PreparedCall };

/**
 * Reads the arguments of one request (`buf` holds exactly it): the one place that decides
 * which decoder an opcode uses. Throws ProtocolError / FsError for a malformed request.
 */
export function decodeRequest(buf: Buffer, header: InHeader, opts: DecodeOptions): DecodedRequest {
  const c = d.argsCursor(buf, header);
  switch (header.opcode) {
    case abi.FUSE_INIT:
      return { kind: 'init', offer: d.initIn(c, opts) };
    case abi.FUSE_INTERRUPT:
      return { kind: 'interrupt', target: d.interruptIn(c, opts).target };
    case abi.FUSE_FORGET:
      return { kind: 'forget', items: [{ nodeid: header.nodeid, nlookup: d.forgetIn(c, opts).nlookup }] };
    case abi.FUSE_BATCH_FORGET:
      return { kind: 'forget', items: d.batchForgetIn(c, opts).items };
    default:
      return { kind: 'call', call: routeFor(header.opcode).prepare(c, opts) };
  }
}
