// `fusestream mount webdav+http://…` against each real WebDAV server (Apache mod_dav, nginx dav
// + dav-ext, `rclone serve webdav`) through the CLI, with client I/O in child processes:
// - create, overwrite, rename, mkdir/rmdir, delete and a large file (64 MiB; set
//   FUSESTREAM_DAV_LARGE_BYTES=1G for the 1 GiB round trip) reach the server byte-identical
//   after an orderly unmount, and a fresh mount (empty cache) reads them back identical;
// - the server's access log shows PUTs and never a Content-Range PUT;
// - a file changed on the server while a local edit of it is pending: both versions survive
//   (theirs at the name, ours at `<name>.conflict-…`), as docs/SEMANTICS.md says.
// And, on Apache behind the fault fixture: a PUT answered 507 (insufficient storage) keeps the
// upload queued with its error in `fusestream status`, and it lands once the server has room.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSize } from '../../src/base/settings.js';
import { within } from '../../src/base/async.js';
import { CLI, CliMounts } from '../support/cli-mount.js';
import { eventually } from '../support/eventually.js';
import { run, sh } from '../support/proc.js';
import { writeRampFile } from '../support/ramp.js';
import { canRunApache, davAvailable, davLeftovers, startApacheDav, startDav, type DavKind, type DavServer } from '../support/webdav-servers.js';
import { startDavFaultServer } from '../fakes/dav-fault-server.js';

const LARGE = parseSize(process.env.FUSESTREAM_DAV_LARGE_BYTES ?? '64M');
const KINDS: DavKind[] = ['apache', 'nginx', 'rclone'];
const usable = (k: DavKind): boolean => davAvailable(k) && (k !== 'apache' || canRunApache());

async function sha256File(path: string): Promise<string> {
  return (await sh(`sha256sum '${path}'`, 600_000)).split(' ')[0] ?? '';
}

/** PUT lines of an access log that carried a Content-Range header. */
function contentRangePuts(log: readonly string[]): string[] {
  return log.filter((l) => l.startsWith('PUT ') && !/ cr=(-|)$/.test(l));
}

