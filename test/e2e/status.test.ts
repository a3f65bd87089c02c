// `fusestream status` against a running CLI mount (a child process) of the fault server: with a
// read held mid-body, `status --json` names the mount, its remote and state, its cache, and the
// READ in flight with the file's path; the human form prints the same; the control socket is
// 0600 in a 0700 directory; without a mountpoint every mount of this user is listed; after the
// mount ends, status of that mountpoint is a usage error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { controlDir, controlSocketPath } from '../../src/cli/control.js';
import { startFaultServer, type FaultServer } from '../fakes/fault-server.js';
import { run, sh, start, terminate } from '../support/proc.js';

const here = new URL('.', import.meta.url).pathname;
const cli = join(here, '..', '..', '..', 'bin', 'fusestream.js');

describe('fusestream status', () => {
  let dir: string;
  let server: FaultServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-status-'));
    server = await startFaultServer();
    server.addObject('/obj.bin', 4 * 1024 * 1024);
  });

  after(async () => {
    await server.stop();
    for (const mnt of [join(dir, 'mnt'), join(dir, 'mnt-inv')]) {
      if (readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt)) await run('umount', ['-l', mnt], 5000);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('shows the mount, its remote, its cache and a READ in flight with its path', async () => {
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const mount = start(process.execPath, [cli, 'mount', server.url, mnt, '--cache-dir', join(dir, 'cache'), '--log-level', 'warn']);
    let reader: ReturnType<typeof start> | undefined;
    try {
      await mount.waitFor('mounted', 15_000);
      const stall = server.stallAfter(4096, { count: 2 }); // a HEAD may take one; the GET stalls
      reader = start('cat', [join(mnt, 'obj.bin')]);
      await within(stall.reached, 10_000, 'the read to stall mid-body');

      const r = await run(process.execPath, [cli, 'status', mnt, '--json'], 10_000);
      assert.equal(r.code, 0, r.stderr);
      const [s] = JSON.parse(r.stdout) as { mountpoint: string; remote: string; pid: number; health: { state: string }; cache: { cacheCapBytes: number; dir: string }; inFlight: { opcode: string; path?: string; ageMs: number }[] }[];
      assert.ok(s !== undefined, 'one status');
      assert.equal(s.mountpoint, mnt);
      assert.equal(s.remote, server.url);
      assert.equal(s.pid, mount.child.pid);
      assert.equal(s.health.state, 'online');
      assert.equal(s.cache.cacheCapBytes, 10 * 1024 ** 3, 'the default cap');
      assert.ok(s.cache.dir.startsWith(join(dir, 'cache')), s.cache.dir);
      const read = s.inFlight.find((q) => q.opcode === 'READ');
      assert.ok(read !== undefined, `a READ in flight: ${JSON.stringify(s.inFlight)}`);
      assert.equal(read.path, '/obj.bin');

      const human = await run(process.execPath, [cli, 'status', mnt], 10_000);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /remote: online/);
      assert.match(human.stdout, /READ\s+\d+ ms\s+\/obj\.bin/);

      const all = await run(process.execPath, [cli, 'status', '--json'], 10_000);
      assert.ok((JSON.parse(all.stdout) as { mountpoint: string }[]).some((x) => x.mountpoint === mnt), 'listed without a mountpoint');

      assert.equal(statSync(controlSocketPath(mnt)).mode & 0o777, 0o600, 'the socket is the user\'s only');
      assert.equal(statSync(controlDir()).mode & 0o777, 0o700);

      stall.gate.open();
      const done = await within(reader.done, 20_000, 'the held read to finish');
      assert.equal(done.code, 0, done.stderr);
      const ended = await terminate(mount, 'the mount');
      assert.equal(ended.code, 0, ended.stderr);
      const gone = await run(process.execPath, [cli, 'status', mnt], 10_000);
      assert.equal(gone.code, 2, 'no mount answers any more');
      assert.match(gone.stderr, /no running fusestream mount answers/);
    } finally {
      reader?.child.kill('SIGKILL');
      mount.child.kill('SIGKILL');
    }
  });

  test('invalidate makes a change on the remote visible at once despite hour-long TTLs', async () => {
    const remoteDir = join(dir, 'remote');
    mkdirSync(remoteDir);
    writeFileSync(join(remoteDir, 'f.txt'), 'version one\n');
    const mnt = join(dir, 'mnt-inv');
    mkdirSync(mnt);
    const mount = start(process.execPath, [cli, 'mount', remoteDir, mnt, '--cache-dir', join(dir, 'cache-inv'), '--attr-ttl', '3600', '--dir-ttl', '3600', '--poll-interval', '0', '--log-level', 'warn']);
    try {
      await mount.waitFor('mounted', 15_000);
      assert.equal(await sh(`cat ${mnt}/f.txt`), 'version one\n');
      assert.equal((await run('ls', [mnt], 10_000)).stdout, 'f.txt\n');
      writeFileSync(join(remoteDir, 'f.tmp'), 'version two, longer\n');
      utimesSync(join(remoteDir, 'f.tmp'), new Date(Date.UTC(2026, 0, 2)), new Date(Date.UTC(2026, 0, 2)));
      renameSync(join(remoteDir, 'f.tmp'), join(remoteDir, 'f.txt'));
      writeFileSync(join(remoteDir, 'new.txt'), 'new\n');
      // Without polling and with hour-long TTLs the mount still shows what it saw.
      assert.equal(await sh(`cat ${mnt}/f.txt`), 'version one\n', 'cached: the change is not seen yet');
      const inv = await run(process.execPath, [cli, 'invalidate', mnt, `${mnt}/f.txt`, '.'], 10_000);
      assert.equal(inv.code, 0, inv.stderr);
      assert.match(inv.stdout, /invalidated 2 path\(s\); 2 were cached/);
      assert.equal(await sh(`cat ${mnt}/f.txt`), 'version two, longer\n', 'the new version at once');
      assert.equal((await sh(`stat -c %s ${mnt}/f.txt`)).trim(), '20');
      assert.equal((await run('ls', [mnt], 10_000)).stdout, 'f.txt\nnew.txt\n', 'the new name too');
      const outside = await run(process.execPath, [cli, 'invalidate', mnt, '/etc/passwd'], 10_000);
      assert.equal(outside.code, 2, 'a path outside the mountpoint is a usage error');
      const ended = await terminate(mount, 'the mount');
      assert.equal(ended.code, 0, ended.stderr);
    } finally {
      mount.child.kill('SIGKILL');
    }
  });
});
