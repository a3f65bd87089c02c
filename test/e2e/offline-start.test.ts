// Starting a mount while the remote is down (the `fusestream mount` CLI in a child, against the
// fault server): a first mount lists some directories and reads some files, then unmounts; the
// server's port is closed (refused); a second mount on the same cache dir starts anyway (from
// the listings the first one saved), browses and reads what the first saw (sha256), fails fast
// on what it never fetched, and when the server listens again the probe brings it online
// without a remount. With nothing cached, the same start is a usage error with a clear message.
// Client syscalls run in child shells, timed inside the child.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalogue } from '../../src/store/catalogue.js';
import { cacheDirFor } from '../../src/cli/mount-command.js';
import { startFaultServer, type FaultServer } from '../fakes/fault-server.js';
import { rampBuffer } from '../support/ramp.js';
import { eventually } from '../support/eventually.js';
import { run, sh, start, terminate, type Running } from '../support/proc.js';

const here = new URL('.', import.meta.url).pathname;
const cli = join(here, '..', '..', '..', 'bin', 'fusestream.js');
const isMounted = (mnt: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const KiB = 1024;
/** What "fails fast" means here: well under any deadline, timed in the child. */
const FAST_MS = 1000;

/** Runs `cmd` in a child shell and says how it ended and how long it took (ms, in the child). */
async function timed(cmd: string): Promise<{ rc: number; ms: number; out: string }> {
  const out = await sh(`s=$(date +%s%N); out=$( { ${cmd} ; } 2>&1 ); rc=$?; e=$(( ($(date +%s%N) - s) / 1000000 )); echo "$rc $e"; echo "$out"`, 30_000);
  const [first = '', ...rest] = out.split('\n');
  const [rc, ms] = first.split(' ').map(Number);
  return { rc: rc ?? -1, ms: ms ?? -1, out: rest.join('\n') };
}

const FILES: Record<string, number> = {
  'a.bin': 1024 * KiB,
  'dir/c.bin': 64 * KiB,
  'dir/sub/d.bin': 4 * KiB + 1,
  'u.bin': 256 * KiB, // listed, never read
  'other/e.bin': 8 * KiB, // in a directory never listed
};
const CACHED = ['a.bin', 'dir/c.bin', 'dir/sub/d.bin'];
const shaOf = (rel: string): string => sha(rampBuffer(0, FILES[rel] ?? 0));

describe('fusestream mount with the remote down at start', () => {
  let dir: string;
  let server: FaultServer;
  const mounts: Running[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-offline-start-'));
    server = await startFaultServer();
    for (const [rel, size] of Object.entries(FILES)) server.addObject(`/${rel}`, size);
  });

  after(async () => {
    for (const m of mounts) m.child.kill('SIGKILL');
    for (const m of ['mnt1', 'mnt2', 'mnt3']) if (isMounted(join(dir, m))) await run('umount', ['-l', join(dir, m)], 5000);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function mount(mnt: string, cache: string, ...extra: string[]): Running {
    const m = start(process.execPath, [cli, 'mount', server.url, mnt, '--cache-dir', cache, '--log-level', 'warn', '--poll-interval', '0', ...extra]);
    mounts.push(m);
    return m;
  }

  async function unmount(m: Running, what: string): Promise<string> {
    const r = await terminate(m, what);
    assert.equal(r.code, 0, r.stderr);
    return r.stderr;
  }

  test('a second mount with the server refused serves what the first saw and recovers by itself', async () => {
    const cache = join(dir, 'cache');
    const mnt1 = join(dir, 'mnt1');
    const mnt2 = join(dir, 'mnt2');
    mkdirSync(mnt1);
    mkdirSync(mnt2);

    const first = mount(mnt1, cache);
    await first.waitFor('mounted', 15_000);
    const listed = {
      '': await sh(`ls ${mnt1}`),
      dir: await sh(`ls -l ${mnt1}/dir`),
      'dir/sub': await sh(`ls ${mnt1}/dir/sub`),
    };
    assert.match(listed[''], /u\.bin/);
    for (const rel of CACHED) assert.equal((await sh(`sha256sum < ${mnt1}/${rel}`)).split(' ')[0], shaOf(rel), `${rel} online`);
    await unmount(first, 'the first mount');
    const store = Catalogue.open(join(cacheDirFor(cache, server.url), 'cache.db'));
    try {
      for (const rel of CACHED) assert.equal(store.getObject(server.url, rel)?.presentBytes, FILES[rel], `${rel} is wholly cached`);
      assert.equal(store.listings.countListings(server.url), 3, 'the root, dir and dir/sub listings are saved');
    } finally {
      store.close();
    }

    await server.outage('refused');
    const second = mount(mnt2, cache, '--deadline', '5', '--probe-min', '0.2', '--probe-max', '0.5');
    await second.waitFor('mounted', 15_000);
    // Browsing: the saved listings, as the first mount saw them.
    assert.equal(await sh(`ls ${mnt2}`), listed[''], 'the root listing');
    assert.equal(await sh(`ls ${mnt2}/dir/sub`), listed['dir/sub'], 'a nested listing');
    const long = await timed(`ls -l ${mnt2}/dir`);
    assert.equal(long.rc, 0, long.out);
    assert.match(long.out, new RegExp(`${FILES['dir/c.bin']} .* c\\.bin`), 'attributes from the saved listing');
    // Reading: the cached files, whole and correct.
    for (const rel of CACHED) {
      const r = await timed(`sha256sum < ${mnt2}/${rel}`);
      assert.equal(r.rc, 0, `${rel} offline: ${r.out}`);
      assert.equal(r.out.split(' ')[0], shaOf(rel), `${rel} offline`);
    }
    // What was never fetched fails at once.
    for (const [what, cmd] of [
      ['a listed file never read', `cat ${mnt2}/u.bin > /dev/null`],
      ['a directory never listed', `ls ${mnt2}/other`],
    ] as const) {
      const r = await timed(cmd);
      assert.notEqual(r.rc, 0, `${what} fails while the server is down`);
      assert.ok(r.ms < FAST_MS, `${what} failed in ${r.ms} ms (bound ${FAST_MS} ms): ${r.out}`);
    }

    // The server listens again: the probe brings the mount online, no remount.
    await server.outage(undefined);
    await eventually(async () => (await run('sh', ['-c', `cat ${mnt2}/u.bin > /dev/null`], 10_000)).code === 0, 15_000, 'the probe to bring the mount back online', 200);
    assert.equal((await sh(`sha256sum < ${mnt2}/u.bin`)).split(' ')[0], shaOf('u.bin'), 'an uncached file after recovery');
    assert.equal((await sh(`sha256sum < ${mnt2}/other/e.bin`)).split(' ')[0], shaOf('other/e.bin'), 'a directory never listed, after recovery');
    const stderr = await unmount(second, 'the second mount');
    assert.match(stderr, /remote unreachable at start: mounting offline from the cache/, 'the start says it is offline');
  });

  test('with nothing cached for the remote, an unreachable remote at start is a clear usage error', async () => {
    const mnt3 = join(dir, 'mnt3');
    mkdirSync(mnt3);
    await server.outage('refused');
    try {
      const r = await run(process.execPath, [cli, 'mount', server.url, mnt3, '--cache-dir', join(dir, 'empty-cache'), '--log-level', 'warn'], 20_000);
      assert.equal(r.code, 2, `a usage error: ${r.stderr}`);
      assert.match(r.stderr, /cannot reach the remote .* holds no listings of it; --offline mounts it anyway/);
      assert.equal(isMounted(mnt3), false);
    } finally {
      await server.outage(undefined);
    }
  });
});
