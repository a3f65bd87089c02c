// Settings: flag > environment (FUSESTREAM_*) > config file > default, with the same
// parsers for every source and a UsageError naming the file and key for any bad config entry;
// every option, variable, file key and --help line generated from the one table
// (base/settings.ts); durations converted to ms once, on the way to Settings.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  SETTINGS,
  SettingError,
  defaultSettings,
  defaultText,
  defaultUserValue,
  envName,
  resolveSettings,
  settingSpecs,
  type SettingCommand,
  type SettingSpec,
  type Settings,
} from '../../src/base/settings.js';
import { DEFAULT_CORE_CONFIG } from '../../src/core/config.js';
import { DEFAULT_DATA_CONFIG, dataConfigFrom, resolveDataConfig } from '../../src/data/config.js';
import { addSettingOptions, applyConfigFile, settingsFromOptions } from '../../src/cli/settings.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { run } from '../support/proc.js';

const ENV_KEYS = [...SETTINGS.map((s) => s.env), 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME'];

/** A command built the way the CLI builds it, with the arguments of `command`. */
function command(name: SettingCommand): Command {
  const cmd = new Command(name).exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  if (name === 'mount') cmd.argument('<remote>');
  cmd.argument('<mountpoint>');
  return addSettingOptions(cmd, name);
}

/** Parses arguments the way the CLI does, without mounting: options and Settings. */
function parseBoth(args: string[], name: SettingCommand = 'mount'): { opts: Record<string, unknown>; settings: Settings } {
  const cmd = command(name);
  if (name === 'mount') applyConfigFile(cmd, args);
  cmd.parse(args, { from: 'user' });
  return { opts: cmd.opts<Record<string, unknown>>(), settings: settingsFromOptions(cmd, name) };
}

/** The resolved options of `mount` (user units, as commander holds them). */
function parse(args: string[]): Record<string, unknown> {
  const cmd = command('mount');
  applyConfigFile(cmd, args);
  cmd.parse(args, { from: 'user' });
  return cmd.opts<Record<string, unknown>>();
}

/** Arguments that satisfy `name`'s positional arguments. */
const positionals = (name: SettingCommand): string[] => (name === 'mount' ? ['http://x/', '/mnt'] : ['/mnt']);

/** Text every source must refuse for this setting, or undefined when any text is valid. */
function badText(spec: SettingSpec): string | undefined {
  switch (spec.kind) {
    case 'size':
      return '10 parsecs';
    case 'duration':
      return 'soon';
    case 'count':
      return '-3';
    case 'boolean':
      return 'maybe';
    case 'choice':
      return 'loud';
    case 'path':
    case 'string':
      return undefined;
  }
}

void describe('mount settings', () => {
  let dir: string;
  const saved = new Map<string, string | undefined>();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-settings-'));
    for (const k of ENV_KEYS) {
      saved.set(k, process.env[k]);
      delete process.env[k];
    }
    process.env['XDG_CONFIG_HOME'] = join(dir, 'xdg'); // no default config file unless a test writes one
  });
  afterEach(() => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function config(obj: unknown): string {
    const p = join(dir, 'config.json');
    writeFileSync(p, JSON.stringify(obj));
    return p;
  }

  void test('defaults apply when no source sets a value', () => {
    const o = parse(['http://x/', '/mnt']);
    assert.equal(o['deadline'], 30);
    assert.equal(o['cacheMaxSize'], 10 * 1024 ** 3);
    assert.equal(o['logLevel'], 'info');
    assert.equal(o['allowOther'], false);
  });

  void test('config file < environment < flag, each parsed by the same parser', () => {
    const file = config({ deadline: 20, 'cache-max-size': '1G', 'log-level': 'warn', 'allow-other': true });
    let o = parse(['--config', file, 'http://x/', '/mnt']);
    assert.deepEqual([o['deadline'], o['cacheMaxSize'], o['logLevel'], o['allowOther']], [20, 1024 ** 3, 'warn', true]);
    process.env['FUSESTREAM_DEADLINE'] = '15';
    process.env['FUSESTREAM_CACHE_MAX_SIZE'] = '512M';
    o = parse(['--config', file, 'http://x/', '/mnt']);
    assert.deepEqual([o['deadline'], o['cacheMaxSize'], o['logLevel']], [15, 512 * 1024 ** 2, 'warn'], 'environment beats the config file');
    o = parse(['--config', file, '--deadline', '5', 'http://x/', '/mnt']);
    assert.deepEqual([o['deadline'], o['cacheMaxSize']], [5, 512 * 1024 ** 2], 'a flag beats the environment');
  });

  void test('the config file can be named by FUSESTREAM_CONFIG, or found at the XDG default', () => {
    process.env['FUSESTREAM_CONFIG'] = config({ deadline: 7 });
    assert.equal(parse(['http://x/', '/mnt'])['deadline'], 7);
    delete process.env['FUSESTREAM_CONFIG'];
    mkdirSync(join(dir, 'xdg', 'fusestream'), { recursive: true });
    writeFileSync(join(dir, 'xdg', 'fusestream', 'config.json'), JSON.stringify({ 'dir-ttl': 3 }));
    assert.equal(parse(['http://x/', '/mnt'])['dirTtl'], 3);
  });

  void test('bad config entries are usage errors naming the file and the key', () => {
    const cases: [unknown, RegExp][] = [
      [{ 'cache-max-sise': '1G' }, /unknown setting "cache-max-sise"/],
      [{ deadline: 'soon' }, /deadline: "soon" is not a number of seconds/],
      [{ 'cache-max-size': '10 parsecs' }, /cache-max-size: "10 parsecs" is not a size/],
      [{ 'log-level': 'loud' }, /log-level: must be one of/],
      [{ 'allow-other': 'yes' }, /allow-other: must be true or false/],
      [{ 'download-concurrency': 0 }, /download-concurrency: "0" is not a positive whole number/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [obj, re] of cases) {
      const file = config(obj);
      assert.throws(() => parse(['--config', file, 'http://x/', '/mnt']), (e: unknown) => e instanceof UsageError && re.test(e.message) && e.message.includes(file), JSON.stringify(obj));
    }
    writeFileSync(join(dir, 'broken.json'), '{ "deadline": ');
    assert.throws(() => parse(['--config', join(dir, 'broken.json'), 'http://x/', '/mnt']), (e: unknown) => e instanceof UsageError && e.message.includes('broken.json'));
    assert.throws(() => parse(['--config', join(dir, 'missing.json'), 'http://x/', '/mnt']), (e: unknown) => e instanceof UsageError && /no such file/.test(e.message));
  });

  void test('the CLI exits 2 with the message for a bad config file and a bad environment value', async () => {
    const bin = new URL('../../../bin/fusestream.js', import.meta.url).pathname;
    const file = config({ bogus: 1 });
    const r1 = await run(process.execPath, [bin, 'mount', '--config', file, 'http://127.0.0.1:9/', dir], 20_000);
    assert.equal(r1.code, 2, r1.stderr);
    assert.match(r1.stderr, /unknown setting "bogus"/);
    const r2 = await run(process.execPath, [bin, 'mount', 'http://127.0.0.1:9/', dir], 20_000, { env: { ...process.env, FUSESTREAM_DEADLINE: 'never' } });
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /FUSESTREAM_DEADLINE/);
  });

  void test('the table: one entry per Settings field, unique keys, derived variables, valid defaults', () => {
    const fields = Object.keys(defaultSettings()).sort();
    assert.deepEqual(SETTINGS.map((s) => s.field).sort(), fields, 'every Settings field has exactly one entry');
    assert.equal(new Set(SETTINGS.map((s) => s.key)).size, SETTINGS.length, 'keys are unique');
    for (const spec of SETTINGS) assert.equal(spec.env, envName(spec.key));
    assert.equal(envName('cache-max-size'), 'FUSESTREAM_CACHE_MAX_SIZE');
    assert.deepEqual(resolveSettings(), defaultSettings(), 'the defaults satisfy every rule');
    const memfs = settingSpecs('memfs').map((s) => s.key);
    for (const shared of ['deadline', 'log-level', 'allow-other']) {
      assert.ok(memfs.includes(shared) && settingSpecs('mount').some((s) => s.key === shared), `${shared} is one entry shared by mount and memfs`);
    }
  });

  void test('every setting appears in --help with its environment variable and default', async () => {
    const bin = new URL('../../../bin/fusestream.js', import.meta.url).pathname;
    process.env['XDG_CACHE_HOME'] = join(dir, 'xdg-cache'); // the cache-dir default, here and in the child
    for (const name of ['mount', 'memfs'] as const) {
      const r = await run(process.execPath, [bin, name, '--help'], 20_000, { env: { ...process.env } });
      assert.equal(r.code, 0, r.stderr);
      // One line per option once commander's wrapping is undone.
      const help = r.stdout.replace(/\s+/g, ' ');
      const specs = settingSpecs(name);
      assert.ok(specs.length > 0);
      for (const spec of specs) {
        const at = help.indexOf(`--${spec.key} `);
        assert.ok(at >= 0, `${name} --help lists --${spec.key}`);
        const next = help.indexOf(' --', at + 2);
        const line = help.slice(at, next < 0 ? undefined : next);
        assert.ok(line.includes(`env: ${spec.env})`), `${name} --help: ${line} names ${spec.env}`);
        const def = defaultUserValue(spec);
        if (def === undefined) {
          assert.ok(!line.includes('default:'), `${name} --help: ${line} shows no default`);
        } else {
          const shown = spec.kind === 'size' ? defaultText(spec) : JSON.stringify(def);
          assert.ok(line.includes(`default: ${shown}`), `${name} --help: ${line} shows the default ${shown}`);
        }
      }
    }
  });

  void test('a bad value from each source names its source and key', () => {
    const file = join(dir, 'bad.json');
    for (const name of ['mount', 'memfs'] as const) {
      for (const spec of settingSpecs(name)) {
        const bad = badText(spec);
        if (bad === undefined) continue;
        if (spec.kind !== 'boolean') {
          assert.throws(
            () => parseBoth([`--${spec.key}`, bad, ...positionals(name)], name),
            (e: unknown) => e instanceof Error && e.message.includes(`option '--${spec.key} <`) && e.message.includes(`'${bad}' is invalid`),
            `${name} --${spec.key} ${bad}`,
          );
        }
        process.env[spec.env] = bad;
        assert.throws(
          () => parseBoth(positionals(name), name),
          (e: unknown) => e instanceof Error && e.message.includes(`'--${spec.key}`) && e.message.includes(`from env '${spec.env}'`),
          `${name} with ${spec.env}=${bad}`,
        );
        delete process.env[spec.env];
        if (name !== 'mount' || spec.key === 'config') continue;
        writeFileSync(file, JSON.stringify({ [spec.key]: bad }));
        assert.throws(
          () => parseBoth(['--config', file, ...positionals(name)], name),
          (e: unknown) => e instanceof UsageError && e.message.includes(`config file ${file}: ${spec.key}: `),
          `${name} config file {"${spec.key}": "${bad}"}`,
        );
      }
    }
  });

  void test('FUSESTREAM_ALLOW_OTHER is read, not just noticed; the flag still wins', () => {
    process.env['FUSESTREAM_ALLOW_OTHER'] = 'false';
    assert.equal(parse(['http://x/', '/mnt'])['allowOther'], false);
    assert.equal(parse(['--allow-other', 'http://x/', '/mnt'])['allowOther'], true, 'the flag beats the environment');
    process.env['FUSESTREAM_ALLOW_OTHER'] = '1';
    assert.equal(parse(['http://x/', '/mnt'])['allowOther'], true);
  });

  void test('durations reach the pieces in ms, converted exactly once', () => {
    process.env['FUSESTREAM_ATTR_TTL'] = '0.25';
    const file = config({ 'dir-ttl': 2 });
    const { opts, settings } = parseBoth(['--config', file, '--deadline', '2.5', 'http://x/', '/mnt']);
    assert.deepEqual([opts['deadline'], opts['attrTtl'], opts['dirTtl']], [2.5, 0.25, 2], 'commander holds the seconds the user wrote');
    assert.deepEqual([settings.deadlineMs, settings.attrTtlMs, settings.dirTtlMs], [2500, 250, 2000]);
    assert.equal(dataConfigFrom(settings).operationDeadlineMs, 2500, 'the data layer takes ms as they are');
    assert.equal(resolveDataConfig(dataConfigFrom(settings)).operationDeadlineMs, 2500);
    const memfs = parseBoth(['--deadline', '0.5', '/mnt'], 'memfs').settings;
    assert.equal(memfs.deadlineMs, 500, 'memfs shares the deadline entry and its conversion');
    // The pieces' own defaults are the table's, in ms, not a second copy.
    const d = defaultSettings();
    assert.deepEqual([d.deadlineMs, d.attrTtlMs, d.dirTtlMs], [30_000, 10_000, 10_000]);
    assert.equal(DEFAULT_DATA_CONFIG.operationDeadlineMs, d.deadlineMs);
    assert.deepEqual([DEFAULT_DATA_CONFIG.cacheCapBytes, DEFAULT_DATA_CONFIG.downloadConcurrency, DEFAULT_DATA_CONFIG.readAheadMaxBytes], [10 * 1024 ** 3, 8, 8 * 1024 ** 2]);
    assert.deepEqual([DEFAULT_CORE_CONFIG.attrTtlMs, DEFAULT_CORE_CONFIG.entryTtlMs, DEFAULT_CORE_CONFIG.dirTtlMs], [d.attrTtlMs, d.attrTtlMs, d.dirTtlMs]);
  });

  void test('a rule between settings is a usage error naming each value and where it came from', () => {
    process.env['FUSESTREAM_READ_AHEAD_MAX'] = '16M';
    const file = config({ 'cache-max-size': '8M' });
    assert.throws(
      () => parseBoth(['--config', file, 'http://x/', '/mnt']),
      (e: unknown) =>
        e instanceof UsageError &&
        /read-ahead-max \(16M\) must not exceed cache-max-size \(8M\)/.test(e.message) &&
        e.message.includes('read-ahead-max from $FUSESTREAM_READ_AHEAD_MAX') &&
        e.message.includes(`cache-max-size from config file ${file}`),
    );
    assert.throws(() => resolveSettings({ deadlineMs: -1 }), (e: unknown) => e instanceof SettingError && e.keys.includes('deadline'));
    assert.throws(() => resolveSettings({ deadlineMs: 2 ** 31 }), /deadline must be at most/, 'past what a node timer can wait');
    assert.throws(() => parse(['--deadline', '3000000', 'http://x/', '/mnt']), /more than the maximum/);
  });
});
