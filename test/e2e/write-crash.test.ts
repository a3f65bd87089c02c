// Crash safety through the mount: `fusestream mount <local dir>` (a CLI child) serves a
// write-heavy workload child (write-crash-child.ts: seeded rewrites, editor-style temp +
// fsync + rename saves, appends, patches with holes, renames, unlinks, each acknowledged
// close/fsync/rename/unlink logged outside the mount) and is killed with SIGKILL at a seeded
// point: as the test reads the workload's k-th acknowledgement, or its n-th written byte, or
// some event-loop turns after an acknowledgement, or after the workload stopped by itself
// (the daemon then idle or mid-upload). Then a second mount on the same cache dir
// (--write-back-delay 0) is started and stopped with SIGTERM (which drains), and:
// - what the second mount shows, and then the remote directory, hold for every path exactly
//   its last acknowledged version (an unlinked or renamed-away path is absent; a renamed file
//   is at its new name), or what the one operation cut short by the kill would have made it,
//   or an empty file where the workload had created or truncated it since (open(O_TRUNC)
//   returned: the file WAS empty), never half-written bytes nor someone else's bytes;
// - the remote after the drain is exactly what the second mount showed (it had nothing left
//   to upload, and lost nothing it showed); no other file is on the remote.
// 24 kill points; `npm test` runs 8 of them (every third), all run under stress
// (FUSESTREAM_FUZZ_BASE set, which also picks the seeds) or with FUSESTREAM_WRITE_CRASH_ALL=1.
// One run: FUSESTREAM_WRITE_CRASH_ONLY=<index> [FUSESTREAM_FUZZ_BASE=<base>].
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliMounts } from '../support/cli-mount.js';
import { run as runProcess } from '../support/proc.js';
import { EMPTY_SHA, expectationFrom, violations, type Content } from './write-crash-check.js';
import { checkCrashRun, childScript, crashRuns, describeTrigger, sha, shasOfTree, writeInitialRemote } from './write-crash-run.js';

const RUNS = 24;
const stressBase = process.env.FUSESTREAM_FUZZ_BASE;
const BASE = Number(stressBase ?? 9100);
const only = process.env.FUSESTREAM_WRITE_CRASH_ONLY;
const all = stressBase !== undefined || process.env.FUSESTREAM_WRITE_CRASH_ALL === '1';
const runs = (): ReturnType<typeof crashRuns> => crashRuns(BASE, RUNS, (r) => (only !== undefined ? r.index === Number(only) : all || r.index % 3 === 0));

// The judge must be able to fail: the workload on a plain directory (no mount, no crash) leaves
// exactly what its log promises, and each way of breaking that promise is named.
void describe('write crash judge', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-crash-judge-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a plain directory keeps every promise of the log, for each seed run here; broken promises are named', async () => {
    for (const { index, seed } of runs()) {
      const root = join(dir, `plain${index}`);
      const log = join(dir, `plain${index}.log`);
      writeInitialRemote(root, seed);
      const r = await runProcess(process.execPath, [childScript, root, log, String(seed), '0'], 30_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^DONE$/m);
      const want = expectationFrom(readFileSync(log, 'utf8').trim().split('\n'));
      const tree = shasOfTree(root);
      assert.deepEqual(violations(tree, want, 'plain'), [], `seed ${seed}`);
      const [path, content] = [...tree].find(([, c]) => c !== EMPTY_SHA) ?? [];
      if (path === undefined || content === undefined) continue;
      const broken = (change: (t: Map<string, Content>) => void): string[] => {
        const t = new Map(tree);
        change(t);
        return violations(t, want, 'broken');
      };
      assert.equal(broken((t) => t.delete(path)).length, 1, `seed ${seed}: a lost file is named`);
      assert.equal(broken((t) => t.set(path, sha(readFileSync(join(root, path)).subarray(1)))).length, 1, `seed ${seed}: half-written bytes are named`);
      assert.equal(broken((t) => t.set('z.bin', content)).length, 1, `seed ${seed}: a file the workload never made is named`);
    }
  });

  test('the operation the kill cut short may or may not have happened; nothing else may', () => {
    const [v1, v2] = ['one', 'two'].map((s) => sha(Buffer.from(s))) as [string, string];
    const lines = [
      { ev: 'init', path: 'a', sha: v1, size: 3 },
      { ev: 'try', op: 'open', path: 'a', trunc: true, create: false },
      { ev: 'ack', op: 'open', path: 'a', trunc: true, create: false },
      { ev: 'try', op: 'close', path: 'a', sha: v2, size: 3 },
      { ev: 'ack', op: 'close', path: 'a', sha: v2, size: 3 },
      { ev: 'try', op: 'rename', from: 'a', to: 'b' },
      { ev: 'fail', op: 'rename', from: 'a', to: 'b', code: 'ENOTCONN' },
    ].map((e) => JSON.stringify(e));
    const want = expectationFrom(lines);
    assert.deepEqual(violations(new Map([['a', v2]]), want, 'x'), [], 'the rename not done');
    assert.deepEqual(violations(new Map([['b', v2]]), want, 'x'), [], 'the rename done');
    assert.equal(violations(new Map([['a', v1]]), want, 'x').length, 1, 'the version before the last close is not enough');
    assert.equal(violations(new Map([['a', EMPTY_SHA]]), want, 'x').length, 1, 'the truncation was superseded by the close');
    assert.equal(violations(new Map(), want, 'x').length, 1, 'losing the file is named');
  });
});

void describe('write path: kill -9 of the mount loses nothing acknowledged, leaves nothing half-written', () => {
  let dir: string;
  const mounts = new CliMounts();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-write-crash-'));
  });

  after(async () => {
    await mounts.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const r of runs()) {
    const { index, seed, trigger, writeBackDelay } = r;
    void test(`run ${index}: seed ${seed}, --write-back-delay ${writeBackDelay}, killed ${describeTrigger(trigger)}`, async () => {
      const work = join(dir, `run${index}`);
      const remote = join(work, 'remote');
      writeInitialRemote(remote, seed);
      const repro = `FUSESTREAM_FUZZ_BASE=${BASE} FUSESTREAM_WRITE_CRASH_ONLY=${index} node scripts/run-tests.mjs write-crash`;
      await checkCrashRun({ mounts, work, run: r, remoteSpec: remote, remoteDir: remote, repro });
    });
  }
});
