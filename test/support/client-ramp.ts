// Client process: reads `count` random ranges of a ramp file through the mount and checks
// every byte. Usage: node client-ramp.js <path> <size> <count> <seed>. Exit 1 on a mismatch.
import { closeSync, openSync, readSync } from 'node:fs';
import { checkRamp } from './ramp.js';

const [path, sizeArg, countArg, seedArg] = process.argv.slice(2);
if (!path || !sizeArg || !countArg || !seedArg) throw new Error('usage: client-ramp <path> <size> <count> <seed>');
const size = Number(sizeArg);
let state = Number(seedArg) + 1;
const rand = (n: number): number => {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state % n;
};
const fd = openSync(path, 'r');
for (let i = 0; i < Number(countArg); i++) {
  const off = rand(size);
  const len = 1 + rand(256 * 1024);
  const buf = Buffer.alloc(len);
  const n = readSync(fd, buf, 0, len, off);
  const want = Math.min(len, size - off);
  if (n !== want) {
    process.stdout.write(`short read ${n} of ${want} at ${off}\n`);
    process.exit(1);
  }
  const bad = checkRamp(buf.subarray(0, n), off);
  if (bad >= 0) {
    process.stdout.write(`wrong byte at ${off + bad}\n`);
    process.exit(1);
  }
}
closeSync(fd);
process.stdout.write('ok\n');
