/**
 * A seeded pseudo-random generator (mulberry32) for tests that generate input: small,
 * fast, and the same sequence for the same seed everywhere, so a printed seed replays a
 * failure.
 *
 * @example
 * ```ts
 * const next = prng(42);
 * const roll = Math.floor(next() * 6) + 1;
 * ```
 */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
