// Linux errno values (asm-generic/errno-base.h, errno.h). Kept as plain numbers so that
// replies can negate them directly; names match the C spelling so they grep.
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ENOTSUP: 95,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECANCELED: 125,
  ESTALE: 116,
} as const;

export type ErrnoName = keyof typeof Errno;

const byNumber = new Map<number, ErrnoName>();
for (const [name, value] of Object.entries(Errno) as [ErrnoName, number][]) {
  if (!byNumber.has(value)) byNumber.set(value, name);
}

/** The symbolic name of an errno value, for logs ("ENOENT"), or `errno <n>` if unknown. */
export function errnoName(errno: number): string {
  return byNumber.get(errno) ?? `errno ${errno}`;
}

/** Maps a Node system error code ("ENOENT") to its errno value, if we know it. */
export function errnoFromCode(code: unknown): number | undefined {
  if (typeof code !== 'string') return undefined;
  return (Errno as Record<string, number>)[code];
}
