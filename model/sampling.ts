/**
 * Choosing the next token from a row of logits on the CPU, as transformers' sampling does:
 * temperature, then top-k, then top-p (the smallest set of most likely tokens whose mass
 * reaches p), then one draw; temperature 0 is argmax (lowest id on ties). Every sequence has
 * its own random stream seeded by (seed, example, sample), so results do not depend on how
 * sequences are batched. Log-probs reported to users are of the plain softmax (temperature 1).
 * Deliberately simple: top-p sorts a copy of the candidate probabilities (tokens tied with the
 * last kept one are kept too).
 */

export interface SamplingParams {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
}

/** 32-bit mix of (seed, example, sample) (murmur3-style finaliser over each word). */
export function sampleSeed(seed: number, example: number, sample: number): number {
  let h = 0x9e3779b9;
  for (const w of [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, example >>> 0, sample >>> 0]) {
    h = Math.imul(h ^ w, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** sfc32: a small fast PRNG; next() is uniform in [0, 1) with 32 random bits. */
export class SampleRng {
  #s: Int32Array;
  constructor(seed: number) {
    this.#s = Int32Array.of(0x9e3779b9, seed | 0, 0x243f6a88 ^ seed, 1);
    for (let i = 0; i < 12; i++) this.next();
  }
  next(): number {
    const s = this.#s;
    const t = (((s[0] + s[1]) | 0) + s[3]) | 0;
    s[3] = (s[3] + 1) | 0;
    s[0] = s[1] ^ (s[1] >>> 9);
    s[1] = (s[2] + (s[2] << 3)) | 0;
    s[2] = (s[2] << 21) | (s[2] >>> 11);
    s[2] = (s[2] + t) | 0;
    return (t >>> 0) / 4294967296;
  }
}

/** log-softmax of a logits row in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/** Index of the largest value, the lowest index on ties. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Ids of the k largest logits (ties broken by the lower id), in id order. */
function topKIds(logits: ArrayLike<number>, k: number): number[] {
  const sorted = Float64Array.from(logits).sort();
  const kth = sorted[sorted.length - k];
  const above: number[] = [], equal: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > kth) above.push(i);
    else if (logits[i] === kth) equal.push(i);
  }
  return [...above, ...equal.slice(0, k - above.length)].sort((a, b) => a - b);
}

/** The next token for one row of logits. */
export function chooseToken(
  logits: ArrayLike<number>,
  p: SamplingParams,
  rng: SampleRng,
): number {
  if (!(p.temperature > 0)) return argmax(logits);
  const V = logits.length;
  const ids = p.topK > 0 && p.topK < V ? topKIds(logits, p.topK) : null;
  const n = ids ? ids.length : V;
  const at = (j: number) => logits[ids ? ids[j] : j];
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, at(j));
  const w = new Float64Array(n);
  let total = 0;
  for (let j = 0; j < n; j++) total += w[j] = Math.exp((at(j) - max) / p.temperature);
  if (p.topP < 1) {
    // the smallest most-likely set with mass >= topP: a threshold on the weights
    const sorted = Float64Array.from(w).sort().reverse();
    let cum = 0, cut = sorted[0];
    for (let j = 0; j < n; j++) {
      cum += sorted[j];
      cut = sorted[j];
      if (cum >= p.topP * total) break;
    }
    total = 0;
    for (let j = 0; j < n; j++) {
      if (w[j] < cut) w[j] = 0;
      total += w[j];
    }
  }
  let u = rng.next() * total;
  let last = 0;
  for (let j = 0; j < n; j++) {
    if (w[j] === 0) continue;
    last = j;
    u -= w[j];
    if (u < 0) break;
  }
  return ids ? ids[last] : last;
}
