// RangeSet against a naive model (one boolean per offset over a small universe), with
// fast-check generating operation sequences and queries; plus edge cases and regressions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RangeSet, type Range } from '../../src/base/range-set.js';

const U = 200;
type Op = { kind: 'add' | 'remove'; start: number; end: number };
const spanArb: fc.Arbitrary<[number, number]> = fc.tuple(fc.nat(U), fc.nat(U)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)]);
const opArb: fc.Arbitrary<Op> = fc
  .tuple(fc.constantFrom<'add' | 'remove'>('add', 'remove'), spanArb)
  .map(([kind, [start, end]]) => ({ kind, start, end }));

/** The model: m[i] says whether byte i is present. Offsets past U are never present. */
type Model = boolean[];
const newModel = (): Model => new Array<boolean>(U + 1).fill(false);

function apply(s: RangeSet, m: Model, op: Op): void {
  if (op.kind === 'add') s.add(op.start, op.end);
  else s.remove(op.start, op.end);
  for (let i = op.start; i < op.end; i++) m[i] = op.kind === 'add';
}

/** Maximal runs of `true` in m restricted to [start, end), as [start, end) pairs. */
function runs(m: Model, start = 0, end = m.length, want = true): [number, number][] {
  const out: [number, number][] = [];
  for (let i = start; i < end; i++) {
    if ((m[i] ?? false) !== want) continue;
    const s = i;
    while (i < end && (m[i] ?? false) === want) i++;
    out.push([s, i]);
  }
  return out;
}

const pairs = (rs: Range[]): [number, number][] => rs.map((r) => [r.start, r.end]);

function assertNormalForm(s: RangeSet): void {
  let prevEnd = -1;
  let total = 0;
  let count = 0;
  for (const r of s) {
    assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end), 'integer bounds');
    assert.ok(r.start < r.end, `non-empty range [${r.start}, ${r.end})`);
    assert.ok(r.start > prevEnd, `sorted, disjoint and non-adjacent: ${JSON.stringify(s)}`);
    prevEnd = r.end;
    total += r.end - r.start;
    count++;
  }
  assert.equal(s.size, total, 'size is the sum of the lengths');
  assert.equal(s.count, count);
  assert.equal(s.isEmpty(), count === 0);
}

function assertMatches(s: RangeSet, m: Model, queries: [number, number][]): void {
  assertNormalForm(s);
  assert.deepEqual(s.toJSON(), runs(m), 'same bytes as the model');
  assert.equal(s.size, m.filter(Boolean).length);
  for (let i = 0; i <= U + 1; i++) {
    assert.equal(s.has(i), m[i] ?? false, `has(${i})`);
    let run = i;
    while (m[run]) run++;
    assert.equal(s.contiguousFrom(i), run, `contiguousFrom(${i})`);
  }
  for (const [qs, qe] of queries) {
    assert.equal(s.covers(qs, qe), m.slice(qs, qe).every(Boolean), `covers(${qs}, ${qe})`);
    assert.deepEqual(pairs(s.missing(qs, qe)), runs(m, qs, qe, false), `missing(${qs}, ${qe})`);
    assert.deepEqual(pairs(s.intersect(qs, qe)), runs(m, qs, qe, true), `intersect(${qs}, ${qe})`);
  }
  const back = RangeSet.fromJSON(JSON.parse(JSON.stringify(s)));
  assert.ok(back.equals(s) && s.equals(back), 'JSON round trip');
  assert.ok(new RangeSet(s).equals(s), 'construction from its own ranges');
}

