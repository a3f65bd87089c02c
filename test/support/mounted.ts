// Mounting in tests: a FuseServer in this process, a fresh temp mountpoint, and a guaranteed
// unmount even when the test fails. Client I/O goes through ./proc.ts (child processes).
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, createLogger, type Logger } from '../../src/observability/logger.js';
import { FuseServer, type FuseServerOptions } from '../../src/kernel/fuse-server.js';
import { unmount } from '../../src/kernel/mount.js';
import type { FileSystem } from '../../src/core/filesystem.js';
import { fuseOpsFor } from '../../src/bridge/fuse-adapter.js';

export function testLogger(): Logger {
  const level = process.env.FUSESTREAM_TEST_LOG;
  return level ? createLogger({ level: level as 'debug', sync: true }) : silentLogger();
}

export function tempDir(prefix = 'fusestream-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Mounted {
  server: FuseServer;
  mnt: string;
  dir: string;
}

/** Mounts `fs` (served through the bridge, as the CLI does) for the length of `fn`. */
export async function withMount<T>(
  fs: FileSystem,
  fn: (m: Mounted) => Promise<T>,
  options: Partial<Omit<FuseServerOptions, 'mountpoint' | 'ops'>> = {},
): Promise<T> {
  const tmp = tempDir();
  const mnt = join(tmp.path, 'mnt');
  mkdirSync(mnt);
  let server: FuseServer | undefined;
  try {
    server = await FuseServer.start({ mountpoint: mnt, ops: fuseOpsFor(fs), logger: testLogger(), deadlineMs: 10_000, drainMs: 500, endMs: 2000, ...options });
    return await fn({ server, mnt, dir: tmp.path });
  } finally {
    if (server) await server.unmount();
    else await unmount(mnt).catch(() => undefined);
    tmp.cleanup();
  }
}
