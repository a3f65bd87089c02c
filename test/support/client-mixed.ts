// A client process for the mounted stress test: mixed writes, reads and stats with every byte
// checked against a local model. Run as: node client-mixed.js <mnt> <id> <seed> <sharedSize>
// Exits 0 when everything matched; prints the first mismatch and exits 1 otherwise.
import { openSync, readSync, writeSync, fstatSync, statSync, readdirSync, closeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { rampByte } from './ramp.js';

const [mnt, idArg, seedArg, sharedArg] = process.argv.slice(2);
if (!mnt || !idArg || !seedArg || !sharedArg) throw new Error('usage: client-mixed <mnt> <id> <seed> <sharedSize>');
const id = Number(idArg);
const sharedSize = Number(sharedArg);
let state = Number(seedArg) * 7919 + id;
const rand = (n: number): number => {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state % n;
};

function fail(msg: string): never {
  process.stdout.write(`client ${id}: ${msg}\n`);
  process.exit(1);
}

const path = join(mnt, 'w', `c${id}.bin`);
const fd = openSync(path, 'w+');
const model = Buffer.alloc(256 * 1024);
let size = 0;
for (let step = 0; step < 60; step++) {
  const action = rand(10);
  if (action < 4) {
    const off = rand(200 * 1024);
    const len = 1 + rand(32 * 1024);
    const data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = (id * 31 + step * 7 + i) & 0xff;
    if (writeSync(fd, data, 0, len, off) !== len) fail('short write');
    data.copy(model, off);
    size = Math.max(size, off + len);
  } else if (action < 7) {
    const off = rand(Math.max(1, size));
    const len = 1 + rand(40 * 1024);
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, off);
    const want = Math.max(0, Math.min(len, size - off));
    if (n !== want) fail(`read ${n} bytes at ${off}, expected ${want} (size ${size})`);
    if (!buf.subarray(0, n).equals(model.subarray(off, off + n))) fail(`content mismatch at ${off}+${n}`);
  } else if (action < 8) {
    if (fstatSync(fd).size !== size) fail(`fstat size ${fstatSync(fd).size}, expected ${size}`);
    if (statSync(path).size !== size) fail(`stat size mismatch`);
  } else if (action < 9) {
    const off = rand(sharedSize);
    const len = Math.min(1 + rand(64 * 1024), sharedSize - off);
    const sfd = openSync(join(mnt, 'shared.bin'), 'r');
    const buf = Buffer.alloc(len);
    const n = readSync(sfd, buf, 0, len, off);
    closeSync(sfd);
    if (n !== len) fail(`shared read ${n} of ${len}`);
    for (let i = 0; i < n; i++) if (buf[i] !== rampByte(off + i)) fail(`shared byte at ${off + i}`);
  } else {
    if (step % 20 === 9) {
      const cut = rand(Math.max(1, size));
      ftruncateSync(fd, cut);
      model.fill(0, cut);
      size = cut;
    }
    if (!readdirSync(join(mnt, 'w')).includes(`c${id}.bin`)) fail('own file missing from readdir');
  }
}
closeSync(fd);
process.stdout.write(`client ${id}: ok\n`);
