// Names: hostile names are refused; paths normalize and percent-encode per segment so names
// with spaces, unicode, '%', '#', '?' round-trip.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  baseName,
  decodePathSegment,
  encodePath,
  encodePathSegment,
  isRefused,
  joinPath,
  normalizePath,
  parentPath,
  splitPath,
  validateName,
} from '../../src/remote/names.js';
import { RemoteError } from '../../src/remote/remote-error.js';

void describe('validateName', () => {
  void test('refuses hostile and impossible names', () => {
    const hostile = ['', '.', '..', 'a/b', '/', 'a\0b', '\0', 'x'.repeat(256), 'é'.repeat(128), 'bad\ud800half'];
    for (const name of hostile) {
      const v = validateName(name);
      assert.ok(isRefused(v), `${JSON.stringify(name)} should be refused`);
      assert.ok(v.refused.length > 0);
    }
  });

  void test('accepts ordinary and unusual-but-valid names', () => {
    const ok = ['a', '...', '.hidden', 'a b', 'ünï cødé 📁', '100%', 'a#b', 'q?x', 'x'.repeat(255), 'é'.repeat(127), '-', ' '];
    for (const name of ok) assert.equal(validateName(name), name);
  });
});

void describe('paths', () => {
  void test('split / normalize / join / parent / base', () => {
    assert.deepEqual(splitPath(''), []);
    assert.deepEqual(splitPath('/a//b/'), ['a', 'b']);
    assert.equal(normalizePath('/a//b/'), 'a/b');
    assert.equal(normalizePath('/'), '');
    assert.equal(joinPath('a/b', 'c', '', 'd/e'), 'a/b/c/d/e');
    assert.equal(parentPath('a/b/c'), 'a/b');
    assert.equal(parentPath('a'), '');
    assert.equal(baseName('a/b/c'), 'c');
    assert.equal(baseName(''), '');
  });

  void test('refuses traversal segments', () => {
    for (const p of ['..', 'a/../b', './a', 'a/.', 'a/\0']) {
      assert.throws(() => splitPath(p), (e: unknown) => e instanceof RemoteError && e.kind === 'invalid', p);
    }
  });

  void test('percent-encoding round-trips each segment', () => {
    const names = ['a b', 'ünï cødé 📁', '100%', '%41', 'a#b', 'q?x', "it's (1)*!", 'semi;colon', 'plus+and&amp=', 'back\\slash'];
    for (const name of names) {
      const enc = encodePathSegment(name);
      assert.match(enc, /^[A-Za-z0-9\-._~%]*$/, `${name} → ${enc} must be URL-safe`);
      assert.equal(decodePathSegment(enc), name);
    }
    assert.equal(encodePath('/dir one/a#b?c'), 'dir%20one/a%23b%3Fc');
    const path = names.join('/');
    assert.deepEqual(encodePath(path).split('/').map(decodePathSegment), names);
  });

  void test('malformed escapes decode to undefined', () => {
    assert.equal(decodePathSegment('%E0%A4%A'), undefined);
    assert.equal(decodePathSegment('%ff'), undefined);
    assert.equal(decodePathSegment('%zz'), undefined);
  });
});
