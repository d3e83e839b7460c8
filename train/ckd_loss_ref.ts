/**
 * Float64 reference of the CKD loss (STAR, ICLR 2026, section 3.1 "Constrained Knowledge
 * Distillation", and its released OpenRLHF patch, `0001-add-ckd.patch`, the actor's KD branch)
 * for one target position, and its gradient with respect to the student's logits in closed form.
 * The GPU kernel (engine/ops/kd_loss.ts) is judged against this file.
 *
 * Notation for one position: z (V) the student's logits; s_i = z_i − logsumexp(z) its log-probs
 * over the FULL vocabulary (no temperature), q_i = exp(s_i); T the teacher's top-k ids, in
 * descending order of its log-probs t_j, which are the teacher's full-vocabulary log-softmax
 * values, NOT renormalised over the top-k (P_j = exp(t_j), Σ_T P_j ≤ 1); y the target token.
 *   fkl  = Σ_{j∈T} P_j (t_j − s_j)                       forward KL restricted to T
 *   rkl  = Σ_{j∈T} q_j (s_j − t_j)                       reverse KL restricted to T
 *   akl  = (g_h · fkl + g_t · rkl) / (g_h + g_t)          adaptive KL (Wu et al., 2024) on T:
 *          the head H holds T's leading entries up to and including the one where the teacher's
 *          cumulative probability reaches 0.5 (the first entry always), g_h = Σ_{j∈H} |P_j − q_j|,
 *          g_t = Σ_{j∈T∖H} |P_j − q_j|; the weights are not detached (gradient flows through
 *          them); akl = 0 when g_h + g_t = 0 (the patch divides by 1e-9 there, with zero numerator)
 *   tail = Σ_{i∈M∖T} q_i, M = the student's own top-m ids (ties: lower id first)
 *   kd   = div + λ_tail · tail,  div ∈ {fkl, rkl, akl} by `kd_kl_type`, λ_tail = `kd_kl_l1_coef`
 *   ce   = −s_y
 *   loss = kd when kd_ratio = 1, else kd_ratio · kd + (1 − kd_ratio) · ce (kd_ratio = 0: plain SFT,
 *          no teacher needed)
 * Gradient: write the loss as a function of the log-probs, g_i = ∂loss/∂s_i (non-zero only on
 * T ∪ M ∪ {y}); then ∂loss/∂z_a = g_a − q_a · Σ_i g_i, because ∂s_i/∂z_a = δ_ia − q_a. Per term:
 *   fkl: g_j = −P_j;  rkl: g_j = q_j (s_j − t_j + 1);  tail: g_i = λ q_i;  ce: g_y = −1;
 *   akl: g_j = (g_h ∂fkl/∂s_j + g_t ∂rkl/∂s_j)/D + (div_j − akl)/D · sign(q_j − P_j) q_j,
 *        D = g_h + g_t, div_j = fkl for j ∈ H and rkl otherwise (|x|' = sign(x), 0 at 0).
 * The top-m set is piecewise constant in z, so the gradient holds away from ties.
 * A micro-batch's loss is the mean over its target positions; the micro-batches of one optimizer
 * step are averaged (CONTRACT.md), so each position's gradient is scaled by 1/(n_targets × n_micro).
 */

import type { CkdLossOptions as CkdOptions, KdKlType } from "./ckd_batch.ts";

export type { KdKlType };

export interface TeacherTopk {
  ids: ArrayLike<number>; // (k)
  logprobs: ArrayLike<number>; // (k)
}

/** One position's loss, its parts and the gradient of `loss` w.r.t. the logits. */
export interface CkdRowResult {
  loss: number;
  /** The divergence term chosen by `klType` (fkl, rkl or akl). */
  kl: number;
  fkl: number;
  rkl: number;
  tail: number;
  ce: number;
  dlogits: Float64Array; // (V)
}

/** The AKL head/tail threshold on the teacher's cumulative probability (the patch's 0.5). */
export const AKL_HEAD_MASS = 0.5;

