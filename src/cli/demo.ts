// `fusestream demo`: starts an embedded HTTP server with a generated dataset on 127.0.0.1
// (demo-server.ts) and mounts it on ./mnt through the real http remote and the on-disk cache,
// then prints what to try. With --tour (or CI=true) it runs a short tour of real syscalls from
// a child shell, unmounts and exits with the tour's status. Every setting but the cache dir is
// the mount's default (base/settings.ts).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveSettings } from '../base/settings.js';
import type { Logger } from '../observability/logger.js';
import { runUntilStopped } from './run-mounted.js';
import { startDemoServer } from './demo-server.js';
import { startMount } from './mount-command.js';

export interface DemoOptions {
  mountpoint: string;
  cacheDir: string;
  tour: boolean;
  logger: Logger;
}

const TOUR = (mnt: string): string => `
set -e
echo '$ ls -l ${mnt}'; ls -l ${mnt}
echo '$ ls -l ${mnt}/many | tail -n +2 | wc -l   # 10,000 entries, one listing request'; ls -l ${mnt}/many | tail -n +2 | wc -l
echo '$ cat ${mnt}/nested/a/b/readme.txt'; cat ${mnt}/nested/a/b/readme.txt
echo '$ dd if=${mnt}/ramp.bin of=/dev/null bs=1M count=256   # streamed on demand'; dd if=${mnt}/ramp.bin of=/dev/null bs=1M count=256 2>&1 | tail -1
test "$(dd if=${mnt}/ramp.bin bs=1M count=256 status=none | wc -c)" = 268435456
echo '$ dd if=${mnt}/ramp.bin of=/dev/null bs=1M count=256   # again, from the cache'; dd if=${mnt}/ramp.bin of=/dev/null bs=1M count=256 2>&1 | tail -1
echo '$ touch ${mnt}/new   # read-only'; touch ${mnt}/new 2>&1 || true
`;

export async function runDemo(o: DemoOptions): Promise<number> {
  const mnt = resolve(o.mountpoint);
  mkdirSync(mnt, { recursive: true });
  const http = await startDemoServer();
  try {
    const m = await startMount({
      remote: http.url,
      mountpoint: mnt,
      settings: resolveSettings({ cacheDir: o.cacheDir }),
      logger: o.logger,
    });
    try {
      process.stdout.write(`fusestream demo: ${http.url} (embedded HTTP server) mounted on ${m.server.mountpoint}\n`);
      if (!o.tour) {
        process.stdout.write(
          `Try, from another terminal:\n  ls -l ${mnt}\n  ls -l ${mnt}/many | head\n  dd if=${mnt}/ramp.bin of=/dev/null bs=1M\n  sha256sum ${mnt}/hello.txt\nCtrl-C unmounts.\n`,
        );
        return await runUntilStopped(m.server, o.logger);
      }
      const code = await new Promise<number>((done) => {
        const child = spawn('sh', ['-c', TOUR(mnt)], { stdio: ['ignore', 'inherit', 'inherit'] });
        child.on('error', () => done(1));
        child.on('close', (c) => done(c ?? 1));
      });
      await m.server.unmount();
      process.stdout.write(code === 0 ? 'demo tour passed; unmounted\n' : `demo tour failed (exit ${code}); unmounted\n`);
      return code;
    } finally {
      await m.close();
    }
  } finally {
    await http.close();
  }
}

export const DEFAULT_DEMO_CACHE = join('.cache', 'demo');
