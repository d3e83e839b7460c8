/**
 * What the CKD backends share: the options of the loss (from the config), a micro-batch sample
 * (prompt ++ targets, with the teacher's cached top-k in offline mode), and the rows of a packed
 * micro-batch that predict a `targets` token: contiguous spans, one per sample, whose row t
 * predicts ids[t + 1] for t from promptLength − 1 on. Only those rows go through the LM head.
 */

export type KdKlType = "fkl" | "rkl" | "akl";

/** The loss's settings. */
export interface CkdLossOptions {
  /** Divergence on the teacher's top-k (`kd_kl_type`). */
  klType: KdKlType;
  /** λ_tail (`kd_kl_l1_coef`); 0 turns the tail term off. */
  l1Coef: number;
  /** m, the size of the student's own top-m (`kd_student_topm`). */
  topm: number;
  /** Weight of the KD term against cross-entropy (`kd_ratio`). */
  kdRatio: number;
}

/** The loss's settings and the teacher's top-k. */
export interface CkdOptions extends CkdLossOptions {
  /** k, the teacher's top-k (`kd_topk`). */
  topk: number;
}

/** One sample of a CKD micro-batch: prompt ++ targets, and optionally its cached teacher top-k. */
export interface CkdBatchSample {
  ids: number[];
  promptLength: number;
  /** The teacher's top-k at the sample's target positions (P, k), offline mode. */
  teacher?: { ids: Uint32Array; logprobs: Float32Array };
}

/** The target rows of packed samples as spans, and the target token of each row, in order. */
export function targetSpans(
  samples: readonly { ids: ArrayLike<number>; promptLength: number }[],
): { spans: { start: number; len: number }[]; targets: number[] } {
  const spans: { start: number; len: number }[] = [], targets: number[] = [];
  let off = 0;
  for (const s of samples) {
    const first = Math.max(0, s.promptLength - 1), len = Math.max(0, s.ids.length - 1 - first);
    if (len > 0) spans.push({ start: off + first, len });
    for (let t = first; t + 1 < s.ids.length; t++) targets.push(s.ids[t + 1]);
    off += s.ids.length;
  }
  return { spans, targets };
}
