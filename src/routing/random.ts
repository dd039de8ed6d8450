// Randomness and hashing for routing. Routing never calls Math.random: a random
// source `() => number` in [0, 1) is injected, and tests and benchmarks use
// seededRandom so a run can be replayed. hashString turns keys (a header value, a
// cookie, a client address, an endpoint id) into well-mixed unsigned 32-bit numbers.

const TWO_POW_32 = 4_294_967_296;

/**
 * A fast seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator,
 * as in PractRand), 32-bit state words, period at least 2^32, passes PractRand and
 * BigCrush. The seed is spread over the 128-bit state with splitmix32 and the
 * generator is run a few rounds so that nearby seeds give unrelated sequences.
 * Returns numbers in [0, 1) with 32 bits of randomness.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / TWO_POW_32;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** MurmurHash3's 32-bit finalizer: every input bit affects every output bit. Unsigned. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3 (x86, 32-bit) over the string's UTF-16 code units, two units per
 * 32-bit block, so every character counts in full (unlike byte-truncating ports).
 * Not the same numbers as murmur3 over UTF-8 bytes; stable across runs and
 * platforms, which is all consistent hashing needs. Unsigned 32-bit result.
 */
export function hashString(s: string, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const len = s.length;
  const blocks = len & ~1;
  for (let i = 0; i < blocks; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (len & 1) {
    let k = s.charCodeAt(len - 1);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  // Length in bytes, as murmur3 mixes it.
  return fmix32(h ^ (len * 2));
}
