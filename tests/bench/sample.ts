/**
 * Device sampling over the Qwen3 vocabulary (V 151936) in LM-head chunks of C = V / 8 columns:
 * per chunk sampleChunk (online log-sum-exp and Gumbel-max, plus the running top-k candidates
 * for top-p), then sampleFinish. Rate: the logits bytes read once (4 · B · V), beside the GEMV's
 * weight bandwidth of the same run. Shape [B, V, C].
 */
import { createTensor, type Gpu } from "../../engine/mod.ts";
import {
  sampleChunk,
  sampleFinish,
  type SampleOptions,
  samplePlan,
  sampleScratchSize,
} from "../../engine/ops/sample.ts";
import type { BenchCase } from "./_types.ts";

const V = 151936, C = 18992;

function sampleCase(B: number, name: string, opts: SampleOptions): BenchCase {
  return {
    name,
    shape: [B, V, C],
    bytes: 4 * B * V,
    relativeTo: "gemv",
    setup(gpu: Gpu) {
      const f32 = (label: string, n: number, fill?: (i: number) => number) =>
        createTensor(gpu, {
          shape: [n],
          dtype: "f32",
          label,
          data: fill ? Float32Array.from({ length: n }, (_, i) => fill(i)) : undefined,
        });
      const u32 = (label: string, n: number) =>
        createTensor(gpu, { shape: [n], dtype: "u32", label, data: new Uint32Array(n) });
      const chunks: { c0: number; cols: number }[] = [];
      for (let c0 = 0; c0 < V; c0 += C) chunks.push({ c0, cols: Math.min(C, V - c0) });
      // logits shaped like a language model's: a few large, most far below
      const logits = chunks.map((c, i) =>
        f32(`logits.${i}`, B * c.cols, (j) => 6 * Math.sin(j * 0.37 + i) ** 9)
      );
      const k = samplePlan(opts, V).candidates;
      const t = {
        ...opts,
        vocab: V,
        rows: B,
        state: u32("state", 8 * B),
        rowInfo: u32("row_info", 2 * B),
        cand: k ? { vals: f32("cand.vals", B * k), ids: u32("cand.ids", B * k) } : undefined,
      };
      const scratch = u32("scratch", sampleScratchSize({ rows: B, cols: C }));
      const out = u32("out", 3 * B);
      return {
        record(rec) {
          chunks.forEach((c, i) =>
            sampleChunk(rec, {
              ...t,
              x: logits[i],
              scratch,
              cols: c.cols,
              colStart: c.c0,
              first: i === 0,
            })
          );
          sampleFinish(rec, { ...t, out });
        },
      };
    },
  };
}

export const cases: BenchCase[] = [1, 8, 64].flatMap((B) => [
  sampleCase(B, "sample_greedy", { temperature: 0 }),
  sampleCase(B, "sample_temperature", { temperature: 1, seed: 1 }),
  sampleCase(B, "sample_top_p", { temperature: 1, topP: 0.95, seed: 1 }),
]);
