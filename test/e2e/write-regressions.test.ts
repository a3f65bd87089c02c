// Regressions of the write path, each one a failure of write-model.test.ts or
// write-crash.test.ts shrunk (write-model-shrink.ts, then by hand) to a few syscalls on a
// `fusestream mount <local dir>` CLI child; client I/O in an fs child (MountDriver). Each test
// names the failure it guards against and checks the remote directory after the unmount (and
// what the client saw). Where the failure needs an upload to have happened first, the test
// waits for the remote directory to show it (`eventually`: state owned by another process).
//   - a file renamed while its first upload is in flight, then rewritten: the remote kept the
//     first bytes under the name and the new ones under a `.conflict-*` name (model seed 7101,
//     crash seeds 9103 and others);
//   - a name deleted on the remote side, made again, renamed while still open: its journaled
//     rename pointed at the deleted remote file, failed with ENOENT "permanent" and was retried
//     until the drain timeout; the file never reached the remote (model seed 7102);
//   - a descriptor opened before another descriptor wrote, and not read from since: once the
//     write was uploaded, reads through it served the old bytes (model seed 203);
//   - a written file renamed after its upload: truncate(2) of the new name failed with ESTALE
//     and the truncation was lost ("unsaved writes are lost" at unmount) (model seed 202);
//   - with uploads held until unmount, a file truncated, renamed over, appended to and renamed
//     again: the drain left the append at a `.conflict-*` name of the old path (crash seed 9116).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliMounts } from '../support/cli-mount.js';
import { MountDriver } from '../support/mount-driver.js';
import { eventually } from '../support/eventually.js';
import { rampBuffer } from '../support/ramp.js';
import { readTree, treeDifferences, type Tree } from '../support/tree-compare.js';

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = constants;
const KiB = 1024;

void describe('write path regressions', () => {
  let dir: string;
  let n = 0;
  const mounts = new CliMounts();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-regressions-'));
  });

  after(async () => {
    await mounts.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A remote holding `initial`, mounted with `options`; `fn` runs with a client on it; then
   * SIGTERM (drain) and the remote must be exactly `want(initial)`. Returns the mount's stdout.
   */
  async function scenario(initial: Tree, options: string[], fn: (c: MountDriver, remote: string) => Promise<void>, want: Tree): Promise<string> {
    const work = join(dir, `s${++n}`);
    const remote = join(work, 'remote');
    mkdirSync(remote, { recursive: true });
    for (const [p, b] of [...initial].sort(([a], [b]) => a.length - b.length)) {
      if (b === null) mkdirSync(join(remote, p));
      else writeFileSync(join(remote, p), b);
    }
    const mnt = mounts.mountpoint(work, 'mnt');
    const m = await mounts.start(['mount', remote, mnt, '--cache-dir', join(work, 'cache'), '--drain-timeout', '10', '--log-level', 'warn', ...options], mnt, 'the mount');
    const client = new MountDriver(mnt, { opMs: 30_000 });
    try {
      await fn(client, remote);
    } finally {
      await client.dispose();
    }
    const { exit } = await mounts.stop(m, 'SIGTERM');
    assert.equal(exit.code, 0, `the mount exits 0; stderr: ${exit.stderr.slice(-2000)}`);
    assert.deepEqual(treeDifferences(readTree(remote), want), [], `the remote after the unmount; mount stdout: ${exit.stdout}\nstderr: ${exit.stderr.slice(-3000)}`);
    return exit.stdout;
  }

  const remoteHas = (remote: string, path: string, bytes: Buffer) => (): boolean => readTree(remote).get(path)?.equals(bytes) ?? false;

  test('a new file renamed while its upload is in flight, then rewritten, ends up under its name (no conflict copy)', async () => {
    // 8 MiB: its put is still running when the rename (one syscall later) arrives.
    const first = rampBuffer(0, 8 * 1024 * KiB, 1);
    const second = Buffer.from('the second version');
    await scenario(
      new Map(),
      ['--write-back-delay', '0'],
      async (c, remote) => {
        await c.writeFile('x.tmp', first);
        await c.rename('x.tmp', 'x', 0);
        await eventually(remoteHas(remote, 'x', first), 20_000, 'the first version to reach the remote as x');
        await c.writeFile('x', second);
      },
      new Map([['x', second]]),
    );
  });

  test('a name deleted, made again and renamed while still open reaches the remote under its new name', async () => {
    const stdout = await scenario(
      new Map([['f2', Buffer.from('the remote file')]]),
      // Held until unmount: the unlink, the create and the rename are all journaled first.
      ['--write-back-delay', '3600'],
      async (c) => {
        await c.unlink('f2');
        const fd = await c.open('f2', O_WRONLY | O_CREAT | O_TRUNC, 0o644);
        await c.rename('f2', 'f1', 0);
        await c.close(fd);
      },
      new Map([['f1', Buffer.alloc(0)]]),
    );
    assert.doesNotMatch(stdout, /not on the remote yet/, 'nothing is left pending');
  });

  test('a descriptor opened before another one wrote reads the written bytes, also after their upload', async () => {
    const old = rampBuffer(0, 192 * KiB, 2);
    const patch = rampBuffer(0, 1000, 3);
    const want = Buffer.from(old);
    patch.copy(want, 100_000);
    await scenario(
      new Map([['f', old]]),
      ['--write-back-delay', '0'],
      async (c, remote) => {
        const reader = await c.open('f', O_RDONLY);
        const writer = await c.open('f', O_RDWR);
        await c.write(writer, patch, 100_000);
        await c.close(writer);
        await eventually(remoteHas(remote, 'f', want), 20_000, 'the write to reach the remote');
        assert.ok((await c.read(reader, 1000, 100_000)).equals(patch), 'the older descriptor sees the write (read after its upload)');
        await c.close(reader);
      },
      new Map([['f', want]]),
    );
  });

  test('truncate(2) of a written file renamed after its upload succeeds and reaches the remote', async () => {
    const old = rampBuffer(0, 192 * KiB, 4);
    const written = Buffer.from(old);
    Buffer.from('hello').copy(written, 0);
    await scenario(
      new Map([['f2', old]]),
      ['--write-back-delay', '0'],
      async (c, remote) => {
        const fd = await c.open('f2', O_WRONLY);
        await c.write(fd, Buffer.from('hello'), 0);
        await c.close(fd);
        await c.rename('f2', 'g', 0);
        await eventually(remoteHas(remote, 'g', written), 20_000, 'the written file to reach the remote as g');
        await c.truncate('g', 1000);
        assert.equal((await c.stat('g')).size, 1000);
      },
      new Map([['g', written.subarray(0, 1000)]]),
    );
  });

  test('with uploads held until unmount: truncated, renamed over, appended to, renamed again: the drain puts it all under the last name', async () => {
    const a = Buffer.from('old-a\n');
    await scenario(
      new Map<string, Buffer | null>([
        ['a.bin', a],
        ['d', null],
        ['d/y.bin', Buffer.from('old-y\n')],
      ]),
      ['--write-back-delay', '3600'],
      async (c) => {
        await c.close(await c.open('d/y.bin', O_WRONLY | O_TRUNC));
        await c.rename('a.bin', 'd/y.bin', 0);
        const fd = await c.open('d/y.bin', O_WRONLY | O_APPEND);
        await c.write(fd, Buffer.from('new\n'), 0);
        await c.close(fd);
        await c.rename('d/y.bin', 'd/x.bin', 0);
      },
      new Map<string, Buffer | null>([
        ['d', null],
        ['d/x.bin', Buffer.concat([a, Buffer.from('new\n')])],
      ]),
    );
  });
});
