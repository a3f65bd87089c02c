// BufferPool: reuse without aliasing. A backing store is never lent twice at once; foreign and
// repeated releases are ignored; oversized requests are plain allocations.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../src/base/buffer-pool.js';

void describe('BufferPool', () => {
  void test('a released buffer is reused; one still lent is never handed out again', () => {
    const pool = new BufferPool(1024, 4, 1);
    const a = pool.acquire(1000);
    const b = pool.acquire(10);
    assert.equal(a.length, 1000);
    assert.equal(b.length, 10);
    assert.notEqual(a.buffer, b.buffer, 'two lent buffers share memory');
    pool.release(a);
    const c = pool.acquire(512);
    assert.equal(c.buffer, a.buffer, 'the released store is reused');
    assert.notEqual(c.buffer, b.buffer);
  });

  void test('double release, views and foreign buffers cannot put a lent store in the free list twice', () => {
    const pool = new BufferPool(1024, 4, 1);
    const a = pool.acquire(100);
    pool.release(a.subarray(0, 10)); // a view of the same memory counts as the buffer
    pool.release(a);
    pool.release(Buffer.alloc(100));
    pool.release(new Uint8Array(5));
    assert.equal(pool.freeCount, 1);
    const x = pool.acquire(100);
    const y = pool.acquire(100);
    assert.notEqual(x.buffer, y.buffer, 'a double release would lend one store twice');
  });

  void test('requests larger than the pooled size, or empty, are plain allocations and never pooled', () => {
    const pool = new BufferPool(1024, 4, 1);
    const big = pool.acquire(4096);
    assert.equal(big.length, 4096);
    pool.release(big);
    assert.equal(pool.freeCount, 0);
    assert.equal(pool.acquire(0).length, 0);
  });

  void test('requests below the pooling threshold are plain allocations and never pooled', () => {
    const pool = new BufferPool(1024, 4, 256);
    const small = pool.acquire(100);
    pool.release(small);
    assert.equal(pool.freeCount, 0);
    const pooled = pool.acquire(256);
    pool.release(pooled);
    assert.equal(pool.freeCount, 1);
  });

  void test('the free list is bounded', () => {
    const pool = new BufferPool(64, 2, 1);
    const bufs = [pool.acquire(64), pool.acquire(64), pool.acquire(64)];
    for (const b of bufs) pool.release(b);
    assert.equal(pool.freeCount, 2);
  });
});
