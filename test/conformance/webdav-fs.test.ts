// The conformance scenarios on RemoteFs read-write over WebdavRemote on Apache mod_dav (the
// reference WebDAV server, as www-data on 127.0.0.1), called directly and through a mount: the
// same answers as the reference model, with the write path's journal and upload queue (uploads
// at once). WebDAV keeps no symlinks, modes or atimes (docs/SEMANTICS.md), so those scenarios
// are skipped with the reason.
import { after, before } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/observability/logger.js';
import { WebdavRemote } from '../../src/remote/webdav/webdav-remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { Journal } from '../../src/store/journal.js';
import { CoreDriver } from '../support/core-driver.js';
import type { FsDriver } from '../support/fs-driver.js';
import { openMountDriver } from '../support/mount-driver.js';
import { rampBuffer } from '../support/ramp.js';
import { canRunApache, davAvailable, startApacheDav, type DavServer } from '../support/webdav-servers.js';
import { FIXTURE } from './fixture.js';
import { runConformance } from './scenarios.js';

const available = davAvailable('apache') && canRunApache();
let dir: string;
const servers: DavServer[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-dav-conformance-'));
});
after(async () => {
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Apache serving a fresh copy of the fixture; a RemoteFs over it with its own cache and journal. */
async function davFsDriver(name: string, wrap: (fs: RemoteFs) => Promise<FsDriver>): Promise<FsDriver> {
  const root = join(dir, `root-${name}`);
  for (const d of FIXTURE.dirs) mkdirSync(join(root, d), { recursive: true });
  for (const f of FIXTURE.files) writeFileSync(join(root, f.path), rampBuffer(0, f.size, f.seed));
  const server = await startApacheDav(root);
  servers.push(server);
  const remote = new WebdavRemote({ baseUrl: server.url });
  await remote.probe(AbortSignal.timeout(10_000));
  const cacheDir = join(dir, `cache-${name}`);
  const data = await DataCache.open({ cacheDir, remote, logger: silentLogger() });
  const journal = Journal.open(join(cacheDir, 'cache.db'), { remote: remote.id });
  const fs = new RemoteFs({
    remote,
    data,
    logger: silentLogger(),
    config: { negativeTtlMs: 0 },
    upload: { journal, concurrency: 4, writeBackDelayMs: 0, fsync: 'local', drainTimeoutMs: 10_000 },
  });
  const driver = await wrap(fs);
  const dispose = driver.dispose.bind(driver);
  driver.dispose = async () => {
    await dispose();
    await fs.close();
    journal.close();
    await data.close();
    await remote.close();
  };
  return driver;
}

if (available) {
  const CAPS = ['writable', 'rename-flags'] as const;
  runConformance('RemoteFs read-write over WebDAV (Apache mod_dav), direct', () => davFsDriver('direct', (fs) => Promise.resolve(new CoreDriver(fs))), CAPS);
  runConformance('RemoteFs read-write over WebDAV (Apache mod_dav), mounted', () => davFsDriver('mounted', (fs) => openMountDriver(fs)), CAPS);
}
