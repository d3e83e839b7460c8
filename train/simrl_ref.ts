/**
 * Float64 oracle of Sim-RL's optimizer steps on whole models (the CPU model of
 * model/ref.ts), shared/SIMRL.md sections 2-3: old and reference log-probs of the response
 * tokens, then per step and micro-batch the current log-probs, the loss of train/simrl_loss_ref.ts,
 * ∂loss/∂logits = ∂loss/∂ℓ · (onehot(y) − softmax) on each response row, the backward to every
 * parameter, the global norm, DeepSpeed's clip g / max(1, (‖g‖ + 1e-6) / max_norm) and AdamW
 * (no decay on norm weights). It is the `--device cpu` backend's core and the GPU trainer's oracle.
 * A sample's tokens are its prompt followed by its completion; each sequence is its own forward
 * (no padding), so packing micro-batches changes nothing. Not here: generation, rewards, bf16.
 */
import {
  backwardRef,
  forwardRef,
  logSoftmaxRow,
  type RefModel,
  type RefParams,
  zeroGrads,
} from "../model/ref.ts";
import {
  type AdamWMoments,
  adamwMoments,
  adamwStepRef,
  decaysWeight,
  globalGradNormRef,
} from "./optimizer_ref.ts";
import { targetRowsRef } from "./ckd_step_ref.ts";
import type { TrainLayout } from "./grpo.ts";
import {
  type SimrlLossOptions,
  type SimrlMetrics,
  simrlMicroBatchRef,
  stepMetricsRef,
} from "./simrl_loss_ref.ts";

import type { SimrlRefSample, SimrlSequence } from "./simrl_batch.ts";

export type { SimrlRefSample, SimrlSequence };

function checkSequence(s: SimrlSequence, i: number) {
  if (s.promptIds.length < 1 || s.completionIds.length < 1) {
    throw new RangeError(
      `Sample ${i} needs a prompt and a completion of at least one token, got ${s.promptIds.length} and ${s.completionIds.length}`,
    );
  }
}

/** The rows of a packed forward that predict each sample's completion tokens. */
function completionRows(seqs: readonly SimrlSequence[]): { row: number; target: number }[][] {
  const rows = targetRowsRef(
    seqs.map((s) => ({
      ids: [...s.promptIds, ...s.completionIds],
      promptLength: s.promptIds.length,
    })),
  );
  let o = 0;
  return seqs.map((s) => rows.slice(o, o += s.completionIds.length));
}

/**
 * The full-vocabulary log-prob (temperature 1) of every completion token under `model`: ℓ_old
 * from the policy before the rollout batch's first update, ℓ_ref from the frozen reference.
 */
export function completionLogprobsRef(
  model: RefModel,
  samples: readonly SimrlSequence[],
): Float64Array[] {
  samples.forEach(checkSequence);
  const V = model.config.vocab_size;
  return samples.map((s) => {
    const f = forwardRef(model, [[...s.promptIds, ...s.completionIds]]);
    const [rows] = completionRows([s]);
    return Float64Array.from(rows, (r) => logSoftmaxRow(f.logits, r.row, V)[r.target]);
  });
}

/**
 * DeepSpeed's global-norm clip (ZeRO stage 1/2 `_unscale_and_clip_grads`), in place: with
 * n = ‖g‖₂ over all tensors, g ← g / max(1, (n + 1e-6) / maxNorm). Equal in exact arithmetic to
 * torch's clip_grad_norm_ (clipGradNormRef: g · maxNorm / (n + 1e-6) when that is < 1); the two
 * round differently by about 1 ulp. A non-finite norm leaves the gradients as they are.
 */
export function clipGradNormDeepSpeedRef(
  grads: Float64Array[],
  maxNorm: number,
): { norm: number; scale: number; finite: boolean } {
  const norm = globalGradNormRef(grads);
  const finite = Number.isFinite(norm);
  const divisor = finite ? Math.max(1, (norm + 1e-6) / maxNorm) : 1;
  if (divisor !== 1) { for (const g of grads) for (let i = 0; i < g.length; i++) g[i] /= divisor; }
  return { norm, scale: 1 / divisor, finite };
}

/** AdamW and clipping keys of one update. */
export interface SimrlOptimRef {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  maxNorm: number;
  /** 1-based AdamW step count of this update (global, across rollout batches). */
  step: number;
  /** Moments before the step (zero when absent); updated in place. */
  moments?: Record<string, AdamWMoments>;
}

export interface SimrlStepRefOptions {
  policy: RefModel;
  samples: readonly SimrlRefSample[];
  /** The step's micro-batches as indices into `samples`. */
  microBatches: readonly (readonly number[])[];
  loss: SimrlLossOptions;
  /** With these, the step also clips and applies AdamW to a copy of the policy's params. */
  optim?: SimrlOptimRef;
}

export interface SimrlStepRefResult extends SimrlMetrics {
  /** Each micro-batch's token means, in the order given. */
  microBatchMetrics: SimrlMetrics[];
  /** ℓ of every sample of the step under the policy (absent for samples not in the step). */
  logprobs: (Float64Array | undefined)[];
  /** ∂loss/∂params, before clipping. */
  grads: RefParams;
  gradNorm: number;
  clipScale: number;
  finite: boolean;
  /** The parameters after the update (when `optim` was given). */
  params?: RefParams;
  moments?: Record<string, AdamWMoments>;
}

/**
 * One micro-batch of a step on the policy's current parameters: its token-mean metrics, the
 * current ℓ of its samples, and ∂(step loss)/∂params (1/microBatches included) ADDED to `grads`.
 */
