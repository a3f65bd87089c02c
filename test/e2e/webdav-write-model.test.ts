// The write path's random-operation model checker (write-model-child.ts, the same client and
// initial tree as write-model.test.ts) on a WebDAV mount: `fusestream mount webdav+http://…`
// of Apache mod_dav (the reference WebDAV server, run as www-data on 127.0.0.1). After the
// sequence every descriptor is closed, the mount is stopped the way a user stops it (which
// drains the uploads), and Apache's DocumentRoot must hold the model's final tree byte for
// byte, with no temp or probe file of ours and no mod_dav temp file left behind.
//
// Cases: uploads racing the operations (--write-back-delay 0), and every upload held until
// unmount with fsync waiting for the remote. FUSESTREAM_DAV_SERVER=nginx|rclone runs them on
// that server instead (not part of npm test).
// Reproduce or lengthen: FUSESTREAM_MODEL_SEED=<seed> FUSESTREAM_MODEL_OPS=<n>
//   node scripts/run-tests.mjs webdav-write-model
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { within } from '../../src/base/async.js';
import { CliMounts } from '../support/cli-mount.js';
import { start } from '../support/proc.js';
import { readTree, treeDifferences } from '../support/tree-compare.js';
import { canRunApache, davAvailable, davLeftovers, startDav, type DavKind, type DavServer } from '../support/webdav-servers.js';
import { writeInitialTree } from './write-model-tree.js';

const child = fileURLToPath(new URL('./write-model-child.js', import.meta.url));
const stressBase = process.env.FUSESTREAM_FUZZ_BASE;
const fixedSeed = process.env.FUSESTREAM_MODEL_SEED;
const OPS = Number(process.env.FUSESTREAM_MODEL_OPS ?? (stressBase !== undefined ? 2 : 1) * 1500);
const seedFor = (i: number): number => (fixedSeed !== undefined ? Number(fixedSeed) : Number(stressBase ?? 7200) + i);
const KIND = (process.env.FUSESTREAM_DAV_SERVER ?? 'apache') as DavKind;
const skip = !davAvailable(KIND) || (KIND === 'apache' && !canRunApache()) ? `${KIND} (WebDAV) is not installed here (or this is not root)` : false;

const CASES = [
  { name: `webdav mount of ${KIND}, uploads racing the operations`, options: ['--write-back-delay', '0', '--fsync', 'local'] },
  { name: `webdav mount of ${KIND}, uploads held until unmount, fsync waits for the remote`, options: ['--write-back-delay', '3600', '--fsync', 'remote'] },
];

void describe(`write path on WebDAV (${KIND}): random operations against a model, then the server tree`, { skip }, () => {
  let dir: string;
  const mounts = new CliMounts();
  const servers: DavServer[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-dav-model-'));
  });

  after(async () => {
    await mounts.dispose();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  CASES.forEach((c, index) => {
    const seed = seedFor(index);
    void test(`${c.name}: seed ${seed}, ${OPS} ops`, async () => {
      const work = join(dir, `case${index}`);
      mkdirSync(work);
      const mnt = mounts.mountpoint(work, 'mnt');
      const root = join(work, 'root');
      const init = join(work, 'init');
      const expect = join(work, 'expect');
      for (const d of [root, init, expect]) mkdirSync(d);
      writeInitialTree(init, seed);
      cpSync(init, root, { recursive: true });
      const server = await startDav(KIND, root);
      servers.push(server);
      const args = ['mount', `webdav+${server.url}`, mnt, '--cache-dir', join(work, 'cache'), '--drain-timeout', '30', ...c.options];
      const m = await mounts.start([...args, '--log-level', process.env.FUSESTREAM_MODEL_LOG_LEVEL ?? 'warn'], mnt, 'fusestream mount webdav');

      const repro = `FUSESTREAM_MODEL_SEED=${seed} FUSESTREAM_MODEL_OPS=${OPS} node --enable-source-maps --test --test-name-pattern '${c.name.replace(/[()]/g, '.')}' dist/test/e2e/webdav-write-model.test.js`;
      const client = start(process.execPath, ['--enable-source-maps', child, mnt, String(seed), String(OPS), expect, init, '1']);
      let r;
      try {
        r = await within(client.done, 60_000 + OPS * 60, `the model client (seed ${seed}) to finish ${OPS} ops`);
      } catch (err) {
        client.child.kill('SIGKILL');
        const res = await within(client.done, 10_000, 'the hung model client to die');
        assert.fail(`${err instanceof Error ? err.message : String(err)}; last ops:\n${res.stdout.trimEnd().split('\n').slice(-20).join('\n')}\nreproduce: ${repro}`);
      }
      const failed = r.stdout.split('\n').find((l) => l.startsWith('MISMATCH'));
      assert.ok(
        r.code === 0 && !failed && /^DONE /m.test(r.stdout),
        `seed ${seed}: ${failed ?? `the client exited ${r.code ?? r.signal}`}\nlast ops:\n${r.stdout.trimEnd().split('\n').slice(-40).join('\n')}\nstderr: ${r.stderr.slice(-3000)}\nmount stderr: ${m.stderr()}\nreproduce: ${repro}`,
      );
      const { exit } = await mounts.stop(m, index % 2 === 0 ? 'SIGTERM' : 'unmount');
      assert.equal(exit.code, 0, `the mount exits 0; stderr: ${exit.stderr.slice(-3000)}`);
      const diff = treeDifferences(readTree(root), readTree(expect));
      assert.deepEqual(diff, [], `seed ${seed}: the server's tree after unmount differs from the model:\n${diff.join('\n')}\nmount stderr: ${exit.stderr.slice(-3000)}\nreproduce: ${repro}`);
      assert.deepEqual(davLeftovers(root), [], 'no temp or probe file is left on the server after a clean unmount');
    });
  });
});
