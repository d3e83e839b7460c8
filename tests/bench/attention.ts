/**
 * Causal GQA attention of one Qwen3-0.6B layer (H 16, K 8, E 128) over one sequence of T tokens:
 * "attention_forward" and "attention_backward" (dQ, then dK/dV). Rate: the useful FLOPs of the
 * causal half, 4·E per (query, key, head) pair forward and 8·E backward (the four products dP,
 * dS·K, dSᵀ·Q, Pᵀ·dO; the recomputed scores are not counted). Shape [T, H, K, E].
 */
import { createTensor, type Gpu } from "../../engine/mod.ts";
import {
  attentionBackward,
  attentionForward,
  attentionRangeTable,
} from "../../engine/ops/attention.ts";
import type { BenchCase } from "./_types.ts";

function attentionCase(T: number, backward: boolean): BenchCase {
  const H = 16, K = 8, E = 128;
  const pairs = H * T * (T + 1) / 2;
  return {
    name: backward ? "attention_backward" : "attention_forward",
    shape: [T, H, K, E],
    flops: (backward ? 8 : 4) * E * pairs,
    setup(gpu: Gpu) {
      const t = (label: string, n: number, fill = true) =>
        createTensor(gpu, {
          shape: [n],
          dtype: "f32",
          label,
          data: fill ? Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61)) : undefined,
        });
      const dims = { queryRows: T, keyRows: T, heads: H, kvHeads: K, headDim: E };
      const ranges = createTensor(gpu, {
        shape: [2 * (2 * T)],
        dtype: "u32",
        label: "ranges",
        data: attentionRangeTable([{ qStart: 0, qLen: T, kStart: 0 }], dims),
      });
      const io = {
        ...dims,
        q: t("q", T * H * E),
        k: t("k", T * K * E),
        v: t("v", T * K * E),
        ranges,
        stats: t("stats", 2 * T * H, false),
        o: t("o", T * H * E, false),
      };
      const grads = {
        dO: t("dO", T * H * E),
        dQ: t("dQ", T * H * E, false),
        dK: t("dK", T * K * E, false),
        dV: t("dV", T * K * E, false),
      };
      if (backward) {
        return {
          record: (rec) => attentionBackward(rec, { ...io, ...grads }),
          perSubmit: 1,
        };
      }
      return { record: (rec) => attentionForward(rec, io), perSubmit: 1 };
    },
  };
}

export const cases: BenchCase[] = [
  attentionCase(128, false),
  attentionCase(128, true),
  attentionCase(512, false),
  attentionCase(512, true),
];
