// `fusestream mount` / `fusestream memfs` as a user runs them, for the write-path e2e tests:
// the CLI in a child process (the test process serves nothing, so it may wait on it freely),
// started on a fresh mountpoint and always taken down, even when the test fails.
//
// Invariants:
// - Every process a CliMounts starts is stopped by its PID (SIGTERM for an orderly unmount,
//   SIGKILL on dispose), never by name; every mountpoint it handed out is unmounted by dispose
//   (lazily if the daemon died: kill -9 leaves a dead mount behind).
// - Every wait is bounded and names what it waited for.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { within } from '../../src/base/async.js';
import { unmount } from '../../src/kernel/mount.js';
import { run, start, type RunResult, type Running } from './proc.js';

/** bin/fusestream.js, from the compiled test tree (dist/test/support). */
export const CLI = join(new URL('.', import.meta.url).pathname, '..', '..', '..', 'bin', 'fusestream.js');

export function isMounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mnt);
}

export interface CliMount {
  mnt: string;
  proc: Running;
  /** What the test calls this mount in messages. */
  what: string;
  /** The last 4000 characters of its stderr so far (its warnings, for failure messages). */
  stderr(): string;
}

/** How a mount is asked to stop: a signal to its process, or `fusestream unmount MNT`. */
export type StopHow = 'SIGTERM' | 'SIGINT' | 'unmount';

export class CliMounts {
  readonly #mounts: CliMount[] = [];
  readonly #mountpoints = new Set<string>();

  /** A new empty directory `dir/name` to mount on, unmounted by dispose() whatever happens. */
  mountpoint(dir: string, name: string): string {
    const mnt = join(dir, name);
    mkdirSync(mnt, { recursive: true });
    this.#mountpoints.add(mnt);
    return mnt;
  }

  /** Runs `fusestream <args...>` (args include the mountpoint) and waits for its "mounted" line. */
  async start(args: readonly string[], mnt: string, what: string, ms = 20_000): Promise<CliMount> {
    this.#mountpoints.add(mnt);
    const proc = start(process.execPath, ['--enable-source-maps', CLI, ...args]);
    let stderr = '';
    proc.child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    // A debugging aid: every mount's whole stderr (its log) appended to this file.
    const logFile = process.env.FUSESTREAM_TEST_CLI_LOG;
    if (logFile !== undefined) proc.child.stderr?.on('data', (d: string) => appendFileSync(logFile, d));
    const m = { mnt, proc, what, stderr: () => stderr };
    this.#mounts.push(m);
    try {
      await proc.waitFor('mounted', ms);
    } catch (err) {
      proc.child.kill('SIGKILL');
      throw new Error(`${what} did not mount: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return m;
  }

  /**
   * Stops `m` the way a user would and waits (bounded) for its process to exit; its result.
   * `unmount` runs `fusestream unmount MNT` and then waits for the mount process to end.
   */
  async stop(m: CliMount, how: StopHow, ms = 60_000): Promise<{ exit: RunResult; unmountCmd?: RunResult }> {
    if (how === 'unmount') {
      const unmountCmd = await run(process.execPath, ['--enable-source-maps', CLI, 'unmount', m.mnt], ms);
      const exit = await within(m.proc.done, ms, `${m.what} to exit after fusestream unmount`);
      return { exit, unmountCmd };
    }
    m.proc.child.kill(how);
    return { exit: await within(m.proc.done, ms, `${m.what} to drain, unmount and exit after ${how}`) };
  }

  /** kill -9 of the daemon (by PID); resolves once it has exited. The mount stays, dead. */
  async kill9(m: CliMount): Promise<RunResult> {
    m.proc.child.kill('SIGKILL');
    return within(m.proc.done, 10_000, `${m.what} to die after SIGKILL`);
  }

  /** Lazily unmounts `mnt` if something (a killed daemon's dead mount) is still there. */
  async detach(mnt: string): Promise<void> {
    if (isMounted(mnt)) await unmount(mnt, { lazy: true });
  }

  /** SIGKILLs every process still running (by PID) and detaches every mountpoint still mounted. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    for (const m of this.#mounts) {
      if (m.proc.child.exitCode === null && m.proc.child.signalCode === null) {
        m.proc.child.kill('SIGKILL');
        await within(m.proc.done, 10_000, `${m.what} to die on cleanup`).catch((e: unknown) => errors.push(e));
      }
    }
    for (const mnt of this.#mountpoints) await this.detach(mnt).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, 'cleaning up CLI mounts failed');
  }
}