describe('RangeSet', () => {
  test('matches a naive model after every step of random add/remove sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.array(spanArb, { minLength: 1, maxLength: 6 }), (ops, queries) => {
        const s = new RangeSet();
        const m = newModel();
        for (const op of ops) {
          apply(s, m, op);
          assertMatches(s, m, queries);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('union, subtract, clone and equals agree with the model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 15 }), fc.array(opArb, { maxLength: 15 }), (a, b) => {
        const [sa, ma, sb, mb] = [new RangeSet(), newModel(), new RangeSet(), newModel()];
        for (const op of a) apply(sa, ma, op);
        for (const op of b) apply(sb, mb, op);
        const before = sa.clone();
        const u = sa.union(sb);
        const d = sa.subtract(sb);
        assertMatches(u, ma.map((x, i) => x || (mb[i] ?? false)), []);
        assertMatches(d, ma.map((x, i) => x && !(mb[i] ?? false)), []);
        assert.ok(sa.equals(before), 'union/subtract leave their operands alone');
        assert.equal(sa.equals(sb), runs(ma).toString() === runs(mb).toString());
        const c = sa.clone();
        c.add(U + 5, U + 6);
        assert.ok(!c.equals(sa) && sa.equals(before), 'a clone is independent');
      }),
      { numRuns: 300 },
    );
  });

  test('the constructor and fromJSON normalise unsorted, overlapping and adjacent input', () => {
    fc.assert(
      fc.property(fc.array(spanArb, { maxLength: 20 }), (spans) => {
        const m = newModel();
        for (const [s, e] of spans) for (let i = s; i < e; i++) m[i] = true;
        assertMatches(new RangeSet(spans.map(([start, end]) => ({ start, end }))), m, []);
        const nonEmpty = spans.filter(([s, e]) => s < e);
        assertMatches(RangeSet.fromJSON(nonEmpty), m, []);
      }),
    );
  });

  test('edge cases', () => {
    const s = new RangeSet();
    s.add(5, 5);
    s.remove(5, 5);
    assert.equal(s.isEmpty(), true, 'an empty range is a no-op');
    assert.deepEqual(s.missing(3, 7), [{ start: 3, end: 7 }]);
    assert.deepEqual(s.intersect(3, 7), []);
    assert.equal(s.contiguousFrom(0), 0);
    s.add(0, 10);
    s.add(10, 20);
    assert.deepEqual(s.toJSON(), [[0, 20]], 'adjacent ranges merge');
    s.remove(5, 15);
    assert.deepEqual(s.toJSON(), [[0, 5], [15, 20]]);
    s.remove(5, 15);
    assert.deepEqual(s.toJSON(), [[0, 5], [15, 20]], 'removing a gap changes nothing');
    assert.equal(s.covers(3, 3), true, 'an empty range is always covered');
    assert.equal(s.covers(7, 7), true);
    assert.deepEqual(s.missing(3, 3), []);
    assert.deepEqual(s.intersect(3, 3), [], 'an empty query inside a range has no parts');
    assert.equal(s.has(5), false, 'end is exclusive');
    assert.equal(s.has(15), true, 'start is inclusive');
    assert.equal(s.contiguousFrom(2), 5);
    assert.deepEqual(s.missing(0, 30), [{ start: 5, end: 15 }, { start: 20, end: 30 }]);
    assert.deepEqual(s.intersect(4, 16), [{ start: 4, end: 5 }, { start: 15, end: 16 }]);
    s.add(3, 17);
    assert.deepEqual(s.toJSON(), [[0, 20]], 'bridging a gap merges both neighbours');
    s.remove(0, 20);
    assert.equal(s.isEmpty(), true);
    assert.equal(s.size, 0);
  });

  test('bad arguments throw RangeError; bad JSON throws TypeError', () => {
    const s = new RangeSet([{ start: 0, end: 10 }]);
    for (const [a, b] of [[-1, 2], [3, 2], [0.5, 2], [0, 2.5], [Number.NaN, 2], [0, Number.NaN], [0, Infinity], [0, 2 ** 53]]) {
      const [x, y] = [a as number, b as number];
      assert.throws(() => s.add(x, y), RangeError, `add(${x}, ${y})`);
      assert.throws(() => s.remove(x, y), RangeError, `remove(${x}, ${y})`);
      assert.throws(() => s.covers(x, y), RangeError, `covers(${x}, ${y})`);
      assert.throws(() => s.missing(x, y), RangeError, `missing(${x}, ${y})`);
      assert.throws(() => s.intersect(x, y), RangeError, `intersect(${x}, ${y})`);
    }
    for (const x of [-1, 0.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => s.has(x), RangeError, `has(${x})`);
      assert.throws(() => s.contiguousFrom(x), RangeError, `contiguousFrom(${x})`);
    }
    assert.deepEqual(s.toJSON(), [[0, 10]], 'a rejected call changes nothing');
    for (const bad of [{}, null, 'x', [[1]], [[1, 2, 3]], [['1', 2]], [[2, 1]], [[1, 1]], [[-1, 3]], [[0, 1.5]], [null]]) {
      assert.throws(() => RangeSet.fromJSON(bad), TypeError, JSON.stringify(bad));
    }
    assert.ok(RangeSet.fromJSON([]).isEmpty());
  });

  test('offsets past 4 GiB and up to the largest safe integer', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const s = new RangeSet([{ start: 2 ** 40, end: 2 ** 40 + 10 }]);
    assert.equal(s.size, 10);
    s.add(max - 5, max);
    assert.equal(s.has(max - 1), true);
    assert.equal(s.has(max), false, 'the last safe integer can only be an end');
    assert.equal(s.contiguousFrom(max - 3), max);
    assert.deepEqual(s.missing(max - 10, max), [{ start: max - 10, end: max - 5 }]);
    assert.equal(s.size, 15);
  });

  test('many ranges: operations stay in normal form and locate by binary search', () => {
    const s = new RangeSet();
    for (let i = 0; i < 10_000; i++) s.add(i * 10, i * 10 + 5);
    assert.equal(s.count, 10_000);
    assert.deepEqual(s.missing(49_995, 50_012), [{ start: 49_995, end: 50_000 }, { start: 50_005, end: 50_010 }]);
    s.add(3, 99_993);
    assert.deepEqual(s.toJSON(), [[0, 99_995]]);
  });
});
