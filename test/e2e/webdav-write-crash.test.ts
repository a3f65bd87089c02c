// The kill -9 crash test (write-crash.test.ts's procedure, write-crash-run.ts) on a WebDAV
// mount of Apache mod_dav: the daemon serving `fusestream mount webdav+http://…` is killed at
// seeded points of a write-heavy workload, a second mount on the same cache dir shows and
// drains what survived, and Apache's DocumentRoot must then hold for every path its last
// acknowledged version (or what the one operation cut short would have made it), nothing
// half-written and nothing else.
// `npm test` runs 4 of the 24 kill points (every sixth); FUSESTREAM_WRITE_CRASH_ALL=1 or
// stress (FUSESTREAM_FUZZ_BASE) runs them all; one: FUSESTREAM_WRITE_CRASH_ONLY=<index>.
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliMounts } from '../support/cli-mount.js';
import { canRunApache, davAvailable, startApacheDav, type DavServer } from '../support/webdav-servers.js';
import { checkCrashRun, crashRuns, describeTrigger, writeInitialRemote } from './write-crash-run.js';

const stressBase = process.env.FUSESTREAM_FUZZ_BASE;
const BASE = Number(stressBase ?? 9300);
const only = process.env.FUSESTREAM_WRITE_CRASH_ONLY;
const all = stressBase !== undefined || process.env.FUSESTREAM_WRITE_CRASH_ALL === '1';
const skip = !davAvailable('apache') || !canRunApache() ? 'Apache mod_dav is not installed here (or this is not root)' : false;

void describe('write path on WebDAV (Apache): kill -9 of the mount loses nothing acknowledged, leaves nothing half-written', { skip }, () => {
  let dir: string;
  const mounts = new CliMounts();
  const servers: DavServer[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-dav-crash-'));
  });

  after(async () => {
    await mounts.dispose();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const r of crashRuns(BASE, 24, (x) => (only !== undefined ? x.index === Number(only) : all || x.index % 6 === 0))) {
    const { index, seed, trigger, writeBackDelay } = r;
    void test(`run ${index}: seed ${seed}, --write-back-delay ${writeBackDelay}, killed ${describeTrigger(trigger)}`, async () => {
      const work = join(dir, `run${index}`);
      const root = join(work, 'root');
      writeInitialRemote(root, seed);
      const server = await startApacheDav(root);
      servers.push(server);
      const repro = `FUSESTREAM_FUZZ_BASE=${BASE} FUSESTREAM_WRITE_CRASH_ONLY=${index} node scripts/run-tests.mjs webdav-write-crash`;
      await checkCrashRun({ mounts, work, run: r, remoteSpec: `webdav+${server.url}`, remoteDir: root, repro });
    });
  }
});
