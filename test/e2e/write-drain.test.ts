// Unmounting with uploads pending (`fusestream mount <local dir>`, a CLI child; client I/O in
// an fs child): with --write-back-delay 3600 nothing written is uploaded before the unmount,
// so the unmount itself has the uploads to do.
// - `fusestream unmount MNT`: the drain uploads everything; the remote then holds exactly what
//   was written (new files, a file in a new directory, an overwritten file, an empty file, a
//   large one), byte for byte, and the mount process exits 0.
// - SIGTERM with --drain-timeout 0: what was not uploaded stays journaled and the mount names
//   it; nothing on the remote is half-written; a new mount on the same cache dir uploads the
//   rest by itself (seen on the remote while it is still mounted) and shows the written bytes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliMounts } from '../support/cli-mount.js';
import { MountDriver } from '../support/mount-driver.js';
import { rampBuffer } from '../support/ramp.js';
import { eventually } from '../support/eventually.js';
import { readTree, treeDifferences, type Tree } from '../support/tree-compare.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** On the remote before the mount. */
const BEFORE: [string, Buffer][] = [['existing.bin', rampBuffer(0, 100 * KiB, 5)]];
/** Written through the mount (in this order; 'dir' is made first). */
const WRITTEN: [string, Buffer][] = [
  ['new.bin', rampBuffer(0, 3 * MiB + 17, 1)],
  ['dir/inner.bin', rampBuffer(0, 64 * KiB, 2)],
  ['existing.bin', rampBuffer(0, 200 * KiB + 3, 6)],
  ['empty.bin', Buffer.alloc(0)],
  ['big.bin', rampBuffer(0, 8 * MiB, 7)],
];

function expectedAfter(): Tree {
  const t: Tree = new Map([['dir', null]]);
  for (const [p, b] of [...BEFORE, ...WRITTEN]) t.set(p, b);
  return t;
}

void describe('unmount with pending uploads', () => {
  let dir: string;
  const mounts = new CliMounts();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-drain-'));
  });

  after(async () => {
    await mounts.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A remote with BEFORE on it; a mount of it with uploads held for an hour; WRITTEN written. */
  async function mountAndWrite(name: string, extra: string[]): Promise<{ remote: string; cache: string; work: string; m: Awaited<ReturnType<CliMounts['start']>> }> {
    const work = join(dir, name);
    const remote = join(work, 'remote');
    const cache = join(work, 'cache');
    mkdirSync(remote, { recursive: true });
    for (const [p, b] of BEFORE) writeFileSync(join(remote, p), b);
    const mnt = mounts.mountpoint(work, 'mnt');
    const m = await mounts.start(['mount', remote, mnt, '--cache-dir', cache, '--write-back-delay', '3600', '--log-level', 'warn', ...extra], mnt, `the ${name} mount`);
    const client = new MountDriver(mnt, { opMs: 30_000 });
    try {
      await client.mkdir('dir', 0o755);
      for (const [p, b] of WRITTEN) await client.writeFile(p, b);
      for (const [p, b] of WRITTEN) assert.ok((await client.readFile(p)).equals(b), `${p} reads back through the mount`);
    } finally {
      await client.dispose();
    }
    // Nothing is due for an hour: the remote still has only what it had.
    const held = treeDifferences(readTree(remote), new Map(BEFORE));
    assert.deepEqual(held, [], 'with --write-back-delay 3600 nothing is uploaded before the unmount');
    return { remote, cache, work, m };
  }

  test('fusestream unmount drains every pending upload: the remote holds exactly what was written', async () => {
    // 30 s is plenty for these uploads and well inside our 60 s wait for the exit.
    const { remote, m } = await mountAndWrite('drained', ['--drain-timeout', '30']);
    const { exit, unmountCmd } = await mounts.stop(m, 'unmount');
    assert.equal(unmountCmd?.code, 0, `fusestream unmount exits 0: ${unmountCmd?.stderr ?? ''}`);
    assert.equal(exit.code, 0, `the mount exits 0 after draining; stderr: ${exit.stderr.slice(-2000)}`);
    assert.deepEqual(treeDifferences(readTree(remote), expectedAfter()), [], 'the remote after the drain');
  });

  test('SIGTERM with --drain-timeout 0 keeps the rest journaled and names it; the next mount uploads it', async () => {
    const { remote, cache, work, m } = await mountAndWrite('journaled', ['--drain-timeout', '0']);
    const { exit } = await mounts.stop(m, 'SIGTERM');
    const output = `${exit.stdout}\n${exit.stderr}`;
    // Each written file is either uploaded whole or still pending, and then named as such.
    const now = readTree(remote);
    const pending: string[] = [];
    for (const [p, b] of WRITTEN) {
      const got = now.get(p) ?? undefined;
      if (got?.equals(b)) continue;
      const old = BEFORE.find(([q]) => q === p)?.[1];
      assert.ok(got === undefined ? old === undefined : old !== undefined && got.equals(old), `${p} on the remote is its old state or absent, never partial (${got?.length ?? 'absent'} bytes)`);
      pending.push(p);
      assert.ok(output.includes(p), `the stopped mount names ${p} as pending; its output:\n${output.slice(-3000)}`);
    }
    assert.ok(pending.length > 0, 'with --drain-timeout 0 some upload is left for the next mount');

    const mnt2 = mounts.mountpoint(work, 'mnt2');
    const next = await mounts.start(['mount', remote, mnt2, '--cache-dir', cache, '--write-back-delay', '0', '--drain-timeout', '30', '--log-level', 'warn'], mnt2, 'the next mount');
    await eventually(() => treeDifferences(readTree(remote), expectedAfter()).length === 0, 30_000, 'the next mount to upload what the last one left journaled', 100).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; still different: ${treeDifferences(readTree(remote), expectedAfter()).join('; ')}`, { cause: err });
    });
    const client = new MountDriver(mnt2, { opMs: 30_000 });
    try {
      for (const [p, b] of WRITTEN) assert.ok((await client.readFile(p)).equals(b), `${p} through the next mount`);
    } finally {
      await client.dispose();
    }
    const stopped = await mounts.stop(next, 'SIGTERM');
    assert.equal(stopped.exit.code, 0, `the next mount exits 0; stderr: ${stopped.exit.stderr.slice(-2000)}`);
    assert.deepEqual(treeDifferences(readTree(remote), expectedAfter()), [], 'the remote after the next mount');
  });
});
