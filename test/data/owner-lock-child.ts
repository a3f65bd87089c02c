// Child process of owner-lock.test.ts: opens a DataCache on argv[2] and reports on stdout.
//   mode 'hold': prints "OPEN <pid>", keeps the cache open until stdin ends, closes, "CLOSED".
//   mode 'try':  prints "OPEN <pid>" and closes at once ("CLOSED"), or "ERR <code> <message>"
//                and exits with 3 when the open is refused.
import { DataCache } from '../../src/data/data-cache.js';
import { FakeRemote } from '../fakes/fake-remote.js';

const [cacheDir, mode] = process.argv.slice(2);
if (cacheDir === undefined || (mode !== 'hold' && mode !== 'try')) throw new Error('usage: owner-lock-child <cacheDir> hold|try');
try {
  const cache = await DataCache.open({ cacheDir, remote: new FakeRemote() });
  process.stdout.write(`OPEN ${process.pid}\n`);
  if (mode === 'hold') {
    await new Promise<void>((resolve) => {
      process.stdin.on('end', resolve);
      process.stdin.resume();
    });
  }
  await cache.close();
  process.stdout.write('CLOSED\n');
} catch (err) {
  const e = err as { code?: unknown; message?: unknown };
  process.stdout.write(`ERR ${String(e.code)} ${String(e.message)}\n`);
  process.exitCode = 3;
}
