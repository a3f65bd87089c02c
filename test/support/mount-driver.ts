// The conformance driver that goes through a real mount: every op is sent to ONE long-lived
// child process (fs-child.ts, line-JSON over stdio) that makes the syscalls on the mountpoint,
// because the process serving a mount must never do file I/O on it.
//
// Invariants:
// - Every wait is bounded by `within`, naming the op; on a timeout the child is killed, so a
//   hung mount fails the test with a sentence instead of hanging the runner.
// - The child always ends: dispose() closes its stdin and waits for it to exit, then SIGKILLs
//   it. openMountDriver's dispose() then unmounts (withMount unmounts even on failure).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Deferred, within } from '../../src/base/async.js';
import type { FileSystem } from '../../src/core/filesystem.js';
import { DriverError, type DriverStat, type FsDriver } from './fs-driver.js';
import { withMount, type Mounted } from './mounted.js';

const childScript = join(new URL('.', import.meta.url).pathname, 'fs-child.js');

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
}

const encode = (b: Buffer): { base64: string } => ({ base64: b.toString('base64') });
const decode = (v: unknown): Buffer => Buffer.from((v as { base64: string }).base64, 'base64');

export class MountDriver implements FsDriver {
  readonly name = 'mount';
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, { what: string; reply: Deferred<Reply> }>();
  readonly #exited = new Deferred<void>();
  readonly #opMs: number;
  readonly #fds = new Set<number>();
  #nextId = 1;
  #stderr = '';
  readonly #afterDispose: (() => Promise<void>) | undefined;
  #disposed = false;
  #ended: string | undefined;

