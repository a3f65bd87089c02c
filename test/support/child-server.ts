// Child-process servers of the tests (nginx, python's http.server, Apache): a free port on
// 127.0.0.1, whether something accepts on it, and stopping exactly one child by its PID
// (SIGTERM, then SIGKILL if it lingers), every wait bounded.
import type { ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { within } from '../../src/base/async.js';

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('could not get a free port');
  return addr.port;
}

export async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/** Ends `child` (SIGTERM, then SIGKILL after 5 s), waiting for it to exit. */
export async function stopChild(child: ChildProcess, what: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  try {
    await within(waitExit(child), 5000, `${what} pid ${child.pid ?? '?'} to exit after SIGTERM`);
  } catch {
    child.kill('SIGKILL');
    await within(waitExit(child), 5000, `${what} pid ${child.pid ?? '?'} to exit after SIGKILL`);
  }
}
