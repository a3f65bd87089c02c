#!/usr/bin/env node
// Installs the Debian packages the tests need when they are missing (as root, via apt-get),
// so `npm test` works on a fresh machine. Idempotent and quiet when everything is present.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needed = [
  { bin: ['/usr/bin/fusermount3', '/bin/fusermount3'], pkg: 'fuse3' },
  { bin: ['/usr/sbin/nginx'], pkg: 'nginx-light' },
  { bin: ['/usr/bin/curl'], pkg: 'curl' },
];
const missing = needed.filter((n) => !n.bin.some((b) => existsSync(b))).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);
if (process.getuid?.() !== 0) {
  console.error(`missing test dependencies (${missing.join(', ')}); install them as root: apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`installing test dependencies: ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
if (r.status !== 0) process.exit(r.status ?? 1);