  /**
   * Starts the child on `root` (the mountpoint). `opMs` bounds each op; `afterDispose` runs
   * once the child is gone (openMountDriver unmounts there).
   */
  constructor(root: string, options: { opMs?: number; afterDispose?: () => Promise<void> } = {}) {
    this.#opMs = options.opMs ?? 15_000;
    this.#afterDispose = options.afterDispose;
    this.#child = spawn(process.execPath, [childScript, root], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    createInterface({ input: this.#child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      const r = JSON.parse(line) as Reply;
      const p = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      p?.reply.resolve(r);
    });
    const ended = (why: string): void => {
      this.#ended ??= why;
      this.#exited.resolve();
      for (const p of this.#pending.values()) p.reply.reject(new Error(`fs child ${why} before answering ${p.what}; stderr: ${this.#stderr}`));
      this.#pending.clear();
    };
    this.#child.on('error', (err) => ended(`failed (${err.message})`));
    this.#child.on('exit', (code, signal) => ended(`exited (${code ?? signal})`));
    // A write after the child died is reported through 'exit'; keep it from being unhandled.
    this.#child.stdin.on('error', () => undefined);
  }

  async #call(op: string, args: unknown[], what: string): Promise<unknown> {
    if (this.#disposed) throw new Error(`${what}: the mount driver was disposed`);
    if (this.#ended !== undefined) throw new Error(`${what}: the fs child ${this.#ended}; stderr: ${this.#stderr}`);
    const id = this.#nextId++;
    const reply = new Deferred<Reply>();
    this.#pending.set(id, { what, reply });
    this.#child.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    let r: Reply;
    try {
      r = await within(reply.promise, this.#opMs, `the fs child to answer ${what}`);
    } catch (err) {
      this.#pending.delete(id);
      this.#child.kill('SIGKILL');
      throw err;
    }
    if (r.ok) return r.value;
    if (r.code) throw new DriverError(r.code, what);
    throw new Error(`${what}: ${r.message ?? 'failed without a code'}`);
  }

  async stat(path: string): Promise<DriverStat> {
    return (await this.#call('stat', [path], `stat ${path}`)) as DriverStat;
  }
  async lstat(path: string): Promise<DriverStat> {
    return (await this.#call('lstat', [path], `lstat ${path}`)) as DriverStat;
  }
  async readdir(path: string): Promise<string[]> {
    return (await this.#call('readdir', [path], `readdir ${path}`)) as string[];
  }
  async mkdir(path: string, mode: number): Promise<void> {
    await this.#call('mkdir', [path, mode], `mkdir ${path}`);
  }
  async rmdir(path: string): Promise<void> {
    await this.#call('rmdir', [path], `rmdir ${path}`);
  }
  async unlink(path: string): Promise<void> {
    await this.#call('unlink', [path], `unlink ${path}`);
  }
  async rename(from: string, to: string, flags = 0): Promise<void> {
    await this.#call('rename', [from, to, flags], `rename ${from} ${to}`);
  }
  async symlink(target: string, path: string): Promise<void> {
    await this.#call('symlink', [target, path], `symlink ${path}`);
  }
  async readlink(path: string): Promise<string> {
    return (await this.#call('readlink', [path], `readlink ${path}`)) as string;
  }
  async open(path: string, flags: number, mode = 0o644): Promise<number> {
    const fd = (await this.#call('open', [path, flags, mode], `open ${path}`)) as number;
    this.#fds.add(fd);
    return fd;
  }
  async read(fd: number, length: number, position: number): Promise<Buffer> {
    return decode(await this.#call('read', [fd, length, position], `read fd ${fd}`));
  }
  async write(fd: number, data: Buffer, position: number): Promise<void> {
    await this.#call('write', [fd, encode(data), position], `write fd ${fd}`);
  }
  async ftruncate(fd: number, size: number): Promise<void> {
    await this.#call('ftruncate', [fd, size], `ftruncate fd ${fd}`);
  }
  async truncate(path: string, size: number): Promise<void> {
    await this.#call('truncate', [path, size], `truncate ${path}`);
  }
  async fsync(fd: number): Promise<void> {
    await this.#call('fsync', [fd], `fsync fd ${fd}`);
  }
  async close(fd: number): Promise<void> {
    this.#fds.delete(fd);
    await this.#call('close', [fd], `close fd ${fd}`);
  }
  async chmod(path: string, mode: number): Promise<void> {
    await this.#call('chmod', [path, mode], `chmod ${path}`);
  }
  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#call('utimes', [path, atimeMs, mtimeMs], `utimes ${path}`);
  }
  async readFile(path: string): Promise<Buffer> {
    return decode(await this.#call('readFile', [path], `readFile ${path}`));
  }
  async writeFile(path: string, data: Buffer): Promise<void> {
    await this.#call('writeFile', [path, encode(data)], `writeFile ${path}`);
  }

  async closeLeftovers(): Promise<number[]> {
    const fds = [...this.#fds];
    for (const fd of fds) await this.close(fd).catch(() => undefined);
    return fds;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#child.stdin.end();
    try {
      await within(this.#exited.promise, 5000, 'the fs child to exit after its stdin closed');
    } catch (err) {
      this.#child.kill('SIGKILL');
      await within(this.#exited.promise, 5000, 'the fs child to die after SIGKILL');
      throw err;
    } finally {
      await this.#afterDispose?.();
    }
  }
}

/**
 * Mounts `fs` (withMount, so it is unmounted whatever happens) and returns a MountDriver on it
 * whose dispose() ends the child, then unmounts.
 */
export async function openMountDriver(fs: FileSystem, options: { opMs?: number; mountMs?: number } = {}): Promise<FsDriver> {
  const mountMs = options.mountMs ?? 20_000;
  const ready = new Deferred<Mounted>();
  const release = new Deferred<void>();
  const served = withMount(fs, async (m) => {
    ready.resolve(m);
    await release.promise;
  });
  // If mounting fails, withMount settles before `ready` does: the race passes that on.
  const endedEarly = served.then(() => {
    throw new Error('the mount ended before it was ready');
  });
  let m: Mounted;
  try {
    m = await within(Promise.race([ready.promise, endedEarly]), mountMs, 'the mount of the filesystem under test');
  } catch (err) {
    release.resolve();
    await within(served, mountMs, 'the unmount after a failed start').catch(() => undefined);
    throw err;
  }
  return new MountDriver(m.mnt, {
    ...(options.opMs !== undefined ? { opMs: options.opMs } : {}),
    afterDispose: async () => {
      release.resolve();
      await within(served, mountMs, 'the unmount of the filesystem under test');
    },
  });
}
