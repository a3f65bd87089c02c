// CoreConfig: the filesystem-level knobs (TTLs handed to the kernel, ownership and modes
// shown for remote objects), with documented defaults. One object; the CLI fills it.
// The TTLs users set (attr-ttl, dir-ttl) take their defaults from base/settings.ts, where they
// are written once; the entry TTL follows the attribute TTL, as the CLI sets it.
import { defaultSettings } from '../base/settings.js';

const userDefaults = defaultSettings();

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
  /**
   * Directory entries kept in cached listings over all directories; past it the oldest
   * listings go first (a crawl of a huge tree must not grow memory without bound).
   */
  listingCacheMaxEntries: number;
}

export const DEFAULT_CORE_CONFIG: Readonly<CoreConfig> = Object.freeze({
  attrTtlMs: userDefaults.attrTtlMs,
  entryTtlMs: userDefaults.attrTtlMs,
  negativeTtlMs: 5_000,
  dirTtlMs: userDefaults.dirTtlMs,
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
  fileMode: 0o444,
  dirMode: 0o555,
  listingCacheMaxEntries: 200_000,
});
