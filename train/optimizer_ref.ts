/**
 * Float64 twin of train/optimizer.ts: AdamW as torch.optim.AdamW computes it, the global
 * gradient norm and its clipping as torch.nn.utils.clip_grad_norm_ does, and RefAdamW, the
 * optimizer of the float64 trainers (`--device cpu`): moments per parameter, OpenRLHF's no-decay
 * rule, parameters and moments rounded to f32 after each update like the engine's master copies
 * (so a checkpoint written as F32 resumes bit for bit), checkpoint source and load.
 * The GPU optimizer kernel is judged against this file.
 *
 * One update of a parameter p with gradient g at step t (1-based), learning rate lr:
 *   p ← p · (1 − lr · weight_decay)                 decoupled decay, applied first
 *   m ← β1 · m + (1 − β1) · g,  v ← β2 · v + (1 − β2) · g²
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
 * Clipping: n = ‖all gradients‖₂; s = max_norm / (n + 1e-6); gradients × s when s < 1.
 * Not here: AMSGrad, maximize, foreach/fused variants (same arithmetic, other rounding).
 */

import { openOptimizerState, type OptimizerSource } from "./checkpoint.ts";
import { type AdamWConfig, decaysWeight } from "./optimizer.ts";

export { decaysWeight };

/** OpenRLHF's AdamW hyper-parameters (`adam_betas`, `adam_eps`, `weight_decay`). */
export interface AdamWOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

/** The moments of one parameter tensor: first (m) and second (v), both (numel). */
export interface AdamWMoments {
  m: Float64Array; // (numel)
  v: Float64Array; // (numel)
}

/** Zeroed moments for a tensor of `numel` values. */
export function adamwMoments(numel: number): AdamWMoments {
  return { m: new Float64Array(numel), v: new Float64Array(numel) };
}

/**
 * One AdamW update of `param` in place. `step` is the 1-based count of updates including this
 * one (torch's `state["step"]` after its increment); `weightDecay` is 0 for no-decay tensors.
 */
export function adamwStepRef(
  param: Float64Array,
  opts: AdamWOptions & { grad: ArrayLike<number>; moments: AdamWMoments; step: number },
): void {
  const { lr, betas: [b1, b2], eps, weightDecay, grad, moments: { m, v }, step } = opts;
  if (grad.length !== param.length || m.length !== param.length || v.length !== param.length) {
    throw new RangeError(
      `AdamW sizes differ: param ${param.length}, grad ${grad.length}, moments ${m.length}/${v.length}`,
    );
  }
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`AdamW step must be >= 1, got ${step}`);
  }
  const bc1 = 1 - b1 ** step;
  const bc2Sqrt = Math.sqrt(1 - b2 ** step);
  const stepSize = lr / bc1;
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    param[i] = param[i] * decay - stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}

/** ‖·‖₂ over all gradient tensors together (NaN/Infinity propagate). */
export function globalGradNormRef(grads: readonly ArrayLike<number>[]): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

/**
 * Clips all gradients in place to a global norm of at most `maxNorm` (torch's 1e-6 guard).
 * Returns the norm before clipping, the factor applied (1 when none) and whether the norm is
 * finite; a non-finite norm leaves the gradients untouched (the trainer skips such a step).
 */
export function clipGradNormRef(
  grads: Float64Array[],
  maxNorm: number,
): { norm: number; scale: number; finite: boolean } {
  const norm = globalGradNormRef(grads);
  const finite = Number.isFinite(norm);
  const coef = maxNorm / (norm + 1e-6);
  const scale = finite && coef < 1 ? coef : 1;
  if (scale !== 1) { for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= scale; }
  return { norm, scale, finite };
}

/** The float64 trainers' optimizer over a reference model's parameters (by name). */
export class RefAdamW {
  readonly moments: Record<string, AdamWMoments>;

  constructor(
    readonly params: Record<string, Float64Array>,
    readonly cfg: Omit<AdamWConfig, "maxNorm">,
    moments?: Record<string, AdamWMoments>,
  ) {
    for (const p of Object.values(params)) roundF32(p);
    this.moments = moments ??
      Object.fromEntries(Object.entries(params).map(([n, p]) => [n, adamwMoments(p.length)]));
  }

  /** Zeroed moments, or those of a checkpoint's optimizer.safetensors. */
  static async create(
    params: Record<string, Float64Array>,
    cfg: Omit<AdamWConfig, "maxNorm">,
    opts: { stateFile?: string } = {},
  ): Promise<RefAdamW> {
    if (!opts.stateFile) return new RefAdamW(params, cfg);
    const st = await openOptimizerState(opts.stateFile);
    try {
      const moments: Record<string, AdamWMoments> = {};
      for (const name of Object.keys(params)) {
        moments[name] = {
          m: Float64Array.from(await st.read(name, "exp_avg")),
          v: Float64Array.from(await st.read(name, "exp_avg_sq")),
        };
      }
      return new RefAdamW(params, cfg, moments);
    } finally {
      st.close();
    }
  }

  /** grads × clipScale, then AdamW at 1-based `step`; rounds to f32 like the engine. */
  step(
    grads: Record<string, Float64Array>,
    o: { lr: number; clipScale: number; step: number },
  ): void {
    for (const [name, p] of Object.entries(this.params)) {
      const g = grads[name];
      if (o.clipScale !== 1) { for (let i = 0; i < g.length; i++) g[i] *= o.clipScale; }
      adamwStepRef(p, {
        lr: o.lr,
        betas: this.cfg.betas,
        eps: this.cfg.eps,
        weightDecay: decaysWeight(name) ? this.cfg.weightDecay : 0,
        grad: g,
        moments: this.moments[name],
        step: o.step,
      });
      roundF32(p);
      roundF32(this.moments[name].m);
      roundF32(this.moments[name].v);
    }
  }

  /** The moments as a checkpoint source; `step` is the AdamW step count. */
  state(step: number, shapes: { name: string; shape: readonly number[] }[]): OptimizerSource {
    return {
      step,
      tensors: shapes,
      read: (name, moment) =>
        Float32Array.from(moment === "exp_avg" ? this.moments[name].m : this.moments[name].v),
    };
  }
}

function roundF32(x: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i]);
}
