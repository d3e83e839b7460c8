/**
 * The CKD loss over the real vocabulary for a chunk of token rows: per vocabulary chunk the
 * online log-sum-exp and gathers (kdLossStats) and the student's running top-m (topkChunk), then
 * kdLossFinish, then the in-place gradient (kdLossBackward) per chunk. k = m = 100, as STAR runs.
 * Rate: bytes of logits read (stats, top-m, backward) and written (backward). Shape [N, V, C].
 */
import { createTensor, type Gpu } from "../../engine/mod.ts";
import {
  KD_PARTS,
  kdLossBackward,
  kdLossFinish,
  kdLossStats,
  kdRowInfo,
  kdWorkSize,
} from "../../engine/ops/kd_loss.ts";
import { topkChunk } from "../../engine/ops/topk.ts";
import type { BenchCase } from "./_types.ts";

function kdCase(N: number, V: number, C: number): BenchCase {
  const k = 100, m = 100;
  return {
    name: "kd_loss",
    shape: [N, V, C],
    bytes: 4 * N * V * 4,
    setup(gpu: Gpu) {
      const t = (label: string, n: number, dtype: "f32" | "u32", fill?: (i: number) => number) => {
        const data = dtype === "u32" ? new Uint32Array(n) : new Float32Array(n);
        if (fill) { for (let i = 0; i < n; i++) data[i] = fill(i); }
        return createTensor(gpu, { shape: [n], dtype, label, data });
      };
      const chunks: { c0: number; cols: number }[] = [];
      for (let c0 = 0; c0 < V; c0 += C) chunks.push({ c0, cols: Math.min(C, V - c0) });
      const logits = chunks.map((c, i) =>
        t(`logits.${i}`, N * c.cols, "f32", (j) => Math.sin(j * 0.37 + i) * 4)
      );
      const teacherIds = t("teacher_ids", N * k, "u32", (j) => (j * 1543) % V);
      const teacherLogprobs = t("teacher_logprobs", N * k, "f32", (j) => -1 - (j % k) * 0.05);
      const topmIds = t("topm_ids", N * m, "u32");
      const topmLogits = t("topm_logits", N * m, "f32");
      const info = kdRowInfo(
        Array.from({ length: N }, (_, r) => (r * 7919) % V),
        new Array(N).fill(1 / N),
      );
      const rowInfo = createTensor(gpu, {
        shape: [2 * N],
        dtype: "u32",
        label: "row_info",
        data: info,
      });
      const shape = { rows: N, k, m };
      const work = t("work", kdWorkSize(shape), "f32");
      const parts = t("parts", N * KD_PARTS.length, "f32");
      return {
        record(rec) {
          chunks.forEach((c, i) => {
            kdLossStats(rec, {
              ...shape,
              ...c,
              ld: c.cols,
              logits: logits[i],
              teacherIds,
              rowInfo,
              work,
              first: i === 0,
            });
            topkChunk(rec, {
              vals: topmLogits,
              ids: topmIds,
              x: logits[i],
              colStart: c.c0,
              k: m,
              first: i === 0,
              rows: N,
              cols: c.cols,
            });
          });
          kdLossFinish(rec, {
            ...shape,
            teacherIds,
            teacherLogprobs,
            topmIds,
            topmLogits,
            rowInfo,
            work,
            parts,
            klType: "fkl",
            l1Coef: 10,
            kdRatio: 1,
          });
          chunks.forEach((c, i) =>
            kdLossBackward(rec, {
              ...shape,
              ...c,
              ld: c.cols,
              logits: logits[i],
              teacherIds,
              topmIds,
              rowInfo,
              work,
            })
          );
        },
      };
    },
  };
}

export const cases: BenchCase[] = [kdCase(16, 151936, 18992), kdCase(64, 151936, 18992)];
