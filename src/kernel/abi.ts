// The FUSE kernel ABI as data: opcodes with their name, the minimum protocol minor that has
// them and whether they get a reply; flag words; struct sizes. Spelling follows
// include/uapi/linux/fuse.h so every constant can be grepped against the header.
// We speak protocol 7.x with x up to FUSE_KERNEL_MINOR_VERSION below; minima noted inline.

export const FUSE_KERNEL_VERSION = 7;
/** The highest minor we implement; negotiated down to the kernel's if it is older. */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** We refuse kernels older than this (7.31: max_pages, 7.26 interrupt semantics, 7.23 rename2). */
export const FUSE_MIN_MINOR_VERSION = 31;

export const FUSE_ROOT_ID = 1n;

export interface OpcodeInfo {
  readonly name: string;
  /** First protocol minor that defines it. */
  readonly minMinor: number;
  /** FORGET and BATCH_FORGET are never answered. */
  readonly noReply: boolean;
}

export const FUSE_LOOKUP = 1;
export const FUSE_FORGET = 2;
export const FUSE_GETATTR = 3;
export const FUSE_SETATTR = 4;
export const FUSE_READLINK = 5;
export const FUSE_SYMLINK = 6;
export const FUSE_MKNOD = 8;
export const FUSE_MKDIR = 9;
export const FUSE_UNLINK = 10;
export const FUSE_RMDIR = 11;
export const FUSE_RENAME = 12;
export const FUSE_LINK = 13;
export const FUSE_OPEN = 14;
export const FUSE_READ = 15;
export const FUSE_WRITE = 16;
export const FUSE_STATFS = 17;
export const FUSE_RELEASE = 18;
export const FUSE_FSYNC = 20;
export const FUSE_SETXATTR = 21;
export const FUSE_GETXATTR = 22;
export const FUSE_LISTXATTR = 23;
export const FUSE_REMOVEXATTR = 24;
export const FUSE_FLUSH = 25;
export const FUSE_INIT = 26;
export const FUSE_OPENDIR = 27;
export const FUSE_READDIR = 28;
export const FUSE_RELEASEDIR = 29;
export const FUSE_FSYNCDIR = 30;
export const FUSE_GETLK = 31;
export const FUSE_SETLK = 32;
export const FUSE_SETLKW = 33;
export const FUSE_ACCESS = 34;
export const FUSE_CREATE = 35;
export const FUSE_INTERRUPT = 36;
export const FUSE_BMAP = 37;
export const FUSE_DESTROY = 38;
export const FUSE_IOCTL = 39;
export const FUSE_POLL = 40;
export const FUSE_NOTIFY_REPLY = 41;
export const FUSE_BATCH_FORGET = 42;
export const FUSE_FALLOCATE = 43;
export const FUSE_READDIRPLUS = 44;
export const FUSE_RENAME2 = 45;
export const FUSE_LSEEK = 46;
export const FUSE_COPY_FILE_RANGE = 47;
export const FUSE_SETUPMAPPING = 48;
export const FUSE_REMOVEMAPPING = 49;
export const FUSE_SYNCFS = 50;
export const FUSE_TMPFILE = 51;
export const FUSE_STATX = 52;
export const FUSE_COPY_FILE_RANGE_64 = 53;

const op = (name: string, minMinor: number, noReply = false): OpcodeInfo => ({ name, minMinor, noReply });

