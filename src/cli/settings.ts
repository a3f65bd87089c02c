// The command-line face of the settings table (base/settings.ts): commander options, their
// environment variables, the config file and `--help` are all generated from that table, so a
// setting is added in one place. Three sources, one precedence:
//   command-line flag  >  environment (FUSESTREAM_*)  >  config file  >  built-in default.
// Flags and environment go through commander (each option names its variable, and `--help`
// shows it with the default). The config file is JSON whose keys are the setting keys
// ({"cache-max-size": "10G", "deadline": 20}); its values are parsed by the very same parser as
// flags (`parseSettingText`) and enter commander with source 'config', which commander lets
// the environment and the command line override.
//
// The file is `--config FILE`, else $FUSESTREAM_CONFIG, else
// $XDG_CONFIG_HOME/fusestream/config.json (~/.config/…) when that exists. A named file that
// is missing, unreadable JSON, an unknown key or a bad value is a UsageError naming the file
// and key: a typo never silently falls back to a default.
//
// Invariants: commander values stay in user units (seconds for durations); they become a
// `Settings` (base units) only through `settingsFromOptions`, which also reports the source of
// each value a cross-field rule refused. A bad value names its source and key: commander says
// "option '--x <v>'" or "from env 'FUSESTREAM_X'", the config file says "config file F: x".
import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  SettingError,
  defaultConfigPath,
  defaultText,
  defaultUserValue,
  envName,
  parseBoolean,
  parseSettingText,
  settingSpecs,
  settingsFromUserValues,
  type SettingCommand,
  type SettingSpec,
  type Settings,
  type UserValue,
} from '../base/settings.js';
import { UsageError } from './usage-error.js';

/** The commander option of one table entry: flag, help, environment variable and default. */
export function settingOption(spec: SettingSpec): Option {
  const flags = spec.kind === 'boolean' ? `--${spec.key}` : `--${spec.key} <${spec.arg ?? spec.kind}>`;
  const opt = new Option(flags, spec.help).env(spec.env);
  if (spec.kind === 'choice') opt.choices(spec.choices);
  else if (spec.kind !== 'boolean') opt.argParser((text: string) => parseForCommander(spec, text));
  const value = defaultUserValue(spec);
  if (value !== undefined) opt.default(value, spec.kind === 'size' ? defaultText(spec) : undefined);
  return opt;
}

function parseForCommander(spec: SettingSpec, text: string): UserValue {
  try {
    return parseSettingText(spec, text);
  } catch (err) {
    if (err instanceof SettingError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/**
 * Adds the options of `command` to `cmd`. Commander sets a boolean option to true whenever
 * its variable exists, whatever it says; the listener added here (which runs after
 * commander's own) reads the variable's text instead, so FUSESTREAM_ALLOW_OTHER=false is false
 * and =maybe is an error naming the variable.
 */
export function addSettingOptions(cmd: Command, command: SettingCommand): Command {
  for (const spec of settingSpecs(command)) {
    const opt = settingOption(spec);
    cmd.addOption(opt);
    if (spec.kind !== 'boolean') continue;
    cmd.on(`optionEnv:${opt.name()}`, () => {
      const text = process.env[spec.env] ?? '';
      try {
        cmd.setOptionValueWithSource(opt.attributeName(), parseBoolean(text), 'env');
      } catch (err) {
        if (!(err instanceof SettingError)) throw err;
        cmd.error(`error: option '${opt.flags}' value '${text}' from env '${spec.env}' is invalid. ${err.message}`, { code: 'commander.invalidArgument' });
      }
    });
  }
  return cmd;
}

/**
 * The Settings of `command` from `cmd`'s parsed option values (user units, keyed by attribute
 * name). A cross-field rule that fails is a UsageError that names where each value came from.
 */
export function settingsFromOptions(cmd: Command, command: SettingCommand): Settings {
  const values: Record<string, UserValue | undefined> = {};
  const opts = cmd.opts<Record<string, unknown>>();
  for (const spec of settingSpecs(command)) {
    const v = opts[attributeName(cmd, spec)];
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') values[spec.key] = v;
  }
  try {
    return settingsFromUserValues(values);
  } catch (err) {
    if (!(err instanceof SettingError)) throw err;
    const from = err.keys.map((k) => `${k} from ${sourceOf(cmd, k)}`).join(', ');
    throw new UsageError(`bad settings: ${err.message}${from === '' ? '' : ` (${from})`}`, { cause: err });
  }
}

function attributeName(cmd: Command, spec: SettingSpec): string {
  const opt = cmd.options.find((o) => o.long === `--${spec.key}`);
  if (opt === undefined) throw new Error(`setting ${spec.key} is not an option of ${cmd.name()}`);
  return opt.attributeName();
}

const configSources = new WeakMap<Command, string>();

function sourceOf(cmd: Command, key: string): string {
  const opt = cmd.options.find((o) => o.long === `--${key}`);
  const source = opt === undefined ? undefined : cmd.getOptionValueSource(opt.attributeName());
  switch (source) {
    case 'cli':
      return 'the command line';
    case 'env':
      return `$${envName(key)}`;
    case 'config':
      return `config file ${configSources.get(cmd) ?? '?'}`;
    default:
      return 'the default';
  }
}

/** The config file named by argv/env, or the default one if it exists; undefined when none. */
function configPath(argv: readonly string[]): { path: string; named: boolean } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') break;
    if (a === '--config' && i + 1 < argv.length) return { path: argv[i + 1] as string, named: true };
    if (a.startsWith('--config=')) return { path: a.slice('--config='.length), named: true };
  }
  const fromEnv = process.env[envName('config')];
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, named: true };
  const def = defaultConfigPath();
  return existsSync(def) ? { path: def, named: false } : undefined;
}

/**
 * Loads the config file (if any) into `cmd`'s option values with source 'config'. Call before
 * parsing `argv`, which must be the mount command's own arguments, after `addSettingOptions`.
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
  const byKey = new Map(settingSpecs('mount').filter((s) => s.key !== 'config').map((s) => [s.key, s]));
  for (const [key, raw] of Object.entries(data as Record<string, unknown>)) {
    const spec = byKey.get(key);
    if (spec === undefined) throw new UsageError(`config file ${path}: unknown setting "${key}" (known: ${[...byKey.keys()].join(', ')})`);
    cmd.setOptionValueWithSource(attributeName(cmd, spec), configValue(spec, raw, `config file ${path}: ${key}`), 'config');
  }
  configSources.set(cmd, path);
  return path;
}

function configValue(spec: SettingSpec, raw: unknown, where: string): UserValue {
  if (spec.kind === 'boolean') {
    if (typeof raw !== 'boolean') throw new UsageError(`${where}: must be true or false`);
    return raw;
  }
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new UsageError(`${where}: must be a string or a number`);
  try {
    return parseSettingText(spec, String(raw));
  } catch (err) {
    if (err instanceof SettingError) throw new UsageError(`${where}: ${err.message}`, { cause: err });
    throw err;
  }
}
