// CoreConfig: the filesystem-level knobs (TTLs handed to the kernel, ownership and modes
// shown for remote objects), with documented defaults. One object; the CLI fills it.
export interface CoreConfig {
  /** How long the kernel may cache attributes (and we trust a listing's attributes). */
  attrTtlMs: number;
  /** How long the kernel may cache a name → inode entry. */
  entryTtlMs: number;
  /** How long the kernel may cache a "no such name" answer. */
  negativeTtlMs: number;
  /** How long a directory listing is reused before the remote is asked again. */
  dirTtlMs: number;
  /** Owner shown for every object (default: the mounting user). */
  uid: number;
  gid: number;
  /** Permission bits shown for files and directories of a read-only remote. */
  fileMode: number;
  dirMode: number;
}

export const DEFAULT_CORE_CONFIG: Readonly<CoreConfig> = Object.freeze({
  attrTtlMs: 10_000,
  entryTtlMs: 10_000,
  negativeTtlMs: 5_000,
  dirTtlMs: 10_000,
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
  fileMode: 0o444,
  dirMode: 0o555,
});
