// The `fusestream mount` command as a user runs it (a child process), against real nginx:
// SIGTERM while 16 readers are active exits 0 with the mount gone, and after kill -9 a new
// mount on the same mountpoint works and serves cached bytes without asking the server again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { startNginx, type NginxHandle } from '../support/nginx.js';
import { writeRampFile } from '../support/ramp.js';
import { run, sh, start, terminate } from '../support/proc.js';
import { eventually } from '../support/eventually.js';
import { Catalogue } from '../../src/store/catalogue.js';
import { cacheDirFor } from '../../src/cli/mount-command.js';

const here = new URL('.', import.meta.url).pathname;
const cli = join(here, '..', '..', '..', 'bin', 'fusestream.js');
const isMounted = (mnt: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);

describe('fusestream mount (CLI)', () => {
  let dir: string;
  let www: string;
  let nginx: NginxHandle;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-cli-'));
    www = join(dir, 'www');
    mkdirSync(www);
    for (let i = 0; i < 4; i++) await writeRampFile(join(www, `r${i}.bin`), 16 * 1024 * 1024);
    nginx = await startNginx({ root: www, autoindex: 'json' });
  });

  after(async () => {
    await nginx?.stop();
    for (const m of ['mnt1', 'mnt2', 'mnt3a', 'mnt3b', 'mnt3c']) if (isMounted(join(dir, m))) await run('umount', ['-l', join(dir, m)], 5000);
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGTERM during 16 active readers exits 0 and the mount is gone', async () => {
    const mnt = join(dir, 'mnt1');
    mkdirSync(mnt);
    const server = start(process.execPath, [cli, 'mount', nginx.url, mnt, '--cache-dir', join(dir, 'cache1'), '--log-level', 'warn']);
    try {
      await server.waitFor('mounted', 15_000);
      const readers = Array.from({ length: 16 }, (_, i) => start('sh', ['-c', `while cat ${mnt}/r${i % 4}.bin > /dev/null; do :; done`]));
      await sh(`head -c 1000000 ${mnt}/r0.bin > /dev/null`);
      const r = await terminate(server, 'the mount process');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(isMounted(mnt), false);
      for (const reader of readers) await within(reader.done, 10_000, 'readers to stop once the mount is gone');
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  test('kill -9, then a new mount on the same mountpoint works and reuses the on-disk cache', async () => {
    const mnt = join(dir, 'mnt2');
    const cache = join(dir, 'cache2');
    mkdirSync(mnt);
    const first = start(process.execPath, [cli, 'mount', nginx.url, mnt, '--cache-dir', cache, '--log-level', 'warn']);
    let second: ReturnType<typeof start> | undefined;
    try {
      await first.waitFor('mounted', 15_000);
      const want = (await sh(`sha256sum ${join(www, 'r1.bin')}`)).split(' ')[0];
      assert.equal((await sh(`sha256sum ${mnt}/r1.bin`)).split(' ')[0], want);
      // Ranges reach the catalogue within persistIntervalMs (1 s) of landing: wait until the
      // other process has recorded the whole file, then kill it.
      await eventually(() => {
        const store = Catalogue.open(join(cacheDirFor(cache, nginx.url), 'cache.db'));
        try {
          return store.totalPresentBytes() >= 16 * 1024 * 1024;
        } finally {
          store.close();
        }
      }, 10_000, 'the mount process to record the read file in its cache catalogue');
      first.child.kill('SIGKILL');
      await within(first.done, 5000, 'the killed mount process to exit');
      assert.equal(isMounted(mnt), true, 'kill -9 leaves a dead mount');
      second = start(process.execPath, [cli, 'mount', nginx.url, mnt, '--cache-dir', cache, '--log-level', 'warn']);
      await second.waitFor('mounted', 15_000);
      const before = (await nginx.accessLog()).length;
      assert.equal((await sh(`sha256sum ${mnt}/r1.bin`)).split(' ')[0], want);
      const gets = (await nginx.accessLog()).slice(before).filter((l) => l.startsWith('GET /r1.bin'));
      assert.deepEqual(gets, [], 'the cached file is served without a GET of its bytes');
      const r = await terminate(second, 'the second mount');
      assert.equal(r.code, 0, r.stderr);
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
  });

  test('two mounts on one cache dir: the same remote is refused with a clear message, another remote gets its own cache', async () => {
    const cache = join(dir, 'cache3');
    const [a, b, c] = ['mnt3a', 'mnt3b', 'mnt3c'].map((m) => {
      mkdirSync(join(dir, m));
      return join(dir, m);
    }) as [string, string, string];
    const first = start(process.execPath, [cli, 'mount', nginx.url, a, '--cache-dir', cache, '--log-level', 'warn']);
    let other: ReturnType<typeof start> | undefined;
    try {
      await first.waitFor('mounted', 15_000);
      const want = (await sh(`sha256sum ${join(www, 'r2.bin')}`)).split(' ')[0];
      assert.equal((await sh(`sha256sum ${a}/r2.bin`)).split(' ')[0], want);
      const second = await run(process.execPath, [cli, 'mount', nginx.url, b, '--cache-dir', cache, '--log-level', 'warn'], 20_000);
      assert.equal(second.code, 2, `a second mount of the same remote on the same cache dir is a usage error: ${second.stderr}`);
      assert.match(second.stderr, new RegExp(`pid ${first.child.pid ?? 'none'}`), 'the message names the owning process');
      assert.equal(isMounted(b), false);
      // A different remote (the same files, as a local directory) with the same --cache-dir.
      other = start(process.execPath, [cli, 'mount', www, c, '--cache-dir', cache, '--log-level', 'warn']);
      await other.waitFor('mounted', 15_000);
      assert.equal((await sh(`sha256sum ${c}/r2.bin`)).split(' ')[0], want);
      // The first mount lost nothing: its cached file is still served (and correct).
      assert.equal((await sh(`sha256sum ${a}/r2.bin`)).split(' ')[0], want);
      for (const p of [first, other]) {
        const r = await terminate(p, 'a mount');
        assert.equal(r.code, 0, r.stderr);
      }
    } finally {
      first.child.kill('SIGKILL');
      other?.child.kill('SIGKILL');
    }
  });
});
