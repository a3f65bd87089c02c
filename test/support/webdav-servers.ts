// The WebDAV servers people run, started for a test on 127.0.0.1 on a free port, each with its
// own config in a temp dir and stopped by its PID: Apache httpd with mod_dav + mod_dav_fs (the
// reference: run as www-data, which Apache insists on; the DocumentRoot is given to www-data),
// nginx with dav + dav-ext (Debian's libnginx-mod-http-dav-ext), and `rclone serve webdav`
// (behind a small recording proxy in this process: rclone logs no request headers).
//
// Every server's access log has one line per request: "METHOD /decoded/path STATUS cr=<the
// request's Content-Range header, or - / empty>", so a test can assert that no Content-Range
// PUT was ever sent.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, chmodSync, existsSync, lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { APACHE_BIN, APACHE_MODULES, startApacheWith } from './file-servers.js';
import { freePort, stopChild, canConnect } from './child-server.js';
import { startNginx, nginxAvailable } from './nginx.js';
import { eventually } from './eventually.js';

export type DavKind = 'apache' | 'nginx' | 'rclone';

export interface DavServer {
  kind: DavKind;
  /** "http://127.0.0.1:PORT/" */
  url: string;
  /** The served directory: the remote's tree on disk. */
  root: string;
  /** One line per request: "METHOD /path STATUS cr=..." */
  accessLog(): Promise<string[]>;
  /** Gives everything under `root` to the server's user (after a test wrote fixtures as root). */
  own(): void;
  stop(): Promise<void>;
}

export interface DavAuth {
  user: string;
  password: string;
}

export const NGINX_DAV_MODULE = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so';
export const RCLONE_BIN = '/usr/bin/rclone';

export function davAvailable(kind: DavKind): boolean {
  switch (kind) {
    case 'apache':
      return existsSync(APACHE_BIN) && existsSync(join(APACHE_MODULES, 'mod_dav_fs.so'));
    case 'nginx':
      return nginxAvailable() && existsSync(NGINX_DAV_MODULE);
    case 'rclone':
      return existsSync(RCLONE_BIN);
  }
}

export function startDav(kind: DavKind, root: string, auth?: DavAuth): Promise<DavServer> {
  switch (kind) {
    case 'apache':
      return startApacheDav(root, auth);
    case 'nginx':
      return startNginxDav(root);
    case 'rclone':
      return startRcloneDav(root);
  }
}

/** The uid/gid of www-data (Apache's user here). */
function wwwData(): { uid: number; gid: number } {
  const f = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('www-data:'))?.split(':');
  if (f === undefined || f.length < 4) throw new Error('no www-data user on this machine (Apache needs one)');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function chownTree(root: string, uid: number, gid: number): void {
  chownSync(root, uid, gid);
  for (const d of readdirSync(root, { withFileTypes: true, recursive: true })) {
    const p = join(d.parentPath, d.name);
    if (!lstatSync(p).isSymbolicLink()) chownSync(p, uid, gid);
  }
}

/** Apache httpd, mod_dav + mod_dav_fs, as www-data; Basic auth when `auth` is given. */
export async function startApacheDav(root: string, auth?: DavAuth): Promise<DavServer> {
  const www = wwwData();
  chownTree(root, www.uid, www.gid);
  // www-data must reach the root: mkdtemp makes 0700 directories.
  for (let d = dirname(root); d !== dirname(d); d = dirname(d)) {
    const mode = lstatSync(d).mode;
    if ((mode & 0o001) === 0) chmodSync(d, (mode & 0o7777) | 0o001);
  }
  const a = await startApacheWith(
    root,
    {
      modules: ['mpm_event', 'authz_core', 'dav', 'dav_fs', ...(auth ? ['auth_basic', 'authn_core', 'authn_file', 'authz_user'] : [])],
      logFormat: '%m %U %>s cr=%{Content-Range}i',
      // The lock database lives in the server's own dir, which www-data must own.
      prepare: (dir) => {
        chownSync(dir, www.uid, www.gid);
        if (auth) writeFileSync(join(dir, 'htpasswd'), `${auth.user}:{SHA}${createHash('sha1').update(auth.password).digest('base64')}\n`);
      },
      extra: (dir) => `DavLockDB ${dir}/davlock\nTimeout 60\nKeepAliveTimeout 30`,
      directory: `  Dav On\n${auth ? '  AuthType Basic\n  AuthName dav\n  AuthUserFile htpasswd\n  Require valid-user' : '  Require all granted'}`,
    },
    'apache2 (dav)',
  );
  return { kind: 'apache', url: a.url, root, accessLog: () => a.accessLog(), own: () => chownTree(root, www.uid, www.gid), stop: () => a.stop() };
}

