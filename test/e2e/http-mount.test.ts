// The read-only product end to end: real nginx (and the fault-injecting server) on 127.0.0.1,
// mounted through HttpRemote → DataCache → RemoteFs → bridge → our FUSE session, with every
// syscall made by child processes. Content is ramp data or random bytes checked by sha256.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { HttpRemote } from '../../src/remote/http/http-remote.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { startNginx, type NginxHandle } from '../support/nginx.js';
import { startFaultServer } from '../fakes/fault-server.js';
import { writeRampFile } from '../support/ramp.js';
import { run, sh, start } from '../support/proc.js';
import { withRemoteMount } from '../support/remote-mount.js';

const here = new URL('.', import.meta.url).pathname;
const clientRamp = join(here, '..', 'support', 'client-ramp.js');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('read-only HTTP mount against nginx', () => {
  let root: string;
  let html: NginxHandle;
  let json: NginxHandle;
  const files = new Map<string, Buffer>();

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fusestream-www-'));
    mkdirSync(join(root, 'nested', 'deeper'), { recursive: true });
    mkdirSync(join(root, 'many'));
    mkdirSync(join(root, 'set'));
    await writeRampFile(join(root, 'ramp.bin'), 48 * 1024 * 1024 + 123);
    const put = (rel: string, b: Buffer): void => {
      writeFileSync(join(root, rel), b);
      files.set(rel, b);
    };
    put('empty', Buffer.alloc(0));
    put('a b ü.txt', Buffer.from('spaces and unicode\n'));
    put('100% sure#?.bin', randomBytes(70_000));
    put('nested/deeper/x.bin', randomBytes(3 * 1024 * 1024 + 7));
    for (let i = 0; i < 16; i++) put(`set/f${i}.bin`, randomBytes(2 * 1024 * 1024 + i));
    for (let i = 0; i < 10_000; i++) writeFileSync(join(root, 'many', `e${i}`), String(i));
    html = await startNginx({ root, autoindex: 'html' });
    json = await startNginx({ root, autoindex: 'json' });
  });

  after(async () => {
    await html?.stop();
    await json?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('every file reads back with the source sha256; names with spaces, unicode, % and #; a 0-byte file', async () => {
    const remote = new HttpRemote({ baseUrl: html.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        for (const [rel, content] of files) {
          const out = await sh(`sha256sum "${join(mnt, rel)}"`);
          assert.equal(out.split(' ')[0], sha(content), rel);
        }
        assert.equal((await sh(`stat -c %s ${mnt}/empty`)).trim(), '0');
        const r = await run('sh', ['-c', `cat ${mnt}/ramp.bin | sha256sum`], 60_000);
        assert.equal(r.stdout.split(' ')[0], sha(readFileSync(join(root, 'ramp.bin'))));
      });
    } finally {
      await remote.close();
    }
  });

  test('random-offset reads equal ramp data; 64 parallel readers over 16 files', async () => {
    const remote = new HttpRemote({ baseUrl: json.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        const size = 48 * 1024 * 1024 + 123;
        const rampers = Array.from({ length: 4 }, (_, i) => run(process.execPath, [clientRamp, join(mnt, 'ramp.bin'), String(size), '200', String(i)], 120_000));
        for (const r of await Promise.all(rampers)) assert.equal(r.code, 0, r.stdout + r.stderr);
        const readers = Array.from({ length: 64 }, (_, i) => run('sha256sum', [join(mnt, 'set', `f${i % 16}.bin`)], 120_000));
        for (const [i, r] of (await Promise.all(readers)).entries()) {
          assert.equal(r.stdout.split(' ')[0], sha(files.get(`set/f${i % 16}.bin`) as Buffer), `reader ${i}`);
        }
      });
    } finally {
      await remote.close();
    }
  });

  test('ls -l of a 10,000-entry directory costs one listing request and no per-file request', async () => {
    const remote = new HttpRemote({ baseUrl: json.url });
    try {
      await withRemoteMount(remote, async ({ mnt, fs }) => {
        // Every READDIRPLUS page of one `ls` comes from one snapshot of the directory: the
        // entries are built once per opendir, not once per page.
        const snapshotsBefore = fs.dirSnapshots;
        const before = (await json.accessLog()).length;
        const lines = (await sh(`ls -l ${mnt}/many | tail -n +2`)).trim().split('\n');
        assert.equal(lines.length, 10_000);
        assert.match(lines[0] ?? '', /^-r--r--r--/);
        const requests = (await json.accessLog()).slice(before);
        const many = requests.filter((l) => l.includes('/many'));
        assert.equal(many.length, 1, `requests for /many: ${many.join(' | ')}`);
        assert.ok(requests.length <= 2, `at most the root and /many listings, saw ${requests.length}: ${requests.join(' | ')}`);
        assert.equal(fs.dirSnapshots - snapshotsBefore, 1, 'the 10,000 entries were built once for the whole ls');
        assert.equal(fs.openDirs, 0, 'RELEASEDIR closed the directory handle');
      }, { core: { attrTtlMs: 30_000, entryTtlMs: 30_000, dirTtlMs: 30_000 } });
    } finally {
      await remote.close();
    }
  });

  test('a file changed on the server is read new after its TTL, never mixed', async () => {
    const rel = 'changing.bin';
    const v1 = Buffer.alloc(1024 * 1024, 0x11);
    const v2 = Buffer.alloc(1024 * 1024, 0x22);
    writeFileSync(join(root, rel), v1);
    utimesSync(join(root, rel), new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    const remote = new HttpRemote({ baseUrl: html.url });
    try {
      // TTLs of 0: the kernel and the core re-validate on every access, so the test needs no
      // waiting for a TTL to run out.
      await withRemoteMount(remote, async ({ mnt }) => {
        assert.equal((await sh(`sha256sum ${mnt}/${rel}`)).split(' ')[0], sha(v1));
        writeFileSync(join(root, rel), v2);
        utimesSync(join(root, rel), new Date(1_700_000_100_000), new Date(1_700_000_100_000));
        assert.equal((await sh(`sha256sum ${mnt}/${rel}`)).split(' ')[0], sha(v2), 'the new version, whole');
      }, { core: { attrTtlMs: 0, entryTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 } });
    } finally {
      await remote.close();
      rmSync(join(root, rel), { force: true });
    }
  });

  test('writes answer EROFS', async () => {
    const remote = new HttpRemote({ baseUrl: html.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        for (const cmd of [`touch ${mnt}/new`, `mkdir ${mnt}/d`, `rm ${mnt}/empty`, `mv ${mnt}/empty ${mnt}/e2`, `sh -c 'echo x >> ${mnt}/empty'`]) {
          const r = await run('sh', ['-c', cmd], 10_000);
          assert.notEqual(r.code, 0, cmd);
          assert.match(r.stderr, /Read-only file system/, cmd);
        }
      });
    } finally {
      await remote.close();
    }
  });
});

