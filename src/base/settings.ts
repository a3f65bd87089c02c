// The user-facing settings of fusestream, once: the one table every command line flag,
// environment variable, config-file key and `--help` line is generated from (cli/settings.ts),
// the parsers of their text, and the `Settings` object the pieces are built from.
//
// Invariants:
// - Each setting is one `SettingSpec`: its key is the long flag name and the config-file key,
//   its environment variable is derived from the key (`envName`), its default is written here
//   in user units ('10G', 30 s) and nowhere else in the tree. The data and core layers take
//   the defaults of their user-facing knobs from `defaultSettings()`.
// - Text from any source goes through `parseSettingText`, so a flag, a variable and a file
//   entry accept and refuse the same values with the same message.
// - `Settings` holds base units (bytes, ms). A duration is converted from the user's seconds
//   to ms in exactly one place, `toBaseValue`; nothing downstream multiplies by 1000.
// - `resolveSettings` is the only way to get a `Settings` (defaults filled, every field checked
//   against its entry, cross-field rules checked), so a `Settings` value is always valid.
// - Errors are `SettingError` with no source in the message: the caller (the CLI) knows
//   whether the text came from a flag, the environment or a file and says so.
// Node builtins only (this is `base`).
import { homedir } from 'node:os';
import { join } from 'node:path';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelChoice = (typeof LOG_LEVELS)[number];

/** How `memfs` reads /dev/fuse (see kernel/device.ts). */
export const READERS = ['uvpipe', 'worker'] as const;
export type ReaderChoice = (typeof READERS)[number];

/** What fsync on a read-write mount waits for. */
export const FSYNC_MODES = ['local', 'remote'] as const;
export type FsyncChoice = (typeof FSYNC_MODES)[number];

/** The commands that take settings from the table. */
export type SettingCommand = 'mount' | 'memfs';

/**
 * Every user setting in base units. Built only by `resolveSettings` / `defaultSettings` /
 * `settingsFromUserValues`. Durations are ms, sizes bytes.
 */
export interface Settings {
  /** Where cached bytes and their catalogue live. The data layer creates it (0700). */
  cacheDir: string;
  /** Hard cap on the bytes of all cache files together. */
  cacheMaxSizeBytes: number;
  /** Per-operation deadline; 0 means none for `memfs` (the data layer needs at least 1 ms). */
  deadlineMs: number;
  /** How long attributes and names are trusted (kernel attr and entry TTL). */
  attrTtlMs: number;
  /** How long a directory listing is reused. */
  dirTtlMs: number;
  /** Concurrent remote requests. */
  downloadConcurrency: number;
  /** Largest read-ahead window of one open file. */
  readAheadMaxBytes: number;
  logLevel: LogLevelChoice;
  allowOther: boolean;
  /** The config file named by flag or environment (the CLI also looks at an XDG default). */
  configFile: string | undefined;
  /** Start with the remote taken as unreachable: serve the cache, fail the rest at once. */
  offline: boolean;
  /** First delay between probes of an unreachable remote (doubling, jittered). */
  probeMinMs: number;
  /** Longest delay between probes of an unreachable remote. */
  probeMaxMs: number;
  /** How often the remote is rechecked for changes to what the kernel holds (0: never). */
  pollIntervalMs: number;
  /** Mount read-only even where the remote can write. */
  readOnly: boolean;
  /** A closed file is uploaded this long after its last change (repeated saves coalesce). */
  writeBackDelayMs: number;
  /** Unmount waits this long for pending uploads; the rest stays journaled for the next mount. */
  drainTimeoutMs: number;
  /** What fsync waits for: the local cache (default) or the upload to the remote. */
  fsyncMode: FsyncChoice;
  /** Uploads (and remote changes of the write path) applied at once. */
  uploadConcurrency: number;
  /** The user name for a remote that asks for one (WebDAV); its password never is a setting. */
  user: string | undefined;
  /** A file holding the password of `user` (the first line); else $FUSESTREAM_PASSWORD. */
  passwordFile: string | undefined;
  /** memfs: the /dev/fuse reader design. */
  reader: ReaderChoice;
  /** memfs: serve the reference model (the kernel layer alone) instead of the core. */
  reference: boolean;
  /** memfs: size of a generated /ramp.bin, if wanted. */
  rampFileBytes: number | undefined;
  /** memfs: number of small files in /many/, if wanted. */
  fileCount: number | undefined;
}

