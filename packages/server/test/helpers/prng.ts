/**
 * A small seeded PRNG (mulberry32) for the tests that generate bad input: the same seed makes
 * the same storm or fuzz on every run, so a failure can be replayed.
 *
 * @module
 */

/** mulberry32 returns a generator of numbers in [0, 1) determined by `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
