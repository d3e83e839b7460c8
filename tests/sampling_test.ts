/**
 * model/sampling.ts on the CPU: greedy and tie-breaking, top-k and top-p sets computed by hand,
 * draw frequencies against the tempered softmax, and streams (same (stream, step), same token;
 * different (seed, example, sample), different streams).
 */
import {
  argmax,
  drawToken,
  logSoftmax,
  sampleSeed,
  type SamplingParams,
} from "../model/sampling.ts";
import { assertClose, assertEquals } from "./assert.ts";

const LOGITS = [1.0, 3.0, 2.5, 3.0, -1.0, 0.0]; // ids 1 and 3 tie for the maximum

/** Token counts of n draws: steps 0..n-1 of one stream. */
function draws(logits: number[], p: SamplingParams, n: number, seed = 1): number[] {
  const stream = sampleSeed(seed, 0, 0);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[drawToken(logits, p, stream, i).id]++;
  return counts;
}

Deno.test("drawToken() with temperature 0 is argmax with the lowest id on ties", () => {
  assertEquals(argmax(LOGITS), 1);
  for (let i = 0; i < 5; i++) {
    const d = drawToken(LOGITS, { temperature: 0, topP: 0.5, topK: 3 }, 3, i);
    assertEquals(d.id, 1);
    assertClose(d.logprob, logSoftmax(LOGITS)[1], { atol: 1e-12 });
  }
});

Deno.test("drawToken() with top-k 2 draws only the two largest logits (ties by lower id)", () => {
  const c = draws(LOGITS, { temperature: 1, topP: 1, topK: 2 }, 2000);
  assertEquals(c.map((x) => x > 0), [false, true, false, true, false, false]);
  // equal logits: about half each
  if (Math.abs(c[1] - c[3]) > 200) throw new Error(`counts ${c}`);
});

Deno.test("drawToken() with top-p keeps the smallest most-likely set reaching p", () => {
  // probabilities of [3, 2, 1, 0] at temperature 1: 0.644, 0.237, 0.087, 0.032
  const logits = [3, 2, 1, 0];
  const c1 = draws(logits, { temperature: 1, topP: 0.6, topK: 0 }, 500);
  assertEquals(c1, [500, 0, 0, 0]);
  const c2 = draws(logits, { temperature: 1, topP: 0.85, topK: 0 }, 3000);
  assertEquals(c2.map((x) => x > 0), [true, true, false, false]);
  // renormalised over the kept pair: 0.731 / 0.269
  if (Math.abs(c2[0] / 3000 - 0.731) > 0.03) throw new Error(`counts ${c2}`);
});

Deno.test("drawToken() draws follow softmax(logits / temperature)", () => {
  const n = 20000;
  for (const temperature of [1, 0.5, 2]) {
    const c = draws(LOGITS, { temperature, topP: 1, topK: 0 }, n, 7);
    const lp = logSoftmax(LOGITS.map((x) => x / temperature));
    lp.forEach((l, i) => {
      const p = Math.exp(l), sd = Math.sqrt((p * (1 - p)) / n);
      if (Math.abs(c[i] / n - p) > 5 * sd + 1e-3) {
        throw new Error(`T=${temperature} id ${i}: ${c[i] / n} vs ${p}`);
      }
    });
  }
});

Deno.test("logSoftmax() equals log(exp(x) / sum exp(x)) in float64", () => {
  const lp = logSoftmax(LOGITS);
  const z = LOGITS.reduce((s, x) => s + Math.exp(x), 0);
  LOGITS.forEach((x, i) => {
    if (Math.abs(lp[i] - Math.log(Math.exp(x) / z)) > 1e-12) throw new Error(`id ${i}`);
  });
});

Deno.test("sampleSeed() streams repeat for the same (seed, example, sample) and differ otherwise", () => {
  const p = { temperature: 1, topP: 1, topK: 0 };
  const flat = new Array(64).fill(0);
  const seq = (s: number) => Array.from({ length: 32 }, (_, i) => drawToken(flat, p, s, i).id);
  assertEquals(seq(sampleSeed(5, 2, 1)), seq(sampleSeed(5, 2, 1)));
  const seeds = new Set<number>();
  for (let seed = 0; seed < 4; seed++) {
    for (let ex = 0; ex < 8; ex++) for (let s = 0; s < 8; s++) seeds.add(sampleSeed(seed, ex, s));
  }
  assertEquals(seeds.size, 4 * 8 * 8);
  // different streams draw different tokens from a flat row (64 ids, 32 draws)
  assertEquals(seq(sampleSeed(0, 0, 0)).join() === seq(sampleSeed(0, 0, 1)).join(), false);
  assertEquals(new Set(seq(sampleSeed(0, 0, 0))).size > 16, true);
});
