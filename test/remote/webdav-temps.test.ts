// On a server whose PUT is not atomic (rclone serve webdav writes in place), puts go through a
// hidden temp name and a MOVE. A temp that a killed writer of this host left is removed before
// the next put into its directory; another host's temp (its writer may be alive) is left; both
// stay hidden from listings and reserved.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebdavRemote } from '../../src/remote/webdav/webdav-remote.js';
import { rampSource } from './contract.js';
import { rejectsKind } from '../support/remote-asserts.js';
import { davAvailable, startRcloneDav, type DavServer } from '../support/webdav-servers.js';

const signal = new AbortController().signal;

void describe('WebDAV temp files on rclone serve webdav', { skip: davAvailable('rclone') ? false : 'rclone is not installed here' }, () => {
  let root: string;
  let server: DavServer;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fusestream-dav-temps-'));
    server = await startRcloneDav(root);
  });
  after(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('a dead writer of this host loses its temp at the next put there; other hosts keep theirs; listings hide both', async () => {
    const host = hostname().replace(/[^A-Za-z0-9]+/g, '').slice(0, 32) || 'host';
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(dead !== undefined && dead > 0);
    const stale = `.fusestream-davtmp-${host}-${dead}-0a0b0c0d0e0f`;
    const foreign = `.fusestream-davtmp-someotherhost-${process.pid}-0a0b0c0d0e0f`;
    writeFileSync(join(root, stale), 'half an upload');
    writeFileSync(join(root, foreign), 'another host, maybe still writing');
    const remote = new WebdavRemote({ baseUrl: server.url });
    try {
      await remote.probe(AbortSignal.timeout(10_000));
      assert.equal(remote.traits.atomicPut, false, 'rclone: puts go through a temp');
      assert.deepEqual((await remote.list('', signal)).map((e) => e.name), [], 'temps are hidden');
      await rejectsKind(remote.put(stale, rampSource(3, 1), { signal }), 'invalid', 'a temp name is reserved');
      await remote.put('f.bin', rampSource(100_000, 1), { signal });
      assert.deepEqual(readdirSync(root).sort(), [foreign, 'f.bin'].sort(), 'the stale temp is gone, the foreign one kept, no temp of ours left');
    } finally {
      await remote.close();
    }
  });
});
