// `fusestream mount <remote> <mountpoint>`: the composition root of a real mount. It is the
// only place that picks a remote implementation. Ownership: this function creates the remote,
// the data cache, the core filesystem and the server, and closes them in reverse order.
import { mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import type { Remote } from '../remote/remote.js';
import { RemoteError } from '../remote/remote-error.js';
import { HttpRemote } from '../remote/http/http-remote.js';
import { LocalRemote } from '../remote/local/local-remote.js';
import { DataCache } from '../data/data-cache.js';
import { DataConfigError, resolveDataConfig } from '../data/config.js';
import { CacheDirBusyError } from '../data/errors.js';
import { RemoteFs } from '../core/remote-fs.js';
import { fuseOpsFor } from '../bridge/fuse-adapter.js';
import { FuseServer } from '../kernel/fuse-server.js';
import { runUntilStopped } from './run-mounted.js';
import { defaultCacheDir } from './settings.js';
import { UsageError } from './usage-error.js';

/** Kernel readahead of the mount: 1 MiB READs for sequential reads (see FuseServer). */
const KERNEL_READ_AHEAD_KB = 1024;

export interface MountCommandOptions {
  remote: string;
  mountpoint: string;
  cacheDir?: string;
  cacheMaxSizeBytes?: number;
  deadlineSeconds: number;
  attrTtlSeconds: number;
  dirTtlSeconds: number;
  downloadConcurrency?: number;
  readAheadMaxBytes?: number;
  allowOther: boolean;
  logger: Logger;
}


export function makeRemote(spec: string, logger: Logger): Remote {
  if (/^https?:\/\//i.test(spec)) {
    let url: URL;
    try {
      url = new URL(spec.endsWith('/') ? spec : `${spec}/`);
    } catch (cause) {
      throw new UsageError(`"${spec}" is not a valid URL`, { cause });
    }
    return new HttpRemote({ baseUrl: url.href, logger });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new UsageError(`unsupported remote "${spec}": use http(s)://… or a local directory`);
  }
  const root = resolve(spec);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`remote "${spec}" is neither an http(s) URL nor an existing directory`);
  return new LocalRemote({ root, logger });
}


export interface StartedMount {
  server: FuseServer;
  remote: Remote;
  /** Releases the data cache and the remote (after the server has unmounted). */
  close(): Promise<void>;
}

/** Builds remote → data cache → core → bridge → mounted server. The caller owns the result. */
export async function startMount(o: MountCommandOptions): Promise<StartedMount> {
  const log = o.logger;
  const remote = makeRemote(o.remote, log);
  let data: DataCache | undefined;
  try {
    // Fail fast with a clear message when the remote is unreachable or not a directory.
    await remote.list('', AbortSignal.timeout(o.deadlineSeconds * 1000)).catch((err: unknown) => {
      const why = err instanceof RemoteError ? `${err.kind}: ${err.message}` : String(err);
      throw new UsageError(`cannot list the remote ${remote.id} (${why})`, { cause: err });
    });
    const cacheDir = resolve(o.cacheDir ?? defaultCacheDir());
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const config: Record<string, number> = { operationDeadlineMs: Math.max(1, Math.round(o.deadlineSeconds * 1000)) };
    if (o.cacheMaxSizeBytes !== undefined) config.cacheCapBytes = o.cacheMaxSizeBytes;
    if (o.downloadConcurrency !== undefined) config.downloadConcurrency = o.downloadConcurrency;
    if (o.readAheadMaxBytes !== undefined) config.readAheadMaxBytes = o.readAheadMaxBytes;
    try {
      resolveDataConfig(config);
    } catch (err) {
      if (err instanceof DataConfigError) throw new UsageError(`bad settings: ${err.message}`, { cause: err });
      throw err;
    }
    data = await DataCache.open({ cacheDir, remote, config, logger: log }).catch((err: unknown) => {
      if (err instanceof CacheDirBusyError) throw new UsageError(err.message, { cause: err });
      throw err;
    });
    const fs = new RemoteFs({
      remote,
      data,
      logger: log,
      config: { attrTtlMs: o.attrTtlSeconds * 1000, entryTtlMs: o.attrTtlSeconds * 1000, dirTtlMs: o.dirTtlSeconds * 1000 },
    });
    const server = await FuseServer.start({
      mountpoint: o.mountpoint,
      ops: fuseOpsFor(fs),
      logger: log,
      // The session's deadline is a backstop one second behind the data layer's own.
      deadlineMs: o.deadlineSeconds * 1000 + 1000,
      readOnly: true,
      allowOther: o.allowOther,
      fsName: remote.id,
      describeNode: (ino) => fs.describe(ino),
      kernelReadAheadKb: KERNEL_READ_AHEAD_KB,
    });
    const owned = data;
    return {
      server,
      remote,
      close: async () => {
        await owned.close();
        await remote.close();
      },
    };
  } catch (err) {
    await data?.close();
    await remote.close();
    throw err;
  }
}

export async function runMount(o: MountCommandOptions): Promise<number> {
  const m = await startMount(o);
  try {
    process.stdout.write(`mounted ${m.remote.id} on ${m.server.mountpoint} (read-only); Ctrl-C unmounts\n`);
    return await runUntilStopped(m.server, o.logger);
  } finally {
    await m.close();
  }
}
