// The control socket of a running mount: a Unix socket per mountpoint through which
// `fusestream status` asks the mount process what it is doing and `fusestream invalidate`
// makes it forget paths, and `fusestream flush` waits for its uploads. One request per
// connection: the client writes one JSON line ({"cmd": "status"}, {"cmd": "invalidate",
// "paths": [...]} or {"cmd": "flush", "timeoutMs": n}); the server answers with one final
// JSON line ({"status": ...} or {"error": "..."}) and closes. A long command (flush) may send
// {"progress": ...} lines before the final one.
//
// Invariants:
// - Sockets live in one runtime directory per user ($XDG_RUNTIME_DIR/fusestream, else
//   /run/fusestream for root, else <tmpdir>/fusestream-<uid>), created 0700; each socket is
//   chmod 0600 right after it listens, so other users can neither list nor connect. The name is
//   a hash of the mountpoint's real path, so `status MNT` finds it without a registry.
// - A socket file left by a killed mount (nobody answers) is replaced by the next mount of the
//   same mountpoint; a live one is never taken over.
// - Requests are bounded (4 KiB, a few seconds to arrive); a bad request gets an error answer,
//   never a crash of the mount. Status never contains credentials: the remote id never has any.
//   A flush is bounded by its own timeout, not by the request timeout.
// - Every answer runs in the server's TaskGroup. close() stops listening, ends open
//   connections (a flush then stops reporting), awaits the answers still running and removes
//   the socket file. The owner closes the upload queue first (the unmount does), so a flush
//   still waiting is released by it and close() never waits a flush's whole timeout.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TaskGroup, within } from '../base/async.js';
import type { Logger } from '../observability/logger.js';

const MAX_REQUEST_BYTES = 4096;
const REQUEST_TIMEOUT_MS = 5000;
/** The longest flush a client may ask for (setTimeout's limit is about 24.8 days). */
export const MAX_FLUSH_MS = 2 ** 31 - 1;

export function controlDir(): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg !== '') return join(xdg, 'fusestream');
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/fusestream' : join(tmpdir(), `fusestream-${uid}`);
}

/** The socket of the mount on `mountpoint` (its real path). */
export function controlSocketPath(mountpoint: string): string {
  return join(controlDir(), `${createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.sock`);
}

/** Every control socket in the runtime dir (live or left behind). */
export function controlSockets(): string[] {
  try {
    return readdirSync(controlDir())
      .filter((n) => n.endsWith('.sock'))
      .map((n) => join(controlDir(), n));
  } catch {
    return [];
  }
}

/** JSON that carries bigints (kernel ids) as strings. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export class ControlServer {
  readonly path: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #answers: TaskGroup;

  private constructor(path: string, server: Server, log: Logger) {
    this.path = path;
    this.#server = server;
    this.#answers = new TaskGroup((err) => log.error({ err }, 'control: answering a request failed'));
  }

  /** Listens on the mountpoint's socket; `status()` is asked for each status request. */
  static async start(mountpoint: string, handlers: ControlHandlers, log: Logger): Promise<ControlServer> {
    const path = controlSocketPath(mountpoint);
    mkdirSync(controlDir(), { recursive: true, mode: 0o700 });
    chmodSync(controlDir(), 0o700);
    if (await answers(path)) throw new Error(`another process already serves the control socket of ${mountpoint} (${path})`);
    rmSync(path, { force: true }); // left by a killed mount: nobody answers it
    const server = createServer((socket) => {
      cs.#sockets.add(socket);
      socket.once('close', () => cs.#sockets.delete(socket));
      socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
      let buf = '';
      let handled = false;
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        if (handled) return; // one request per connection
        buf += chunk;
        if (buf.length > MAX_REQUEST_BYTES) {
          handled = true;
          socket.end(`${toJson({ error: 'request too long' })}\n`);
          return;
        }
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        handled = true;
        // The request has arrived: from here the command bounds itself (a flush its timeout).
        socket.setTimeout(0);
        const progress = (p: unknown): void => {
          if (socket.writable) socket.write(`${toJson({ progress: p })}\n`);
        };
        cs.#answers.run('control answer', async () => {
          const reply = await answer(buf.slice(0, nl), handlers, progress, log);
          if (socket.writable) socket.end(`${reply}\n`);
        });
      });
      socket.on('error', () => socket.destroy());
    });
    const cs = new ControlServer(path, server, log);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    server.unref(); // the mount's own lifetime decides when the process ends
    return cs;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#answers.close();
    rmSync(this.path, { force: true });
  }
}