/** The opcode table: everything the session knows how to route or answer. */
export const OPCODES: ReadonlyMap<number, OpcodeInfo> = new Map<number, OpcodeInfo>([
  [FUSE_LOOKUP, op('LOOKUP', 0)],
  [FUSE_FORGET, op('FORGET', 0, true)],
  [FUSE_GETATTR, op('GETATTR', 0)],
  [FUSE_SETATTR, op('SETATTR', 0)],
  [FUSE_READLINK, op('READLINK', 0)],
  [FUSE_SYMLINK, op('SYMLINK', 0)],
  [FUSE_MKNOD, op('MKNOD', 0)],
  [FUSE_MKDIR, op('MKDIR', 0)],
  [FUSE_UNLINK, op('UNLINK', 0)],
  [FUSE_RMDIR, op('RMDIR', 0)],
  [FUSE_RENAME, op('RENAME', 0)],
  [FUSE_LINK, op('LINK', 0)],
  [FUSE_OPEN, op('OPEN', 0)],
  [FUSE_READ, op('READ', 0)],
  [FUSE_WRITE, op('WRITE', 0)],
  [FUSE_STATFS, op('STATFS', 0)],
  [FUSE_RELEASE, op('RELEASE', 0)],
  [FUSE_FSYNC, op('FSYNC', 0)],
  [FUSE_SETXATTR, op('SETXATTR', 0)],
  [FUSE_GETXATTR, op('GETXATTR', 0)],
  [FUSE_LISTXATTR, op('LISTXATTR', 0)],
  [FUSE_REMOVEXATTR, op('REMOVEXATTR', 0)],
  [FUSE_FLUSH, op('FLUSH', 7)],
  [FUSE_INIT, op('INIT', 0)],
  [FUSE_OPENDIR, op('OPENDIR', 3)],
  [FUSE_READDIR, op('READDIR', 3)],
  [FUSE_RELEASEDIR, op('RELEASEDIR', 3)],
  [FUSE_FSYNCDIR, op('FSYNCDIR', 3)],
  [FUSE_GETLK, op('GETLK', 7)],
  [FUSE_SETLK, op('SETLK', 7)],
  [FUSE_SETLKW, op('SETLKW', 7)],
  [FUSE_ACCESS, op('ACCESS', 5)],
  [FUSE_CREATE, op('CREATE', 5)],
  [FUSE_INTERRUPT, op('INTERRUPT', 8)],
  [FUSE_BMAP, op('BMAP', 8)],
  [FUSE_DESTROY, op('DESTROY', 8)],
  [FUSE_IOCTL, op('IOCTL', 11)],
  [FUSE_POLL, op('POLL', 11)],
  [FUSE_NOTIFY_REPLY, op('NOTIFY_REPLY', 15, true)],
  [FUSE_BATCH_FORGET, op('BATCH_FORGET', 16, true)],
  [FUSE_FALLOCATE, op('FALLOCATE', 19)],
  [FUSE_READDIRPLUS, op('READDIRPLUS', 21)],
  [FUSE_RENAME2, op('RENAME2', 23)],
  [FUSE_LSEEK, op('LSEEK', 24)],
  [FUSE_COPY_FILE_RANGE, op('COPY_FILE_RANGE', 28)],
  [FUSE_SETUPMAPPING, op('SETUPMAPPING', 31)],
  [FUSE_REMOVEMAPPING, op('REMOVEMAPPING', 31)],
  [FUSE_SYNCFS, op('SYNCFS', 34)],
  [FUSE_TMPFILE, op('TMPFILE', 37)],
  [FUSE_STATX, op('STATX', 39)],
  [FUSE_COPY_FILE_RANGE_64, op('COPY_FILE_RANGE_64', 44)],
]);

export function opcodeName(opcode: number): string {
  return OPCODES.get(opcode)?.name ?? `OPCODE_${opcode}`;
}