/** The ids of the `m` largest values of `z`, ties broken by the lower id. */
export function topmIdsRef(z: ArrayLike<number>, m: number): number[] {
  const n = Math.min(m, z.length);
  if (n <= 0) return [];
  // the m-th largest value bounds the candidates; only they are sorted with the tie rule
  const sorted = Float64Array.from(z).sort();
  const threshold = sorted[z.length - n];
  const ids: number[] = [];
  for (let i = 0; i < z.length; i++) if (z[i] >= threshold) ids.push(i);
  ids.sort((a, b) => (z[b] - z[a]) || (a - b));
  return ids.slice(0, n);
}

/** log Σ exp(z), stable. */
export function logSumExpRef(z: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - max);
  return max + Math.log(sum);
}

/** The CKD loss of one target position and its gradient w.r.t. the student's logits. */
export function ckdRowRef(
  logits: ArrayLike<number>,
  opts: CkdOptions & { teacher?: TeacherTopk; target: number },
): CkdRowResult {
  const { klType, l1Coef, topm, kdRatio, teacher, target } = opts;
  const V = logits.length;
  if (!(target >= 0 && target < V)) {
    throw new RangeError(`Target id ${target} is outside [0, ${V})`);
  }
  const lse = logSumExpRef(logits);
  const logp = (i: number) => logits[i] - lse;
  // g: ∂loss/∂s_i for the few ids where it is not zero
  const g = new Map<number, number>();
  const add = (i: number, v: number) => g.set(i, (g.get(i) ?? 0) + v);

  const ce = -logp(target);
  let fkl = 0, rkl = 0, tail = 0, kl = 0;
  const useKd = kdRatio > 0;
  const wKd = kdRatio < 1 ? kdRatio : 1;
  const wCe = kdRatio < 1 ? 1 - kdRatio : 0;
  if (wCe > 0) add(target, -wCe);

  if (useKd) {
    if (!teacher) throw new RangeError("A teacher top-k is required when kd_ratio > 0");
    const d = divergenceRef(klType, teacher, logp);
    [kl, fkl, rkl] = [d.kl, d.fkl, d.rkl];
    for (const [i, v] of d.grad) add(i, wKd * v);
    if (l1Coef > 0) {
      const inTeacher = new Set(Array.from(teacher.ids));
      for (const i of topmIdsRef(logits, topm)) {
        if (inTeacher.has(i)) continue;
        const qi = Math.exp(logp(i));
        tail += qi;
        add(i, wKd * l1Coef * qi);
      }
    }
  }
  const kd = kl + l1Coef * tail;
  const loss = kdRatio >= 1 ? kd : kdRatio * (useKd ? kd : 0) + (1 - kdRatio) * ce;

  let G = 0;
  for (const v of g.values()) G += v;
  const dlogits = new Float64Array(V);
  for (let a = 0; a < V; a++) dlogits[a] = -Math.exp(logp(a)) * G;
  for (const [i, v] of g) dlogits[i] += v;
  return { loss, kl, fkl, rkl, tail, ce, dlogits };
}

/** Means over the target positions of one micro-batch, and the scaled gradient. */
export interface CkdMicroBatchResult {
  loss: number;
  kl: number;
  fkl: number;
  tail: number;
  ce: number;
  /** Target positions in the micro-batch. */
  tokens: number;
  dlogits: Float64Array; // (N, V), ∂(step loss)/∂logits
}

/**
 * The CKD loss of one micro-batch: `logits` (N, V) holds only the N target positions (the rows
 * whose next token is a `targets` token), `targets` (N), `teacher` one top-k per row. The loss is
 * the mean over the N rows; `dlogits` is the gradient of the optimizer step's loss, the mean of
 * `microBatches` such micro-batch losses, so every row's gradient is scaled by 1/(N·microBatches).
 */
