// When a cache file on disk may be trusted to hold the bytes its catalogue row says are present.
// One rule for every caller: CacheFile.open (each time a file is opened) and the start-up
// reconcile of a cache dir (data-cache.ts) both ask `distrustReason`.
//
// A file is trusted only if it is the very file the data layer created for the row: same
// identity (inode number and birth time, recorded in the row when the file was created) and
// exactly the object's size. So a file that was deleted (and perhaps recreated by anyone,
// even under the same name and with a reused inode number), replaced (a restore, a copy, a
// stray tool) or truncated loses its ranges instead of being read as zeros or foreign bytes.
//
// The device number is left out on purpose: it can change across reboots (device-mapper,
// removable disks, some network filesystems) and the dir of one cache holds one filesystem
// anyway; inode + birth time (statx btime, nanoseconds) already names one file of it. Where a
// filesystem has no birth time Node reports 0, and the inode number alone is the identity.
//
// What this cannot see: a file rewritten in place (same inode, same size) by something other
// than fusestream. The cache dir is 0700 and owned by one process (owner-lock.ts); writing into
// it is outside the contract.
import type { BigIntStats } from 'node:fs';

/** The identity recorded in the catalogue for a cache file: "<inode>:<birth time ns>". */
export function fileIdentity(st: BigIntStats): string {
  return `${st.ino}:${st.birthtimeNs}`;
}

/**
 * Why the file described by `st` may not be trusted as the cache file recorded with
 * `identity` for an object of `sizeBytes`; undefined when it may.
 */
export function distrustReason(st: BigIntStats, identity: string | undefined, sizeBytes: number): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (identity === undefined) return 'no identity recorded for it';
  if (fileIdentity(st) !== identity) return `another file (identity ${fileIdentity(st)}, recorded ${identity})`;
  if (st.size !== BigInt(sizeBytes)) return `size ${st.size} instead of ${sizeBytes}`;
  return undefined;
}
