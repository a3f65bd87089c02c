// The one fingerprint comparison (remote/fingerprint.ts), against a reference model of its rule
// and as properties: symmetric, reflexive, size always decisive, an ETag decisive when both
// sides have one. Plus the case three earlier comparisons answered differently.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fingerprintChange, fingerprintKey, parseFingerprintKey, sameVersion, type Fingerprint } from '../../src/remote/fingerprint.js';

const fingerprint: fc.Arbitrary<Fingerprint> = fc
  .record(
    {
      size: fc.integer({ min: 0, max: 3 }),
      etag: fc.constantFrom('"a"', '"b"', 'W/"a"'),
      mtimeMs: fc.constantFrom(0, 1000, 2000),
    },
    { requiredKeys: ['size'] },
  )
  .map((r) => {
    const f: Fingerprint = { size: r.size };
    if (r.etag !== undefined) f.etag = r.etag;
    if (r.mtimeMs !== undefined) f.mtimeMs = r.mtimeMs;
    return f;
  });

/** The rule, written as plainly as possible. */
function modelSame(a: Fingerprint, b: Fingerprint): boolean {
  if (a.size !== b.size) return false;
  if (a.etag !== undefined && b.etag !== undefined) return a.etag.replace(/^W\//, '') === b.etag.replace(/^W\//, '');
  if (a.mtimeMs !== undefined && b.mtimeMs !== undefined) return a.mtimeMs === b.mtimeMs;
  return true;
}

describe('fingerprint comparison', () => {
  test('agrees with the model, is symmetric and reflexive; a change always says why', () => {
    fc.assert(
      fc.property(fingerprint, fingerprint, (a, b) => {
        assert.equal(sameVersion(a, b), modelSame(a, b));
        assert.equal(sameVersion(a, b), sameVersion(b, a));
        assert.equal(sameVersion(a, a), true);
        const why = fingerprintChange(a, b);
        assert.equal(why === undefined, sameVersion(a, b));
        if (why !== undefined) assert.ok(why.length > 0);
      }),
      { numRuns: 2000 },
    );
  });

  test('a key gives its fingerprint back (and keys of earlier versions still parse)', () => {
    fc.assert(
      fc.property(fingerprint, (a) => {
        const back = parseFingerprintKey(fingerprintKey(a));
        assert.ok(back !== undefined);
        assert.equal(sameVersion(a, back), true);
        assert.equal(fingerprintKey(back), fingerprintKey(a));
      }),
      { numRuns: 500 },
    );
    assert.deepEqual(parseFingerprintKey('sm:10:1000'), { size: 10, mtimeMs: 1000 });
    assert.deepEqual(parseFingerprintKey('sm:10:?'), { size: 10 });
    assert.deepEqual(parseFingerprintKey('etag:"a:b":10'), { size: 10, etag: '"a:b"' });
    assert.equal(parseFingerprintKey('nonsense'), undefined);
  });

  test('equal cache keys mean the same version', () => {
    fc.assert(
      fc.property(fingerprint, fingerprint, (a, b) => {
        if (fingerprintKey(a) === fingerprintKey(b)) assert.equal(sameVersion(a, b), true);
      }),
      { numRuns: 2000 },
    );
  });

  test('regression: an expected {etag, mtime 1} against a response {mtime 2} without an ETag is a change', () => {
    // Three comparisons used to answer this differently (changed / unchanged / unchanged). A
    // server that stopped sending ETags still shows a new Last-Modified: the bytes changed.
    assert.match(fingerprintChange({ size: 5, etag: '"x"', mtimeMs: 1000 }, { size: 5, mtimeMs: 2000 }) ?? '', /mtime is now/);
    assert.equal(fingerprintChange({ size: 5, etag: '"x"', mtimeMs: 1000 }, { size: 5, etag: '"x"', mtimeMs: 2000 }), undefined, 'equal ETags: same bytes');
    assert.equal(fingerprintChange({ size: 5, etag: '"x"' }, { size: 5 }), undefined, 'nothing tells them apart');
  });

  test('regression: a weak ETag and the same tag made strong are one version (Apache, first second after a change)', () => {
    assert.equal(fingerprintChange({ size: 13, etag: 'W/"d-5f1"' }, { size: 13, etag: '"d-5f1"' }), undefined);
    assert.match(fingerprintChange({ size: 13, etag: 'W/"d-5f1"' }, { size: 13, etag: '"d-5f2"' }) ?? '', /ETag is now/);
  });
});
