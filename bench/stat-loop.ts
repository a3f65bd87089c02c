// Child process for the stat benchmark: stat(path) in a loop for `seconds`, prints calls/s.
import { statSync } from 'node:fs';

const [path, secondsArg] = process.argv.slice(2);
if (!path) throw new Error('usage: stat-loop <path> <seconds>');
const until = performance.now() + Number(secondsArg ?? 3) * 1000;
let n = 0;
while (performance.now() < until) {
  for (let i = 0; i < 200; i++) statSync(path);
  n += 200;
}
process.stdout.write(`${Math.round(n / Number(secondsArg ?? 3))}\n`);
