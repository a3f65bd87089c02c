// The read subset of the conformance scenarios on RemoteFs (the filesystem over a Remote) with a
// local directory as the remote and a real cache: called directly (no kernel), and through a
// mount. A read-only remote answers what it can (stat, readdir, read, errnos of lookups) exactly
// as the reference model does; the writing scenarios need 'writable' and say so when skipped.
import { after, before } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/observability/logger.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { CoreDriver } from '../support/core-driver.js';
import type { FsDriver } from '../support/fs-driver.js';
import { openMountDriver } from '../support/mount-driver.js';
import { rampBuffer } from '../support/ramp.js';
import { FIXTURE } from './fixture.js';
import { runConformance } from './scenarios.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fusestream-conformance-'));
  for (const d of FIXTURE.dirs) mkdirSync(join(dir, 'remote', d), { recursive: true });
  for (const f of FIXTURE.files) writeFileSync(join(dir, 'remote', f.path), rampBuffer(0, f.size, f.seed));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The fixture in an in-memory remote. */
function memoryRemote(): MemoryRemote {
  const remote = new MemoryRemote();
  for (const d of FIXTURE.dirs) remote.setDir(d);
  for (const f of FIXTURE.files) remote.setFile(f.path, rampBuffer(0, f.size, f.seed));
  return remote;
}

/** A RemoteFs over the fixture (on disk unless `remote` is given), with its own cache; `wrap` makes the driver. */
async function remoteFsDriver(name: string, wrap: (fs: RemoteFs) => Promise<FsDriver>, remote: Remote = new LocalRemote({ root: join(dir, 'remote') })): Promise<FsDriver> {
  const data = await DataCache.open({ cacheDir: join(dir, `cache-${name}`), remote, logger: silentLogger() });
  const fs = new RemoteFs({ remote, data, logger: silentLogger(), config: { negativeTtlMs: 0 } });
  const driver = await wrap(fs);
  const dispose = driver.dispose.bind(driver);
  driver.dispose = async () => {
    await dispose();
    await fs.close();
    await data.close();
    await remote.close();
  };
  return driver;
}

runConformance('RemoteFs over a local directory, direct', () => remoteFsDriver('direct', (fs) => Promise.resolve(new CoreDriver(fs))), []);
runConformance('RemoteFs over a local directory, mounted', () => remoteFsDriver('mounted', (fs) => openMountDriver(fs)), []);
runConformance('RemoteFs over an in-memory remote, direct', () => remoteFsDriver('memory-direct', (fs) => Promise.resolve(new CoreDriver(fs)), memoryRemote()), []);
runConformance('RemoteFs over an in-memory remote, mounted', () => remoteFsDriver('memory-mounted', (fs) => openMountDriver(fs), memoryRemote()), []);
