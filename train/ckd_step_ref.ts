/**
 * Float64 oracle of one CKD optimizer step on whole models (the CPU Qwen3 of model/ref.ts):
 * the teacher's top-k log-probs at every target position, the student's forward, the CKD loss of
 * train/ckd_loss_ref.ts per micro-batch (mean over its target tokens), the mean over the
 * micro-batches of the step, the backward from dlogits to every parameter, the global gradient
 * norm, clipping at max_norm and the AdamW update (no decay on norm weights, OpenRLHF's grouping).
 * The GPU trainer's first step is checked against it. A sample's tokens are its prompt followed by
 * its targets; target positions are those whose NEXT token is a target token. A micro-batch
 * with no target token contributes a loss of 0 to the mean (not skipped).
 */
import type { CkdLossOptions as CkdOptions } from "./ckd_batch.ts";
import { backwardRef, forwardRef, type RefModel, type RefParams, zeroGrads } from "../model/ref.ts";
import {
  type AdamWMoments,
  adamwMoments,
  adamwStepRef,
  clipGradNormRef,
  decaysWeight,
} from "./optimizer_ref.ts";
import { ckdMicroBatchRef, logSumExpRef, type TeacherTopk, topmIdsRef } from "./ckd_loss_ref.ts";

/** One trainset row as tokens: `ids` = prompt ++ targets. */
export interface CkdSample {
  ids: number[];
  promptLength: number;
}

/** The rows of a packed batch that predict a target token, and that token. */
export function targetRowsRef(samples: CkdSample[]): { row: number; target: number }[] {
  const out: { row: number; target: number }[] = [];
  let offset = 0;
  for (const s of samples) {
    for (let t = Math.max(0, s.promptLength - 1); t + 1 < s.ids.length; t++) {
      out.push({ row: offset + t, target: s.ids[t + 1] });
    }
    offset += s.ids.length;
  }
  return out;
}

/** The top-k (descending, full-vocabulary log-probs) of `logits` (N, V) at the given rows. */
export function topkAtRowsRef(
  logits: Float64Array,
  V: number,
  rows: readonly number[],
  k: number,
): TeacherTopk[] {
  return rows.map((r) => {
    const z = logits.subarray(r * V, (r + 1) * V);
    const lse = logSumExpRef(z);
    const ids = topmIdsRef(z, k);
    return { ids, logprobs: ids.map((i) => z[i] - lse) };
  });
}

export interface CkdStepRefOptions {
  student: RefModel;
  /** Needed unless kdRatio = 0. */
  teacher?: RefModel;
  microBatches: CkdSample[][];
  ckd: CkdOptions & { topk: number };
  /** With these, the step also clips and applies AdamW to a copy of the student's params. */
  optim?: {
    lr: number;
    betas: readonly [number, number];
    eps: number;
    weightDecay: number;
    maxNorm: number;
    /** 1-based AdamW step count of this update. */
    step: number;
    /** Moments before the step (zero when absent); updated in place. */
    moments?: Record<string, AdamWMoments>;
  };
}

export interface CkdStepRefResult {
  /** Means over the micro-batches of their token means. */
  loss: number;
  kl: number;
  fkl: number;
  tail: number;
  ce: number;
  /** Target tokens in the step. */
  tokens: number;
  /** ∂loss/∂params, before clipping. */
  grads: RefParams;
  gradNorm: number;
  clipScale: number;
  /** The parameters after the update (when `optim` was given). */
  params?: RefParams;
  moments?: Record<string, AdamWMoments>;
}

/** One optimizer step of CKD in float64. */
export function ckdStepRef(o: CkdStepRefOptions): CkdStepRefResult {
  const { student, teacher, microBatches, ckd } = o;
  const V = student.config.vocab_size;
  if (ckd.kdRatio > 0 && !teacher) throw new RangeError("kd_ratio > 0 needs a teacher");
  if (teacher && teacher.config.vocab_size !== V) {
    throw new RangeError(
      `The teacher's vocabulary (${teacher.config.vocab_size}) differs from the student's (${V})`,
    );
  }
  const grads = zeroGrads(student);
  const res = { loss: 0, kl: 0, fkl: 0, tail: 0, ce: 0, tokens: 0 };
  const M = microBatches.length;
  for (const mb of microBatches) {
    const seqs = mb.map((s) => s.ids);
    const rows = targetRowsRef(mb);
    const f = forwardRef(student, seqs);
    const topk = ckd.kdRatio > 0
      ? topkAtRowsRef(forwardRef(teacher!, seqs).logits, V, rows.map((r) => r.row), ckd.topk)
      : undefined;
    const logits = new Float64Array(rows.length * V);
    rows.forEach((r, i) => logits.set(f.logits.subarray(r.row * V, (r.row + 1) * V), i * V));
    const out = ckdMicroBatchRef(logits, {
      ...ckd,
      vocab: V,
      targets: rows.map((r) => r.target),
      teacher: topk,
      microBatches: M,
    });
    res.loss += out.loss / M;
    res.kl += out.kl / M;
    res.fkl += out.fkl / M;
    res.tail += out.tail / M;
    res.ce += out.ce / M;
    res.tokens += rows.length;
    const dlogits = new Float64Array(f.N * V);
    rows.forEach((r, i) => dlogits.set(out.dlogits.subarray(i * V, (i + 1) * V), r.row * V));
    backwardRef(student, f, dlogits, grads);
  }
  const names = Object.keys(grads);
  const clipped = names.map((n) => Float64Array.from(grads[n]));
  const { norm, scale } = clipGradNormRef(clipped, o.optim?.maxNorm ?? Infinity);
  const result: CkdStepRefResult = { ...res, grads, gradNorm: norm, clipScale: scale };
  if (o.optim) {
    const { lr, betas, eps, weightDecay, step } = o.optim;
    const moments = o.optim.moments ?? {};
    const params: RefParams = {};
    names.forEach((n, i) => {
      params[n] = Float64Array.from(student.params[n]);
      moments[n] ??= adamwMoments(params[n].length);
      adamwStepRef(params[n], {
        lr,
        betas,
        eps,
        weightDecay: decaysWeight(n) ? weightDecay : 0,
        grad: clipped[i],
        moments: moments[n],
        step,
      });
    });
    result.params = params;
    result.moments = moments;
  }
  return result;
}
