// A change on the remote is visible through the mount within the poll interval, even with
// hour-long attribute, entry and directory TTLs and a kernel that holds the old pages, size
// and a negative entry: a file rewritten (other size and bytes), a file deleted, a file added.
// Every read seen meanwhile is exactly one version, never a mix or a truncated file. Local
// remote, a real mount, client I/O in child processes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, utimesSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { startPythonHttp } from '../support/file-servers.js';
import { eventually } from '../support/eventually.js';
import { run, sh } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';
import { tempDir } from '../support/mounted.js';
import { withRemoteMount } from '../support/remote-mount.js';

const HOUR = 3_600_000;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const V1 = rampBuffer(0, 100_000, 1);
const V2 = rampBuffer(0, 150_000, 2);

/** Writes `data` as `root`/f.bin the way a server's files change: a temp file renamed over it, dated day `day` of 2026. */
function putVersion(root: string, data: Buffer, day: number): void {
  writeFileSync(join(root, 'f.tmp'), data);
  utimesSync(join(root, 'f.tmp'), new Date(Date.UTC(2026, 0, day)), new Date(Date.UTC(2026, 0, day)));
  renameSync(join(root, 'f.tmp'), join(root, 'f.bin'));
}

/**
 * Reads through the mount until the rewrite (V1 → V2) shows, bounded; every read seen on the
 * way is exactly one version, or fails with an error (a reader whose version changed under its
 * open handle gets ESTALE, as documented), never a mix or a truncated file.
 */
async function untilRewritten(read: () => Promise<string>): Promise<void> {
  const seen: string[] = [];
  await eventually(
    async () => {
      const h = await read().catch(() => 'error');
      const version = h === 'error' ? 'an error' : h === sha(V1) ? 'v1' : h === sha(V2) ? 'v2' : `a mix or a truncated file (sha256 ${h})`;
      seen.push(version);
      return version === 'v2';
    },
    10_000,
    'the rewritten file to read as v2 through the mount',
  ).catch((err: unknown) => {
    // Say what the reads saw meanwhile (an old version, errors), not only that time ran out.
    throw new Error(`${err instanceof Error ? err.message : String(err)}; the last reads saw: ${seen.slice(-8).join(', ')}`, { cause: err });
  });
  assert.deepEqual([...new Set(seen)].filter((v) => v !== 'v1' && v !== 'v2' && v !== 'an error'), [], `every read was one version or an error: ${seen.join(', ')}`);
}

describe('freshness with long TTLs', () => {
  test('a rewritten, a deleted and an added file show within the poll interval; no read ever mixes versions', async () => {
    const tmp = tempDir();
    const root = join(tmp.path, 'remote');
    mkdirSync(root);
    putVersion(root, V1, 1);
    writeFileSync(join(root, 'gone.txt'), 'soon gone\n');
    const remote = new LocalRemote({ root });
    try {
      await withRemoteMount(
        remote,
        async ({ mnt, poller, notifier }) => {
          // What a reader sees: the sha256 and length of the whole file as `cat` reads it.
          // sha256sum reads the file itself: a read that fails makes it fail (a pipe would hash the part before the error).
          const read = async (): Promise<string> => (await sh(`sha256sum < ${join(mnt, 'f.bin')}`)).split(' ')[0] ?? '';
          assert.equal(await read(), sha(V1));
          assert.equal((await sh(`stat -c %s ${join(mnt, 'f.bin')}`)).trim(), String(V1.length));
          assert.equal((await run('stat', [join(mnt, 'new.txt')], 10_000)).code, 1, 'new.txt is absent (and the kernel caches that)');
          assert.equal((await run('stat', [join(mnt, 'gone.txt')], 10_000)).code, 0);

          // The remote changes: f.bin rewritten (larger, other bytes), gone.txt deleted, new.txt added.
          putVersion(root, V2, 2);
          rmSync(join(root, 'gone.txt'));
          writeFileSync(join(root, 'new.txt'), 'fresh\n');
          const roundsBefore = poller.totals.rounds;

          await untilRewritten(read);
          // Invalidations travel to the kernel asynchronously (a thread writes them): the size a
          // stat shows is new once they are delivered, a moment after the poll round.
          await notifier.flushed();
          assert.equal((await sh(`stat -c %s ${join(mnt, 'f.bin')}`)).trim(), String(V2.length), 'the new size, not the cached one');
          assert.notEqual((await run('stat', [join(mnt, 'gone.txt')], 10_000)).code, 0, 'the deleted file is gone');
          assert.equal((await sh(`cat ${join(mnt, 'new.txt')}`)).toString(), 'fresh\n', 'the added file is there despite the cached "no such file"');
          assert.ok(poller.totals.rounds > roundsBefore, 'seen by the poller, not by a TTL');
          assert.ok(poller.totals.changed >= 1 && poller.totals.added >= 1 && poller.totals.removed >= 1, JSON.stringify(poller.totals));
        },
        { core: { attrTtlMs: HOUR, entryTtlMs: HOUR, dirTtlMs: HOUR, negativeTtlMs: HOUR }, pollIntervalMs: 300 },
      );
    } finally {
      await remote.close();
      tmp.cleanup();
    }
  });

  test("python's http.server (a listing without sizes or dates): a rewritten file shows within the poll interval, each read one version", async () => {
    const tmp = tempDir();
    const root = join(tmp.path, 'www');
    mkdirSync(root);
    putVersion(root, V1, 1);
    const server = await startPythonHttp(root);
    const remote = new HttpRemote({ baseUrl: server.url });
    try {
      await withRemoteMount(
        remote,
        async ({ mnt, poller, notifier }) => {
          // sha256sum reads the file itself: a read that fails makes it fail (a pipe would hash the part before the error).
          const read = async (): Promise<string> => (await sh(`sha256sum < ${join(mnt, 'f.bin')}`)).split(' ')[0] ?? '';
          assert.equal(await read(), sha(V1));
          putVersion(root, V2, 2);
          await untilRewritten(read);
          await notifier.flushed();
          assert.equal((await sh(`stat -c %s ${join(mnt, 'f.bin')}`)).trim(), String(V2.length));
          assert.ok(poller.totals.changed >= 1, `the poller saw it by a HEAD: ${JSON.stringify(poller.totals)}`);
        },
        { core: { attrTtlMs: HOUR, entryTtlMs: HOUR, dirTtlMs: HOUR, negativeTtlMs: HOUR }, pollIntervalMs: 300 },
      );
    } finally {
      await remote.close();
      await server.stop();
      tmp.cleanup();
    }
  });
});
