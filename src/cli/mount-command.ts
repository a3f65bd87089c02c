// `fusestream mount <remote> <mountpoint>`: the composition root of a real mount. It is the
// only place that picks a remote implementation. Ownership: this function creates the remote,
// the data cache, the core filesystem and the server, and closes them in reverse order.
// Settings arrive resolved (base units, validated); this file maps them onto the pieces and
// adds no defaults of its own. The cache directory is created by the data layer (DataCache.open,
// mode 0700), not here.
// Start-up: the remote's root is listed first. An answer that is not a directory listing is a
// usage error; no answer at all (refused, reset, 5xx, timeout) is one only when the cache dir
// holds no saved listings of this remote. Otherwise the mount starts offline from the cache
// (a warning says so) and the health probe brings it online when the remote answers.
import { statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Settings } from '../base/settings.js';
import type { Logger } from '../observability/logger.js';
import type { Remote } from '../remote/remote.js';
import { RemoteError } from '../remote/remote-error.js';
import { HttpRemote } from '../remote/http/http-remote.js';
import { GuardedRemote } from '../remote/guarded-remote.js';
import { RemoteHealth } from '../remote/health.js';
import { LocalRemote } from '../remote/local/local-remote.js';
import { WebdavRemote } from '../remote/webdav/webdav-remote.js';
import { webdavCredentials } from './credentials.js';
import { DataCache } from '../data/data-cache.js';
import { DataConfigError, dataConfigFrom, resolveDataConfig } from '../data/config.js';
import { CacheDirBusyError } from '../data/errors.js';
import { RemoteFs } from '../core/remote-fs.js';
import { Journal, type JournalRow } from '../store/journal.js';
import { ChangePoller } from '../core/change-poller.js';
import { KernelNotifier } from '../bridge/kernel-notifier.js';
import { asIno } from '../base/ids.js';
import { ControlServer } from './control.js';
import { flushUploads, pendingChange, type PendingChange } from './flush-command.js';
import { fuseOpsFor } from '../bridge/fuse-adapter.js';
import { FuseServer } from '../kernel/fuse-server.js';
import { runUntilStopped } from './run-mounted.js';
import { UsageError } from './usage-error.js';

/** Kernel readahead of the mount: 1 MiB READs for sequential reads (see FuseServer). */
const KERNEL_READ_AHEAD_KB = 1024;

/** The kernel session's deadline is a backstop this far behind the data layer's own. */
const SESSION_BACKSTOP_MS = 1000;

export interface MountCommandOptions {
  remote: string;
  mountpoint: string;
  /** From resolveSettings / the CLI; memfs-only fields are ignored. */
  settings: Settings;
  logger: Logger;
  /** Told the "mounted …" line once the mount and its control socket are up (--daemon's readiness). */
  onMounted?: (line: string) => void;
}


/**
 * The HTTP client's own timeouts, from the deadline: nothing the client waits for may take
 * longer than the operation it serves (undici's defaults are minutes).
 */
function httpTimeouts(s: Settings): { connectTimeoutMs: number; headersTimeoutMs: number; bodyTimeoutMs: number } {
  const deadline = Math.max(1, s.deadlineMs);
  return { connectTimeoutMs: Math.min(10_000, deadline), headersTimeoutMs: deadline, bodyTimeoutMs: deadline };
}

