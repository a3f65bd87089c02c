// `fusestream demo`: mounts an in-memory filesystem with a generated dataset on ./mnt and
// prints what to try. With --tour (or CI=true) it runs a short tour of real syscalls from a
// child shell, prints the output, unmounts and exits with the tour's status.
// The remote-backed demo (an embedded HTTP server) replaces the dataset once the data and core
// layers land; the shape of the command stays.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { FuseServer } from '../kernel/fuse-server.js';
import { MemoryFs } from '../kernel/memory-fs.js';
import { runUntilStopped } from './run-mounted.js';

export interface DemoOptions {
  mountpoint: string;
  tour: boolean;
  logger: Logger;
}

const TOUR = (mnt: string): string => `
set -e
echo '$ ls -l ${mnt}'; ls -l ${mnt}
echo '$ ls ${mnt}/many | wc -l'; ls ${mnt}/many | wc -l
echo '$ dd if=${mnt}/ramp.bin of=/dev/null bs=1M iflag=direct'; dd if=${mnt}/ramp.bin of=/dev/null bs=1M iflag=direct 2>&1 | tail -1
echo '$ echo hello > ${mnt}/notes/hello.txt && cat ${mnt}/notes/hello.txt'; echo hello > ${mnt}/notes/hello.txt && cat ${mnt}/notes/hello.txt
echo '$ mv, ln -s, rm'; mv ${mnt}/notes/hello.txt ${mnt}/notes/hi.txt && ln -s hi.txt ${mnt}/notes/link && cat ${mnt}/notes/link && rm ${mnt}/notes/link ${mnt}/notes/hi.txt
echo '$ df -h ${mnt}'; df -h ${mnt} | tail -1
`;

export async function runDemo(o: DemoOptions): Promise<number> {
  const mnt = resolve(o.mountpoint);
  mkdirSync(mnt, { recursive: true });
  const fs = new MemoryFs({ attrTtlMs: 1000, entryTtlMs: 1000 });
  fs.addFile('README.txt', Buffer.from('An in-memory fusestream mount. Everything here is served by TypeScript over /dev/fuse.\n'));
  fs.addFile('ramp.bin', { size: 1024 ** 3, generator: (off: number) => (off * 2654435761) >>> 24 });
  fs.addDir('many');
  for (let i = 0; i < 1000; i++) fs.addFile(`many/file-${String(i).padStart(4, '0')}.txt`, Buffer.from(`file ${i}\n`));
  fs.addDir('notes');
  const server = await FuseServer.start({ mountpoint: mnt, ops: fs, logger: o.logger, deadlineMs: 30_000 });
  process.stdout.write(`fusestream demo mounted on ${server.mountpoint}\n`);
  if (!o.tour) {
    process.stdout.write(`Try, from another terminal:\n  ls -l ${mnt}\n  dd if=${mnt}/ramp.bin of=/dev/null bs=1M iflag=direct\n  cp -r ${mnt}/many /tmp/many && echo hi > ${mnt}/notes/x\nCtrl-C unmounts.\n`);
    return runUntilStopped(server, o.logger);
  }
  const code = await new Promise<number>((done) => {
    const child = spawn('sh', ['-c', TOUR(mnt)], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', () => done(1));
    child.on('close', (c) => done(c ?? 1));
  });
  await server.unmount();
  process.stdout.write(code === 0 ? 'demo tour passed; unmounted\n' : `demo tour failed (exit ${code}); unmounted\n`);
  return code;
}