/** What a mount answers on its control socket. */
export interface ControlHandlers {
  status(): unknown;
  /** Forgets `paths` (mount-relative); resolves, once the kernel was told, with how many the mount knew. */
  invalidate(paths: string[]): Promise<number>;
  /**
   * Uploads everything pending (files being written are saved first), for up to `timeoutMs`;
   * calls `progress` now and then while it waits. Resolves with what is still pending.
   */
  flush(timeoutMs: number, progress: (p: unknown) => void): Promise<unknown>;
}

async function answer(line: string, handlers: ControlHandlers, progress: (p: unknown) => void, log: Logger): Promise<string> {
  let req: { cmd?: unknown; paths?: unknown; timeoutMs?: unknown };
  try {
    req = JSON.parse(line) as typeof req;
  } catch {
    return toJson({ error: 'not a JSON request' });
  }
  try {
    switch (req.cmd) {
      case 'status':
        return toJson({ status: handlers.status() });
      case 'invalidate': {
        const paths = req.paths;
        if (!Array.isArray(paths) || !paths.every((p): p is string => typeof p === 'string')) return toJson({ error: 'invalidate needs "paths": [strings]' });
        return toJson({ status: { known: await handlers.invalidate(paths) } });
      }
      case 'flush': {
        const ms = req.timeoutMs;
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_FLUSH_MS) return toJson({ error: `flush needs "timeoutMs": a number of ms from 0 to ${MAX_FLUSH_MS}` });
        return toJson({ status: await handlers.flush(ms, progress) });
      }
      default:
        return toJson({ error: `unknown command ${JSON.stringify(req.cmd)}` });
    }
  } catch (err) {
    log.error({ err }, 'control: request failed');
    return toJson({ error: 'request failed' });
  }
}

/** Whether a live process answers on `path`. */
async function answers(path: string): Promise<boolean> {
  return queryControl(path, 'status', 2000).then(
    () => true,
    () => false,
  );
}

/**
 * Sends `cmd` (with `args`) to the control socket at `path` and returns its answer (`status`
 * field); `onProgress` gets each progress line that comes before it. Fails when the whole
 * answer has not arrived within `timeoutMs`.
 */
export async function queryControl(
  path: string,
  cmd: string,
  timeoutMs = REQUEST_TIMEOUT_MS,
  args: Record<string, unknown> = {},
  onProgress?: (p: unknown) => void,
): Promise<unknown> {
  const socket = connect(path);
  try {
    const final = await within(
      new Promise<string>((resolve, reject) => {
        let buf = '';
        socket.setEncoding('utf8');
        socket.once('error', reject);
        socket.on('data', (c: string) => {
          buf += c;
          // Every complete line but the last is progress; the last one is the answer.
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            let msg: { progress?: unknown };
            try {
              msg = JSON.parse(line) as typeof msg;
            } catch (err) {
              reject(new Error(`not a JSON answer: ${line.slice(0, 200)}`, { cause: err }));
              return;
            }
            if (msg.progress === undefined) {
              resolve(line);
              return;
            }
            buf = buf.slice(nl + 1);
            onProgress?.(msg.progress);
          }
        });
        socket.once('end', () => resolve(buf));
        socket.once('connect', () => socket.write(`${JSON.stringify({ ...args, cmd })}\n`));
      }),
      timeoutMs,
      `the mount to answer on ${path}`,
    );
    const parsed = JSON.parse(final) as { status?: unknown; error?: string };
    if (parsed.error !== undefined) throw new Error(`the mount answered: ${parsed.error}`);
    return parsed.status;
  } finally {
    socket.destroy();
  }
}
