/**
 * Test helpers on the GPU model's surface (model/gpu_model.ts): the mean next-token
 * cross-entropy and every parameter gradient of a packed batch (transformers-style labels,
 * -100 or a missing next token not scored), and generation that recomputes each step from the
 * whole sequence in a fresh cache instead of extending one (the oracle of KV-cached decoding).
 */
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import type { GenerateOptions, GenerateRequest, Generation } from "../model/generate.ts";
import type { GpuModel } from "../model/gpu_model.ts";
import { IGNORE_INDEX, TokenLogprobs } from "../model/objectives.ts";
import { drawToken, sampleSeed } from "../model/sampling.ts";

/**
 * Forward and backward of the mean cross-entropy; gradients ACCUMULATE into the model's (zero
 * them first). `spans` restricts the vocabulary pass to rows that are scored (all by default).
 */
export async function lossAndGrad(
  m: GpuModel,
  seqs: number[][],
  opts: { labels?: number[][]; onlyScoredRows?: boolean } = {},
): Promise<{ loss: number; count: number; logprobs: Float32Array }> {
  const targets: number[] = [], spans: { start: number; len: number }[] = [];
  let off = 0;
  seqs.forEach((s, si) => {
    const lab = opts.labels?.[si] ?? s;
    s.forEach((_, t) => {
      const next = t + 1 < s.length ? lab[t + 1] : -100;
      targets.push(next >= 0 ? next : IGNORE_INDEX);
      if (next >= 0) spans.push({ start: off + t, len: 1 });
    });
    off += s.length;
  });
  const rowsTargets = opts.onlyScoredRows ? targets.filter((t) => t !== IGNORE_INDEX) : targets;
  const count = targets.filter((t) => t !== IGNORE_INDEX).length;
  const lp = new TokenLogprobs(m.gpu, rowsTargets.length);
  const rec = new Recorder(m.gpu, "test.lossAndGrad");
  const f = m.forward(rec, seqs, { train: true });
  try {
    lp.write(rowsTargets, rowsTargets.map((t) => (t === IGNORE_INDEX ? 0 : 1 / count)));
    const pass = f.vocab([lp], opts.onlyScoredRows ? spans : undefined);
    f.backward(pass, lp);
    const [l] = await readMany(rec, [lp.logprobs.rows(0, rowsTargets.length)]);
    let loss = 0;
    rowsTargets.forEach((t, i) => {
      if (t !== IGNORE_INDEX) loss -= l[i];
    });
    return { loss: count ? loss / count : 0, count, logprobs: l as Float32Array };
  } finally {
    f.release();
    lp.release();
  }
}

/** generate() without reusing a cache: every step runs the whole sequence again. */
export async function generateRecompute(
  m: GpuModel,
  reqs: GenerateRequest[],
  opts: GenerateOptions,
): Promise<Generation[]> {
  const params = { temperature: opts.temperature ?? 1, topP: opts.topP ?? 1, topK: opts.topK ?? 0 };
  const stop = new Set(opts.stopIds ?? [151645, 151643]);
  const out: Generation[] = [];
  for (const [j, r] of reqs.entries()) {
    const stream = sampleSeed(opts.seed ?? 0, r.example ?? j, r.sample ?? 0);
    const g: Generation = { ids: [], logprobs: [], finishReason: "length" };
    while (g.ids.length < opts.maxNewTokens) {
      const seq = [...r.prompt, ...g.ids];
      const cache = m.newCache(1, seq.length);
      try {
        const [row] = await m.lastLogits(cache, [{ slot: 0, ids: seq }]);
        const { id: tok, logprob } = drawToken(row, params, stream, g.ids.length);
        g.ids.push(tok);
        g.logprobs.push(logprob);
        if (stop.has(tok)) {
          g.finishReason = "stop";
          break;
        }
      } finally {
        cache.release();
      }
    }
    out.push(g);
  }
  return out;
}