describe('stalls and broken servers', () => {
  test('a stall mid-file gives EIO within deadline + 1 s; ls answers meanwhile; the read succeeds after recovery', async () => {
    const server = await startFaultServer();
    server.addObject('/ramp.bin', 8 * 1024 * 1024);
    const remote = new HttpRemote({ baseUrl: server.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        const deadlineMs = 2000;
        const stall = server.stallAfter(1024 * 1024, { count: 100 });
        const t0 = performance.now();
        const dd = start('dd', [`if=${mnt}/ramp.bin`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
        await within(stall.reached, 10_000, 'the server to stall mid-body');
        const ls = await within(run('ls', [mnt], 1000), 1000, 'ls of the mount root while a read is stalled');
        assert.match(ls.stdout, /ramp\.bin/);
        const r = await within(dd.done, deadlineMs + 3000, 'dd to fail at its deadline');
        const elapsed = performance.now() - t0;
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Input\/output error/);
        assert.ok(elapsed < deadlineMs + 1000, `EIO after ${Math.round(elapsed)} ms; deadline ${deadlineMs} ms`);
        server.clearFaults();
        stall.gate.open();
        const ok = await run('sh', ['-c', `dd if=${mnt}/ramp.bin bs=1M iflag=direct status=none | sha256sum`], 30_000);
        const { rampBuffer } = await import('../support/ramp.js');
        assert.equal(ok.stdout.split(' ')[0], sha(rampBuffer(0, 8 * 1024 * 1024)));
      }, { data: { operationDeadlineMs: 2000, retryMaxAttempts: 2 } });
    } finally {
      await remote.close();
      await server.stop();
    }
  });

  test('a server answering ranges with HTML errors gives EIO, never wrong bytes', async () => {
    const server = await startFaultServer();
    server.addObject('/x.bin', 4 * 1024 * 1024);
    const remote = new HttpRemote({ baseUrl: server.url });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        await sh(`stat ${mnt}/x.bin`);
        server.status(500, { count: 1000 });
        const r = await run('cat', [`${mnt}/x.bin`], 30_000);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Input\/output error/);
        assert.equal(r.stdout.length, 0);
      }, { data: { operationDeadlineMs: 3000, retryMaxAttempts: 2, retryBaseMs: 10, retryMaxMs: 50 } });
    } finally {
      await remote.close();
      await server.stop();
    }
  });

  test('hostile names in a listing are refused, never followed; the good ones work', async () => {
    const listing = JSON.stringify([
      { name: '..', type: 'directory', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT' },
      { name: 'a/b', type: 'file', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT', size: 3 },
      { name: '', type: 'file', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT', size: 3 },
      { name: 'nul\u0000x', type: 'file', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT', size: 3 },
      { name: 'x'.repeat(256), type: 'file', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT', size: 3 },
      { name: 'good.txt', type: 'file', mtime: 'Thu, 01 Jan 2026 00:00:00 GMT', size: 3 },
    ]);
    const requested: string[] = [];
    const server = createServer((req, res) => {
      requested.push(req.url ?? '');
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(listing);
      } else if (req.url === '/good.txt') {
        res.writeHead(req.headers.range ? 206 : 200, { 'content-length': '3', etag: '"g"', ...(req.headers.range ? { 'content-range': 'bytes 0-2/3' } : {}) }).end(req.method === 'HEAD' ? undefined : 'ok\n');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const remote = new HttpRemote({ baseUrl: `http://127.0.0.1:${port}/` });
    try {
      await withRemoteMount(remote, async ({ mnt }) => {
        assert.deepEqual((await sh(`ls -a ${mnt}`)).trim().split('\n'), ['.', '..', 'good.txt']);
        assert.equal(await sh(`cat ${mnt}/good.txt`), 'ok\n');
        const r = await run('cat', [`${mnt}/a`], 5000);
        assert.match(r.stderr, /No such file/);
        assert.ok(requested.every((u) => u === '/' || u === '/good.txt'), `only the root and good.txt were requested: ${requested.join(' ')}`);
      });
    } finally {
      await remote.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a file larger than 4 GiB (sparse, local remote) reads correctly past 4 GiB; symlinks read as symlinks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fusestream-local-'));
    try {
      const big = join(dir, 'big.sparse');
      await sh(`ln -s big.sparse ${dir}/link && ln -s /etc/passwd ${dir}/outside`);
      await sh(`truncate -s 5G ${big} && printf 'MARKER' | dd of=${big} bs=1 seek=$((4*1024*1024*1024+4096)) conv=notrunc status=none`);
      const remote = new LocalRemote({ root: dir });
      await withRemoteMount(remote, async ({ mnt }) => {
        assert.equal((await sh(`stat -c %s ${mnt}/big.sparse`)).trim(), String(5 * 1024 ** 3));
        const out = await sh(`dd if=${mnt}/big.sparse bs=4096 skip=$((1024*1024+1)) count=1 status=none | head -c 6`);
        assert.equal(out, 'MARKER');
        assert.equal((await sh(`readlink ${mnt}/link`)).trim(), 'big.sparse');
        assert.equal((await sh(`readlink ${mnt}/outside`)).trim(), '/etc/passwd', 'the target text, as stored');
        assert.match((await sh(`ls -l ${mnt}/outside`)).trim(), /^l.*outside -> \/etc\/passwd$/);
      });
      await remote.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
