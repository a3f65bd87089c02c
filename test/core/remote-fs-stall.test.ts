// A remote that accepts connections and never answers: a lookup (listing) and a stat (HEAD)
// must end with EIO when the operation deadline passes, never EINTR ("interrupted system call"
// makes programs that retry on EINTR loop). Real HttpRemote, a black-hole TCP server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { Errno } from '../../src/base/errno.js';
import { ROOT_INO } from '../../src/base/ids.js';
import { silentLogger } from '../../src/observability/logger.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { toFsError } from '../../src/bridge/errno-map.js';

describe('a remote that never answers', () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let url: string;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-stall-'));
    server = createServer((s) => {
      sockets.add(s); // accept, read, never answer
      s.on('close', () => sockets.delete(s));
      s.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    url = `http://127.0.0.1:${addr.port}/`;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a stalled listing answers EIO (a timeout), not EINTR, once the deadline passes', async () => {
    const remote = new HttpRemote({ baseUrl: url });
    const data = await DataCache.open({ cacheDir: join(dir, 'cache'), remote, logger: silentLogger(), config: { operationDeadlineMs: 200 } });
    const fs = new RemoteFs({ remote, data, logger: silentLogger() });
    try {
      const op = { uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, log: silentLogger() };
      const err = await within(
        fs.lookup(op, ROOT_INO, 'x').then(
          () => undefined,
          (e: unknown) => e,
        ),
        10_000,
        'the stalled lookup to fail at its deadline',
      );
      assert.ok(err !== undefined, 'the lookup failed');
      assert.equal(toFsError(err).errno, Errno.EIO, `errno for ${err instanceof Error ? err.message : "a non-error"}`);
    } finally {
      await fs.close();
      await data.close();
      await remote.close();
    }
  });
});