export function makeRemote(spec: string, logger: Logger, settings: Settings): Remote {
  if (/^https?:\/\//i.test(spec)) {
    let url: URL;
    try {
      url = new URL(spec.endsWith('/') ? spec : `${spec}/`);
    } catch (cause) {
      throw new UsageError(`"${spec}" is not a valid URL`, { cause });
    }
    return new HttpRemote({ baseUrl: url.href, logger, timeouts: httpTimeouts(settings) });
  }
  if (/^webdav\+https?:\/\//i.test(spec)) {
    const http = spec.slice('webdav+'.length);
    let url: URL;
    try {
      url = new URL(http.endsWith('/') ? http : `${http}/`);
    } catch (cause) {
      // The text may hold a password: never echo it.
      throw new UsageError('the WebDAV URL is not a valid URL', { cause });
    }
    const credentials = webdavCredentials(url, settings);
    return new WebdavRemote({ baseUrl: url.href, logger, timeouts: httpTimeouts(settings), ...(credentials === undefined ? {} : { credentials }) });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new UsageError(`unsupported remote "${spec.replace(/\/\/[^/@]*@/, '//…@')}": use http(s)://…, webdav+http(s)://… or a local directory`);
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


/**
 * The cache of one remote: a directory named after it inside `--cache-dir`, so two different
 * remotes never share (and never lock each other out of) one cache, while the same remote
 * mounted again finds its cache. The name is readable (host and path) and unique (a hash of
 * the remote's id, which never holds credentials).
 */
export function cacheDirFor(base: string, remoteId: string): string {
  const readable = remoteId.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60);
  const hash = createHash('sha256').update(remoteId).digest('hex').slice(0, 12);
  return join(base, `${readable || 'remote'}-${hash}`);
}

export interface StartedMount {
  server: FuseServer;
  remote: Remote;
  writable: boolean;
  /** After unmount: the changes still journaled (uploaded by the next mount). */
  leftPending(): string[];
  /** Releases the data cache and the remote (after the server has unmounted). */
  close(): Promise<void>;
}

/** Builds remote → data cache → core → bridge → mounted server. The caller owns the result. */
export async function startMount(o: MountCommandOptions): Promise<StartedMount> {
  const log = o.logger;
  const s = o.settings;
  const inner = makeRemote(o.remote, log, s);
  // Everything above sees the remote through its health state (the circuit breaker): while it
  // is unreachable, what needs the network fails at once and a probe brings it back.
  const health = new RemoteHealth({
    remoteId: inner.id,
    probe: (signal) => inner.stat('', signal),
    logger: log,
    probeMinMs: s.probeMinMs,
    probeMaxMs: Math.max(s.probeMinMs, s.probeMaxMs),
    probeTimeoutMs: Math.max(1, s.deadlineMs),
  });
  const remote = new GuardedRemote(inner, health);
  let data: DataCache | undefined;
  let journal: Journal | undefined;
  try {
    let unreachable: RemoteError | undefined;
    if (s.offline) {
      health.force('offline', '--offline');
    } else {
      // Fail fast with a clear message when the remote is not a directory, or unreachable
      // with nothing cached to serve (decided once the cache dir is open, below).
      const preflightMs = Math.max(1, s.deadlineMs);
      const preflight = AbortSignal.timeout(preflightMs);
      unreachable = await inner.list('', preflight).then(
        () => undefined,
        (err: unknown) => {
          if (isUnreachable(err)) return err;
          // Our own deadline, whatever error the client made of the abort: no answer in time.
          if (preflight.aborted) return new RemoteError('timeout', `no answer within ${preflightMs} ms`, { cause: err });
          throw new UsageError(`cannot list the remote ${remote.id} (${describe(err)})`, { cause: err });
        },
      );
    }
    if (inner instanceof WebdavRemote && unreachable === undefined && !s.offline) {
      // What the server honours (If-Match, If-None-Match, writes at all) decides how each
      // write is checked; an offline start checks every condition itself (the defaults).
      await inner.probe(AbortSignal.timeout(Math.max(1, s.deadlineMs))).catch((err: unknown) => {
        throw new UsageError(`cannot probe the WebDAV server ${remote.id} (${describe(err)})`, { cause: err });
      });
    }
    const cacheDir = cacheDirFor(resolve(s.cacheDir), remote.id);
    const config = dataConfigFrom(s);
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
    if (unreachable !== undefined) {
      // Listings saved by earlier mounts make an unreachable remote worth mounting: start
      // offline and let the probe bring it back. Without them there is nothing to browse.
      const saved = data.listings.countListings(remote.id);
      if (saved === 0) {
        throw new UsageError(
          `cannot reach the remote ${remote.id} (${describe(unreachable)}) and the cache dir ${cacheDir} holds no listings of it; --offline mounts it anyway`,
          { cause: unreachable },
        );
      }
      log.warn({ err: unreachable, cacheDir, savedListings: saved }, 'remote unreachable at start: mounting offline from the cache; a probe brings it back');
      health.force('offline', `unreachable at start (${unreachable.message})`);
    }
    // Read-write wherever the remote can write, unless --read-only: the journal of pending
    // changes lives in the cache dir's store (one owner: the cache dir's lock).
    const writable = inner.capabilities.writable && !s.readOnly;
    journal = writable ? Journal.open(join(cacheDir, 'cache.db'), { remote: remote.id, logger: log }) : undefined;
    const fs = new RemoteFs({
      remote,
      data,
      health,
      logger: log,
      config: { attrTtlMs: s.attrTtlMs, entryTtlMs: s.attrTtlMs, dirTtlMs: s.dirTtlMs },
      ...(journal !== undefined
        ? { upload: { journal, concurrency: s.uploadConcurrency, writeBackDelayMs: s.writeBackDelayMs, fsync: s.fsyncMode, drainTimeoutMs: s.drainTimeoutMs } }
        : {}),
    });
    const server = await FuseServer.start({
      mountpoint: o.mountpoint,
      ops: fuseOpsFor(fs),
      logger: log,
      deadlineMs: s.deadlineMs + SESSION_BACKSTOP_MS,
      readOnly: !writable,
      // The main-loop reader takes 1 MiB WRITE requests with no thread hop per request (the
      // worker reader measured 4x slower per small-file op and copied every request).
      reader: 'uvpipe',
      allowOther: s.allowOther,
      fsName: remote.id,
      describeNode: (ino) => fs.describe(ino),
      kernelReadAheadKb: KERNEL_READ_AHEAD_KB,
    });
    // Remote changes reach the kernel's caches through notifications, sent off the request path.
    const notifier = new KernelNotifier(server.session, log);
    fs.attachKernel(notifier);
    const poller = new ChangePoller({ poll: (signal, max) => fs.poll(signal, max), intervalMs: s.pollIntervalMs, health, logger: log });
    poller.start();
    const owned = data;
    const startedAt = new Date().toISOString();
    // What `fusestream status` shows (cli/control.ts); the remote id never holds credentials.
    const control = await ControlServer.start(server.mountpoint, {
      invalidate: async (paths) => {
        const known = fs.invalidate(paths);
        await notifier.flushed(); // the kernel has been told when the command returns
        return known;
      },
      flush: (timeoutMs, progress) => flushUploads(fs, timeoutMs, progress),
      status: () => ({
      mountpoint: server.mountpoint,
      remote: remote.id,
      pid: process.pid,
      startedAt,
      readOnly: !writable,
      uploads: uploadStatus(fs.pendingUploads()),
      health: { state: health.state, since: new Date(health.since.wallAt).toISOString(), reason: health.since.reason, probes: health.probes },
      cache: { dir: cacheDir, ...owned.stats() },
      inFlight: server.inFlight().map((r) => ({ ...r, path: fs.describe(asIno(r.nodeid)) })),
      poller: { intervalMs: s.pollIntervalMs, ...poller.totals },
      notifications: { sent: notifier.sent, notDelivered: notifier.notDelivered },
      listings: fs.listingCache,
    }) }, log).catch(async (err: unknown) => {
      await poller.close();
      await notifier.close();
      await server.unmount();
      throw err;
    });
    const ownedJournal = journal;
    return {
      server,
      remote,
      writable,
      leftPending: () => fs.leftPending.map((r) => `${r.kind} /${r.path}`),
      close: async () => {
        await control.close();
        await poller.close();
        await notifier.close();
        ownedJournal?.close();
        await owned.close();
        await remote.close();
      },
    };
  } catch (err) {
    journal?.close();
    await data?.close();
    await remote.close();
    throw err;
  }
}

/** The upload part of `fusestream status`: counts, and the changes that are failing. */
function uploadStatus(rows: readonly JournalRow[]): { pending: number; failed: number; failing: PendingChange[] } {
  const failing = rows.filter((r) => r.lastError !== undefined);
  return {
    pending: rows.length,
    failed: rows.filter((r) => r.state === 'failed').length,
    failing: failing.slice(0, 20).map(pendingChange),
  };
}

/** A failure that says the remote could not be reached (no answer it meant). */
function isUnreachable(err: unknown): err is RemoteError {
  return err instanceof RemoteError && (err.kind === 'unavailable' || err.kind === 'timeout' || err.connectionLost);
}

function describe(err: unknown): string {
  return err instanceof RemoteError ? `${err.kind}: ${err.message}` : String(err);
}

export async function runMount(o: MountCommandOptions): Promise<number> {
  const m = await startMount(o);
  try {
    const line = `mounted ${m.remote.id} on ${m.server.mountpoint} (${m.writable ? 'read-write' : 'read-only'})`;
    process.stdout.write(`${line}; Ctrl-C unmounts\n`);
    o.onMounted?.(line);
    const code = await runUntilStopped(m.server, o.logger);
    const left = m.leftPending();
    if (left.length > 0) {
      process.stdout.write(`${left.length} change(s) not on the remote yet, kept for the next mount of this remote with this cache dir:\n${left.map((l) => `  ${l}\n`).join('')}`);
    }
    return code;
  } finally {
    await m.close();
  }
}
