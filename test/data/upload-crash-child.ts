// A child process for the upload crash test (upload-crash.test.ts). It plays the core: writes
// a seeded plan of files (some rewritten) as snapshot files, fdatasync'ed before their journal
// row commits, while an UploadQueue uploads them to a LocalRemote. After each commit it prints
// `COMMITTED <path> <seed> <size>`. At the kill point the plan names it prints `POINT <name>`
// and freezes the whole process (Atomics.wait on the main thread: nothing else runs), so the
// parent's kill -9 lands exactly there and every COMMITTED line printed is all that committed.
//   after-commit:N       right after the N-th journal commit
//   mid-transfer:N       the N-th remote put has read half of its source
//   before-rename:N      the N-th remote put's temp file is complete and durable, not yet visible
//   after-remote:N       the N-th remote put committed, before the journal hears of it
// Imports the compiled modules (dist/...), like the product would.
// Usage: node upload-crash-child.js <workDir> <planSeed> <point>
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Journal, type BaseVersion } from '../../src/store/journal.js';
import { LocalRemote } from '../../src/remote/local/local-remote.js';
import { UploadQueue } from '../../src/data/upload/upload-queue.js';
import type { ContentSource, PutOptions, Remote, RemoteStat } from '../../src/remote/remote.js';
import { rampBuffer } from '../support/ramp.js';
import { crashPlan, prng } from './upload-crash-plan.js';

const [workDir = '', seedArg = '1', point = 'after-commit:1'] = process.argv.slice(2);
const [pointName = '', pointArg = '1'] = point.split(':');
const pointN = Number(pointArg);

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

function freeze(): never {
  say(`POINT ${point}`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  throw new Error('unreachable');
}

const counters = new Map<string, number>();
function reached(name: string): void {
  if (name !== pointName) return;
  const n = (counters.get(name) ?? 0) + 1;
  counters.set(name, n);
  if (n === pointN) freeze();
}

const snapshotDir = join(workDir, 'snapshots');
mkdirSync(snapshotDir, { recursive: true });
mkdirSync(join(workDir, 'remote'), { recursive: true });
const local = new LocalRemote({ root: join(workDir, 'remote'), hooks: { beforeCommit: () => Promise.resolve(reached('before-rename')) } });

/** The LocalRemote, with its put's source and commit instrumented for the kill points. */
const remote: Remote = {
  id: local.id,
  capabilities: local.capabilities,
  stat: (p, s) => local.stat(p, s),
  list: (p, s) => local.list(p, s),
  read: (p, o, l, opts) => local.read(p, o, l, opts),
  async put(path: string, source: ContentSource, opts: PutOptions): Promise<RemoteStat> {
    const half = Math.floor(source.sizeBytes / 2);
    const slow: ContentSource = {
      sizeBytes: source.sizeBytes,
      async *open(signal) {
        let pos = 0;
        let marked = false;
        for await (const chunk of source.open(signal)) {
          // Yield in two parts around the half-way mark so the kill point sees half the bytes sent.
          const cut = !marked && pos + chunk.byteLength > half ? half - pos : -1;
          if (cut >= 0) {
            yield chunk.subarray(0, cut);
            marked = true;
            reached('mid-transfer');
            yield chunk.subarray(cut);
          } else yield chunk;
          pos += chunk.byteLength;
        }
      },
    };
    const st = await local.put(path, slow, opts);
    reached('after-remote');
    return st;
  },
  delete: (p, opts) => local.delete(p, opts),
  rename: (f, t, opts) => local.rename(f, t, opts),
  mkdir: (p, opts) => local.mkdir(p, opts),
  rmdir: (p, opts) => local.rmdir(p, opts),
  close: () => local.close(),
};

const journal = Journal.open(join(workDir, 'cache.db'), { remote: remote.id });
// What the core would keep in its catalogue (in the same transaction): the remote version of
// each path we uploaded, the base of our next change of it.
const known = new Map<string, BaseVersion>();
const queue = new UploadQueue({
  journal,
  remote,
  snapshotDir,
  writeBackDelayMs: 0,
  concurrency: 2,
  retryBaseMs: 5,
  retryMaxMs: 50,
  onUploaded: (row, outcome) => {
    if (outcome.kind === 'written') known.set(row.path, outcome.version);
  },
});
queue.start();

const pause = prng(Number(seedArg) * 13);
for (const step of crashPlan(Number(seedArg))) {
  const name = queue.newSnapshotName();
  const data = rampBuffer(0, step.sizeBytes, step.seed);
  const fd = openSync(queue.snapshotPath(name), 'wx');
  writeSync(fd, data);
  fdatasyncSync(fd);
  closeSync(fd);
  const dirFd = openSync(snapshotDir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
  const v = known.get(step.path);
  queue.put(step.path, { name, sizeBytes: step.sizeBytes, mtimeMs: Date.now() }, v ? { kind: 'version', version: v } : { kind: 'absent' });
  say(`COMMITTED ${step.path} ${step.seed} ${step.sizeBytes}`);
  reached('after-commit');
  // Let uploads run between writes, as a user's saves would: 0 to 15 turns of the event loop
  // (the seed decides how many), so the kill points fall at varied stages of the uploads.
  for (let turns = Math.floor(pause() * 16); turns > 0; turns--) await new Promise<void>((resolve) => setImmediate(resolve));
}
await queue.drain(60_000);
say('DONE');
freeze();
