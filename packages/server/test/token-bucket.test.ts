/**
 * TokenBucket with an injected clock: every call gets `now` explicitly, so the tests are exact
 * and take no time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../src/protection/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full: admits `burst` events at once, then refuses', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) assert.equal(b.take(0), true, `take #${i + 1}`);
    assert.equal(b.take(0), false);
    assert.equal(b.take(0), false, 'a refused take takes nothing and stays refused');
  });

  it('refills `rate` tokens per second, lazily, from the clock passed in', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) b.take(0);
    assert.equal(b.take(99), false, '0.99 of a token after 99 ms at 10/s');
    assert.equal(b.take(100), true, 'one token after 100 ms');
    assert.equal(b.take(100), false);
    assert.equal(b.take(350), true, '2.5 tokens accrued by 350 ms');
    assert.equal(b.take(350), true);
    assert.equal(b.take(350), false, 'half a token is not a token');
    assert.ok(Math.abs(b.tokens(350) - 0.5) < 1e-9);
  });

  it('never holds more than `burst` tokens, however long it was idle', () => {
    const b = new TokenBucket(100, 3, 0);
    assert.equal(b.tokens(3_600_000), 3);
    let admitted = 0;
    while (b.take(3_600_000)) admitted++;
    assert.equal(admitted, 3);
  });

  it('admits burst + rate × duration over a long run of constant demand', () => {
    const b = new TokenBucket(20, 20, 0);
    let admitted = 0;
    // 1000 attempts per second for 10 s.
    for (let t = 0; t <= 10_000; t++) if (b.take(t)) admitted++;
    assert.equal(admitted, 20 + 20 * 10);
  });

  it('supports rates below one per second', () => {
    const b = new TokenBucket(0.5, 1, 0);
    assert.equal(b.take(0), true);
    assert.equal(b.take(1999), false);
    assert.equal(b.take(2000), true);
  });

  it('retryAfterMs is 0 with a token available, else the time until the next whole token', () => {
    const b = new TokenBucket(4, 2, 1000);
    assert.equal(b.retryAfterMs(1000), 0);
    b.take(1000);
    b.take(1000);
    assert.equal(b.retryAfterMs(1000), 250);
    assert.equal(b.retryAfterMs(1100), 150);
    assert.equal(b.take(1249), false);
    assert.equal(b.take(1250), true);
  });

  it('a clock that goes backwards refills nothing and does not count an interval twice', () => {
    const b = new TokenBucket(10, 1, 1000);
    assert.equal(b.take(1000), true);
    assert.equal(b.take(500), false, 'backwards: nothing added');
    assert.equal(b.take(1050), false, 'only 50 ms since the latest reading');
    assert.equal(b.take(1100), true);
  });

  it('defaults to performance.now()', () => {
    const b = new TokenBucket(1000, 1);
    assert.equal(b.take(), true);
    const wait = b.retryAfterMs();
    assert.ok(wait > 0 && wait <= 1, `retry after ${wait} ms`);
  });

  it('rejects a rate ≤ 0 or a burst < 1 (a rate of 0 means: make no bucket)', () => {
    assert.throws(() => new TokenBucket(0, 1), RangeError);
    assert.throws(() => new TokenBucket(-1, 1), RangeError);
    assert.throws(() => new TokenBucket(Number.NaN, 1), RangeError);
    assert.throws(() => new TokenBucket(Number.POSITIVE_INFINITY, 1), RangeError);
    assert.throws(() => new TokenBucket(1, 0.5), RangeError);
    assert.throws(() => new TokenBucket(1, Number.NaN), RangeError);
  });

  it('exposes rate and burst', () => {
    const b = new TokenBucket(7, 3);
    assert.equal(b.rate, 7);
    assert.equal(b.burst, 3);
  });
});
