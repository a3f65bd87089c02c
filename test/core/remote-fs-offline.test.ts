// RemoteFs across a restart with the remote down (no kernel): what one mount listed, stat'ed
// and opened is saved in the cache dir's store, and a second RemoteFs on the same cache dir,
// started offline against a refused port, lists the same directories and opens the same files
// with the fingerprint their bytes were cached under, so the bytes are served, not dropped.
// The fault server's listing is exact but has no ETag and its HEAD gives one: a file opened
// right after a listing is cached under size+mtime, one opened after attrTtl under its ETag,
// and a file stat'ed after its open has a last stat that names another key than its bytes'.
// Without the saved 'open' attributes the last case fails (checked: the offline open then
// keys listed.bin by its ETag, the cache row is replaced and the read goes to the remote).
import { parseFingerprintKey } from '../../src/remote/fingerprint.js';
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/base/clock.js';
import { FsError } from '../../src/base/fs-error.js';
import { Errno } from '../../src/base/errno.js';
import type { Dirent, DirentSink, EntryOut } from '../../src/base/fs-types.js';
import { ROOT_INO, type Ino } from '../../src/base/ids.js';
import { O_RDONLY } from '../../src/base/posix.js';
import { silentLogger } from '../../src/observability/logger.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { GuardedRemote } from '../../src/remote/guarded-remote.js';
import { RemoteHealth } from '../../src/remote/health.js';
import { RemoteError } from '../../src/remote/remote-error.js';
import { DataCache } from '../../src/data/data-cache.js';
import type { OpContext } from '../../src/core/filesystem.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { startFaultServer, type FaultServer } from '../fakes/fault-server.js';
import { rampBuffer } from '../support/ramp.js';

const op = (): OpContext => ({ uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, log: silentLogger() });
const KiB = 1024;
const ATTR_TTL_MS = 1000;

class Sink implements DirentSink {
  readonly names: string[] = [];
  readonly plus = false;
  add(d: Dirent, _e?: EntryOut): boolean {
    this.names.push(d.name);
    return true;
  }
}

/** One "mount" without a kernel: guarded remote, health, data cache, core. */
interface Session {
  fs: RemoteFs;
  data: DataCache;
  health: RemoteHealth;
  clock: ManualClock;
  close(): Promise<void>;
}

async function session(server: FaultServer, cacheDir: string, offline: boolean): Promise<Session> {
  const clock = new ManualClock();
  const inner = new HttpRemote({ baseUrl: server.url, timeouts: { connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000 } });
  // The manual clock never advances the probe: the state stays what the test makes it.
  const health = new RemoteHealth({ remoteId: inner.id, probe: (signal) => inner.stat('', signal), clock, logger: silentLogger() });
  const remote = new GuardedRemote(inner, health);
  if (offline) health.force('offline', 'test: started offline');
  const data = await DataCache.open({ cacheDir, remote, logger: silentLogger(), config: { operationDeadlineMs: 2000 } });
  const fs = new RemoteFs({ remote, data, health, clock, logger: silentLogger(), config: { attrTtlMs: ATTR_TTL_MS, entryTtlMs: ATTR_TTL_MS, dirTtlMs: ATTR_TTL_MS } });
  return {
    fs,
    data,
    health,
    clock,
    close: async () => {
      await fs.close();
      await data.close();
      await health.close();
      await remote.close();
    },
  };
}

async function lookup(fs: RemoteFs, path: string): Promise<Ino> {
  let ino: Ino = ROOT_INO;
  for (const name of path.split('/')) {
    const e = await fs.lookup(op(), ino, name);
    if (e.nodeid === 0n) throw new FsError(Errno.ENOENT, `${path}: no ${name}`);
    ino = e.nodeid;
  }
  return ino;
}

/** Looks `path` up, then (after `beforeOpen`: the kernel may open long after its lookup) reads it whole. */
async function readAll(fs: RemoteFs, path: string, beforeOpen?: () => void): Promise<Buffer> {
  const ino = await lookup(fs, path);
  beforeOpen?.();
  const { fh } = await fs.open(op(), ino, O_RDONLY);
  try {
    const size = (await fs.getattr(op(), ino)).attr.size;
    return await fs.read(op(), ino, fh, 0, size);
  } finally {
    await fs.release(op(), ino, fh);
  }
}

async function list(fs: RemoteFs, path: string): Promise<string[]> {
  const ino = path === '' ? ROOT_INO : await lookup(fs, path);
  const { fh } = await fs.opendir(op(), ino);
  try {
    const sink = new Sink();
    await fs.readdir(op(), ino, fh, 0n, sink);
    return sink.names.filter((n) => n !== '.' && n !== '..').sort();
  } finally {
    await fs.releasedir(op(), ino, fh);
  }
}

