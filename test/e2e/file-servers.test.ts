// The servers people actually run, mounted as a new user would: python's http.server (bare
// links, no sizes, no Range support), Apache with mod_autoindex (human sizes like "1.2M") and
// nginx with `autoindex_exact_size off` ("5M"). Through the mount, with every syscall in a
// child process: sizes in `stat` and `ls -l` are exact, every file is byte-identical (sha256),
// mtimes are real (never 1970), and a server without ranges is read by one whole-file stream,
// not refetched per read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { apacheAvailable, startApache, startPythonHttp, type FileServer } from '../support/file-servers.js';
import { startNginx } from '../support/nginx.js';
import { sh } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';
import { withRemoteMount } from '../support/remote-mount.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

describe('mounting the file servers people run', () => {
  let root: string;
  const files = new Map<string, Buffer>();

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fusestream-servers-'));
    mkdirSync(join(root, 'sub'));
    const put = (rel: string, b: Buffer): void => {
      writeFileSync(join(root, rel), b);
      files.set(rel, b);
    };
    put('hello.txt', Buffer.from('hello, world\n'));
    put('empty', Buffer.alloc(0));
    put('name with spaces.bin', randomBytes(100 * 1024 + 7));
    put('ünï cødé.txt', Buffer.from('unicode name\n'));
    put('big.bin', rampBuffer(0, 6 * MiB + 123)); // several MiB: many kernel READs
    put('sub/nested.txt', Buffer.from('nested file\n'));
    // Apache runs as www-data: the tree must be readable by it.
    chmodSync(root, 0o755);
    chmodSync(join(root, 'sub'), 0o755);
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  /** Mounts `server` and checks sizes, mtimes and bytes of every file through the mount. */
  async function checkServer(server: FileServer, extra?: (mnt: string) => Promise<void>): Promise<void> {
    const remote = new HttpRemote({ baseUrl: server.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        const q = (rel: string): string => `'${join(mnt, rel).replaceAll("'", "'\\''")}'`;
        for (const [rel, bytes] of files) {
          const [size, mtime] = (await sh(`stat -c '%s %Y' ${q(rel)}`)).trim().split(' ').map(Number);
          assert.equal(size, bytes.length, `stat size of ${rel}`);
          assert.ok((mtime ?? 0) > Date.UTC(2020, 0, 1) / 1000, `mtime of ${rel} is real, not 1970 (${mtime})`);
        }
        // ls -l (READDIRPLUS) shows the exact sizes too.
        const ls = (await sh(`ls -ln ${q('')}`)).split('\n').filter((l) => l.startsWith('-'));
        for (const line of ls) {
          const cols = line.trim().split(/\s+/);
          const name = cols.slice(8).join(' ');
          const bytes = files.get(name);
          assert.ok(bytes, `ls lists ${name}`);
          assert.equal(Number(cols[4]), bytes.length, `ls -l size of ${name}: ${line}`);
        }
        for (const [rel, bytes] of files) {
          const got = (await sh(`sha256sum < ${q(rel)}`, 60_000)).split(' ')[0];
          assert.equal(got, sha(bytes), `sha256 of ${rel}`);
        }
        await extra?.(mnt);
      });
    } finally {
      await remote.close();
    }
  }

  test("python3 -m http.server: exact sizes, real mtimes, identical bytes; no Range support is read by whole-file streams", async () => {
    const server = await startPythonHttp(root);
    try {
      await checkServer(server, async (mnt) => {
        // A read in the middle of the big file (a fresh remount would be needed to make it
        // cold; here the bytes may be cached already, so it checks bytes only).
        const mid = await sh(`dd if=${join(mnt, 'big.bin')} bs=4096 skip=700 count=2 status=none | sha256sum`);
        assert.equal(mid.split(' ')[0], sha(rampBuffer(700 * 4096, 8192)));
      });
      const gets = (await server.requests()).filter((l) => l.includes('"GET /big.bin'));
      // The first ranged GET learns that ranges are ignored (200, whole file); from then on one
      // whole-file stream serves every reader. A read-ahead may have started beside the first
      // read before the answer came: at most three GETs, never one per 1 MiB READ (seven).
      assert.ok(gets.length >= 1 && gets.length <= 3, `GETs of big.bin: ${gets.length}\n${gets.join('\n')}`);
    } finally {
      await server.stop();
    }
  });

  test('Apache httpd with mod_autoindex ("1.2M" sizes): exact sizes and identical bytes', { skip: apacheAvailable() ? false : 'apache2-bin is not installed (scripts/ensure-deps.mjs installs it for npm test)' }, async () => {
    const server = await startApache(root);
    try {
      await checkServer(server);
    } finally {
      await server.stop();
    }
  });

  test('nginx with autoindex_exact_size off ("6M" sizes): exact sizes and identical bytes', async () => {
    const nginx = await startNginx({ root, exactSize: false });
    try {
      await checkServer({ url: nginx.url, requests: () => nginx.accessLog(), stop: () => nginx.stop() });
    } finally {
      await nginx.stop();
    }
  });
});
