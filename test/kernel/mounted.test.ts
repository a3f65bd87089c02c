// The kernel layer for real: MemoryFs mounted through our own protocol code, driven by real
// syscalls from child processes (coreutils, perl, node clients). Every wait is bounded and
// names what it waits for; every mount is unmounted in a finally, even on failure.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/observability/logger.js';
import { join } from 'node:path';
import { Deferred, within } from '../../src/base/async.js';
import { FsError } from '../../src/base/fs-error.js';
import { Errno } from '../../src/base/errno.js';
import { MemoryFs } from '../../src/core/memory-fs.js';
import type { OpContext } from '../../src/core/filesystem.js';
import type { Ino } from '../../src/base/ids.js';
import { run, sh, start } from '../support/proc.js';
import { withMount } from '../support/mounted.js';
import { rampByte } from '../support/ramp.js';

const here = new URL('.', import.meta.url).pathname;
const clientMixed = join(here, '..', 'support', 'client-mixed.js');
const cli = join(here, '..', '..', '..', 'bin', 'fusestream.js');

/** A warn-level logger whose lines land in `lines` (parsed). */
function captureLogger(lines: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'warn' }, sink);
}

function isMounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
}

/** Makes every open of `name` direct_io, so its READs are synchronous (and interruptible). */
function directIo(fs: MemoryFs, isTarget: (ino: Ino) => boolean): MemoryFs {
  const open = fs.open.bind(fs);
  fs.open = async (ctx, ino, flags) => {
    const r = await open(ctx, ino, flags);
    return isTarget(ino) ? { ...r, directIo: true } : r;
  };
  return fs;
}