describe('RemoteFs: listings and attributes persisted for an offline restart', () => {
  let dir: string;
  let server: FaultServer;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-offline-core-'));
    server = await startFaultServer();
    server.addObject('/listed.bin', 64 * KiB);
    server.addObject('/headed.bin', 96 * KiB);
    server.addObject('/uncached.bin', 32 * KiB);
    server.addObject('/sub/inner.bin', 16 * KiB);
    server.addObject('/never/listed.bin', 8 * KiB);
  });

  afterEach(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a restart with the remote refused lists and reads what the first mount saw, under the same cache keys', async () => {
    const cacheDir = join(dir, 'cache');
    const first = await session(server, cacheDir, false);
    const keys = new Map<string, string | undefined>();
    try {
      assert.deepEqual(await list(first.fs, ''), ['headed.bin', 'listed.bin', 'never', 'sub', 'uncached.bin']);
      assert.deepEqual(await list(first.fs, 'sub'), ['inner.bin']);
      // Opened within attrTtl of its listing: cached under the listing's size+mtime; stat'ed
      // (a HEAD, which learns its ETag) later, so the last stat names it by another key.
      assert.deepEqual(await readAll(first.fs, 'listed.bin'), rampBuffer(0, 64 * KiB));
      const listedIno = await lookup(first.fs, 'listed.bin');
      first.clock.advance(ATTR_TTL_MS + 1);
      await first.fs.getattr(op(), listedIno);
      assert.equal(first.data.listings.loadAttrs(first.data.remote.id, 'listed.bin', 'stat')?.etag, server.etagOf('/listed.bin'), 'the later HEAD is saved');
      assert.deepEqual(await readAll(first.fs, 'sub/inner.bin'), rampBuffer(0, 16 * KiB));
      // Opened attrTtl after its lookup: a HEAD first, so cached under the ETag.
      assert.deepEqual(await readAll(first.fs, 'headed.bin', () => first.clock.advance(ATTR_TTL_MS + 1)), rampBuffer(0, 96 * KiB));
      for (const p of ['listed.bin', 'headed.bin', 'sub/inner.bin']) keys.set(p, first.data.store.getObject(first.data.remote.id, p)?.fingerprint);
      assert.equal(parseFingerprintKey(keys.get('listed.bin') ?? '')?.etag, undefined, 'the listing-keyed case (size and mtime) is exercised');
      assert.ok(parseFingerprintKey(keys.get('headed.bin') ?? '')?.etag !== undefined, 'the HEAD-keyed case (an ETag) is exercised');
      assert.equal(first.data.listings.loadAttrs(first.data.remote.id, 'headed.bin', 'stat')?.etag, server.etagOf('/headed.bin'), 'the HEAD is saved');
    } finally {
      await first.close();
    }

    await server.outage('refused');
    const second = await session(server, cacheDir, true);
    try {
      const requests = server.stats.requests;
      assert.deepEqual(await list(second.fs, ''), ['headed.bin', 'listed.bin', 'never', 'sub', 'uncached.bin'], 'the saved root listing');
      assert.deepEqual(await list(second.fs, 'sub'), ['inner.bin'], 'a saved subdirectory listing');
      assert.equal((await second.fs.getattr(op(), await lookup(second.fs, 'headed.bin'))).attr.size, 96 * KiB, 'attributes from the saved listing');
      assert.deepEqual(await readAll(second.fs, 'listed.bin'), rampBuffer(0, 64 * KiB), 'cached under size+mtime: found');
      assert.deepEqual(await readAll(second.fs, 'headed.bin'), rampBuffer(0, 96 * KiB), 'cached under its ETag: found');
      assert.deepEqual(await readAll(second.fs, 'sub/inner.bin'), rampBuffer(0, 16 * KiB));
      for (const [p, key] of keys) {
        assert.equal(second.data.store.getObject(second.data.remote.id, p)?.fingerprint, key, `${p} keeps its cache row (an offline open never replaces it)`);
      }
      // What was never fetched fails at once (the guard refuses), without hanging.
      const started = performance.now();
      await assert.rejects(readAll(second.fs, 'uncached.bin'), (e: unknown) => e instanceof RemoteError && e.kind === 'unavailable');
      await assert.rejects(list(second.fs, 'never'), (e: unknown) => e instanceof RemoteError && e.kind === 'unavailable', 'a directory never listed');
      assert.ok(performance.now() - started < 1000, 'uncached paths fail fast');
      assert.equal(server.stats.requests, requests, 'nothing reached the server');
      assert.equal(second.data.stats().bytesFetched, 0);

      // The server comes back: the saved listing is only a stand-in, the next access relists.
      await server.outage(undefined);
      second.health.force('online', 'test: back');
      assert.deepEqual(await readAll(second.fs, 'uncached.bin'), rampBuffer(0, 32 * KiB));
      assert.deepEqual(await list(second.fs, 'never'), ['listed.bin']);
    } finally {
      await second.close();
    }
  });
});
