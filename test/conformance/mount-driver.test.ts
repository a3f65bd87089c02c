// The mount driver itself: a filesystem that never answers fails the op within its bound,
// with a sentence naming the op, and the driver still ends its child and unmounts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { within } from '../../src/base/async.js';
import { MemoryFs } from '../../src/core/memory-fs.js';
import { openMountDriver } from '../support/mount-driver.js';
import { rejectsErrno } from '../support/fs-driver.js';

test('a hung op fails naming what it waited for; dispose still ends the child and unmounts', async () => {
  const fs = new MemoryFs();
  fs.addFile('f', Buffer.from('x'));
  const d = await openMountDriver(fs, { opMs: 1000 });
  try {
    await rejectsErrno(d.stat('missing'), 'ENOENT', 'the mount answers before the hang');
    // From now on every lookup waits until its request is aborted (the unmount aborts it).
    fs.hooks = { beforeOp: (op, _ino, ctx) => (op === 'lookup' ? new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())) : undefined) };
    await assert.rejects(d.stat('hangs'), /timed out after 1000 ms waiting for: the fs child to answer stat hangs/);
    await assert.rejects(d.stat('f'), /fs child exited|disposed/, 'the killed child answers nothing more');
  } finally {
    await within(d.dispose(), 20_000, 'dispose of a driver whose child was killed');
  }
});
