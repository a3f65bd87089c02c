// The in-flight table on its own: INTERRUPT of known and unknown targets, the deadline sweep,
// the watchdog, and reply-once when a result, an INTERRUPT and a deadline race. Time is an
// injected `now`, sweeps are called by hand (`tick`): deterministic, nothing sleeps.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from '../../src/base/errno.js';
import { asIno, asUnique } from '../../src/base/ids.js';
import * as abi from '../../src/kernel/abi.js';
import { InFlightTable, RequestAbortedError, type InFlight } from '../../src/kernel/session/in-flight.js';
import { recordingLogger } from './fake-device.js';

function table(options: { deadlineMs?: number; watchdogMs?: number } = {}) {
  let t = 0;
  const answers: { unique: bigint; errno: number }[] = [];
  const { logger, records } = recordingLogger();
  const tbl = new InFlightTable({
    now: () => t,
    logger,
    deadlineMs: options.deadlineMs ?? 0,
    watchdogMs: options.watchdogMs ?? 0,
    describeNode: (ino) => `/node-${ino}`,
    answer: (unique, errno) => answers.push({ unique, errno }),
  });
  return {
    tbl,
    answers,
    records,
    setNow: (ms: number) => (t = ms),
    add: (unique: number, nodeid = 7): InFlight => tbl.add(asUnique(BigInt(unique)), abi.FUSE_READ, asIno(BigInt(nodeid)), 4242),
  };
}

const abortReason = (e: InFlight): RequestAbortedError => {
  assert.ok(e.signal.aborted, 'signal fired');
  assert.ok(e.signal.reason instanceof RequestAbortedError);
  return e.signal.reason;
};

describe('in-flight table: INTERRUPT', () => {
  test('a known target is answered EINTR once, then its signal fires', () => {
    const { tbl, answers, add } = table();
    const e = add(10);
    let answeredBeforeAbort: number | undefined;
    e.signal.addEventListener('abort', () => (answeredBeforeAbort = answers.length));
    tbl.interrupt(asUnique(11n), asUnique(10n));
    assert.deepEqual(answers, [{ unique: 10n, errno: Errno.EINTR }]);
    assert.equal(answeredBeforeAbort, 1, 'the reply is written before the signal fires');
    assert.equal(abortReason(e).why, 'interrupt');
    assert.equal(tbl.size, 0);
    assert.equal(tbl.claim(e), false, 'the handler result that comes later is dropped');
    tbl.interrupt(asUnique(13n), asUnique(10n));
    assert.deepEqual(answers[1], { unique: 13n, errno: Errno.EAGAIN }, 'a second interrupt finds nothing');
  });

  test('an unknown target answers the INTERRUPT itself with EAGAIN and touches nothing', () => {
    const { tbl, answers, add } = table();
    const e = add(20);
    tbl.interrupt(asUnique(31n), asUnique(30n));
    assert.deepEqual(answers, [{ unique: 31n, errno: Errno.EAGAIN }]);
    assert.equal(tbl.size, 1);
    assert.equal(e.signal.aborted, false);
  });

  test('the signal is lazy: read after the abort, it is already aborted with the reason', () => {
    const { tbl, add } = table();
    const e = add(40);
    tbl.interrupt(asUnique(41n), asUnique(40n));
    assert.equal(abortReason(e).errno, Errno.EINTR);
  });
});

describe('in-flight table: deadline sweep', () => {
  test('answers each due request EIO exactly once, oldest first, and leaves young ones', () => {
    const { tbl, answers, add, setNow, records } = table({ deadlineMs: 100 });
    const a = add(1);
    setNow(50);
    const b = add(2);
    setNow(99);
    tbl.tick();
    assert.deepEqual(answers, [], 'nothing is due before its deadline');
    setNow(120);
    tbl.tick();
    tbl.tick();
    assert.deepEqual(answers, [{ unique: 1n, errno: Errno.EIO }]);
    assert.equal(abortReason(a).why, 'deadline');
    assert.equal(b.signal.aborted, false);
    setNow(150);
    tbl.tick();
    setNow(500);
    tbl.tick();
    assert.deepEqual(answers, [{ unique: 1n, errno: Errno.EIO }, { unique: 2n, errno: Errno.EIO }]);
    assert.equal(tbl.size, 0);
    assert.equal(records.filter((r) => r.msg.includes('deadline')).length, 2, 'one warn line per expired request');
  });

  test('a request answered by its handler before the deadline is not swept', () => {
    const { tbl, answers, add, setNow } = table({ deadlineMs: 100 });
    const e = add(1);
    assert.equal(tbl.claim(e), true);
    setNow(1000);
    tbl.tick();
    assert.deepEqual(answers, []);
    assert.equal(e.signal.aborted, false);
  });
});

