// POSIX vocabulary shared by every layer that talks about files: st_mode type bits, DT_*
// directory entry types, rename(2) flags and access(2) mask bits. These are the values of
// the Linux headers (sys/stat.h, dirent.h, linux/fs.h, unistd.h); the FUSE wire protocol
// carries them unchanged, so kernel/abi.ts re-exports them rather than defining its own.

// Directory entry types (DT_* from dirent.h) and mode bits (S_IF*).
export const DT = { UNKNOWN: 0, FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** The DT_* type for an st_mode. */
export function direntType(mode: number): number {
  return (mode & S_IFMT) >>> 12;
}

// rename2 flags (linux/fs.h)
export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

// access(2) mask bits
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

// open(2) flags the filesystem layers look at (asm-generic/fcntl.h, as on x86-64 and arm64).
export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
