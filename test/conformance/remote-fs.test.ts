// The read subset of the conformance scenarios on RemoteFs (the filesystem over a Remote) with a
// local directory as the remote and a real cache: called directly (no kernel), and through a
// mount. A read-only remote answers what it can (stat, readdir, read, errnos of lookups) exactly
// as the reference model does; the writing scenarios need 'writable' and say so when skipped.
import { after, before } from 'node:test';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/observability/logger.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { MemoryRemote } from '../../src/remote/memory/memory-remote.js';
import type { Remote } from '../../src/remote/remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { Journal } from '../../src/store/journal.js';
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

/**
 * A RemoteFs over the fixture (on disk unless `remote` is given), with its own cache; `wrap`
 * makes the driver. `writable`: read-write, with the write path's journal and upload queue
 * (uploads start at once: no write-back delay).
 */
async function remoteFsDriver(name: string, wrap: (fs: RemoteFs) => Promise<FsDriver>, remote: Remote = new LocalRemote({ root: join(dir, 'remote') }), writable = false): Promise<FsDriver> {
  const cacheDir = join(dir, `cache-${name}`);
  const data = await DataCache.open({ cacheDir, remote, logger: silentLogger() });
  const journal = writable ? Journal.open(join(cacheDir, 'cache.db'), { remote: remote.id }) : undefined;
  const fs = new RemoteFs({
    remote,
    data,
    logger: silentLogger(),
    config: { negativeTtlMs: 0 },
    ...(journal !== undefined ? { upload: { journal, concurrency: 4, writeBackDelayMs: 0, fsync: 'local' as const, drainTimeoutMs: 10_000 } } : {}),
  });
  const driver = await wrap(fs);
  const dispose = driver.dispose.bind(driver);
  driver.dispose = async () => {
    await dispose();
    await fs.close();
    journal?.close();
    await data.close();
    await remote.close();
  };
  return driver;
}

/** The fixture copied into a fresh directory (a writable run changes its remote). */
function freshLocalRemote(name: string): LocalRemote {
  const root = join(dir, `remote-${name}`);
  cpSync(join(dir, 'remote'), root, { recursive: true });
  return new LocalRemote({ root });
}

runConformance('RemoteFs over a local directory, direct', () => remoteFsDriver('direct', (fs) => Promise.resolve(new CoreDriver(fs))), []);
runConformance('RemoteFs over a local directory, mounted', () => remoteFsDriver('mounted', (fs) => openMountDriver(fs)), []);
runConformance('RemoteFs over an in-memory remote, direct', () => remoteFsDriver('memory-direct', (fs) => Promise.resolve(new CoreDriver(fs)), memoryRemote()), []);
runConformance('RemoteFs over an in-memory remote, mounted', () => remoteFsDriver('memory-mounted', (fs) => openMountDriver(fs), memoryRemote()), []);

// Read-write: the write path over a writable remote. Remotes keep no modes and no atime
// ('permissions' and 'times' are documented as not kept: docs/SEMANTICS.md).
const WRITABLE = ['writable', 'symlinks', 'rename-flags'] as const;
runConformance('RemoteFs read-write over a local directory, direct', () => remoteFsDriver('rw-direct', (fs) => Promise.resolve(new CoreDriver(fs)), freshLocalRemote('rw-direct'), true), WRITABLE);
runConformance('RemoteFs read-write over a local directory, mounted', () => remoteFsDriver('rw-mounted', (fs) => openMountDriver(fs), freshLocalRemote('rw-mounted'), true), WRITABLE);
runConformance('RemoteFs read-write over an in-memory remote, direct', () => remoteFsDriver('rw-memory-direct', (fs) => Promise.resolve(new CoreDriver(fs)), memoryRemote(), true), WRITABLE);
runConformance('RemoteFs read-write over an in-memory remote, mounted', () => remoteFsDriver('rw-memory-mounted', (fs) => openMountDriver(fs), memoryRemote(), true), WRITABLE);
