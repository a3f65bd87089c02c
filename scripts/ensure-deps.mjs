#!/usr/bin/env node
// Installs the Debian packages a job needs when they are missing (as root, via apt-get), so
// `npm test` and the benchmarks work on a fresh machine. Idempotent and quiet when everything
// is present; `apt-get update` runs once, only when something has to be installed.
// Usage: node scripts/ensure-deps.mjs test|bench
//   test:  fuse3 (fusermount3), nginx-light, curl, apache2-bin (Apache httpd: autoindex, and
//          mod_dav as the reference WebDAV server), python3 (its http.server), the WebDAV
//          servers with quirks: libnginx-mod-http-dav-ext (nginx PROPFIND) and rclone (serve webdav)
//   bench: the same, plus fio and the tools fusestream is compared with (httpdirfs)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const TEST = [
  { bin: ['/usr/bin/fusermount3', '/bin/fusermount3'], pkg: 'fuse3' },
  { bin: ['/usr/sbin/nginx'], pkg: 'nginx-light' },
  { bin: ['/usr/bin/curl'], pkg: 'curl' },
  { bin: ['/usr/sbin/apache2'], pkg: 'apache2-bin' },
  { bin: ['/usr/bin/python3'], pkg: 'python3' },
  { bin: ['/usr/lib/nginx/modules/ngx_http_dav_ext_module.so'], pkg: 'libnginx-mod-http-dav-ext' },
  { bin: ['/usr/bin/rclone'], pkg: 'rclone' },
];
const BENCH = [
  ...TEST,
  { bin: ['/usr/bin/fio'], pkg: 'fio' },
  { bin: ['/usr/bin/httpdirfs'], pkg: 'httpdirfs' },
];
const job = process.argv[2] ?? 'test';
const needed = { test: TEST, bench: BENCH }[job];
if (needed === undefined) {
  console.error(`usage: node scripts/ensure-deps.mjs test|bench (got "${job}")`);
  process.exit(2);
}
const missing = needed.filter((n) => !n.bin.some((b) => existsSync(b))).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);
if (process.getuid?.() !== 0) {
  console.error(`missing ${job} dependencies (${missing.join(', ')}); install them as root: apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`installing ${job} dependencies: ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
if (r.status !== 0) process.exit(r.status ?? 1);