describe('in-flight table: watchdog', () => {
  test('reports a stuck request once, with its path, and does not answer it', () => {
    const { tbl, answers, add, setNow, records } = table({ watchdogMs: 100 });
    add(1, 9);
    setNow(50);
    add(2, 9);
    setNow(100);
    tbl.tick();
    tbl.tick();
    setNow(140);
    tbl.tick();
    const reports = records.filter((r) => r.msg === 'request still running (watchdog)');
    assert.equal(reports.length, 1, 'request 1 once; request 2 not yet due');
    assert.equal(reports[0]?.path, '/node-9');
    assert.equal(reports[0]?.unique, 1);
    setNow(150);
    tbl.tick();
    tbl.tick();
    assert.equal(records.filter((r) => r.msg === 'request still running (watchdog)').length, 2);
    assert.deepEqual(answers, []);
    assert.equal(tbl.size, 2);
  });
});

describe('in-flight table: reply-once under races', () => {
  test('result first: INTERRUPT and deadline that follow find nothing to answer', () => {
    const { tbl, answers, add, setNow } = table({ deadlineMs: 100 });
    const e = add(1);
    assert.equal(tbl.claim(e), true, 'the handler result wins');
    tbl.interrupt(asUnique(3n), asUnique(1n));
    setNow(1000);
    tbl.tick();
    assert.deepEqual(answers, [{ unique: 3n, errno: Errno.EAGAIN }], 'only the INTERRUPT itself is answered');
    assert.equal(e.signal.aborted, false);
  });

  test('INTERRUPT first: the deadline and the late result are dropped', () => {
    const { tbl, answers, add, setNow } = table({ deadlineMs: 100 });
    const e = add(1);
    tbl.interrupt(asUnique(3n), asUnique(1n));
    setNow(1000);
    tbl.tick();
    assert.equal(tbl.claim(e), false);
    assert.deepEqual(answers, [{ unique: 1n, errno: Errno.EINTR }]);
    assert.equal(abortReason(e).why, 'interrupt');
  });

  test('deadline first: the INTERRUPT gets EAGAIN and the late result is dropped', () => {
    const { tbl, answers, add, setNow } = table({ deadlineMs: 100 });
    const e = add(1);
    setNow(100);
    tbl.tick();
    tbl.interrupt(asUnique(3n), asUnique(1n));
    assert.equal(tbl.claim(e), false);
    assert.deepEqual(answers, [{ unique: 1n, errno: Errno.EIO }, { unique: 3n, errno: Errno.EAGAIN }]);
    assert.equal(abortReason(e).why, 'deadline');
  });

  test('abortAll answers every entry once; dropAll answers none but fires every signal', () => {
    const { tbl, answers, add } = table();
    const a = add(1);
    const b = add(2);
    tbl.abortAll(Errno.EIO);
    tbl.abortAll(Errno.EIO);
    assert.deepEqual(answers, [{ unique: 1n, errno: Errno.EIO }, { unique: 2n, errno: Errno.EIO }]);
    assert.equal(abortReason(a).why, 'unmount');
    assert.equal(abortReason(b).why, 'unmount');
    const c = add(3);
    tbl.dropAll(new RequestAbortedError('unmount', Errno.ENODEV, 'gone'));
    assert.equal(answers.length, 2, 'the connection is gone: nothing is written');
    assert.equal(abortReason(c).errno, Errno.ENODEV);
    assert.equal(tbl.claim(c), false);
    assert.equal(tbl.size, 0);
  });

  test('snapshot reports opcode names and ages from the injected clock', () => {
    const { tbl, add, setNow } = table();
    setNow(10);
    add(5);
    setNow(260);
    assert.deepEqual(tbl.snapshot(), [{ unique: 5n, opcode: 'READ', nodeid: 7n, pid: 4242, ageMs: 250 }]);
  });
});
