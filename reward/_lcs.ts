/**
 * Length of the longest common subsequence of two id sequences, bit-parallel (Allison-Dix,
 * in Hyyrö's form): the shorter sequence is the pattern, one bit per position in 32-bit words;
 * each id of the other costs one multi-word add, V = (V + (V & M)) | (V & ~M), and the LCS is
 * the count of zero bits of V. O(n·⌈m/32⌉) instead of the O(n·m) table. Ids must be
 * non-negative integers; they index a scratch table, so they should be small (interned ids).
 */

/** Id -> row of `masks` for the ids of the current pattern, -1 elsewhere (restored after use). */
let slotOf = new Int32Array(1024).fill(-1);
/** (distinct pattern ids, words): the positions of each id in the pattern, as bits. */
let masks = new Int32Array(256);
/** (words): the bit vector V; bit i is 0 when pattern position i ends a common subsequence step. */
let vec = new Int32Array(8);

export function lcsLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length > b.length) [a, b] = [b, a];
  const m = a.length;
  if (m === 0) return 0;
  const words = (m + 31) >>> 5;
  let maxId = 0;
  for (let i = 0; i < m; i++) if (a[i] > maxId) maxId = a[i];
  if (maxId >= slotOf.length) {
    const grown = new Int32Array(Math.max(2 * slotOf.length, maxId + 1)).fill(-1);
    grown.set(slotOf);
    slotOf = grown;
  }
  let distinct = 0;
  for (let i = 0; i < m; i++) if (slotOf[a[i]] < 0) slotOf[a[i]] = distinct++;
  if (masks.length < distinct * words) masks = new Int32Array(2 * distinct * words);
  masks.fill(0, 0, distinct * words);
  for (let i = 0; i < m; i++) masks[slotOf[a[i]] * words + (i >>> 5)] |= 1 << (i & 31);

  const n = b.length;
  const limit = slotOf.length;
  let zeros = 0;
  if (words === 1) {
    let v = -1;
    for (let j = 0; j < n; j++) {
      const id = b[j];
      const s = id < limit ? slotOf[id] : -1;
      if (s < 0) continue;
      const mj = masks[s];
      // int32 + int32 is exact in a double; `|` takes it modulo 2^32, as an unsigned add would.
      v = (v + (v & mj)) | (v & ~mj);
    }
    zeros = popcount(~v & (m === 32 ? -1 : (1 << m) - 1));
  } else {
    if (vec.length < words) vec = new Int32Array(2 * words);
    vec.fill(-1, 0, words);
    for (let j = 0; j < n; j++) {
      const id = b[j];
      const s = id < limit ? slotOf[id] : -1;
      if (s < 0) continue;
      const base = s * words;
      let carry = 0;
      for (let w = 0; w < words; w++) {
        const v = vec[w];
        const mw = masks[base + w];
        const sum = (v >>> 0) + ((v & mw) >>> 0) + carry; // < 2^33
        carry = sum > 0xffffffff ? 1 : 0;
        vec[w] = sum | (v & ~mw);
      }
    }
    for (let w = 0; w < words - 1; w++) zeros += popcount(~vec[w]);
    const rest = m - 32 * (words - 1);
    zeros += popcount(~vec[words - 1] & (rest === 32 ? -1 : (1 << rest) - 1));
  }
  for (let i = 0; i < m; i++) slotOf[a[i]] = -1;
  return zeros;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
