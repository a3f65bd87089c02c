// `fusestream mount … --daemon` and mount(8) with the mount.fusestream helper, as root:
// - --daemon returns 0 only once the mount is ready (a child process reads a file at once),
//   names the daemon's pid and log file; the daemon appends its log there and exits 0 after
//   `fusestream unmount`;
// - --daemon fails with exit 2 and the reason for a remote that does not exist, an http remote
//   nobody answers, a missing mountpoint, a non-empty one and a busy one (already mounted),
//   and leaves nothing mounted (the parent waits for the failed daemon to exit);
// - the real mount(8): `mount -t fuse.fusestream REMOTE MNT -o …` and an fstab line (`mount
//   -T FSTAB MNT`) find the helper at /sbin/mount.fuse.fusestream, mount, serve a read, and
//   `umount` ends the daemon. mount(8) looks for helpers in /sbin only, so the test runs it in
//   a private mount namespace (unshare -m) where an overlay over /usr/sbin (/sbin links there)
//   holds a symlink to bin/mount.fusestream.js: the machine's /sbin is never written. Every
//   daemon is stopped by its pid and every mountpoint unmounted, even when a test fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmount } from '../../src/kernel/mount.js';
import { CLI, isMounted } from '../support/cli-mount.js';
import { eventually } from '../support/eventually.js';
import { run, type RunResult } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';

