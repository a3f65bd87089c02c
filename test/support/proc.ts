// Child processes for client I/O. The serving process must never touch its own mountpoint, so
// every syscall on a mount in the tests happens here, in a child, asynchronously (a spawnSync
// would block the event loop that answers the kernel: an instant deadlock).
import { spawn, type ChildProcess } from 'node:child_process';
import { within } from '../../src/base/async.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Resolves when the child exits, with its output. */
  done: Promise<RunResult>;
  /** Resolves when `text` appears on the child's stdout. */
  waitFor(text: string, ms: number): Promise<void>;
}

export function start(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Running {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
  let stdout = '';
  let stderr = '';
  const watchers: { text: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of [...watchers]) if (stdout.includes(w.text)) w.resolve();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    waitFor: (text, ms) =>
      within(
        new Promise<void>((resolve, reject) => {
          if (stdout.includes(text)) return resolve();
          watchers.push({ text, resolve });
          done.then(() => reject(new Error(`process exited before printing "${text}"; stderr: ${stderr}`)), reject);
        }),
        ms,
        `"${text}" on the stdout of ${cmd} ${args.join(' ')}`,
      ),
  };
}

/** Runs a command to completion, failing with a sentence if it takes longer than `ms`. */
export async function run(cmd: string, args: readonly string[], ms: number, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const r = start(cmd, args, options);
  try {
    return await within(r.done, ms, `${cmd} ${args.join(' ')} to exit`);
  } catch (err) {
    r.child.kill('SIGKILL');
    throw err;
  }
}

/** Runs `sh -c script`, asserting exit 0; returns stdout. */
export async function sh(script: string, ms = 20_000): Promise<string> {
  const r = await run('sh', ['-c', script], ms);
  if (r.code !== 0) throw new Error(`sh -c failed (${r.code ?? r.signal}): ${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Sends SIGTERM to `p` (a mount process) and waits, bounded, for it to exit; its result. */
export async function terminate(p: Running, what: string, ms = 20_000): Promise<RunResult> {
  p.child.kill('SIGTERM');
  return within(p.done, ms, `${what} to unmount and exit after SIGTERM`);
}
