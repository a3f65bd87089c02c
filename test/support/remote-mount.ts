// A remote-backed mount inside the test process: remote → DataCache → RemoteFs → bridge
// → FuseServer, on a fresh temp mountpoint and cache dir, torn down in reverse order even on
// failure. At teardown every data-layer gauge must be back to zero.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataCache } from '../../src/data/data-cache.js';
import type { DataConfig } from '../../src/data/config.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import type { CoreConfig } from '../../src/core/config.js';
import { fuseOpsFor } from '../../src/bridge/fuse-adapter.js';
import { KernelNotifier } from '../../src/bridge/kernel-notifier.js';
import { ChangePoller } from '../../src/core/change-poller.js';
import { FuseServer } from '../../src/kernel/fuse-server.js';
import type { Remote } from '../../src/remote/remote.js';
import { tempDir, testLogger } from './mounted.js';

export interface RemoteMounted {
  mnt: string;
  cacheDir: string;
  server: FuseServer;
  data: DataCache;
  fs: RemoteFs;
  poller: ChangePoller;
  notifier: KernelNotifier;
}

export async function withRemoteMount<T>(
  remote: Remote,
  fn: (m: RemoteMounted) => Promise<T>,
  o: {
    data?: Partial<DataConfig>;
    core?: Partial<CoreConfig>;
    cacheDir?: string;
    sessionDeadlineMs?: number;
    health?: { readonly offline: boolean };
    /** Start the change poller (and kernel notifications) with this interval, as the CLI does. */
    pollIntervalMs?: number;
  } = {},
): Promise<T> {
  const tmp = tempDir();
  const mnt = join(tmp.path, 'mnt');
  mkdirSync(mnt);
  const cacheDir = o.cacheDir ?? join(tmp.path, 'cache');
  const logger = testLogger();
  const data = await DataCache.open({ cacheDir, remote, logger, config: { operationDeadlineMs: 10_000, ...o.data } });
  let server: FuseServer | undefined;
  try {
    const fs = new RemoteFs({ remote, data, logger, config: { attrTtlMs: 1000, entryTtlMs: 1000, dirTtlMs: 1000, ...o.core }, ...(o.health ? { health: o.health } : {}) });
    server = await FuseServer.start({
      mountpoint: mnt,
      ops: fuseOpsFor(fs),
      logger,
      deadlineMs: o.sessionDeadlineMs ?? data.config.operationDeadlineMs + 1000,
      readOnly: true,
      drainMs: 500,
      endMs: 2000,
      kernelReadAheadKb: 1024, // as the CLI mounts: 1 MiB READs for sequential reads
    });
    const notifier = new KernelNotifier(server.session, logger);
    fs.attachKernel(notifier);
    const poller = new ChangePoller({ poll: (signal, max) => fs.poll(signal, max), intervalMs: o.pollIntervalMs ?? 0, logger, ...(o.health ? { health: o.health } : {}) });
    poller.start();
    let result: T;
    try {
      result = await fn({ mnt, cacheDir, server, data, fs, poller, notifier });
    } finally {
      await poller.close();
      await notifier.close();
    }
    await server.unmount();
    const s = data.stats();
    assert.deepEqual(
      { openFiles: s.openFiles, openReaders: s.openReaders, inFlightReads: s.inFlightReads, waiters: s.waiters, downloadsActive: s.downloadsActive, downloadsQueued: s.downloadsQueued },
      { openFiles: 0, openReaders: 0, inFlightReads: 0, waiters: 0, downloadsActive: 0, downloadsQueued: 0 },
      'every data gauge is back to zero after unmount',
    );
    return result;
  } finally {
    if (server) await server.unmount();
    await data.close();
    tmp.cleanup();
  }
}
