/**
 * The Sim-RL token loss on the GPU (wgsl/policy_loss.wgsl): per response-token row the PPO
 * clipped term and the clamped KL estimate from the current log-probs, ℓ_old, ℓ_ref, the
 * advantage and the row weight; the gradient weight dLoss = −∂L/∂ℓ that the cross-entropy
 * backward turns into dlogits; and the weighted sums of (pg, kl, clipped, ℓ_old − ℓ) into a
 * step accumulator. policyLossRef is the float64 twin (the same formulas as
 * train/simrl_loss_ref.ts, which engine/ does not import).
 * Legend: N response-token rows.
 */
import code from "../../wgsl/policy_loss.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

/** Columns of `parts` and of the accumulator. */
export const POLICY_PARTS = ["policy_loss", "kl", "clip_ratio", "ppo_kl"] as const;
const ESTIMATORS = { k1: 1, k2: 2, k3: 3 } as const;
export type KlEstimatorName = keyof typeof ESTIMATORS;
const KL_CLAMP = 10;
const WG = 256;

export interface PolicyLossOptions {
  epsClip: number;
  /** β of the KL term in the loss (0: not in the loss; its value is still reported). */
  beta: number;
  estimator: KlEstimatorName;
}

/** Float64 reference: per row dLoss and the four parts, from (ℓ, ℓ_old, ℓ_ref, A, w). */
export function policyLossRef(
  rows: { l: number; old: number; ref: number; adv: number; w: number }[],
  o: PolicyLossOptions,
): { dLoss: Float64Array; parts: Float64Array; acc: Float64Array } {
  const dLoss = new Float64Array(rows.length), parts = new Float64Array(4 * rows.length);
  const acc = new Float64Array(4);
  rows.forEach((r, i) => {
    const ratio = Math.exp(r.l - r.old);
    const surr1 = ratio * r.adv;
    const surr2 = Math.min(1 + o.epsClip, Math.max(1 - o.epsClip, ratio)) * r.adv;
    const clipped = surr2 < surr1;
    const d = r.l - r.ref;
    let kl = d, dkl = 1;
    if (o.estimator === "k2") [kl, dkl] = [d * d / 2, d];
    if (o.estimator === "k3") [kl, dkl] = [Math.exp(-d) - 1 + d, 1 - Math.exp(-d)];
    if (Math.abs(kl) > KL_CLAMP) [kl, dkl] = [Math.sign(kl) * KL_CLAMP, 0];
    dLoss[i] = -r.w * ((clipped ? 0 : -r.adv * ratio) + o.beta * dkl);
    const p = [-Math.min(surr1, surr2), kl, clipped ? 1 : 0, r.old - r.l];
    p.forEach((v, j) => {
      parts[4 * i + j] = v;
      acc[j] += r.w * v;
    });
  });
  return { dLoss, parts, acc };
}

const kernel = family("wgsl/policy_loss.wgsl", code, {
  forward: ["params:uniform", "logprobs:read", "rowdata:read", "dLoss:storage", "parts:storage"],
  reduce: ["params:uniform", "parts_r:read", "rowdata:read", "acc:storage"],
});

function uniforms(rec: Recorder, rows: number, o: PolicyLossOptions): GPUBufferBinding {
  return params(
    rec,
    { rows, estimator: ESTIMATORS[o.estimator], eps_clip: o.epsClip, beta: o.beta },
    ["eps_clip", "beta"],
  );
}

/**
 * Per row: dLoss (N) and parts (N, 4) from logprobs (N) and rowdata (N, 4) =
 * (ℓ_old, ℓ_ref, A, w); then acc (4) += Σ w·parts.
 */
export function policyLoss(
  rec: Recorder,
  o: PolicyLossOptions & {
    logprobs: Tensor;
    rowdata: Tensor;
    dLoss: Tensor;
    parts: Tensor;
    acc: Tensor;
    rows: number;
  },
): void {
  need(o.logprobs, "Policy log-probs", o.rows);
  need(o.rowdata, "Policy row data", 4 * o.rows);
  need(o.dLoss, "Policy dLoss", o.rows);
  need(o.parts, "Policy parts", 4 * o.rows);
  need(o.acc, "Policy accumulator", 4);
  if (o.rows === 0) return;
  const p = uniforms(rec, o.rows, o);
  rec.dispatch(
    kernel(rec, "forward", { WG }),
    { params: p, logprobs: o.logprobs, rowdata: o.rowdata, dLoss: o.dLoss, parts: o.parts },
    grid(o.rows, WG),
  );
  rec.dispatch(
    kernel(rec, "reduce", { WG }),
    { params: p, parts_r: o.parts, rowdata: o.rowdata, acc: o.acc },
    [1],
  );
}
