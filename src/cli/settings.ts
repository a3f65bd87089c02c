// Settings of `fusestream mount`: one table of options, three sources, one precedence:
//   command-line flag  >  environment (FUSESTREAM_*)  >  config file  >  built-in default.
// Flags and environment go through commander (each option names its variable, and `--help`
// shows it with the default). The config file is JSON whose keys are the long flag names
// without dashes ({"cache-max-size": "10G", "deadline": 20}); its values are parsed by the
// very same parsers as flags and enter commander with source 'config', which commander lets
// the environment and the command line override.
//
// The file is `--config FILE`, else $FUSESTREAM_CONFIG, else
// $XDG_CONFIG_HOME/fusestream/config.json (~/.config/…) when that exists. A named file that
// is missing, unreadable JSON, an unknown key or a bad value is a UsageError naming the file
// and key: a typo never silently falls back to a default.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { UsageError } from './usage-error.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (examples: 4096, 512M, 10G)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

export function parseSeconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${v}" is not a number of seconds`);
  return n;
}

export function parseCount(v: string): number {
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`"${v}" is not a positive whole number`);
  return Number(v);
}

export function defaultCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
  return join(base, 'fusestream');
}

function defaultConfigPath(): string {
  const base = process.env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config');
  return join(base, 'fusestream', 'config.json');
}

const env = (name: string): string => `FUSESTREAM_${name}`;

/** The options of `fusestream mount`, each with its environment variable. */
export function mountOptions(): Option[] {
  return [
    new Option('--cache-dir <dir>', 'where cached bytes and their catalogue live').env(env('CACHE_DIR')).default(defaultCacheDir()),
    new Option('--cache-max-size <size>', 'hard cap on cached bytes (e.g. 512M, 10G)').env(env('CACHE_MAX_SIZE')).argParser(parseSize).default(10 * 1024 ** 3, '10G'),
    new Option('--deadline <seconds>', 'per-operation deadline: no syscall waits longer').env(env('DEADLINE')).argParser(parseSeconds).default(30),
    new Option('--attr-ttl <seconds>', 'how long attributes and names are trusted').env(env('ATTR_TTL')).argParser(parseSeconds).default(10),
    new Option('--dir-ttl <seconds>', 'how long a directory listing is reused').env(env('DIR_TTL')).argParser(parseSeconds).default(10),
    new Option('--download-concurrency <n>', 'concurrent remote requests').env(env('DOWNLOAD_CONCURRENCY')).argParser(parseCount).default(8),
    new Option('--read-ahead-max <size>', 'largest read-ahead window per open file').env(env('READ_AHEAD_MAX')).argParser(parseSize).default(8 * 1024 ** 2, '8M'),
    new Option('--log-level <level>', 'log level').env(env('LOG_LEVEL')).choices(LOG_LEVELS).default('info'),
    new Option('--allow-other', 'let other users access the mount').env(env('ALLOW_OTHER')).default(false),
    new Option('--config <file>', 'settings file (JSON, keys are these flags without dashes)').env(env('CONFIG')),
  ];
}

/** The config file named by argv/env, or the default one if it exists; undefined when none. */
function configPath(argv: readonly string[]): { path: string; named: boolean } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') break;
    if (a === '--config' && i + 1 < argv.length) return { path: argv[i + 1] as string, named: true };
    if (a.startsWith('--config=')) return { path: a.slice('--config='.length), named: true };
  }
  const fromEnv = process.env[env('CONFIG')];
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, named: true };
  const def = defaultConfigPath();
  return existsSync(def) ? { path: def, named: false } : undefined;
}

/**
 * Loads the config file (if any) into `cmd`'s option values with source 'config'. Call before
 * parsing `argv`, which must be the mount command's own arguments.
 */
export function applyConfigFile(cmd: Command, argv: readonly string[]): string | undefined {
  const found = configPath(argv);
  if (found === undefined) return undefined;
  const { path } = found;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new UsageError(`config file ${path}: ${why}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`config file ${path}: must be a JSON object of settings`);
  const byName = new Map(cmd.options.filter((o) => o.long !== undefined && o.long !== '--config').map((o) => [(o.long as string).slice(2), o]));
  for (const [key, raw] of Object.entries(data as Record<string, unknown>)) {
    const opt = byName.get(key);
    if (opt === undefined) throw new UsageError(`config file ${path}: unknown setting "${key}" (known: ${[...byName.keys()].join(', ')})`);
    cmd.setOptionValueWithSource(opt.attributeName(), configValue(opt, raw, `config file ${path}: ${key}`), 'config');
  }
  return path;
}

function configValue(opt: Option, raw: unknown, where: string): unknown {
  if (opt.isBoolean()) {
    if (typeof raw !== 'boolean') throw new UsageError(`${where}: must be true or false`);
    return raw;
  }
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new UsageError(`${where}: must be a string or a number`);
  const text = String(raw);
  if (opt.argChoices !== undefined && !opt.argChoices.includes(text)) throw new UsageError(`${where}: must be one of ${opt.argChoices.join(', ')}`);
  if (opt.parseArg === undefined) return text;
  try {
    return opt.parseArg(text, undefined);
  } catch (err) {
    throw new UsageError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
