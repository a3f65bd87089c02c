// An OPEN, OPENDIR or CREATE whose request was answered meanwhile (its deadline passed, or an
// INTERRUPT came) and that completes afterwards must not leak its handle: the kernel never
// learnt the fh, so it will never RELEASE it. Through a real mount (the deadline case) and
// directly through the bridge (each op, with the signal fired while the op waits).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, within } from '../../src/base/async.js';
import { Errno } from '../../src/base/errno.js';
import { FsError } from '../../src/base/fs-error.js';
import { ROOT_INO } from '../../src/base/ids.js';
import { O_CREAT, O_RDONLY, O_WRONLY } from '../../src/base/posix.js';
import { silentLogger } from '../../src/observability/logger.js';
import { asUnique } from '../../src/base/ids.js';
import { MemoryFs } from '../../src/core/memory-fs.js';
import { fuseOpsFor } from '../../src/bridge/fuse-adapter.js';
import type { RequestContext } from '../../src/kernel/ops.js';
import { run } from '../support/proc.js';
import { withMount } from '../support/mounted.js';

function ctx(signal: AbortSignal): RequestContext {
  return { unique: asUnique(2n), opcode: 0, nodeid: ROOT_INO, uid: 0, gid: 0, pid: 1, signal, log: silentLogger() };
}

describe('late replies to answered requests', () => {
  test('an open that completes after its deadline answered EIO leaves no open handle (mounted)', async () => {
    const fs = new MemoryFs();
    fs.addFile('slow.txt', Buffer.from('slow\n'));
    const gate = new Deferred<void>();
    const reached = new Deferred<void>();
    fs.hooks = {
      beforeOp: async (op) => {
        if (op !== 'open') return;
        reached.resolve();
        await gate.promise; // ignores the request's signal on purpose
      },
    };
    const released = new Deferred<void>();
    const release = fs.release.bind(fs);
    fs.release = async (...args) => {
      await release(...args);
      released.resolve();
    };
    await withMount(fs, async ({ mnt }) => {
      const cat = run('cat', [`${mnt}/slow.txt`], 20_000);
      await within(reached.promise, 10_000, 'the OPEN to reach the filesystem');
      const r = await cat;
      assert.notEqual(r.code, 0, 'cat failed: its OPEN was answered at the deadline');
      assert.match(r.stderr, /Input\/output error/);
      gate.resolve(); // now the open completes, for a request nobody waits for
      await within(released.promise, 5000, 'the late handle to be released by the bridge');
      assert.equal(fs.openHandleCount, 0);
    }, { deadlineMs: 300 });
  });

  for (const op of ['open', 'opendir', 'create'] as const) {
    test(`${op}: a signal that fires while the op waits releases what it made`, async () => {
      const fs = new MemoryFs();
      fs.addFile('f', Buffer.from('x'));
      fs.addDir('d');
      const gate = new Deferred<void>();
      const reached = new Deferred<void>();
      fs.hooks = {
        beforeOp: async (name) => {
          if (name !== op) return;
          reached.resolve();
          await gate.promise;
        },
      };
      const ops = fuseOpsFor(fs);
      const ac = new AbortController();
      const f = (await fs.lookup(ctx(ac.signal), ROOT_INO, 'f')).nodeid;
      const d = (await fs.lookup(ctx(ac.signal), ROOT_INO, 'd')).nodeid;
      const nodesBefore = fs.nodeCount;
      const call =
        op === 'open'
          ? ops.open!(ctx(ac.signal), f, O_RDONLY)
          : op === 'opendir'
            ? ops.opendir!(ctx(ac.signal), d, O_RDONLY)
            : ops.create!(ctx(ac.signal), ROOT_INO, 'new', 0o644, O_WRONLY | O_CREAT, 0);
      await within(reached.promise, 5000, `the ${op} to reach the filesystem`);
      ac.abort(new Error('the session answered this request already'));
      gate.resolve();
      await assert.rejects(call, (e: unknown) => e instanceof FsError && e.errno === Errno.EINTR);
      assert.equal(fs.openHandleCount, 0, 'no handle left open');
      if (op === 'create') {
        // The file exists (creating it was not undone), but the kernel holds no reference.
        const e = await fs.lookup(ctx(new AbortController().signal), ROOT_INO, 'new');
        assert.equal(fs.lookupCount(e.nodeid), 1n, 'only the reference of this lookup');
      } else {
        assert.equal(fs.nodeCount, nodesBefore);
      }
    });
  }
});
