// The flush half of the control socket, without a kernel: a ControlServer whose filesystem's
// drain is held on a gate. While it is held, the client receives progress lines (what is
// left, from pendingUploads) before the answer, past the socket's 5 s request timeout for a
// held flush; opening the gate answers with what is still pending. close() while a flush is
// held waits for it (the owner closes the upload queue first, which releases the drain).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deferred, within } from '../../src/base/async.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ControlServer, controlSocketPath, queryControl } from '../../src/cli/control.js';
import { flushProgress, flushUploads, type FlushProgress, type FlushResult } from '../../src/cli/flush-command.js';
import type { JournalRow } from '../../src/store/journal.js';

function row(id: number, path: string, sizeBytes: number | undefined, lastError?: string): JournalRow {
  return {
    id,
    seq: id,
    path,
    fromPath: undefined,
    kind: sizeBytes === undefined ? 'mkdir' : 'put',
    snapshot: sizeBytes === undefined ? undefined : { name: `snap-${id}`, sizeBytes, mtimeMs: 0 },
    generation: 1,
    base: { kind: 'absent' },
    state: lastError === undefined ? 'queued' : 'failed',
    priority: 'foreground',
    dueMs: 0,
    attempts: lastError === undefined ? 0 : 2,
    lastError,
    conflictPath: undefined,
    changedMs: 0,
    sent: [],
  };
}

void describe('flush over the control socket', () => {
  let dir: string;
  let savedXdg: string | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fusestream-flush-progress-'));
    savedXdg = process.env['XDG_RUNTIME_DIR'];
    process.env['XDG_RUNTIME_DIR'] = dir;
  });

  after(() => {
    if (savedXdg === undefined) delete process.env['XDG_RUNTIME_DIR'];
    else process.env['XDG_RUNTIME_DIR'] = savedXdg;
    rmSync(dir, { recursive: true, force: true });
  });

  test('flushProgress counts changes, bytes and failing ones', () => {
    assert.deepEqual(flushProgress([row(1, 'a', 10), row(2, 'd', undefined), row(3, 'b', 5, 'permission: EROFS')]), { changes: 3, bytes: 15, failing: 1 } satisfies FlushProgress);
  });

  test('progress lines arrive while the drain is held; the answer lists what is left', async () => {
    let rows = [row(1, 'a.bin', 3000), row(2, 'dir', undefined), row(3, 'b.bin', 500, 'unavailable: EROFS')];
    const drained = new Deferred<JournalRow[]>();
    const fs = { drain: (): Promise<JournalRow[]> => drained.promise, pendingUploads: (): JournalRow[] => rows };
    const mnt = join(dir, 'mnt');
    const server = await ControlServer.start(mnt, { status: () => ({}), invalidate: () => Promise.resolve(0), flush: (ms, progress) => flushUploads(fs, ms, progress) }, silentLogger());
    try {
      const seen: FlushProgress[] = [];
      const enough = new Deferred<void>();
      const answer = queryControl(controlSocketPath(mnt), 'flush', 60_000, { timeoutMs: 60_000 }, (p) => {
        seen.push(p as FlushProgress);
        // Two reports of different counts; the second one past the request timeout of a held flush.
        if (seen.length === 1) rows = rows.slice(1);
        if (seen.length >= 7) enough.resolve();
      });
      await within(enough.promise, 30_000, 'seven progress reports from a held flush');
      assert.deepEqual(seen[0], { changes: 3, bytes: 3500, failing: 1 });
      assert.deepEqual(seen.at(-1), { changes: 2, bytes: 500, failing: 1 });
      drained.resolve(rows);
      const r = (await within(answer, 10_000, 'the flush answer')) as FlushResult;
      assert.deepEqual(r.pending, [
        { change: 'mkdir', path: '/dir', bytes: 0, attempts: 0 },
        { change: 'put', path: '/b.bin', bytes: 500, attempts: 2, error: 'unavailable: EROFS' },
      ]);
    } finally {
      await server.close();
    }
  });

  test('a bad timeout is refused with an error answer', async () => {
    const mnt = join(dir, 'mnt-bad');
    const server = await ControlServer.start(mnt, { status: () => ({}), invalidate: () => Promise.resolve(0), flush: () => Promise.reject(new Error('not called')) }, silentLogger());
    try {
      await assert.rejects(queryControl(controlSocketPath(mnt), 'flush', 5000, { timeoutMs: -1 }), /flush needs "timeoutMs"/);
    } finally {
      await server.close();
    }
  });

  test('close() waits for a held flush, and ends when the drain is released', async () => {
    const drained = new Deferred<JournalRow[]>();
    const fs = { drain: (): Promise<JournalRow[]> => drained.promise, pendingUploads: (): JournalRow[] => [] };
    const mnt = join(dir, 'mnt-close');
    const server = await ControlServer.start(mnt, { status: () => ({}), invalidate: () => Promise.resolve(0), flush: (ms, progress) => flushUploads(fs, ms, progress) }, silentLogger());
    const reported = new Deferred<void>();
    const answer = queryControl(controlSocketPath(mnt), 'flush', 30_000, { timeoutMs: 30_000 }, () => reported.resolve());
    await within(reported.promise, 10_000, 'a progress report of the held flush');
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await assert.rejects(within(answer, 10_000, 'the client to see the connection end'));
    assert.equal(closed, false, 'close() still waits for the held flush');
    drained.resolve([]);
    await within(closing, 10_000, 'close() after the drain was released');
  });
});