/** nginx with the dav module (PUT DELETE MKCOL COPY MOVE) and dav-ext (PROPFIND OPTIONS). */
export async function startNginxDav(root: string): Promise<DavServer> {
  const ng = await startNginx({
    root,
    mainConfig: `load_module ${NGINX_DAV_MODULE};\n`,
    accessLogFormat: '$request_method $uri $status cr=$http_content_range',
    locationConfig: '      dav_methods PUT DELETE MKCOL COPY MOVE;\n      dav_ext_methods PROPFIND OPTIONS;\n      dav_access user:rw group:rw all:r;\n      client_max_body_size 0;\n',
  });
  return { kind: 'nginx', url: ng.url, root, accessLog: () => ng.accessLog(), own: () => undefined, stop: () => ng.stop() };
}

/** `rclone serve webdav root`, reached through a recording proxy (the access log). */
export async function startRcloneDav(root: string): Promise<DavServer> {
  const dir = await mkdtemp(join(tmpdir(), 'fusestream-rclone-dav-'));
  const rport = await freePort();
  await writeFile(join(dir, 'rclone.conf'), '');
  let child: ChildProcess | undefined;
  let proxy: Server | undefined;
  try {
    child = spawn(RCLONE_BIN, ['serve', 'webdav', root, '--addr', `127.0.0.1:${rport}`, '--dir-cache-time', '0s', '--poll-interval', '0', '--config', join(dir, 'rclone.conf'), '--log-file', join(dir, 'rclone.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const c = child;
    c.once('error', () => undefined);
    await eventually(async () => c.exitCode !== null || (await canConnect(rport)), 10_000, `rclone serve webdav to accept on 127.0.0.1:${rport}`, 20);
    if (c.exitCode !== null) throw new Error(`rclone exited at start: ${await readFile(join(dir, 'rclone.log'), 'utf8').catch(() => '')}`);
    const log: string[] = [];
    const p = createServer((req, res) => {
      const up = httpRequest({ host: '127.0.0.1', port: rport, method: req.method, path: req.url, headers: req.headers }, (ures) => {
        log.push(`${req.method ?? '?'} ${decodeURIComponentSafe(req.url ?? '')} ${ures.statusCode ?? 0} cr=${req.headers['content-range'] ?? '-'}`);
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.on('aborted', () => up.destroy());
      req.pipe(up);
    });
    p.keepAliveTimeout = 30_000;
    proxy = p;
    const port = await freePort();
    await new Promise<void>((resolve, reject) => {
      p.once('error', reject);
      p.listen(port, '127.0.0.1', resolve);
    });
    const owned = { child: c, proxy: p };
    return {
      kind: 'rclone',
      url: `http://127.0.0.1:${port}/`,
      root,
      accessLog: () => Promise.resolve([...log]),
      own: () => undefined,
      stop: async () => {
        owned.proxy.closeAllConnections();
        await new Promise<void>((resolve) => owned.proxy.close(() => resolve()));
        await stopChild(owned.child, 'rclone serve webdav');
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    proxy?.close();
    if (child !== undefined) await stopChild(child, 'rclone serve webdav');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}


/** True when this process may start Apache as www-data (root) — the tests skip otherwise. */
export function canRunApache(): boolean {
  return userInfo().uid === 0;
}

/** Our temp and probe files, and mod_dav_fs's own temp files (".davfs.tmp…"), under `root`. */
export function davLeftovers(root: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (/^\.(fusestream-|davfs\.tmp)/.test(d.name)) out.push(join(d.parentPath, d.name));
  }
  return out;
}
