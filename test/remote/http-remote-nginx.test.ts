// HttpRemote against a real nginx (autoindex HTML and JSON) on 127.0.0.1: listings with
// sizes, stat, ranged reads of ramp files, ETag stability and change detection, awkward names,
// a 0-byte file and a 10,000-entry directory listed in one request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import type { RemoteEntry } from '../../src/remote/remote.js';
import { nginxAvailable, startNginx, type NginxHandle } from '../support/nginx.js';
import { checkRamp, writeRampFile } from '../support/ramp.js';
import { collect, rejectsKind } from '../support/remote-asserts.js';

const RAMP_SIZE = 3 * 1024 * 1024 + 123;
const NAMES: Record<string, number> = {
  'a b.txt': 1000,
  'ünï cødé 📁.bin': 70_000,
  '100% sure#?.bin': 4097,
  'a%2Fb': 10,
  "semi;colon & 'quote'.bin": 33,
  empty: 0,
};
const BIG_DIR_ENTRIES = 10_000;

const skip = nginxAvailable() ? false : 'nginx not installed';

void describe('HttpRemote against nginx', { skip }, () => {
  let root: string;
  let html: NginxHandle;
  let json: NginxHandle;
  const ac = new AbortController();

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fusestream-nginx-root-'));
    await writeRampFile(join(root, 'ramp.bin'), RAMP_SIZE);
    for (const [name, size] of Object.entries(NAMES)) await writeRampFile(join(root, name), size);
    await mkdir(join(root, 'nested', 'deeper'), { recursive: true });
    await writeRampFile(join(root, 'nested', 'inner.bin'), 5000);
    await mkdir(join(root, 'big'));
    for (let i = 0; i < BIG_DIR_ENTRIES; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => writeFile(join(root, 'big', `file-${String(i + j).padStart(5, '0')}`), 'x')));
    }
    html = await startNginx({ root, autoindex: 'html' });
    json = await startNginx({ root, autoindex: 'json' });
  });

  after(async () => {
    ac.abort();
    await html?.stop();
    await json?.stop();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  async function withRemote<T>(server: NginxHandle, fn: (r: HttpRemote) => Promise<T>): Promise<T> {
    const r = new HttpRemote({ baseUrl: server.url, connections: 4 });
    try {
      return await fn(r);
    } finally {
      await r.close();
    }
  }

  async function expectedRoot(withMtime: boolean): Promise<RemoteEntry[]> {
    const out: RemoteEntry[] = [];
    for (const [name, size] of Object.entries({ ...NAMES, 'ramp.bin': RAMP_SIZE })) {
      const e: RemoteEntry = { name, type: 'file', size };
      if (withMtime) e.mtimeMs = Math.floor((await stat(join(root, name))).mtimeMs / 1000) * 1000;
      out.push(e);
    }
    for (const name of ['big', 'nested']) {
      const e: RemoteEntry = { name, type: 'dir' };
      if (withMtime) e.mtimeMs = Math.floor((await stat(join(root, name))).mtimeMs / 1000) * 1000;
      out.push(e);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  const sorted = (es: RemoteEntry[]): RemoteEntry[] => [...es].sort((a, b) => a.name.localeCompare(b.name));

  void test('HTML listing: names, types and exact sizes; no exact mtimes, minute-rounded display dates', async () => {
    await withRemote(html, async (r) => {
      /** Checks the display-only date is the file's (to the minute) and drops it for comparison. */
      const withoutApprox = (entries: RemoteEntry[]): RemoteEntry[] =>
        entries.map(({ approxMtimeMs, ...rest }) => {
          assert.equal(typeof approxMtimeMs, 'number', `${rest.name} has a display date`);
          assert.ok(Math.abs((approxMtimeMs ?? 0) - Date.now()) < 24 * 3600_000, `${rest.name}: date is recent`);
          return rest;
        });
      assert.deepEqual(withoutApprox(sorted(await r.list('', ac.signal))), await expectedRoot(false));
      assert.deepEqual(withoutApprox(await r.list('nested', ac.signal)), [
        { name: 'deeper', type: 'dir' },
        { name: 'inner.bin', type: 'file', size: 5000 },
      ]);
      assert.equal(r.capabilities.exactListing, false);
    });
  });

  void test('JSON listing: exact sizes and mtimes', async () => {
    await withRemote(json, async (r) => {
      assert.deepEqual(sorted(await r.list('/', ac.signal)), await expectedRoot(true));
      assert.equal(r.capabilities.exactListing, true);
    });
  });

  void test('stat: files, directories (via the redirect), missing', async () => {
    await withRemote(html, async (r) => {
      const st = await r.stat('ramp.bin', ac.signal);
      assert.equal(st.type, 'file');
      assert.equal(st.size, RAMP_SIZE);
      assert.match(st.etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.equal(st.mtimeMs, Math.floor((await stat(join(root, 'ramp.bin'))).mtimeMs / 1000) * 1000);
      assert.deepEqual(await r.stat('ramp.bin', ac.signal), st, 'ETag and fingerprint are stable');
      assert.deepEqual(await r.stat('nested', ac.signal), { name: 'nested', type: 'dir', size: 0 });
      assert.deepEqual(await r.stat('', ac.signal), { name: '', type: 'dir', size: 0 });
      assert.equal((await r.stat('nested/inner.bin', ac.signal)).size, 5000);
      for (const [name, size] of Object.entries(NAMES)) assert.equal((await r.stat(name, ac.signal)).size, size, name);
      await rejectsKind(r.stat('missing', ac.signal), 'not-found', 'missing file');
      await rejectsKind(r.list('missing', ac.signal), 'not-found', 'missing dir');
    });
  });

  void test('ranged reads match the ramp, with the expected fingerprint', async () => {
    await withRemote(html, async (r) => {
      const st = await r.stat('ramp.bin', ac.signal);
      const cases: [number, number][] = [
        [0, 1],
        [0, 65536],
        [1_000_003, 1_048_576],
        [RAMP_SIZE - 100, 1000],
        [0, RAMP_SIZE],
      ];
      for (const [offset, length] of cases) {
        const res = await r.read('ramp.bin', offset, length, { signal: ac.signal, expect: st });
        const buf = await within(collect(res.body), 10_000, `nginx read ${offset}+${length}`);
        assert.equal(buf.length, Math.min(length, RAMP_SIZE - offset));
        assert.equal(checkRamp(buf, offset), -1);
        assert.equal(res.fingerprint.etag, st.etag);
      }
      for (const [name, size] of Object.entries(NAMES)) {
        if (size === 0) continue;
        const off = Math.floor(size / 3);
        const res = await r.read(name, off, size, { signal: ac.signal });
        assert.equal(checkRamp(await collect(res.body), off), -1, name);
      }
      const nested = await r.read('nested/inner.bin', 4000, 2000, { signal: ac.signal });
      assert.equal((await collect(nested.body)).length, 1000);
      await rejectsKind(r.read('ramp.bin', RAMP_SIZE + 1, 10, { signal: ac.signal }), 'invalid', 'read past EOF');
    });
  });

  void test('a 0-byte file stats and reads as empty', async () => {
    await withRemote(html, async (r) => {
      const st = await r.stat('empty', ac.signal);
      assert.equal(st.size, 0);
      const res = await r.read('empty', 0, 4096, { signal: ac.signal, expect: st });
      assert.equal((await collect(res.body)).length, 0);
      assert.equal(res.fingerprint.size, 0);
    });
  });

  void test('a file changed on the server is "changed", never old or mixed bytes', async () => {
    await withRemote(html, async (r) => {
      const path = join(root, 'nested', 'changing.bin');
      await writeRampFile(path, 10_000);
      await utimes(path, new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T00:00:00Z'));
      const st = await r.stat('nested/changing.bin', ac.signal);
      await utimes(path, new Date('2025-01-02T00:00:00Z'), new Date('2025-01-02T00:00:00Z'));
      await rejectsKind(r.read('nested/changing.bin', 100, 100, { signal: ac.signal, expect: st }), 'changed', 'mtime change');
      const now = await r.stat('nested/changing.bin', ac.signal);
      assert.notEqual(now.etag, st.etag);
      const ok = await r.read('nested/changing.bin', 100, 100, { signal: ac.signal, expect: now });
      assert.equal(checkRamp(await collect(ok.body), 100), -1);
    });
  });

  void test('a 10,000-entry directory lists in one request', async () => {
    for (const server of [html, json]) {
      await withRemote(server, async (r) => {
        const before = (await server.accessLog()).length;
        const entries = await r.list('big', ac.signal);
        assert.equal(entries.length, BIG_DIR_ENTRIES);
        assert.ok(entries.every((e) => e.type === 'file' && e.size === 1));
        assert.equal(new Set(entries.map((e) => e.name)).size, BIG_DIR_ENTRIES);
        // other requests may be logged late (nginx logs when a request is finalized)
        const log = (await server.accessLog()).slice(before).filter((l) => l.includes('/big'));
        assert.deepEqual(log, ['GET /big/ HTTP/1.1 200']);
      });
    }
  });
});
