// The file servers people actually run, started for a test on 127.0.0.1: python's
// `http.server` (names only, no sizes, no Range support) and Apache httpd with mod_autoindex
// (Debian's apache2-bin, run as www-data on a generated config: human sizes like "1.2M").
// nginx has its own starter (nginx.ts). Each server is a child of the test process in its own
// temp dir; stop() ends exactly that child by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { canConnect, freePort, stopChild, waitExit } from './child-server.js';

export interface FileServer {
  /** "http://127.0.0.1:PORT/" */
  url: string;
  /** Request lines seen so far (Apache: "GET /path 206"; python: its log lines). */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
}

export const APACHE_BIN = '/usr/sbin/apache2';
export const APACHE_MODULES = '/usr/lib/apache2/modules';

export function apacheAvailable(): boolean {
  return existsSync(APACHE_BIN);
}

/** Starts `argv` and waits until it accepts connections on `port`; kills it on failure. */
export async function startChild(argv: string[], port: number, what: string, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; stderr: () => string }> {
  const [bin, ...args] = argv as [string, ...string[]];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout?.resume();
  child.once('error', () => undefined);
  try {
    await eventually(async () => (child.exitCode !== null || child.signalCode !== null) || canConnect(port), 10_000, `${what} to accept connections on 127.0.0.1:${port}`, 10);
  } catch (e) {
    child.kill('SIGKILL');
    await waitExit(child);
    throw e;
  }
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited at start: ${err.trim()}`);
  return { child, stderr: () => err };
}


/** `python3 -m http.server` serving `root`: directory pages of bare links, no Range support. */
export async function startPythonHttp(root: string): Promise<FileServer> {
  const port = await freePort();
  const { child, stderr } = await startChild(['python3', '-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', root, String(port)], port, 'python http.server');
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: async () => stderr().split('\n').filter((l) => l.includes('"GET') || l.includes('"HEAD')),
    stop: () => stopChild(child, 'python http.server'),
  };
}

/**
 * Apache httpd (mpm_event, mod_autoindex with its fancy listing: sizes like "1.2M") serving
 * `root`, as www-data (Apache refuses to serve as root). `root` and its parents must be
 * readable by www-data; this makes `root`'s own tree world-readable.
 */
export async function startApache(root: string): Promise<FileServer> {
  if (!apacheAvailable()) throw new Error(`Apache httpd is not installed at ${APACHE_BIN} (apt-get install apache2-bin)`);
  const dir = await mkdtemp(join(tmpdir(), 'fusestream-apache-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const mods = ['mpm_event', 'authz_core', 'dir', 'autoindex', 'mime', 'alias']; // unixd and log_config are built in
  const conf = `ServerRoot ${dir}
${mods.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`).join('\n')}
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
User www-data
Group www-data
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LogFormat "%m %U %>s" req
CustomLog ${dir}/access.log req
TypesConfig /dev/null
DocumentRoot "${root}"
<Directory "${root}">
  Options +Indexes
  IndexOptions FancyIndexing
  Require all granted
</Directory>
`;
  await writeFile(join(dir, 'httpd.conf'), conf);
  try {
    const { child } = await startChild([APACHE_BIN, '-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], port, 'apache2');
    return {
      url: `http://127.0.0.1:${port}/`,
      requests: async () => (await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
      stop: async () => {
        await stopChild(child, 'apache2');
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`apache2 failed to start: ${err instanceof Error ? err.message : String(err)}\n${log}`, { cause: err });
  }
}
