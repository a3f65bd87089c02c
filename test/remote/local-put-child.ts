// A child process for the crash tests of LocalRemote.put (local-remote-write.test.ts): puts
// `size` bytes of ramp data (seed 2) to `path` under `root` and stops for good at a point the
// parent names, printing a marker there so the parent can kill -9 it exactly at that point.
//   mid:    half the bytes are in the temp file (prints MID)
//   commit: the temp file is complete and fsync'ed, not yet renamed into place (prints COMMIT)
//   done:   put resolved (prints DONE)
// Imports the compiled remote (dist/src/...), like the product would.
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { rampBuffer } from '../support/ramp.js';

const [root = '', path = '', sizeArg = '0', mode = 'mid'] = process.argv.slice(2);
const size = Number(sizeArg);
const chunk = 256 * 1024;
const forever = (): Promise<void> => new Promise<void>(() => setInterval(() => undefined, 60_000));

const remote = new LocalRemote({
  root,
  hooks: {
    beforeCommit: async () => {
      if (mode !== 'commit') return;
      process.stdout.write('COMMIT\n');
      await forever();
    },
  },
});
const st = await remote.put(
  path,
  {
    sizeBytes: size,
    async *open() {
      for (let off = 0; off < size; off += chunk) {
        if (mode === 'mid' && off >= size / 2) {
          process.stdout.write('MID\n');
          await forever();
        }
        yield rampBuffer(off, Math.min(chunk, size - off), 2);
      }
    },
  },
  { signal: new AbortController().signal },
);
process.stdout.write(`DONE ${st.size}\n`);
await forever();
