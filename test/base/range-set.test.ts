// RangeSet against a naive model (a boolean per offset over a small universe), with
// fast-check generating operation sequences; plus edge cases.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RangeSet } from '../../src/base/range-set.js';

const U = 200;
type Op = { kind: 'add' | 'remove'; start: number; end: number };
const opArb: fc.Arbitrary<Op> = fc
  .tuple(fc.constantFrom<'add' | 'remove'>('add', 'remove'), fc.nat(U), fc.nat(U))
  .map(([kind, a, b]) => ({ kind, start: Math.min(a, b), end: Math.max(a, b) }));

function modelRanges(m: boolean[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < m.length; i++) {
    if (!m[i]) continue;
    const s = i;
    while (i < m.length && m[i]) i++;
    out.push([s, i]);
  }
  return out;
}

function modelGaps(m: boolean[], start: number, end: number): [number, number][] {
  return modelRanges(Array.from({ length: m.length }, (_, i) => i >= start && i < end && !m[i]));
}

describe('RangeSet', () => {
  test('matches a naive model for random add/remove sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), fc.nat(U), fc.nat(U), (ops, qa, qb) => {
        const s = new RangeSet();
        const m = new Array<boolean>(U + 1).fill(false);
        for (const op of ops) {
          if (op.kind === 'add') s.add(op.start, op.end);
          else s.remove(op.start, op.end);
          for (let i = op.start; i < op.end; i++) m[i] = op.kind === 'add';
        }
        const ranges = modelRanges(m);
        assert.deepEqual(s.toJSON(), ranges, 'normal form: sorted, disjoint, merged');
        assert.equal(s.size, m.filter(Boolean).length);
        assert.equal(s.count, ranges.length);
        const [qs, qe] = [Math.min(qa, qb), Math.max(qa, qb)];
        assert.equal(s.covers(qs, qe), m.slice(qs, qe).every(Boolean));
        assert.deepEqual(s.missing(qs, qe).map((r) => [r.start, r.end]), modelGaps(m, qs, qe));
        assert.deepEqual(
          s.intersect(qs, qe).map((r) => [r.start, r.end]),
          modelRanges(Array.from({ length: m.length }, (_, i) => i >= qs && i < qe && (m[i] ?? false))),
        );
        assert.equal(s.has(qa), m[qa]);
        let run = qa;
        while (m[run]) run++;
        assert.equal(s.contiguousFrom(qa), run);
        assert.ok(RangeSet.fromJSON(JSON.parse(JSON.stringify(s))).equals(s), 'JSON round trip');
      }),
      { numRuns: 500 },
    );
  });

  test('union and subtract agree with add/remove', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 10 }), fc.array(opArb, { maxLength: 10 }), (a, b) => {
        const sa = new RangeSet(a.map((o) => ({ start: o.start, end: o.end })));
        const sb = new RangeSet(b.map((o) => ({ start: o.start, end: o.end })));
        const u = sa.clone();
        for (const r of sb) u.add(r.start, r.end);
        assert.ok(sa.union(sb).equals(u));
        const d = sa.clone();
        for (const r of sb) d.remove(r.start, r.end);
        assert.ok(sa.subtract(sb).equals(d));
      }),
    );
  });

  test('edge cases', () => {
    const s = new RangeSet();
    s.add(5, 5);
    assert.equal(s.isEmpty(), true, 'an empty range is a no-op');
    s.add(0, 10);
    s.add(10, 20);
    assert.deepEqual(s.toJSON(), [[0, 20]], 'adjacent ranges merge');
    s.remove(5, 15);
    assert.deepEqual(s.toJSON(), [[0, 5], [15, 20]]);
    assert.equal(s.covers(3, 3), true);
    assert.throws(() => s.add(-1, 2), RangeError);
    assert.throws(() => s.add(3, 2), RangeError);
    assert.throws(() => s.add(0.5, 2), RangeError);
    assert.throws(() => s.add(Number.NaN, 2), RangeError);
    assert.throws(() => RangeSet.fromJSON([[1]]), TypeError);
    assert.throws(() => RangeSet.fromJSON({}), TypeError);
    const big = new RangeSet([{ start: 2 ** 40, end: 2 ** 40 + 10 }]);
    assert.equal(big.size, 10, 'offsets past 4 GiB');
  });
});