describe('mounted MemoryFs', () => {
  for (const reader of ['uvpipe', 'worker'] as const) test(`coreutils through the ${reader} reader: ls, stat, cat, dd, cp, mv, rm, mkdir, rmdir, ln -s`, async () => {
    const fs = new MemoryFs();
    fs.addFile('hello.txt', Buffer.from('hello world\n'));
    await withMount(fs, async ({ mnt }) => {
      assert.equal(await sh(`cat ${mnt}/hello.txt`), 'hello world\n');
      assert.equal((await sh(`stat -c '%s %F' ${mnt}/hello.txt`)).trim(), '12 regular file');
      await sh(`mkdir ${mnt}/d && mkdir -p ${mnt}/d/e/f && echo data > ${mnt}/d/e/f/g`);
      await sh(`dd if=/dev/urandom of=${mnt}/d/big bs=64k count=40 status=none`);
      await sh(`cp ${mnt}/d/big ${mnt}/d/big2 && cmp ${mnt}/d/big ${mnt}/d/big2`);
      await sh(`mv ${mnt}/d/big2 ${mnt}/d/e/moved && test ! -e ${mnt}/d/big2 && cmp ${mnt}/d/big ${mnt}/d/e/moved`);
      await sh(`ln -s e/f/g ${mnt}/d/link && test "$(readlink ${mnt}/d/link)" = e/f/g && test "$(cat ${mnt}/d/link)" = data`);
      assert.deepEqual((await sh(`ls -1 ${mnt}/d`)).trim().split('\n'), ['big', 'e', 'link']);
      const ls = await sh(`ls -la ${mnt}/d/e`);
      assert.match(ls, /moved/);
      await sh(`rm ${mnt}/d/e/moved ${mnt}/d/link && rm -r ${mnt}/d/e && rmdir ${mnt}/d/../d 2>/dev/null || true`);
      const r = await run('rmdir', [`${mnt}/d`], 5000);
      assert.notEqual(r.code, 0, 'rmdir of a non-empty directory must fail');
      assert.match(r.stderr, /not empty/i);
      await sh(`rm ${mnt}/d/big && rmdir ${mnt}/d && test ! -e ${mnt}/d`);
      const missing = await run('cat', [`${mnt}/nope`], 5000);
      assert.match(missing.stderr, /No such file or directory/);
      assert.equal((await sh(`df -P ${mnt} | tail -1 | wc -l`)).trim(), '1');
    }, { reader });
  });

  test('32 client processes in parallel: mixed writes, reads, stats, all bytes checked', async () => {
    const fs = new MemoryFs();
    const sharedSize = 8 * 1024 * 1024;
    fs.addFile('shared.bin', { size: sharedSize, generator: rampByte });
    fs.addDir('w');
    await withMount(fs, async ({ mnt, server }) => {
      const clients = Array.from({ length: 32 }, (_, i) => run(process.execPath, [clientMixed, mnt, String(i), '42', String(sharedSize)], 120_000));
      const results = await Promise.all(clients);
      for (const [i, r] of results.entries()) assert.equal(r.code, 0, `client ${i}: ${r.stdout}${r.stderr}`);
      assert.equal((await sh(`ls ${mnt}/w | wc -l`)).trim(), '32');
      assert.equal(server.session.inFlightCount, 0);
    });
  });

  test('readdir of 10,000 entries: each name exactly once, ls -l via READDIRPLUS', async () => {
    const fs = new MemoryFs();
    fs.addDir('big');
    for (let i = 0; i < 10_000; i++) fs.addFile(`big/entry-${i}`, Buffer.from(String(i)));
    await withMount(fs, async ({ mnt }) => {
      const names = (await sh(`ls -1 -f ${mnt}/big`)).trim().split('\n').filter((n) => n !== '.' && n !== '..');
      assert.equal(names.length, 10_000);
      assert.equal(new Set(names).size, 10_000);
      const long = (await sh(`ls -l ${mnt}/big | tail -n +2`)).trim().split('\n');
      assert.equal(long.length, 10_000);
      assert.match(long[0] ?? '', /^-rw/);
    });
  });

  test('a blocked read interrupted by a signal returns EINTR and the in-flight table drains', async () => {
    const fs = new MemoryFs();
    fs.addFile('slow', Buffer.from('never served'));
    const reached = new Deferred<void>();
    let handlerSawAbort = false;
    fs.hooks = {
      beforeOp: async (op: string, _ino: Ino, ctx: OpContext) => {
        if (op !== 'read') return;
        reached.resolve();
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        handlerSawAbort = true;
        throw ctx.signal.reason;
      },
    };
    await withMount(directIo(fs, () => true), async ({ mnt, server }) => {
      // perl delivers SIGALRM without SA_RESTART, so the read(2) itself fails with EINTR.
      const client = start('perl', ['-e', `$SIG{ALRM}=sub{}; open(F,'<','${mnt}/slow') or die "open: $!"; alarm 1; my $n = sysread(F,$b,100); print defined $n ? "read $n\\n" : "error: $!\\n";`]);
      await within(reached.promise, 5000, 'the READ to reach the filesystem');
      const r = await within(client.done, 10_000, 'perl to return from the interrupted read');
      assert.match(r.stdout, /Interrupted system call/, r.stdout + r.stderr);
      await within(server.session.settled(5000), 6000, 'the interrupted handler to settle');
      assert.equal(handlerSawAbort, true, 'the handler saw its signal fire');
      assert.equal(server.session.inFlightCount, 0, 'in-flight table drained');
      assert.equal(server.session.runningCount, 0);
    });
  });

  test('a handler that never resolves is answered at its deadline; other ops keep working', async () => {
    const fs = new MemoryFs();
    fs.addFile('stuck', Buffer.from('x'.repeat(100)));
    fs.addFile('fine', Buffer.from('fine\n'));
    const reached = new Deferred<void>();
    const release = new Deferred<void>();
    fs.hooks = {
      beforeOp: async (op: string, ino: Ino) => {
        if (op === 'read' && ino === stuckIno) {
          reached.resolve();
          await release.promise; // ignores its signal on purpose
        }
      },
    };
    let stuckIno = 0n as Ino;
    const logLines: { msg?: string; opcode?: string; path?: string }[] = [];
    try {
    await withMount(fs, async ({ mnt, server }) => {
      stuckIno = BigInt((await sh(`stat -c %i ${mnt}/stuck`)).trim()) as Ino;
      const t0 = performance.now();
      const stuck = start('cat', [`${mnt}/stuck`]);
      await within(reached.promise, 5000, 'the READ of "stuck" to reach the filesystem');
      // While it hangs, the rest of the mount answers.
      assert.equal(await sh(`cat ${mnt}/fine`, 3000), 'fine\n');
      assert.match(await sh(`ls ${mnt}`, 3000), /stuck/);
      const r = await within(stuck.done, 5000, 'cat of the stuck file to get its deadline error');
      const elapsed = performance.now() - t0;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(elapsed >= 1000, `answered after ${Math.round(elapsed)} ms, not before the 1 s deadline`);
      assert.equal(server.session.inFlightCount, 0);
      const stuckLines = logLines.filter((l) => l.msg === 'request still running (watchdog)');
      // The kernel may have sent more than one (readahead) READ; each is reported once.
      assert.ok(stuckLines.length >= 1, 'the watchdog reported the stuck request');
      for (const l of stuckLines) {
        assert.equal(l.opcode, 'READ');
        assert.equal(l.path, `ino ${stuckIno}`);
      }
      const uniques = stuckLines.map((l) => (l as { unique?: unknown }).unique);
      assert.equal(new Set(uniques).size, uniques.length, 'no request reported twice');
      release.resolve();
      await within(server.session.settled(2000), 3000, 'the released handler to settle');
    }, { deadlineMs: 1000, watchdogMs: 300, logger: captureLogger(logLines), describeNode: (ino) => `ino ${ino}` });
    } finally {
      release.resolve(); // never leave the handler hanging, even when an assertion failed
    }
  });

  test('a handler that throws gives EIO for that request only; the mount stays up', async () => {
    const fs = new MemoryFs();
    fs.addFile('boom', Buffer.from('a'));
    fs.addFile('ok', Buffer.from('ok\n'));
    fs.addFile('precise', Buffer.from('p'));
    let boomIno = 0n;
    let preciseIno = 0n;
    fs.hooks = {
      beforeOp: (op: string, ino: Ino) => {
        if (op === 'open' && ino === boomIno) throw new TypeError('a bug in a handler');
        if (op === 'open' && ino === preciseIno) throw new FsError(Errno.EACCES, 'not for you');
      },
    };
    await withMount(fs, async ({ mnt }) => {
      boomIno = BigInt((await sh(`stat -c %i ${mnt}/boom`)).trim());
      preciseIno = BigInt((await sh(`stat -c %i ${mnt}/precise`)).trim());
      const r = await run('cat', [`${mnt}/boom`], 5000);
      assert.match(r.stderr, /Input\/output error/);
      const p = await run('cat', [`${mnt}/precise`], 5000);
      assert.match(p.stderr, /Permission denied/);
      assert.equal(await sh(`cat ${mnt}/ok`), 'ok\n');
    });
  });

  test('unmount (SIGTERM) while requests are in flight exits 0 and leaves no mount', async () => {
    const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fusestream-test-'));
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const server = start(process.execPath, [cli, 'memfs', mnt, '--ramp-file', '64M', '--log-level', 'warn']);
    try {
      await server.waitFor('mounted on', 10_000);
      const readers = Array.from({ length: 8 }, () => start('sh', ['-c', `while :; do cat ${mnt}/ramp.bin > /dev/null || exit 0; done`]));
      await sh(`cat ${mnt}/ramp.bin | head -c 1000 > /dev/null`);
      server.child.kill('SIGTERM');
      const r = await within(server.done, 15_000, 'the server to unmount and exit after SIGTERM');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(isMounted(mnt), false);
      for (const reader of readers) await within(reader.done, 5000, 'readers to stop once the mount is gone');
    } finally {
      server.child.kill('SIGKILL');
      await run('umount', ['-l', mnt], 5000).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a killed server leaves a stale mount; the next mount cleans it up', async () => {
    const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fusestream-test-'));
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const server = start(process.execPath, [cli, 'memfs', mnt, '--log-level', 'warn']);
    try {
      await server.waitFor('mounted on', 10_000);
      server.child.kill('SIGKILL');
      await within(server.done, 5000, 'the killed server to exit');
      assert.equal(isMounted(mnt), true, 'kill -9 leaves the mount behind');
      const stale = await run('stat', [mnt], 5000);
      assert.match(stale.stderr, /Transport endpoint is not connected/);
      const fs = new MemoryFs();
      fs.addFile('fresh', Buffer.from('new server\n'));
      const { FuseServer } = await import('../../src/kernel/fuse-server.js');
      const { testLogger } = await import('../support/mounted.js');
      const { fuseOpsFor } = await import('../../src/bridge/fuse-adapter.js');
      const s2 = await FuseServer.start({ mountpoint: mnt, ops: fuseOpsFor(fs), logger: testLogger(), deadlineMs: 5000 });
      try {
        assert.equal(await sh(`cat ${mnt}/fresh`), 'new server\n');
      } finally {
        await s2.unmount();
      }
      assert.equal(isMounted(mnt), false);
    } finally {
      server.child.kill('SIGKILL');
      await run('umount', ['-l', mnt], 5000).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
