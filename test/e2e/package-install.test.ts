// The package as a user installs it: a copy of the checkout (the files git knows, no dist/,
// node_modules linked) is packed with `npm pack`, whose prepack builds it; the tarball holds
// bin/, the compiled dist/src and the README, and nothing of the tests or sources; it is
// installed with `npm install -g --prefix <temp>` (better-sqlite3's install script allowed,
// as the README says; it builds the native module here) with its mount(8) helpers, and the
// installed `fusestream` prints its version and mounts a local directory, from which a child process reads a file;
// SIGTERM unmounts it.
// Needs the npm registry (the dependencies are downloaded): when `npm ping` fails the test is
// skipped and says so. It takes minutes (better-sqlite3 compiles); every step is bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { unmount } from '../../src/kernel/mount.js';
import { isMounted } from '../support/cli-mount.js';
import { run, start, terminate, type RunResult } from '../support/proc.js';
import { rampBuffer } from '../support/ramp.js';

/** The checkout: dist/test/e2e/ is three levels below it. */
const ROOT = join(new URL('.', import.meta.url).pathname, '..', '..', '..');
const MINUTE = 60_000;

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code ?? r.signal}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

/** Copies the files git tracks or would track (not ignored) from the checkout to `to`. */
async function copyCheckout(to: string): Promise<void> {
  const r = ok(await run('git', ['-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], MINUTE), 'git ls-files');
  for (const rel of r.stdout.split('\0')) {
    if (rel === '' || rel === 'node_modules' || rel.startsWith('node_modules/')) continue;
    mkdirSync(dirname(join(to, rel)), { recursive: true });
    try {
      copyFileSync(join(ROOT, rel), join(to, rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // deleted, not committed yet
    }
  }
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(to, 'node_modules'));
}

void describe('npm pack and a global install', () => {
  let dir: string;
  let mnt: string;
  let registry: string | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-package-'));
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const ping = await run('npm', ['ping'], MINUTE).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err) }));
    if (ping.code !== 0) registry = `the npm registry is unreachable (npm ping: ${ping.stderr.trim().split('\n').slice(-2).join(' ')})`;
  });

  after(async () => {
    if (isMounted(mnt)) await unmount(mnt, { lazy: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test('the packed tarball installs with -g into a prefix and the installed fusestream mounts a local dir', async (t) => {
    if (registry !== undefined) {
      t.skip(`skipped: ${registry}; installing the tarball needs its dependencies from the registry`);
      return;
    }
    const checkout = join(dir, 'checkout');
    await copyCheckout(checkout);
    const pack = ok(await run('npm', ['pack', '--pack-destination', dir], 10 * MINUTE, { cwd: checkout }), 'npm pack (prepack builds)');
    const tgz = readdirSync(dir).find((n) => /^fusestream-.*\.tgz$/.test(n));
    assert.ok(tgz !== undefined, `a tarball in ${dir}: ${pack.stdout}`);
    const tarball = join(dir, tgz);

    const files = ok(await run('tar', ['tzf', tarball], MINUTE), 'tar tzf').stdout.split('\n').filter((l) => l !== '');
    for (const need of ['package/package.json', 'package/README.md', 'package/bin/fusestream.js', 'package/bin/mount.fusestream.js', 'package/dist/src/cli/main.js', 'package/dist/src/kernel/device.js']) assert.ok(files.includes(need), `${need} is packed`);
    const extra = files.filter((f) => !/^package\/(package\.json|README\.md|LICENSE|bin\/[\w.-]+\.js|dist\/src\/.+\.js)$/.test(f));
    assert.deepEqual(extra, [], 'nothing but bin/, dist/src/**/*.js, the README, (a LICENSE) and package.json');

    const prefix = join(dir, 'prefix');
    ok(await run('npm', ['install', '-g', '--prefix', prefix, '--allow-scripts=better-sqlite3', '--no-audit', '--no-fund', tarball], 15 * MINUTE), 'npm install -g');
    const bin = join(prefix, 'bin', 'fusestream');
    for (const helper of ['mount.fusestream', 'mount.fuse.fusestream']) assert.ok(existsSync(join(prefix, 'bin', helper)), `${helper} is installed (mount(8)'s helper)`);
    const version = ok(await run(bin, ['--version'], MINUTE), 'fusestream --version');
    assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);

    const remote = join(dir, 'remote');
    mkdirSync(remote);
    const data = rampBuffer(0, 300 * 1024 + 7, 21);
    writeFileSync(join(remote, 'hello.bin'), data);
    const m = start(bin, ['mount', remote, mnt, '--cache-dir', join(dir, 'cache'), '--log-level', 'warn']);
    try {
      await m.waitFor('mounted', MINUTE);
      // A child process reads the file through the mount and compares it with the remote's.
      const cmp = ok(await run('cmp', [join(mnt, 'hello.bin'), join(remote, 'hello.bin')], MINUTE), 'cmp of the mounted file and the remote one');
      assert.equal(cmp.stdout, '');
      const ended = await terminate(m, 'the installed fusestream');
      assert.equal(ended.code, 0, ended.stderr);
      assert.equal(isMounted(mnt), false, 'unmounted');
    } finally {
      m.child.kill('SIGKILL');
    }
  });
});
