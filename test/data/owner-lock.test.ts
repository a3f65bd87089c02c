// One owner per cache dir: a second DataCache (another process, or this one) is refused with
// CacheDirBusyError naming the dir and the owner's pid; a lock left by a process killed with
// SIGKILL, or naming a pid that now belongs to another process, is taken over; close releases
// it. The owners run in child processes (owner-lock-child.ts).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Deferred, within } from '../../src/base/async.js';
import { DataCache } from '../../src/data/data-cache.js';
import { CacheDirBusyError } from '../../src/data/errors.js';
import { FakeRemote } from '../fakes/fake-remote.js';
import { removeDir, tempDir } from '../support/cache-harness.js';

const T = 10_000;
const CHILD = fileURLToPath(new URL('./owner-lock-child.js', import.meta.url));
const LOCK_FILE = 'owner.lock';

interface Child {
  proc: ChildProcess;
  /** Resolves with the first stdout line starting with `prefix`. */
  line(prefix: string): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

void describe('cache dir owner lock', () => {
  let dir: string;
  let cacheDir: string;
  const children: Child[] = [];

  beforeEach(() => {
    dir = tempDir();
    cacheDir = join(dir, 'cache');
  });

  afterEach(async () => {
    try {
      for (const c of children.splice(0)) {
        if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
        await within(c.exited, T, 'a child process to exit at teardown');
      }
    } finally {
      removeDir(dir);
    }
  });

  function start(mode: 'hold' | 'try'): Child {
    const proc = spawn(process.execPath, ['--enable-source-maps', CHILD, cacheDir, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    const waiting: { prefix: string; d: Deferred<string> }[] = [];
    const stdout = proc.stdout;
    assert.ok(stdout);
    createInterface({ input: stdout }).on('line', (l) => {
      lines.push(l);
      for (const w of waiting.filter((x) => l.startsWith(x.prefix))) w.d.resolve(l);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const child: Child = {
      proc,
      exited,
      line: (prefix) => {
        const seen = lines.find((l) => l.startsWith(prefix));
        if (seen !== undefined) return Promise.resolve(seen);
        const d = new Deferred<string>();
        waiting.push({ prefix, d });
        return d.promise;
      },
    };
    children.push(child);
    return child;
  }

  async function holder(): Promise<{ child: Child; pid: number }> {
    const child = start('hold');
    const open = await within(child.line('OPEN '), T, 'the first owner to open the cache dir');
    return { child, pid: Number(open.slice('OPEN '.length)) };
  }

  async function openHere(): Promise<DataCache> {
    return DataCache.open({ cacheDir, remote: new FakeRemote() });
  }

  /** Expects this process's open to be refused; an open that wrongly succeeds is closed. */
  async function refusedHere(ownerPid: number): Promise<void> {
    let opened: DataCache | undefined;
    try {
      opened = await openHere();
    } catch (e) {
      assert.ok(e instanceof CacheDirBusyError, `refused with CacheDirBusyError, got ${String(e)}`);
      assert.equal(e.code, 'CACHE_DIR_BUSY');
      assert.equal(e.ownerPid, ownerPid);
      assert.equal(e.dir, cacheDir);
      return;
    }
    await opened.close();
    assert.fail('a second owner opened the cache dir');
  }

  void test('a second owner is refused with CACHE_DIR_BUSY naming the dir and the pid; close releases the lock', async () => {
    const a = await holder();
    const b = start('try');
    const err = await within(b.line('ERR '), T, 'the second process to be refused');
    assert.match(err, /^ERR CACHE_DIR_BUSY /);
    assert.ok(err.includes(cacheDir), `the message names the cache dir: ${err}`);
    assert.ok(err.includes(`pid ${a.pid}`), `the message names the owner's pid: ${err}`);
    assert.deepEqual(await within(b.exited, T, 'the refused process to exit'), { code: 3, signal: null });
    // Refused here too (a third process).
    await refusedHere(a.pid);
    // The owner closes: the lock goes with it, and the next owner gets in.
    a.child.proc.stdin?.end();
    await within(a.child.line('CLOSED'), T, 'the first owner to close');
    assert.deepEqual(await within(a.child.exited, T, 'the first owner to exit'), { code: 0, signal: null });
    assert.equal(existsSync(join(cacheDir, LOCK_FILE)), false, 'close removed the lock file');
    const c = await openHere();
    await c.close();
  });

  void test('a lock left by a process killed with SIGKILL is taken over', async () => {
    const a = await holder();
    a.child.proc.kill('SIGKILL');
    assert.deepEqual(await within(a.child.exited, T, 'the killed owner to be reaped'), { code: null, signal: 'SIGKILL' });
    assert.ok(existsSync(join(cacheDir, LOCK_FILE)), 'the killed owner left its lock behind');
    assert.ok(readFileSync(join(cacheDir, LOCK_FILE), 'utf8').includes(`"pid":${a.pid}`));
    const b = start('try');
    assert.equal(await within(b.line('OPEN '), T, 'the next process to take the stale lock over'), `OPEN ${b.proc.pid}`);
    await within(b.line('CLOSED'), T, 'the next owner to close');
    assert.deepEqual(await within(b.exited, T, 'the next owner to exit'), { code: 0, signal: null });
  });

  void test('in one process: a second open is refused; a lock naming a reused pid or holding garbage is stale', async () => {
    const c = await openHere();
    await refusedHere(process.pid);
    await c.close();
    // Our own (live) pid, but another start time: the pid was reused, the owner is gone.
    const lock = join(cacheDir, LOCK_FILE);
    writeFileSync(lock, JSON.stringify({ pid: process.pid, startTicks: '1', hostname: hostname(), token: 'old' }));
    const c2 = await openHere();
    assert.ok(!readFileSync(lock, 'utf8').includes('"token":"old"'), 'the lock names the new owner');
    await c2.close();
    writeFileSync(lock, '');
    const c3 = await openHere();
    await c3.close();
    assert.equal(existsSync(lock), false);
  });
});