export type SettingKind = 'size' | 'duration' | 'count' | 'boolean' | 'choice' | 'path' | 'string';

/** A value in user units, as parsed from text: bytes for sizes, seconds for durations. */
export type UserValue = number | boolean | string;

type FieldOf<T> = { [K in keyof Settings]-?: Settings[K] extends T | undefined ? K : never }[keyof Settings];

interface SpecCommon {
  /** The long flag name without dashes, and the config-file key. */
  readonly key: string;
  /** `FUSESTREAM_` + the key in capitals with `_` for `-`. */
  readonly env: string;
  /** One line for `--help`. */
  readonly help: string;
  /** The placeholder of the flag's argument in `--help` (`--deadline <seconds>`); none for a boolean. */
  readonly arg?: string;
  /** The commands that take this setting. */
  readonly commands: readonly SettingCommand[];
}

export type SettingSpec = SpecCommon &
  (
    | { readonly kind: 'size'; readonly field: FieldOf<number>; readonly unit: 'bytes'; readonly default?: string; readonly min?: number; readonly max?: number }
    | { readonly kind: 'duration'; readonly field: FieldOf<number>; readonly unit: 'seconds'; readonly default?: number; readonly min?: number; readonly max?: number }
    | { readonly kind: 'count'; readonly field: FieldOf<number>; readonly unit: 'count'; readonly default?: number; readonly min: number; readonly max?: number }
    | { readonly kind: 'boolean'; readonly field: FieldOf<boolean>; readonly default: boolean }
    | { readonly kind: 'choice'; readonly field: FieldOf<string>; readonly choices: readonly string[]; readonly default: string }
    | { readonly kind: 'path'; readonly field: FieldOf<string>; readonly default?: () => string }
    | { readonly kind: 'string'; readonly field: FieldOf<string>; readonly default?: string }
  );

/** A value (or a combination of values) that is not a valid setting. */
export class SettingError extends Error {
  override readonly name = 'SettingError';
  readonly code = 'SETTING';
  /** The settings the message is about (table keys). */
  readonly keys: readonly string[];
  constructor(message: string, keys: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.keys = keys;
  }
}

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** '4096', '512M', '10G', '1.5k', '2GiB' → bytes (binary multiples, floored). */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new SettingError(`"${v}" is not a size (examples: 4096, 512M, 10G)`);
  const bytes = Math.floor(Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1));
  if (!Number.isSafeInteger(bytes)) throw new SettingError(`"${v}" is too large a size`);
  return bytes;
}

/** A non-negative number of seconds, fractions allowed ('30', '0.5'). */
export function parseSeconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new SettingError(`"${v}" is not a number of seconds`);
  return n;
}

/** A whole number of at least `min` (default 1: a positive whole number). */
export function parseCount(v: string, min = 1): number {
  const what = min === 1 ? 'a positive whole number' : min === 0 ? 'a whole number' : `a whole number of at least ${min}`;
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) throw new SettingError(`"${v}" is not ${what}`);
  return Number(v);
}

/** true/false, 1/0, yes/no, on/off (any case): how a boolean is spelled in the environment. */
export function parseBoolean(v: string): boolean {
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new SettingError(`"${v}" is not true or false`);
}