export function simrlMicroBatchGradRef(
  policy: RefModel,
  seqs: readonly SimrlRefSample[],
  loss: SimrlLossOptions & { microBatches: number },
  grads: RefParams,
): { metrics: SimrlMetrics; logprobs: Float64Array[] } {
  const V = policy.config.vocab_size;
  seqs.forEach(checkSequence);
  const f = forwardRef(policy, seqs.map((s) => [...s.promptIds, ...s.completionIds]));
  const rows = completionRows(seqs);
  const lps = rows.map((rs) => rs.map((r) => logSoftmaxRow(f.logits, r.row, V)));
  const current = lps.map((rs, k) => Float64Array.from(rs, (lp, t) => lp[rows[k][t].target]));
  const out = simrlMicroBatchRef(
    seqs.map((s, k) => ({
      logprobs: current[k],
      oldLogprobs: s.oldLogprobs,
      refLogprobs: s.refLogprobs,
      advantage: s.advantage,
    })),
    loss,
  );
  const { dlogprobs, ...metrics } = out;
  // ∂ℓ/∂z_v = δ(v = y) − p_v on the row that predicts y
  const dlogits = new Float64Array(f.N * V);
  rows.forEach((rs, k) =>
    rs.forEach((r, t) => {
      const g = dlogprobs[k][t], lp = lps[k][t];
      for (let v = 0; v < V; v++) dlogits[r.row * V + v] = -g * Math.exp(lp[v]);
      dlogits[r.row * V + r.target] += g;
    })
  );
  backwardRef(policy, f, dlogits, grads);
  return { metrics, logprobs: current };
}

/** One optimizer step of Sim-RL in float64 on the policy's current parameters. */
export function simrlStepRef(o: SimrlStepRefOptions): SimrlStepRefResult {
  const { policy, samples, microBatches, loss } = o;
  const M = microBatches.length;
  if (M === 0) throw new RangeError("A step needs at least one micro-batch");
  const grads = zeroGrads(policy);
  const microBatchMetrics: SimrlMetrics[] = [];
  const logprobs: (Float64Array | undefined)[] = new Array(samples.length).fill(undefined);
  for (const mb of microBatches) {
    const seqs = mb.map((i) => {
      const s = samples[i];
      if (!s) {
        throw new RangeError(`Micro-batch names sample ${i}, outside 0..${samples.length - 1}`);
      }
      return s;
    });
    const r = simrlMicroBatchGradRef(policy, seqs, { ...loss, microBatches: M }, grads);
    microBatchMetrics.push(r.metrics);
    mb.forEach((i, k) => (logprobs[i] = r.logprobs[k]));
  }
  const names = Object.keys(grads);
  const clipped = names.map((n) => Float64Array.from(grads[n]));
  const { norm, scale, finite } = clipGradNormDeepSpeedRef(clipped, o.optim?.maxNorm ?? Infinity);
  const result: SimrlStepRefResult = {
    ...stepMetricsRef(microBatchMetrics),
    microBatchMetrics,
    logprobs,
    grads,
    gradNorm: norm,
    clipScale: scale,
    finite,
  };
  if (o.optim) {
    const { lr, betas, eps, weightDecay, step } = o.optim;
    const moments = o.optim.moments ?? {};
    const params: RefParams = {};
    names.forEach((n, i) => {
      params[n] = Float64Array.from(policy.params[n]);
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

export interface SimrlStepsRefOptions {
  policy: RefModel;
  /** The frozen reference; ℓ_ref is taken from it once, before the first step. */
  reference: RefModel;
  /** The rollout batch's kept samples, group-major, with their advantages. */
  samples: readonly (SimrlSequence & { advantage: number | ArrayLike<number> })[];
  /** The steps to run (trainLayout() or a prefix of it). */
  layout: TrainLayout;
  loss: SimrlLossOptions;
  optim: Omit<SimrlOptimRef, "lr" | "step" | "moments"> & {
    /** lr of the update after `k` optimizer steps (global), e.g. simrlLrSchedule().lr. */
    lr: (k: number) => number;
    /** Optimizer steps taken before this rollout batch. */
    stepsBefore: number;
    moments?: Record<string, AdamWMoments>;
  };
}

export interface SimrlStepsRefResult {
  oldLogprobs: Float64Array[];
  refLogprobs: Float64Array[];
  /** One result per step, each with `params` after it. */
  steps: SimrlStepRefResult[];
  /** The policy after the last step, and the moments. */
  policy: RefModel;
  moments: Record<string, AdamWMoments>;
}

/**
 * The steps of one rollout batch: ℓ_old from the policy before any update (the weights that
 * sampled), ℓ_ref from the reference, then step k on θ_k (off-policy for k > 0) with
 * lr(stepsBefore + k) and AdamW step count stepsBefore + k + 1.
 */
export function simrlStepsRef(o: SimrlStepsRefOptions): SimrlStepsRefResult {
  const oldLogprobs = completionLogprobsRef(o.policy, o.samples);
  const refLogprobs = completionLogprobsRef(o.reference, o.samples);
  const samples: SimrlRefSample[] = o.samples.map((s, i) => ({
    ...s,
    oldLogprobs: oldLogprobs[i],
    refLogprobs: refLogprobs[i],
  }));
  const moments = o.optim.moments ?? {};
  let policy = o.policy;
  const steps = o.layout.map((microBatches, k) => {
    const global = o.optim.stepsBefore + k;
    const r = simrlStepRef({
      policy,
      samples,
      microBatches,
      loss: o.loss,
      optim: { ...o.optim, lr: o.optim.lr(global), step: global + 1, moments },
    });
    policy = { config: policy.config, params: r.params! };
    return r;
  });
  return { oldLogprobs, refLogprobs, steps, policy, moments };
}
