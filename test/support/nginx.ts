// A real nginx on 127.0.0.1 for tests: the Debian binary with its own generated config in a
// temp dir (config, pid, logs, temp paths), serving `root` with autoindex (HTML or JSON).
// It runs in the foreground without a master process, as a child of the test process, and
// stop() ends exactly that child by its PID. No other nginx is ever touched.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { canConnect, freePort, stopChild, waitExit } from './child-server.js';
import { within } from '../../src/base/async.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface StartNginxOptions {
  root: string;
  autoindex?: 'html' | 'json';
  /** Extra directives inside the server block. */
  extraConfig?: string;
  /** Extra directives at the top of the config (load_module ...). */
  mainConfig?: string;
  /** Extra directives inside `location /` (dav_methods ...). */
  locationConfig?: string;
  /** nginx log_format of the access log; default "$request $status". */
  accessLogFormat?: string;
  /** autoindex_exact_size (default true: sizes in bytes; false: "1K", "12M" as nginx's default). */
  exactSize?: boolean;
}

export interface NginxHandle {
  /** "http://127.0.0.1:PORT/" */
  url: string;
  port: number;
  /** The access log (one line per request, "$request $status" unless `accessLogFormat` says otherwise). */
  accessLogPath: string;
  /** The request lines logged so far. */
  accessLog(): Promise<string[]>;
  stop(): Promise<void>;
}

export function nginxAvailable(): boolean {
  return existsSync(NGINX_BIN);
}


function config(dir: string, port: number, o: StartNginxOptions): string {
  return `${o.mainConfig ?? ''}daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  log_format req '${o.accessLogFormat ?? '$request $status'}';
  access_log ${dir}/access.log req;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types { text/html html; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    root ${o.root};
    location / {
      autoindex on;
      autoindex_exact_size ${o.exactSize === false ? 'off' : 'on'};
${o.autoindex === 'json' ? '      autoindex_format json;\n' : ''}${o.locationConfig ?? ''}    }
${o.extraConfig ?? ''}
  }
}
`;
}



export async function startNginx(options: StartNginxOptions): Promise<NginxHandle> {
  if (!nginxAvailable()) throw new Error(`nginx is not installed at ${NGINX_BIN} (apt-get install nginx-light) — the nginx tests need it`);
  const dir = await mkdtemp(join(tmpdir(), 'fusestream-nginx-'));
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      await writeFile(join(dir, 'nginx.conf'), config(dir, port, options));
      await writeFile(join(dir, 'error.log'), '');
      const child = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.once('error', () => undefined);
      let exitedEarly = false;
      const ready = eventually(
        async () => (exitedEarly = child.exitCode !== null || child.signalCode !== null) || canConnect(port),
        5000,
        `nginx to accept connections on 127.0.0.1:${port}`,
        10,
      ).then(() => !exitedEarly);
      let ok: boolean;
      try {
        ok = await within(Promise.race([ready, exited.then(() => false)]), 5000, `nginx to accept connections on 127.0.0.1:${port}`);
      } catch (err) {
        child.kill('SIGKILL');
        await waitExit(child);
        throw err;
      }
      if (ok) {
        const accessLogPath = join(dir, 'access.log');
        let stopped = false;
        return {
          url: `http://127.0.0.1:${port}/`,
          port,
          accessLogPath,
          accessLog: async () => (await readFile(accessLogPath, 'utf8')).split('\n').filter((l) => l !== ''),
          stop: async () => {
            if (stopped) return;
            stopped = true;
            await stopChild(child, 'nginx');
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await waitExit(child);
      const log = `${stderr}\n${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`;
      if (!log.includes('Address already in use') || attempt >= 5) throw new Error(`nginx failed to start: ${log.trim()}`);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