/** Bytes as the shortest exact size text ('8M', '10G', '1536'). */
export function formatSize(bytes: number): string {
  for (const [suffix, unit] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

/** The one seconds → ms conversion of the tree (whole ms). */
function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

export function envName(key: string): string {
  return `FUSESTREAM_${key.toUpperCase().replace(/-/g, '_')}`;
}

export function defaultCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
  return join(base, 'fusestream');
}

export function defaultConfigPath(): string {
  const base = process.env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config');
  return join(base, 'fusestream', 'config.json');
}

/** Node timers (AbortSignal.timeout, setTimeout) overflow past 2^31-1 ms and fire at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

type Unenv<T> = T extends SettingSpec ? Omit<T, 'env'> : never;
const entry = (spec: Unenv<SettingSpec>): SettingSpec => ({ ...spec, env: envName(spec.key) });

/** The table. Order is `--help` order. */
export const SETTINGS: readonly SettingSpec[] = Object.freeze([
  entry({ key: 'cache-dir', field: 'cacheDir', kind: 'path', arg: 'dir', default: defaultCacheDir, commands: ['mount'], help: 'where cached bytes and their catalogue live (one subdirectory per remote)' }),
  entry({ key: 'cache-max-size', field: 'cacheMaxSizeBytes', kind: 'size', unit: 'bytes', arg: 'size', default: '10G', min: 1, commands: ['mount'], help: 'hard cap on cached bytes (e.g. 512M, 10G)' }),
  entry({ key: 'deadline', field: 'deadlineMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 30, min: 0, max: MAX_TIMER_SECONDS, commands: ['mount', 'memfs'], help: 'per-operation deadline: no syscall on the mount waits longer than this plus 1 s, whatever the remote does (an unreachable remote then fails at once until a probe sees it back)' }),
  entry({ key: 'attr-ttl', field: 'attrTtlMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 10, min: 0, commands: ['mount'], help: 'how long attributes and names are trusted' }),
  entry({ key: 'dir-ttl', field: 'dirTtlMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 10, min: 0, commands: ['mount'], help: 'how long a directory listing is reused' }),
  entry({ key: 'download-concurrency', field: 'downloadConcurrency', kind: 'count', unit: 'count', arg: 'n', default: 8, min: 1, commands: ['mount'], help: 'concurrent remote requests' }),
  entry({ key: 'read-ahead-max', field: 'readAheadMaxBytes', kind: 'size', unit: 'bytes', arg: 'size', default: '8M', min: 1, commands: ['mount'], help: 'largest read-ahead window per open file' }),
  entry({ key: 'log-level', field: 'logLevel', kind: 'choice', choices: LOG_LEVELS, arg: 'level', default: 'info', commands: ['mount', 'memfs'], help: 'log level' }),
  entry({ key: 'allow-other', field: 'allowOther', kind: 'boolean', default: false, commands: ['mount', 'memfs'], help: 'let other users access the mount' }),
  entry({ key: 'poll-interval', field: 'pollIntervalMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 30, min: 0, max: MAX_TIMER_SECONDS, commands: ['mount'], help: 'recheck what the kernel holds for remote changes this often (0: never); a change shows within it, whatever the TTLs' }),
  entry({ key: 'offline', field: 'offline', kind: 'boolean', default: false, commands: ['mount'], help: 'start offline: serve what the cache holds, fail what needs the network at once, probe the remote in the background' }),
  entry({ key: 'probe-min', field: 'probeMinMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 1, min: 0.01, max: MAX_TIMER_SECONDS, commands: ['mount'], help: 'first delay between probes of an unreachable remote (doubles, jittered)' }),
  entry({ key: 'probe-max', field: 'probeMaxMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 60, min: 0.01, max: MAX_TIMER_SECONDS, commands: ['mount'], help: 'longest delay between probes of an unreachable remote' }),
  entry({ key: 'read-only', field: 'readOnly', kind: 'boolean', default: false, commands: ['mount'], help: 'mount read-only even where the remote can write (HTTP remotes are always read-only)' }),
  entry({ key: 'write-back-delay', field: 'writeBackDelayMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 5, min: 0, max: MAX_TIMER_SECONDS, commands: ['mount'], help: 'upload a closed file this long after its last change (repeated saves make one upload)' }),
  entry({ key: 'drain-timeout', field: 'drainTimeoutMs', kind: 'duration', unit: 'seconds', arg: 'seconds', default: 60, min: 0, max: MAX_TIMER_SECONDS, commands: ['mount'], help: 'at unmount, wait this long for pending uploads; what is left stays journaled and the next mount uploads it' }),
  entry({ key: 'fsync', field: 'fsyncMode', kind: 'choice', choices: FSYNC_MODES, arg: 'mode', default: 'local', commands: ['mount'], help: 'what fsync waits for: local (durable in the cache, uploaded later) or remote (uploaded; an upload failure is fsync\'s error)' }),
  entry({ key: 'upload-concurrency', field: 'uploadConcurrency', kind: 'count', unit: 'count', arg: 'n', default: 4, min: 1, commands: ['mount'], help: 'uploads and other remote changes applied at once' }),
  entry({ key: 'user', field: 'user', kind: 'string', arg: 'name', commands: ['mount'], help: 'user name for a WebDAV remote (or in the URL: webdav+https://user@host/); its password comes from the password file below or $FUSESTREAM_PASSWORD, never from a flag' }),
  entry({ key: 'password-file', field: 'passwordFile', kind: 'path', arg: 'file', commands: ['mount'], help: 'file whose first line is the password of that user (keep it mode 0600)' }),
  entry({ key: 'config', field: 'configFile', kind: 'path', arg: 'file', commands: ['mount'], help: 'JSON settings file, keys are these flags without dashes (else $XDG_CONFIG_HOME/fusestream/config.json if present)' }),
  entry({ key: 'reader', field: 'reader', kind: 'choice', choices: READERS, arg: 'kind', default: 'uvpipe', commands: ['memfs'], help: '/dev/fuse reader design' }),
  entry({ key: 'reference', field: 'reference', kind: 'boolean', default: false, commands: ['memfs'], help: 'serve the reference model (core/memory-fs.ts) instead of the core over an in-memory remote' }),
  entry({ key: 'ramp-file', field: 'rampFileBytes', kind: 'size', unit: 'bytes', arg: 'size', min: 0, commands: ['memfs'], help: 'add /ramp.bin, a generated file of this size' }),
  entry({ key: 'files', field: 'fileCount', kind: 'count', unit: 'count', arg: 'count', min: 0, commands: ['memfs'], help: 'add /many/ with this many small files' }),
]);

export function settingSpecs(command: SettingCommand): SettingSpec[] {
  return SETTINGS.filter((s) => s.commands.includes(command));
}

export function settingSpec(key: string): SettingSpec | undefined {
  return SETTINGS.find((s) => s.key === key);
}

/** Parses a setting's text (from any source) into its user-unit value, checking its bounds. */
export function parseSettingText(spec: SettingSpec, text: string): UserValue {
  switch (spec.kind) {
    case 'size': {
      const v = parseSize(text);
      checkRange(`"${text}"`, v, spec.min, spec.max, formatSize);
      return v;
    }
    case 'duration': {
      const v = parseSeconds(text);
      checkRange(`"${text}"`, v, spec.min, spec.max, (s) => `${s} s`);
      return v;
    }
    case 'count': {
      const v = parseCount(text, spec.min);
      checkRange(`"${text}"`, v, spec.min, spec.max, String);
      return v;
    }
    case 'boolean':
      return parseBoolean(text);
    case 'choice':
      if (!spec.choices.includes(text)) throw new SettingError(`must be one of ${spec.choices.join(', ')}`);
      return text;
    case 'path':
    case 'string':
      // Any text is a path (an empty one is the current directory, as it always was).
      return text;
  }
}

function checkRange(what: string, v: number, min: number | undefined, max: number | undefined, show: (n: number) => string): void {
  if (min !== undefined && v < min) throw new SettingError(`${what} is less than the minimum ${show(min)}`);
  if (max !== undefined && v > max) throw new SettingError(`${what} is more than the maximum ${show(max)}`);
}

/** The default in user units (parsed from the table by the same parser as any source). */
export function defaultUserValue(spec: SettingSpec): UserValue | undefined {
  const text = defaultText(spec);
  return text === undefined ? undefined : parseSettingText(spec, text);
}

/** The default as a user writes it ('10G', '30', 'info'), for `--help`; undefined if none. */
export function defaultText(spec: SettingSpec): string | undefined {
  const d = spec.default;
  if (d === undefined) return undefined;
  return typeof d === 'function' ? d() : String(d);
}

/** User units → base units: the only place a duration becomes ms. */
function toBaseValue(spec: SettingSpec, v: UserValue): UserValue {
  if (spec.kind === 'duration') {
    if (typeof v !== 'number') throw new SettingError(`${spec.key} must be a number of seconds, got ${String(v)}`, [spec.key]);
    return secondsToMs(v);
  }
  return v;
}

/** Base units → the text a user would write, for messages. */
function showBase(spec: SettingSpec, v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (spec.kind === 'size') return formatSize(v);
  if (spec.kind === 'duration') return `${v / 1000} s`;
  return String(v);
}

/** Settings from user-unit values keyed by setting key (absent: the default). */
export function settingsFromUserValues(values: Readonly<Record<string, UserValue | undefined>>): Settings {
  const partial: Record<string, UserValue> = {};
  for (const spec of SETTINGS) {
    const v = values[spec.key];
    if (v !== undefined) partial[spec.field] = toBaseValue(spec, v);
  }
  // The record is untyped per field; resolveSettings checks each value against its entry.
  return resolveSettings(partial);
}

/** Every setting at its default, in base units. */
export function defaultSettings(): Settings {
  const out: Record<string, UserValue | undefined> = {};
  for (const spec of SETTINGS) {
    const v = defaultUserValue(spec);
    out[spec.field] = v === undefined ? undefined : toBaseValue(spec, v);
  }
  return out as unknown as Settings;
}

/**
 * Fills defaults for what `partial` leaves out and checks every field against its table entry
 * and the rules between fields; throws SettingError naming the keys.
 */
export function resolveSettings(partial: Partial<Settings> = {}): Settings {
  const s: Settings = { ...defaultSettings(), ...partial };
  const fields = s as unknown as Record<string, unknown>;
  for (const spec of SETTINGS) checkBaseValue(spec, fields[spec.field]);
  if (s.readAheadMaxBytes > s.cacheMaxSizeBytes) {
    throw new SettingError(
      `read-ahead-max (${formatSize(s.readAheadMaxBytes)}) must not exceed cache-max-size (${formatSize(s.cacheMaxSizeBytes)})`,
      ['read-ahead-max', 'cache-max-size'],
    );
  }
  return s;
}

function checkBaseValue(spec: SettingSpec, v: unknown): void {
  const bad = (why: string): SettingError => new SettingError(`${spec.key} ${why}, got ${showBase(spec, v)}`, [spec.key]);
  if (v === undefined) {
    if (spec.default === undefined) return;
    throw bad('must be set');
  }
  switch (spec.kind) {
    case 'size':
    case 'duration':
    case 'count': {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad('must be a whole number');
      const scale = spec.kind === 'duration' ? secondsToMs : (n: number): number => n;
      if (spec.min !== undefined && v < scale(spec.min)) throw bad(`must be at least ${showBase(spec, scale(spec.min))}`);
      if (spec.max !== undefined && v > scale(spec.max)) throw bad(`must be at most ${showBase(spec, scale(spec.max))}`);
      return;
    }
    case 'boolean':
      if (typeof v !== 'boolean') throw bad('must be true or false');
      return;
    case 'choice':
      if (typeof v !== 'string' || !spec.choices.includes(v)) throw bad(`must be one of ${spec.choices.join(', ')}`);
      return;
    case 'path':
    case 'string':
      if (typeof v !== 'string') throw bad('must be a string');
      return;
  }
}