const HELPER = join(CLI, '..', 'mount.fusestream.js');
const MINUTE = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void describe('--daemon and mount -t fuse.fusestream', () => {
  let dir: string;
  let remote: string;
  const data = rampBuffer(0, 100 * 1024 + 3, 31);
  /** Daemons the tests started (their pids, as the parent printed them). */
  const daemons = new Set<number>();
  const mountpoints = new Set<string>();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-daemon-'));
    remote = join(dir, 'remote');
    mkdirSync(remote);
    writeFileSync(join(remote, 'f.bin'), data);
  });

  after(async () => {
    const errors: unknown[] = [];
    for (const pid of daemons) {
      if (!alive(pid)) continue;
      process.kill(pid, 'SIGTERM');
      await eventually(() => !alive(pid), 30_000, `daemon ${pid} to exit after SIGTERM`).catch(() => {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      });
    }
    for (const mnt of mountpoints) if (isMounted(mnt)) await unmount(mnt, { lazy: true }).catch((e: unknown) => errors.push(e));
    rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  });

  function mountpoint(name: string): string {
    const mnt = join(dir, name);
    mkdirSync(mnt, { recursive: true });
    mountpoints.add(mnt);
    return mnt;
  }

  /** Notes the daemon pid a successful start printed (so cleanup can stop it). */
  function daemonOf(r: RunResult): number {
    const m = /daemon pid (\d+), log (\S+)/.exec(r.stdout);
    assert.ok(m !== null, `the pid and log named: ${r.stdout}${r.stderr}`);
    const pid = Number(m[1]);
    daemons.add(pid);
    return pid;
  }

  const daemon = (args: string[]): Promise<RunResult> => run(process.execPath, [CLI, 'mount', ...args, '--daemon', '--log-level', 'info'], 3 * MINUTE);

  test('--daemon returns once the mount is ready; the daemon logs to its file and exits after unmount', async () => {
    const mnt = mountpoint('mnt-ok');
    const log = join(dir, 'logs', 'ok.log');
    const r = await daemon([remote, mnt, '--cache-dir', join(dir, 'cache-ok'), '--log-file', log]);
    assert.equal(r.code, 0, r.stderr);
    const pid = daemonOf(r);
    assert.match(r.stdout, new RegExp(`^mounted \\S+ on ${mnt} \\(read-write\\); daemon pid ${pid}, log ${log}\\n$`));
    assert.ok(isMounted(mnt), 'mounted when --daemon returned');
    const cmp = await run('cmp', [join(mnt, 'f.bin'), join(remote, 'f.bin')], MINUTE);
    assert.equal(cmp.code, 0, `read through the mount: ${cmp.stdout}${cmp.stderr}`);
    const status = await run(process.execPath, [CLI, 'status', mnt, '--json'], MINUTE);
    assert.equal((JSON.parse(status.stdout) as { pid: number }[])[0]?.pid, pid, 'status names the daemon');

    const busy = await daemon([remote, mnt, '--cache-dir', join(dir, 'cache-busy'), '--log-file', join(dir, 'logs', 'busy.log')]);
    assert.equal(busy.code, 2, `a busy mountpoint: ${busy.stdout}${busy.stderr}`);
    assert.match(busy.stderr, /is already a FUSE mount \(busy\)/);

    const u = await run(process.execPath, [CLI, 'unmount', mnt], MINUTE);
    assert.equal(u.code, 0, u.stderr);
    await eventually(() => !alive(pid), 30_000, 'the daemon to exit after the unmount');
    assert.equal(isMounted(mnt), false);
    const text = readFileSync(log, 'utf8');
    assert.match(text, /"msg":"mounted"/, 'the daemon logs to its file');
    assert.match(text, /"msg":"unmounted"/);
  });

  test('--daemon exits 2 with the reason when the mount cannot be made, and leaves nothing mounted', async () => {
    const logs = join(dir, 'logs');
    const cases: [string, string[], RegExp][] = [
      ['a remote that does not exist', [join(dir, 'no-such-remote'), mountpoint('mnt-f1')], /neither an http\(s\) URL nor an existing directory/],
      ['an http remote nobody answers', ['http://127.0.0.1:1/', mountpoint('mnt-f2'), '--deadline', '2'], /cannot reach the remote/],
      ['a mountpoint that does not exist', [remote, join(dir, 'no-such-mnt')], /mountpoint \S+ does not exist/],
      ['a mountpoint that is not empty', [remote, dir], /is not empty/],
    ];
    for (const [what, args, message] of cases) {
      const r = await daemon([...args, '--cache-dir', join(dir, 'cache-fail'), '--log-file', join(logs, 'fail.log')]);
      assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.doesNotMatch(r.stdout, /daemon pid/, what);
    }
    for (const mnt of mountpoints) assert.equal(isMounted(mnt), false, `${mnt} not mounted`);
  });

  test('mount -t fuse.fusestream and an fstab line go through /sbin/mount.fuse.fusestream', async () => {
    const ns = join(dir, 'ns');
    mkdirSync(join(ns, 'upper'), { recursive: true });
    mkdirSync(join(ns, 'work'));
    const m1 = mountpoint('mnt-t');
    const m2 = mountpoint('mnt-fstab');
    const fstab = join(ns, 'fstab');
    writeFileSync(fstab, `# a line as it would stand in /etc/fstab\n${remote} ${m2} fuse.fusestream defaults,_netdev,noauto,allow_other,cache_dir=${join(dir, 'cache-fstab')},cache_max_size=20G,log_file=${join(dir, 'logs', 'fstab.log')} 0 0\n`);
    const script = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir=${ns}/upper,workdir=${ns}/work /usr/sbin`,
      `ln -s ${HELPER} /usr/sbin/mount.fuse.fusestream`,
      `mount -t fuse.fusestream -o rw,defaults,_netdev,cache_dir=${join(dir, 'cache-t')},cache_max_size=1G,ro,log_file=${join(dir, 'logs', 't.log')} ${remote} ${m1}`,
      `cmp ${m1}/f.bin ${remote}/f.bin`,
      `grep " ${m1} " /proc/self/mountinfo`,
      `mount -T ${fstab} ${m2}`,
      `cmp ${m2}/f.bin ${remote}/f.bin`,
      `grep " ${m2} " /proc/self/mountinfo`,
      `umount ${m1}`,
      `umount ${m2}`,
      'echo unmounted',
    ].join('\n');
    const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], 3 * MINUTE);
    for (const m of r.stdout.matchAll(/daemon pid (\d+)/g)) daemons.add(Number(m[1]));
    assert.equal(r.code, 0, `the mount(8) script failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`mounted \\S+ on ${m1} \\(read-only\\); daemon pid \\d+, log ${join(dir, 'logs', 't.log')}`), 'ro → --read-only');
    assert.match(r.stdout, / - fuse\.fusestream \S+ ro,/, 'the kernel mount is read-only');
    assert.match(r.stdout, new RegExp(`mounted \\S+ on ${m2} \\(read-write\\)`));
    assert.match(r.stdout, /allow_other/, 'allow_other reached the kernel mount');
    assert.match(r.stdout, /unmounted\n$/);
    for (const pid of [...r.stdout.matchAll(/daemon pid (\d+)/g)].map((m) => Number(m[1]))) {
      await eventually(() => !alive(pid), 30_000, `the daemon ${pid} to exit after umount`);
    }
    assert.ok(existsSync(join(dir, 'logs', 'fstab.log')), 'log_file=… reached the daemon');
  });
});
