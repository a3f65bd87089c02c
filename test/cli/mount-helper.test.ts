// mount.fusestream's argument mapping (cli/mount-helper.ts), with the argv mount(8) passes:
// `-o` options become the mount's flags through the settings table, the generic options of
// mount and fstab are ignored, `ro` is --read-only, an unknown option is refused unless -s,
// -f does nothing, and the result always mounts with --daemon. (The helper run by the real
// mount(8): test/e2e/daemon-mount.test.ts.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { settingSpecs } from '../../src/base/settings.js';
import { defaultLogFile } from '../../src/cli/daemon.js';
import { mountHelperPlan, mountOptionName } from '../../src/cli/mount-helper.js';
import { UsageError } from '../../src/cli/usage-error.js';

void describe('mount.fusestream', () => {
  test('the argv of mount -t fuse.fusestream with an fstab line\'s options', () => {
    const plan = mountHelperPlan(['https://example.org/files/', '/mnt/files', '-o', 'rw,defaults,_netdev,noauto,user,nofail,allow_other,cache_max_size=20G,x-systemd.automount,comment=x,write_back_delay=0.5', '-n']);
    assert.deepEqual(plan, {
      kind: 'mount',
      args: ['mount', 'https://example.org/files/', '/mnt/files', '--allow-other', '--cache-max-size', '20G', '--write-back-delay', '0.5', '--daemon'],
    });
  });

  test('ro, log_file, booleans with a value, -oOPTS and repeated -o', () => {
    const plan = mountHelperPlan(['/srv/share', '/mnt/share', '-oro,log_file=/var/log/share.log', '-o', 'offline=yes,allow_other=false', '-t', 'fuse.fusestream', '-v']);
    assert.deepEqual(plan, { kind: 'mount', args: ['mount', '/srv/share', '/mnt/share', '--read-only', '--log-file', '/var/log/share.log', '--offline', '--daemon'] });
  });

  test('every setting of mount has its option', () => {
    for (const spec of settingSpecs('mount')) {
      const opt = mountOptionName(spec.key);
      const plan = mountHelperPlan(['/r', '/m', '-o', spec.kind === 'boolean' ? opt : `${opt}=7`]);
      assert.ok(plan.kind === 'mount' && plan.args.includes(`--${spec.key}`), `${opt} → --${spec.key}`);
    }
  });

  test('unknown options are refused unless sloppy; -f is a fake mount; bad usage', () => {
    assert.throws(() => mountHelperPlan(['/r', '/m', '-o', 'cache_max_sise=1G']), (e: unknown) => e instanceof UsageError && /unknown mount option "cache_max_sise=1G"/.test(e.message));
    assert.deepEqual(mountHelperPlan(['/r', '/m', '-s', '-o', 'bogus,deadline=5']), { kind: 'mount', args: ['mount', '/r', '/m', '--deadline', '5', '--daemon'] });
    assert.deepEqual(mountHelperPlan(['/r', '/m', '-f', '-o', 'defaults']), { kind: 'fake' });
    assert.throws(() => mountHelperPlan(['/r', '/m', '-o', 'deadline']), /needs a value/);
    assert.throws(() => mountHelperPlan(['/r', '/m', '-o', 'allow_other=maybe']), /not true or false/);
    assert.throws(() => mountHelperPlan(['/m', '-o', 'defaults']), /usage: mount\.fusestream REMOTE MOUNTPOINT/);
    assert.throws(() => mountHelperPlan(['/r', '/m', '-N', '/proc/1/ns/mnt']), /not supported/);
  });

  test('the default daemon log is named after the mountpoint', () => {
    const log = defaultLogFile('/mnt/my data/x');
    assert.match(log, /\/mnt-my\\x20data-x\.log$/);
    if (process.getuid?.() === 0) assert.equal(log, '/var/log/fusestream/mnt-my\\x20data-x.log');
  });
});
