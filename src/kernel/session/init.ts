// INIT negotiation (struct fuse_init_in → struct fuse_init_out): which protocol minor and
// which capability flags this session speaks. A pure function of what the kernel offers and
// what the mount asked for, so every branch is testable without a kernel.
//
// Invariants:
// - We speak 7.FUSE_KERNEL_MINOR_VERSION and accept kernels from 7.FUSE_MIN_MINOR_VERSION (31:
//   max_pages; 7.26 interrupt semantics and 7.23 RENAME2 come with it). The negotiated minor is
//   the lower of the kernel's and ours.
// - A kernel with a newer major gets our major back with nothing else: it retries INIT with ours.
// - A flag is in effect only if we asked for it AND the kernel offered it (flags2 bits from
//   7.36 are the high half of the 64-bit word).
// - max_write comes from the device reader (its buffer size), never from here.
import * as abi from '../abi.js';
import { encodeInitOut } from '../codec/encode.js';
import type { InitInfo } from '../ops.js';

/** What the kernel sent (fuse_init_in). */
export interface InitOffer {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: bigint;
}

/** What the mount asks for, on top of the flags every session wants. */
export interface InitWishes {
  /** Ask for FUSE_WRITEBACK_CACHE (the kernel then owns size/mtime while files are open). */
  writebackCache?: boolean | undefined;
  /** Ask for FUSE_AUTO_INVAL_DATA (drop page cache when a getattr shows a new size/mtime). */
  autoInvalData?: boolean | undefined;
  /** Upper bound for the kernel's readahead, bytes. */
  maxReadahead?: number | undefined;
  /** Kernel-side limit of background (async) requests (default 64). */
  maxBackground?: number | undefined;
}

/** Flags every session asks for. */
export const PREFERRED_FLAGS =
  abi.FUSE_ASYNC_READ |
  abi.FUSE_BIG_WRITES |
  abi.FUSE_PARALLEL_DIROPS |
  abi.FUSE_DO_READDIRPLUS |
  abi.FUSE_READDIRPLUS_AUTO |
  abi.FUSE_MAX_PAGES |
  abi.FUSE_ABORT_ERROR |
  abi.FUSE_CACHE_SYMLINKS |
  abi.FUSE_HAS_EXPIRE_ONLY |
  abi.FUSE_INIT_EXT;

/** 256 pages of 4 KiB: 1 MiB READ requests (fuse_init_out.max_pages, 7.28). */
export const MAX_PAGES = 256;

export type InitOutcome =
  /** The kernel's major is newer: answer with ours (`out`), it will send INIT again. */
  | { kind: 'retry'; out: Buffer }
  /** The kernel is too old: answer EPROTO, the mount fails with `reason`. */
  | { kind: 'refuse'; reason: string }
  /** Agreed: answer `out`; `info` is what the filesystem's init() and the session use. */
  | { kind: 'accept'; out: Buffer; info: InitInfo };

export function negotiateInit(offer: InitOffer, wishes: InitWishes, maxWrite: number): InitOutcome {
  if (offer.major > abi.FUSE_KERNEL_VERSION) {
    const out = encodeInitOut({ major: abi.FUSE_KERNEL_VERSION, minor: abi.FUSE_KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0n, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0 });
    return { kind: 'retry', out };
  }
  if (offer.major < abi.FUSE_KERNEL_VERSION || offer.minor < abi.FUSE_MIN_MINOR_VERSION) {
    return { kind: 'refuse', reason: `kernel FUSE protocol ${offer.major}.${offer.minor} is older than 7.${abi.FUSE_MIN_MINOR_VERSION}` };
  }
  const minor = Math.min(offer.minor, abi.FUSE_KERNEL_MINOR_VERSION);
  let want = PREFERRED_FLAGS;
  if (wishes.writebackCache) want |= abi.FUSE_WRITEBACK_CACHE;
  if (wishes.autoInvalData) want |= abi.FUSE_AUTO_INVAL_DATA;
  const flags = want & offer.flags;
  const maxReadahead = Math.min(offer.maxReadahead, wishes.maxReadahead ?? offer.maxReadahead);
  const maxBackground = wishes.maxBackground ?? 64;
  const out = encodeInitOut({
    major: abi.FUSE_KERNEL_VERSION,
    minor,
    maxReadahead,
    flags,
    maxBackground,
    congestionThreshold: Math.floor((maxBackground * 3) / 4),
    maxWrite,
    timeGran: 1,
    maxPages: MAX_PAGES,
  });
  return { kind: 'accept', out, info: { minor, maxWrite, maxReadahead, flags } };
}
