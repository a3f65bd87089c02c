// The bridge: a core FileSystem served to the kernel as FuseOps. It is a translator only:
// - each op the filesystem defines is called with the request context (a RequestContext is an
//   OpContext) and its result handed back unchanged, except OpenReply, whose keepCache and
//   directIo become FOPEN_* flags;
// - every error passes through THE mapping (errno-map.ts) exactly once, so the kernel layer
//   only ever sees FsError (answered with its errno) or its own errors;
// - an op the filesystem leaves undefined stays undefined, and the kernel answers ENOSYS.
// - a handle opened for a request that was answered meanwhile (interrupt, deadline) is
//   released at once, and a created entry's reference given back: the kernel never saw them.
// It holds no state and takes no locks; semantics (attributes, cookies, references) are the
// core's.
import { Errno } from '../base/errno.js';
import { FsError } from '../base/fs-error.js';
import type { Ino } from '../base/ids.js';
import { FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE } from '../kernel/abi.js';
import type { FuseOps, OpenOut } from '../kernel/ops.js';
import type { FileSystem, OpenReply } from '../core/filesystem.js';
import { toFsError } from './errno-map.js';

/** Ops whose arguments and results need no translation. */
const PASS_THROUGH = [
  'lookup', 'getattr', 'setattr', 'readlink', 'symlink', 'mknod', 'mkdir', 'unlink', 'rmdir', 'rename', 'link',
  'read', 'write', 'statfs', 'release', 'fsync', 'flush', 'readdir', 'releasedir', 'fsyncdir', 'access',
  'fallocate', 'getxattr', 'listxattr', 'setxattr', 'removexattr', 'lseek',
] as const satisfies readonly (keyof FileSystem & keyof FuseOps)[];

type AnyOp = (...args: unknown[]) => Promise<unknown>;

function openOut(r: OpenReply): OpenOut {
  return { fh: r.fh, openFlags: (r.keepCache === true ? FOPEN_KEEP_CACHE : 0) | (r.directIo === true ? FOPEN_DIRECT_IO : 0) };
}

/** Awaits `call()` and answers its error through the one mapping. */
async function mapped<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toFsError(err);
  }
}

/** Runs `release` for a reply nobody will receive, and gives the (unsent) error for it. */
async function undo(signal: AbortSignal, release: () => Promise<void> | void | undefined): Promise<FsError> {
  try {
    await release();
  } catch {
    // The handle is gone either way; the request already has its answer.
  }
  return new FsError(Errno.EINTR, 'answered before the handle was ready; released it', { cause: signal.reason, level: 'debug' });
}

export function fuseOpsFor(fs: FileSystem): FuseOps {
  const ops: Record<string, unknown> = {};
  for (const name of PASS_THROUGH) {
    if (fs[name] === undefined) continue;
    ops[name] = (...args: unknown[]) => mapped(() => (fs[name] as AnyOp).apply(fs, args));
  }
  const out = ops as FuseOps;
  // A reply that comes after the request's signal fired (INTERRUPT, deadline, unmount) is
  // dropped by the session: the kernel never learns the handle, so nobody would release it.
  // Undo it here. The check is sound: the session writes the reply in the same macrotask in
  // which this continuation runs, and signals only fire from other macrotasks.
  if (fs.open) {
    out.open = (ctx, ino: Ino, flags: number) =>
      mapped(async () => {
        const r = await fs.open!(ctx, ino, flags);
        if (ctx.signal.aborted) throw await undo(ctx.signal, () => fs.release?.(ctx, ino, r.fh, flags));
        return openOut(r);
      });
  }
  if (fs.opendir) {
    out.opendir = (ctx, ino: Ino, flags: number) =>
      mapped(async () => {
        const r = await fs.opendir!(ctx, ino, flags);
        if (ctx.signal.aborted) throw await undo(ctx.signal, () => fs.releasedir?.(ctx, ino, r.fh, flags));
        return openOut(r);
      });
  }
  if (fs.create) {
    out.create = (ctx, parent: Ino, name: string, mode: number, flags: number, umask: number) =>
      mapped(async () => {
        const r = await fs.create!(ctx, parent, name, mode, flags, umask);
        if (ctx.signal.aborted) {
          throw await undo(ctx.signal, async () => {
            await fs.release?.(ctx, r.entry.nodeid, r.open.fh, flags);
            if (r.entry.nodeid !== 0n) fs.forget?.(r.entry.nodeid, 1n);
          });
        }
        return { entry: r.entry, open: openOut(r.open) };
      });
  }
  if (fs.forget) out.forget = (ino: Ino, nlookup: bigint) => fs.forget!(ino, nlookup);
  if (fs.close) out.destroy = () => fs.close!();
  return out;
}
