// Mount settings: flag > environment (FUSESTREAM_*) > config file > default, with the same
// parsers for every source and a UsageError naming the file and key for any bad config entry.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { applyConfigFile, mountOptions } from '../../src/cli/settings.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { run } from '../support/proc.js';

const ENV_KEYS = ['FUSESTREAM_DEADLINE', 'FUSESTREAM_CACHE_MAX_SIZE', 'FUSESTREAM_CONFIG', 'FUSESTREAM_LOG_LEVEL', 'XDG_CONFIG_HOME'];

/** Parses mount arguments the way the CLI does, without mounting: the resolved options. */
function parse(args: string[]): Record<string, unknown> {
  const cmd = new Command('mount').exitOverride().argument('<remote>').argument('<mountpoint>');
  for (const o of mountOptions()) cmd.addOption(o);
  let got: Record<string, unknown> = {};
  cmd.action((_r: string, _m: string, o: Record<string, unknown>) => {
    got = o;
  });
  applyConfigFile(cmd, args);
  cmd.parse(args, { from: 'user' });
  return got;
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
});