// INIT flags (fuse_init_in.flags | flags2 << 32). bigint so the 64-bit word is one value.
export const FUSE_ASYNC_READ = 1n << 0n;
export const FUSE_POSIX_LOCKS = 1n << 1n;
export const FUSE_FILE_OPS = 1n << 2n;
export const FUSE_ATOMIC_O_TRUNC = 1n << 3n;
export const FUSE_EXPORT_SUPPORT = 1n << 4n;
export const FUSE_BIG_WRITES = 1n << 5n;
export const FUSE_DONT_MASK = 1n << 6n;
export const FUSE_SPLICE_WRITE = 1n << 7n;
export const FUSE_SPLICE_MOVE = 1n << 8n;
export const FUSE_SPLICE_READ = 1n << 9n;
export const FUSE_FLOCK_LOCKS = 1n << 10n;
export const FUSE_HAS_IOCTL_DIR = 1n << 11n;
export const FUSE_AUTO_INVAL_DATA = 1n << 12n;
export const FUSE_DO_READDIRPLUS = 1n << 13n;
export const FUSE_READDIRPLUS_AUTO = 1n << 14n;
export const FUSE_ASYNC_DIO = 1n << 15n;
export const FUSE_WRITEBACK_CACHE = 1n << 16n;
export const FUSE_NO_OPEN_SUPPORT = 1n << 17n;
export const FUSE_PARALLEL_DIROPS = 1n << 18n;
export const FUSE_HANDLE_KILLPRIV = 1n << 19n;
export const FUSE_POSIX_ACL = 1n << 20n;
export const FUSE_ABORT_ERROR = 1n << 21n;
export const FUSE_MAX_PAGES = 1n << 22n;
export const FUSE_CACHE_SYMLINKS = 1n << 23n;
export const FUSE_NO_OPENDIR_SUPPORT = 1n << 24n;
export const FUSE_EXPLICIT_INVAL_DATA = 1n << 25n;
export const FUSE_MAP_ALIGNMENT = 1n << 26n;
export const FUSE_SUBMOUNTS = 1n << 27n;
export const FUSE_HANDLE_KILLPRIV_V2 = 1n << 28n;
export const FUSE_SETXATTR_EXT = 1n << 29n;
export const FUSE_INIT_EXT = 1n << 30n;
export const FUSE_INIT_RESERVED = 1n << 31n;
export const FUSE_SECURITY_CTX = 1n << 32n;
export const FUSE_HAS_INODE_DAX = 1n << 33n;
export const FUSE_CREATE_SUPP_GROUP = 1n << 34n;
export const FUSE_HAS_EXPIRE_ONLY = 1n << 35n;
export const FUSE_DIRECT_IO_ALLOW_MMAP = 1n << 36n;
export const FUSE_PASSTHROUGH = 1n << 37n;
export const FUSE_NO_EXPORT_SUPPORT = 1n << 38n;
export const FUSE_HAS_RESEND = 1n << 39n;

// fuse_open_out.open_flags
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_STREAM = 1 << 4;
export const FOPEN_NOFLUSH = 1 << 5;
export const FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;

// fuse_setattr_in.valid
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;
export const FATTR_KILL_SUIDGID = 1 << 11;

// fuse_getattr_in.getattr_flags
export const FUSE_GETATTR_FH = 1 << 0;
// fuse_release_in.release_flags
export const FUSE_RELEASE_FLUSH = 1 << 0;
// fuse_fsync_in.fsync_flags
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
// fuse_read_in.read_flags
export const FUSE_READ_LOCKOWNER = 1 << 1;
// fuse_write_in.write_flags
export const FUSE_WRITE_CACHE = 1 << 0;
export const FUSE_WRITE_LOCKOWNER = 1 << 1;
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;

// notify codes (fuse_notify_code)
export const FUSE_NOTIFY_POLL = 1;
export const FUSE_NOTIFY_INVAL_INODE = 2;
export const FUSE_NOTIFY_INVAL_ENTRY = 3;
export const FUSE_NOTIFY_STORE = 4;
export const FUSE_NOTIFY_RETRIEVE = 5;
export const FUSE_NOTIFY_DELETE = 6;
// fuse_notify_inval_entry_out.flags
export const FUSE_EXPIRE_ONLY = 1 << 0;

// POSIX values the protocol carries unchanged (st_mode bits, DT_*, rename2 and access flags).
export { DT, S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, direntType, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT, F_OK, X_OK, W_OK, R_OK } from '../base/posix.js';

// Struct sizes (bytes). Layouts are in codec/decode.ts and codec/encode.ts, next to the code that
// reads or writes them.
export const FUSE_IN_HEADER_SIZE = 40;
export const FUSE_OUT_HEADER_SIZE = 16;
export const FUSE_ATTR_SIZE = 88;
export const FUSE_ENTRY_OUT_SIZE = 128;
export const FUSE_ATTR_OUT_SIZE = 104;
export const FUSE_OPEN_OUT_SIZE = 16;
export const FUSE_INIT_OUT_SIZE = 64;
export const FUSE_KSTATFS_SIZE = 80;
export const FUSE_DIRENT_SIZE = 24;
export const FUSE_DIRENTPLUS_SIZE = FUSE_ENTRY_OUT_SIZE + FUSE_DIRENT_SIZE;
/** Minimum read buffer the kernel accepts: header room + max_write (FUSE_MIN_READ_BUFFER is 8192). */
export const FUSE_MIN_READ_BUFFER = 8192;
/** Bytes of request overhead above max_write that a read buffer must have (in_header + write_in). */
export const FUSE_WRITE_OVERHEAD = 80;
export const FUSE_NAME_MAX = 1024;