void describe('WebDAV mounts against real servers', () => {
  let dir: string;
  let big: string;
  let bigSha: string;
  const mounts = new CliMounts();
  const servers: DavServer[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-dav-servers-'));
    big = join(dir, 'big.src');
    await writeRampFile(big, LARGE, 5);
    bigSha = await sha256File(big);
  });

  after(async () => {
    await mounts.dispose();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(kind: DavKind, name: string, files: Record<string, string>): Promise<{ work: string; server: DavServer }> {
    const work = join(dir, `${kind}-${name}`);
    const root = join(work, 'root');
    mkdirSync(root, { recursive: true });
    for (const [p, text] of Object.entries(files)) writeFileSync(join(root, p), text);
    const server = await startDav(kind, root);
    servers.push(server);
    return { work, server };
  }

  for (const kind of KINDS) {
    const skip = usable(kind) ? false : `${kind} (WebDAV) is not installed here`;

    void test(`${kind}: create, overwrite, rename, mkdir/rmdir, delete and ${LARGE} bytes round trip byte-identical; no Content-Range PUT`, { skip, timeout: 900_000 }, async () => {
      const { work, server } = await serve(kind, 'ops', { 'old.txt': 'the old file\n', 'doomed.txt': 'to be deleted\n' });
      const mnt = mounts.mountpoint(work, 'mnt');
      const m = await mounts.start(['mount', `webdav+${server.url}`, mnt, '--cache-dir', join(work, 'cache1'), '--write-back-delay', '0', '--log-level', 'warn'], mnt, `mount of ${kind}`);
      await sh(
        [
          `cd '${mnt}'`,
          `printf 'hello' > new.txt`,
          `printf 'HELLO, overwritten' > new.txt`,
          `mv old.txt renamed.txt`,
          `mkdir d && echo x > d/x && rm d/x && rmdir d`,
          `mkdir keep && echo kept > keep/k.txt`,
          `rm doomed.txt`,
          `cp '${big}' big.bin`,
          `echo brief > brief.txt && rm brief.txt`,
        ].join(' && '),
        600_000,
      );
      const { exit } = await mounts.stop(m, 'SIGTERM', 600_000);
      assert.equal(exit.code, 0, `the mount drains and exits 0: ${exit.stderr.slice(-2000)}`);
      const root = server.root;
      assert.deepEqual(readdirSync(root).filter((n) => !n.startsWith('.')).sort(), ['big.bin', 'keep', 'new.txt', 'renamed.txt']);
      assert.equal(readFileSync(join(root, 'new.txt'), 'utf8'), 'HELLO, overwritten');
      assert.equal(readFileSync(join(root, 'renamed.txt'), 'utf8'), 'the old file\n');
      assert.equal(readFileSync(join(root, 'keep', 'k.txt'), 'utf8'), 'kept\n');
      assert.equal(await sha256File(join(root, 'big.bin')), bigSha, 'the large file on the server is byte-identical');
      assert.deepEqual(davLeftovers(root), [], 'no temp or probe file left');

      // A fresh mount (empty cache) reads it all back from the server.
      const mnt2 = mounts.mountpoint(work, 'mnt2');
      const m2 = await mounts.start(['mount', `webdav+${server.url}`, mnt2, '--cache-dir', join(work, 'cache2'), '--log-level', 'warn'], mnt2, `second mount of ${kind}`);
      assert.equal(await sha256File(join(mnt2, 'big.bin')), bigSha, 'the large file read through a fresh mount is byte-identical');
      assert.equal(await sh(`cat '${mnt2}/new.txt'`), 'HELLO, overwritten');
      assert.equal((await mounts.stop(m2, 'SIGTERM')).exit.code, 0);

      const log = await server.accessLog();
      assert.ok(log.some((l) => l.startsWith('PUT ')), `the access log records PUTs: ${log.slice(0, 5).join(' | ')}`);
      assert.deepEqual(contentRangePuts(log), [], 'no Content-Range PUT was ever sent');
    });

    void test(`${kind}: a file changed on the server while a local edit is pending keeps both versions`, { skip }, async () => {
      const { work, server } = await serve(kind, 'conflict', { 'shared.txt': 'base version\n' });
      const mnt = mounts.mountpoint(work, 'mnt');
      // Uploads held: the edit stays pending until the unmount drains it.
      const m = await mounts.start(['mount', `webdav+${server.url}`, mnt, '--cache-dir', join(work, 'cache'), '--write-back-delay', '3600', '--log-level', 'error'], mnt, `mount of ${kind}`);
      assert.equal(await sh(`cat '${mnt}/shared.txt' && echo ours >> '${mnt}/shared.txt'`), 'base version\n');
      // Someone else rewrites the file on the server meanwhile (another size: detectable on
      // every server, even where versions are only size + a one-second mtime).
      writeFileSync(join(server.root, 'shared.txt'), 'theirs, written on the server\n');
      server.own();
      const { exit } = await mounts.stop(m, 'SIGTERM');
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
      assert.equal(readFileSync(join(server.root, 'shared.txt'), 'utf8'), 'theirs, written on the server\n', 'theirs stays at the name');
      const copies = readdirSync(server.root).filter((n) => n.startsWith('shared.txt.conflict-'));
      assert.equal(copies.length, 1, `ours is kept under one conflict name: ${readdirSync(server.root).join(', ')}`);
      assert.equal(readFileSync(join(server.root, copies[0] as string), 'utf8'), 'base version\nours\n', 'ours, whole');
    });
  }

  void test('apache with Basic auth: --user with the password from the environment or a file; the password is never logged or shown', { skip: usable('apache') ? false : 'Apache mod_dav is not installed here' }, async () => {
    const work = join(dir, 'apache-auth');
    const root = join(work, 'root');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'secret.txt'), 'behind auth\n');
    const password = 'pw-Zq8%x:y@never-logged';
    const server = await startApacheDav(root, { user: 'alice', password });
    servers.push(server);
    const pwFile = join(work, 'pw');
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    const refused = await run(process.execPath, [CLI, 'mount', `webdav+${server.url}`, mounts.mountpoint(work, 'nope'), '--cache-dir', join(work, 'cache0')], 30_000);
    assert.equal(refused.code, 2, `no credentials: a usage error; ${refused.stderr.slice(-500)}`);
    for (const [how, args, env] of [
      ['environment', ['--user', 'alice'], { FUSESTREAM_PASSWORD: password }],
      ['password file', ['--user', 'alice', '--password-file', pwFile], {}],
    ] as const) {
      const mnt = mounts.mountpoint(work, `mnt-${how.replace(' ', '-')}`);
      Object.assign(process.env, env);
      let m;
      try {
        m = await mounts.start(['mount', `webdav+${server.url}`, mnt, '--cache-dir', join(work, `cache-${how.replace(' ', '-')}`), '--write-back-delay', '0', '--log-level', 'debug', ...args], mnt, `mount with the password from the ${how}`);
      } finally {
        delete process.env['FUSESTREAM_PASSWORD'];
      }
      assert.equal(await sh(`cat '${mnt}/secret.txt' && printf 'mine' > '${mnt}/${how.replace(' ', '-')}.txt'`), 'behind auth\n');
      const status = await run(process.execPath, [CLI, 'status', mnt, '--json'], 20_000);
      const { exit } = await mounts.stop(m, 'SIGTERM');
      assert.equal(exit.code, 0, exit.stderr.slice(-1000));
      assert.equal(readFileSync(join(root, `${how.replace(' ', '-')}.txt`), 'utf8'), 'mine');
      const basic = Buffer.from(`alice:${password}`).toString('base64');
      for (const text of [exit.stdout, exit.stderr, status.stdout, status.stderr]) {
        assert.ok(!text.includes(password) && !text.includes(encodeURIComponent(password)) && !text.includes(basic), `the password does not appear (${how})`);
      }
    }
  });

  void test('apache behind the fault fixture: a PUT answered 507 stays queued with its error visible, and lands once there is room', { skip: usable('apache') ? false : 'Apache mod_dav is not installed here' }, async () => {
    const { work, server } = await serve('apache', 'full', {});
    const proxy = await startDavFaultServer(server.url);
    try {
      const mnt = mounts.mountpoint(work, 'mnt');
      const m = await mounts.start(['mount', `webdav+${proxy.url}`, mnt, '--cache-dir', join(work, 'cache'), '--write-back-delay', '0', '--log-level', 'error'], mnt, 'mount through the fault fixture');
      let refused = 0;
      proxy.intercept = (req, res) => {
        if (req.method !== 'PUT') return false;
        refused++;
        req.resume();
        res.writeHead(507, { 'content-length': '0' }).end();
        return true;
      };
      await sh(`printf 'wants room' > '${mnt}/full.txt'`);
      let status = '';
      await eventually(
        async () => {
          const r = await run(process.execPath, [CLI, 'status', mnt, '--json'], 20_000);
          status = r.stdout;
          return /"path": "\/full\.txt"/.test(status) && /507/.test(status);
        },
        30_000,
        'fusestream status to show the upload of /full.txt failing with 507',
        200,
      );
      const parsed = JSON.parse(status) as { uploads: { pending: number; failing: { path: string; error: string }[] } }[];
      const failing = parsed[0]?.uploads.failing.find((f) => f.path === '/full.txt');
      assert.match(failing?.error ?? '', /no-space|507/, status);
      assert.ok(refused >= 1);
      assert.equal(await sh(`cat '${mnt}/full.txt'`), 'wants room', 'the mount still shows the file');
      assert.deepEqual(readdirSync(server.root).filter((n) => !n.startsWith('.')), [], 'nothing reached the server');
      // Room again: the unmount drains the queued upload.
      proxy.intercept = () => false;
      const { exit } = await within(mounts.stop(m, 'SIGTERM'), 90_000, 'the mount to drain and exit');
      assert.equal(exit.code, 0, exit.stderr.slice(-2000));
      assert.equal(readFileSync(join(server.root, 'full.txt'), 'utf8'), 'wants room');
    } finally {
      await proxy.close();
    }
  });
});