export function ckdMicroBatchRef(
  logits: Float64Array,
  opts: CkdOptions & {
    vocab: number;
    targets: ArrayLike<number>;
    teacher?: TeacherTopk[];
    microBatches?: number;
  },
): CkdMicroBatchResult {
  const { vocab: V, targets, teacher, microBatches = 1 } = opts;
  const N = targets.length;
  if (logits.length !== N * V) {
    throw new RangeError(`Logits hold ${logits.length} values, expected ${N} rows × ${V}`);
  }
  const out: CkdMicroBatchResult = {
    loss: 0,
    kl: 0,
    fkl: 0,
    tail: 0,
    ce: 0,
    tokens: N,
    dlogits: new Float64Array(N * V),
  };
  if (N === 0) return out;
  const scale = 1 / (N * microBatches);
  for (let r = 0; r < N; r++) {
    const row = ckdRowRef(logits.subarray(r * V, (r + 1) * V), {
      ...opts,
      teacher: teacher?.[r],
      target: targets[r],
    });
    out.loss += row.loss / N;
    out.kl += row.kl / N;
    out.fkl += row.fkl / N;
    out.tail += row.tail / N;
    out.ce += row.ce / N;
    for (let a = 0; a < V; a++) out.dlogits[r * V + a] = row.dlogits[a] * scale;
  }
  return out;
}

/** The loss of one optimizer step: the mean of its micro-batch losses. */
export function stepLossRef(microBatchLosses: readonly number[]): number {
  let sum = 0;
  for (const l of microBatchLosses) sum += l;
  return sum / microBatchLosses.length;
}

/**
 * The divergence on the teacher's top-k at one position: fkl, rkl, the chosen one (akl mixes
 * them by the teacher's head/tail margins) and its gradient w.r.t. the student's logits at the
 * teacher's ids (before the softmax's coupling term, which ckdRowRef adds).
 */
function divergenceRef(
  klType: KdKlType,
  teacher: TeacherTopk,
  logp: (i: number) => number,
): { kl: number; fkl: number; rkl: number; grad: Map<number, number> } {
  const grad = new Map<number, number>();
  const add = (i: number, v: number) => grad.set(i, (grad.get(i) ?? 0) + v);
  let fkl = 0, rkl = 0, kl = 0;
  const k = teacher.ids.length;
  const t = Float64Array.from(teacher.logprobs);
  const P = t.map(Math.exp);
  const s = Float64Array.from({ length: k }, (_, j) => logp(teacher.ids[j]));
  const q = s.map(Math.exp);
  for (let j = 0; j < k; j++) {
    fkl += P[j] * (t[j] - s[j]);
    rkl += q[j] * (s[j] - t[j]);
  }
  const dF = (j: number) => -P[j];
  const dR = (j: number) => q[j] * (s[j] - t[j] + 1);
  if (klType === "fkl") {
    kl = fkl;
    for (let j = 0; j < k; j++) add(teacher.ids[j], dF(j));
  } else if (klType === "rkl") {
    kl = rkl;
    for (let j = 0; j < k; j++) add(teacher.ids[j], dR(j));
  } else {
    // head: entries whose preceding cumulative teacher mass is below the threshold
    const head = new Array<boolean>(k);
    let cum = 0;
    for (let j = 0; j < k; j++) {
      head[j] = j === 0 || cum < AKL_HEAD_MASS;
      cum += P[j];
    }
    let gh = 0, gt = 0;
    for (let j = 0; j < k; j++) {
      const margin = Math.abs(P[j] - q[j]);
      if (head[j]) gh += margin;
      else gt += margin;
    }
    const D = gh + gt;
    if (D !== 0) {
      kl = (gh * fkl + gt * rkl) / D;
      for (let j = 0; j < k; j++) {
        const dMargin = Math.sign(q[j] - P[j]) * q[j];
        const divJ = head[j] ? fkl : rkl;
        add(teacher.ids[j], (gh * dF(j) + gt * dR(j)) / D + (divJ - kl) / D * dMargin);
      }
    }
  }
  return { kl, fkl, rkl, grad };
}
