/**
 * Choosing the next token on the CPU exactly as the device does (engine/ops/sample.ts):
 * temperature, then top-k, then top-p (the smallest set of most likely tokens whose mass
 * reaches p, tokens tied with the last kept one kept too), then the Gumbel-max draw
 * argmax(x / T + g) whose noise g of token `id` is a hash of (stream, step, id); temperature 0 is
 * argmax (lowest id on ties). Every sequence has its own stream, sampleSeed(seed, example,
 * sample), and `step` counts its new tokens, so a draw depends neither on how sequences are
 * batched nor on where it runs. Log-probs reported to users are of the plain softmax
 * (temperature 1).
 */
import { sampleRef } from "../engine/ops/sample.ts";

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

/**
 * The token of draw `step` of random stream `stream` from one row of logits, and its log-prob
 * under the plain softmax: what the device's sampler picks from the same logits.
 */
export function drawToken(
  logits: ArrayLike<number>,
  p: SamplingParams,
  stream: number,
  step: number,
): { id: number; logprob: number } {
  const r = sampleRef(logits, [stream >>> 0, step >>> 0], {
    temperature: p.temperature,
    topK: p.topK,
    topP: p.topP,
    rows: 1,
    cols: logits.length,
  });
  return { id: r.ids[0], logprob: r.logprobs[0] };
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

/** Indices of the k largest values, descending (lower index first on ties). */
export function topK(x: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (best.length === k && !(x[i] > x[best[k - 1]])) continue;
    let j = best.length; // insert before the first strictly smaller value
    while (j > 0 && x[best[j - 1]] < x[i]) j--;
    best.splice(j, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
