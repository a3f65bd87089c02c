// INIT negotiation as a pure function: newer major → retry with ours, too old → refuse,
// otherwise the lower minor and only the flags both sides want.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as abi from '../../src/kernel/abi.js';
import { MAX_PAGES, PREFERRED_FLAGS, negotiateInit } from '../../src/kernel/session/init.js';

const offer = { major: 7, minor: 45, maxReadahead: 131072, flags: PREFERRED_FLAGS | abi.FUSE_WRITEBACK_CACHE | abi.FUSE_POSIX_ACL };

describe('INIT negotiation', () => {
  test('a newer kernel major gets ours back with nothing else, so it retries', () => {
    const r = negotiateInit({ ...offer, major: 8 }, {}, 61440);
    assert.equal(r.kind, 'retry');
    if (r.kind !== 'retry') return;
    assert.equal(r.out.readUInt32LE(0), abi.FUSE_KERNEL_VERSION); // fuse_init_out.major
    assert.equal(r.out.readUInt32LE(12), 0); // fuse_init_out.flags
  });

  test(`a kernel older than 7.${abi.FUSE_MIN_MINOR_VERSION} is refused`, () => {
    const r = negotiateInit({ ...offer, minor: abi.FUSE_MIN_MINOR_VERSION - 1 }, {}, 61440);
    assert.equal(r.kind, 'refuse');
    assert.equal(negotiateInit({ ...offer, major: 6 }, {}, 61440).kind, 'refuse');
  });

  test('accept: the lower minor, flags asked for AND offered, bounds from the mount and the reader', () => {
    const r = negotiateInit({ ...offer, minor: 40 }, { maxReadahead: 65536, maxBackground: 32 }, 1 << 20);
    assert.equal(r.kind, 'accept');
    if (r.kind !== 'accept') return;
    assert.deepEqual(r.info, { minor: 40, maxWrite: 1 << 20, maxReadahead: 65536, flags: PREFERRED_FLAGS });
    assert.equal(r.out.readUInt16LE(16), 32); // max_background
    assert.equal(r.out.readUInt16LE(18), 24); // congestion_threshold = 3/4
    assert.equal(r.out.readUInt32LE(20), 1 << 20); // max_write
    assert.equal(r.out.readUInt16LE(28), MAX_PAGES); // max_pages
  });

  test('WRITEBACK_CACHE only when the mount asks and the kernel offers', () => {
    const asked = negotiateInit(offer, { writebackCache: true }, 61440);
    assert.ok(asked.kind === 'accept' && (asked.info.flags & abi.FUSE_WRITEBACK_CACHE) !== 0n);
    const notOffered = negotiateInit({ ...offer, flags: PREFERRED_FLAGS }, { writebackCache: true }, 61440);
    assert.ok(notOffered.kind === 'accept' && (notOffered.info.flags & abi.FUSE_WRITEBACK_CACHE) === 0n);
  });
});
