// `fusestream flush MNT` against a CLI mount of a local directory (a child process; client I/O
// from an fs child) with --write-back-delay 3600, so nothing written is uploaded unless
// something asks for it:
// - flush exits 0 once the remote holds exactly what was written, byte for byte, including a
//   file still open for writing (flush saves it first); (progress output: test/cli/flush-progress);
// - with the remote made read-only (a read-only bind mount, which refuses root too) flush
//   exits 1 when its timeout passes and names every pending file with its last error; made
//   writable again, a second flush uploads everything;
// - usage: a bad --timeout and a path no mount serves exit 2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, CliMounts, isMounted } from '../support/cli-mount.js';
import { MountDriver } from '../support/mount-driver.js';
import { run } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';
import { readTree, treeDifferences, type Tree } from '../support/tree-compare.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const WRITTEN: [string, Buffer][] = [
  ['a.bin', rampBuffer(0, 3 * MiB + 5, 11)],
  ['dir/b.bin', rampBuffer(0, 64 * KiB, 12)],
  ['empty.bin', Buffer.alloc(0)],
];

const flushCmd = (args: string[], ms: number): ReturnType<typeof run> => run(process.execPath, ['--enable-source-maps', CLI, 'flush', ...args], ms);

void describe('fusestream flush', () => {
  let dir: string;
  const mounts = new CliMounts();
  const binds: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-flush-'));
  });

  after(async () => {
    const errors: unknown[] = [];
    await mounts.dispose().catch((e: unknown) => errors.push(e));
    for (const b of binds) if (isMounted(b)) await run('umount', ['-l', b], 10_000).catch((e: unknown) => errors.push(e));
    rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  });

  /** A mount of an empty local dir holding uploads for an hour, with WRITTEN written; the caller disposes the driver. */
  async function mountAndWrite(name: string): Promise<{ remote: string; m: Awaited<ReturnType<CliMounts['start']>>; c: MountDriver }> {
    const work = join(dir, name);
    const remote = join(work, 'remote');
    mkdirSync(remote, { recursive: true });
    const mnt = mounts.mountpoint(work, 'mnt');
    const m = await mounts.start(['mount', remote, mnt, '--cache-dir', join(work, 'cache'), '--write-back-delay', '3600', '--drain-timeout', '0', '--log-level', 'warn'], mnt, `the ${name} mount`);
    const c = new MountDriver(mnt, { opMs: 30_000 });
    await c.mkdir('dir', 0o755);
    for (const [p, b] of WRITTEN) await c.writeFile(p, b);
    assert.deepEqual(treeDifferences(readTree(remote), new Map()), [], 'nothing uploaded before a flush (write-back delay of an hour)');
    return { remote, m, c };
  }

  function everything(extra: [string, Buffer][] = []): Tree {
    const want: Tree = new Map([['dir', null]]);
    for (const [p, b] of [...WRITTEN, ...extra]) want.set(p, b);
    return want;
  }

  test('returns 0 once the remote holds every written byte, an open file included', async () => {
    const open = rampBuffer(0, 200 * KiB + 1, 13);
    const { remote, m, c } = await mountAndWrite('ok');
    let fd = -1;
    try {
      fd = await c.open('open.bin', constants.O_CREAT | constants.O_WRONLY, 0o644);
      await c.write(fd, open, 0);
      const r = await flushCmd([m.mnt, '--timeout', '120'], 180_000);
      assert.equal(r.code, 0, `flush: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /flushed: every change is on the remote/);
      assert.deepEqual(treeDifferences(readTree(remote), everything([['open.bin', open]])), [], 'the remote holds exactly what was written');
      const status = await run(process.execPath, [CLI, 'status', m.mnt, '--json'], 10_000);
      const [s] = JSON.parse(status.stdout) as { uploads: { pending: number } }[];
      assert.equal(s?.uploads.pending, 0, 'status agrees: nothing pending');
      await c.close(fd);
      fd = -1;
    } finally {
      if (fd >= 0) await c.close(fd).catch(() => undefined);
      await c.dispose();
    }
    const { exit } = await mounts.stop(m, 'SIGTERM');
    assert.equal(exit.code, 0, exit.stderr);
  });

  test('exits 1 naming each pending file and its error when the remote refuses writes', async () => {
    const { remote, m, c } = await mountAndWrite('refused');
    await c.dispose();
    // A read-only bind mount over the remote dir: EROFS for everyone, root included.
    binds.push(remote);
    const bind = await run('mount', ['--bind', remote, remote], 10_000);
    assert.equal(bind.code, 0, bind.stderr);
    const ro = await run('mount', ['-o', 'remount,ro,bind', remote], 10_000);
    assert.equal(ro.code, 0, ro.stderr);

    const r = await flushCmd([m.mnt, '--timeout', '5'], 180_000);
    assert.equal(r.code, 1, `flush: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /not flushed: \d+ change\(s\)/);
    for (const p of ['dir', ...WRITTEN.map(([q]) => q)]) {
      const line = r.stdout.split('\n').find((l) => l.includes(` /${p} `));
      assert.ok(line !== undefined, `${p} is named as pending:\n${r.stdout}`);
    }
    // The changes tried have their error; one waiting behind a failing change (a file in the
    // new directory) has not been tried.
    for (const p of ['dir', 'a.bin']) {
      const line = r.stdout.split('\n').find((l) => l.includes(` /${p} `)) ?? '';
      assert.match(line, /attempt\(s\); last error: .*(EROFS|read-only)/i, `${p} comes with its last error: ${line}`);
    }
    assert.deepEqual(treeDifferences(readTree(remote), new Map()), [], 'nothing reached the read-only remote');

    // Nothing is lost: made writable again, a second flush uploads it all.
    const rw = await run('mount', ['-o', 'remount,rw,bind', remote], 10_000);
    assert.equal(rw.code, 0, rw.stderr);
    const again = await flushCmd([m.mnt, '--timeout', '120'], 180_000);
    assert.equal(again.code, 0, `second flush: ${again.stdout}${again.stderr}`);
    assert.deepEqual(treeDifferences(readTree(remote), everything()), [], 'the remote holds exactly what was written');
    const { exit } = await mounts.stop(m, 'SIGTERM');
    assert.equal(exit.code, 0, exit.stderr);
  });

  test('a bad --timeout or a path no mount serves is a usage error (exit 2)', async () => {
    const bad = await flushCmd([dir, '--timeout', 'soon'], 30_000);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /"soon" is not a number of seconds/);
    writeFileSync(join(dir, 'plain'), '');
    const none = await flushCmd([dir, '--timeout', '1'], 30_000);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /no running fusestream mount answers/);
  });
});
