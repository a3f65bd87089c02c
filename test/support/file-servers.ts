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

export interface ApacheSetup {
  /** Modules beyond the built-in unixd and log_config. */
  modules: readonly string[];
  /** Directives inside <Directory root>. */
  directory: string;
  /** Extra top-level directives; `dir` is the server's own temp dir (config, logs). */
  extra?: (dir: string) => string;
  /** The access log's format (one line per request). */
  logFormat: string;
  /** Prepares the server's temp dir before Apache starts (e.g. hands it to www-data). */
  prepare?: (dir: string) => Promise<void> | void;
}

export interface ApacheHandle {
  url: string;
  /** The access log's lines so far. */
  accessLog(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Apache httpd as www-data on a free port of 127.0.0.1, serving `root` with `setup`; stopped by PID. */
export async function startApacheWith(root: string, setup: ApacheSetup, what = 'apache2'): Promise<ApacheHandle> {
  if (!apacheAvailable()) throw new Error(`Apache httpd is not installed at ${APACHE_BIN} (apt-get install apache2-bin)`);
  const dir = await mkdtemp(join(tmpdir(), 'fusestream-apache-'));
  chmodSync(dir, 0o755);
  await setup.prepare?.(dir);
  const port = await freePort();
  const conf = `ServerRoot ${dir}
${setup.modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`).join('\n')}
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
User www-data
Group www-data
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LogFormat "${setup.logFormat}" req
CustomLog ${dir}/access.log req
${setup.extra?.(dir) ?? ''}
DocumentRoot "${root}"
<Directory "${root}">
${setup.directory}
</Directory>
`;
  await writeFile(join(dir, 'httpd.conf'), conf);
  try {
    const { child } = await startChild([APACHE_BIN, '-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], port, what);
    return {
      url: `http://127.0.0.1:${port}/`,
      accessLog: async () => (await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
      stop: async () => {
        await stopChild(child, what);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${what} failed to start: ${err instanceof Error ? err.message : String(err)}\n${log}`, { cause: err });
  }
}

/**
 * Apache httpd (mpm_event, mod_autoindex with its fancy listing: sizes like "1.2M") serving
 * `root`, as www-data (Apache refuses to serve as root). `root` and its parents must be
 * readable by www-data; this makes `root`'s own tree world-readable.
 */
export async function startApache(root: string): Promise<FileServer> {
  const a = await startApacheWith(root, {
    modules: ['mpm_event', 'authz_core', 'dir', 'autoindex', 'mime', 'alias'],
    logFormat: '%m %U %>s',
    extra: () => 'TypesConfig /dev/null',
    directory: '  Options +Indexes\n  IndexOptions FancyIndexing\n  Require all granted',
  });
  return { url: a.url, requests: () => a.accessLog(), stop: () => a.stop() };
}
