// Regression: no invented If-Range date. A server that gives neither ETag nor Last-Modified
// (only a page of links) must get plain Range requests: an If-Range date we made up (a listing's
// rounded time, or 1970) makes a correct server answer 200 with the whole file, and every read
// would then refetch it. Real HttpRemote and RemoteFs over a node:http fixture that records
// each request's headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_INO } from '../../src/base/ids.js';
import { O_RDONLY } from '../../src/base/posix.js';
import { silentLogger } from '../../src/observability/logger.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { DataCache } from '../../src/data/data-cache.js';
import { RemoteFs } from '../../src/core/remote-fs.js';
import { rampBuffer } from '../support/ramp.js';

const SIZE = 300_000;

describe('no invented validators', () => {
  let server: Server;
  let url: string;
  let dir: string;
  const seen: { method: string; path: string; headers: IncomingHttpHeaders }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-ifrange-'));
    const body = rampBuffer(0, SIZE, 3);
    server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
      if (req.url === '/') {
        // An HTML page of links, with a rounded date next to the name (as many indexes show).
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body><a href="f.bin">f.bin</a> 01-Jan-2026 10:00 293K</body></html>');
        return;
      }
      if (req.url !== '/f.bin') {
        res.writeHead(404, { 'content-length': '0' }).end();
        return;
      }
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      // A correct server: an If-Range it cannot match (it has no validator) means "send it all".
      if (m === null || req.headers['if-range'] !== undefined) {
        res.writeHead(200, { 'content-length': String(SIZE) }).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const a = Number(m[1]);
      const b = Math.min(Number(m[2]), SIZE - 1);
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${SIZE}`, 'content-length': String(b - a + 1) }).end(body.subarray(a, b + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    url = `http://127.0.0.1:${addr.port}/`;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a file with no ETag and no Last-Modified is read with plain ranges, never an If-Range date', async () => {
    const remote = new HttpRemote({ baseUrl: url });
    const data = await DataCache.open({ cacheDir: join(dir, 'cache'), remote, logger: silentLogger() });
    const fs = new RemoteFs({ remote, data, logger: silentLogger() });
    const op = { uid: 0, gid: 0, pid: 1, signal: new AbortController().signal, log: silentLogger() };
    try {
      const e = await fs.lookup(op, ROOT_INO, 'f.bin');
      assert.equal(e.attr.size, SIZE, 'the size from a HEAD, not the listing\'s "293K"');
      const { fh } = await fs.open(op, e.nodeid, O_RDONLY);
      const got = await fs.read(op, e.nodeid, fh, 100_000, 4096);
      assert.deepEqual(got, rampBuffer(100_000, 4096, 3));
      await fs.release(op, e.nodeid, fh);
      const gets = seen.filter((r) => r.method === 'GET' && r.path === '/f.bin');
      assert.ok(gets.length >= 1);
      for (const g of gets) {
        assert.equal(g.headers['if-range'], undefined, `no If-Range on ${g.headers.range ?? 'a GET'}`);
        assert.ok(g.headers.range !== undefined, 'ranged, not the whole file');
      }
    } finally {
      await fs.close();
      await data.close();
      await remote.close();
    }
  });
});
