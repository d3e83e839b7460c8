/**
 * AdamW (PyTorch semantics: decoupled weight decay p ← p·(1 − lr·wd), bias-corrected moments) and
 * the global gradient norm with clipping. The clip factor min(1, maxNorm / (norm + 1e-6)) is
 * computed on the GPU into a small buffer that the AdamW kernel reads, so nothing is read back.
 */
import code from "../../wgsl/adamw.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import { createTensor, type Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based optimizer step (for the bias corrections). */
  step: number;
}

/** Float64 reference of one AdamW step; gradScale multiplies the gradient (the clip factor). */
export function adamwRef(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  { lr, beta1, beta2, eps, weightDecay, step }: AdamWHyper,
  gradScale = 1,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const n = param.length;
  const p2 = new Float64Array(n), m2 = new Float64Array(n), v2 = new Float64Array(n);
  const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * gradScale;
    m2[i] = beta1 * m[i] + (1 - beta1) * g;
    v2[i] = beta2 * v[i] + (1 - beta2) * g * g;
    const denom = Math.sqrt(v2[i]) / Math.sqrt(bc2) + eps;
    p2[i] = param[i] * (1 - lr * weightDecay) - (lr / bc1) * m2[i] / denom;
  }
  return { param: p2, m: m2, v: v2 };
}

/** Float64 reference: the L2 norm of all tensors together and the clip factor (1 if not finite). */
export function gradNormRef(
  grads: ArrayLike<number>[],
  maxNorm: number,
): { norm: number; scale: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  const coef = maxNorm / (norm + 1e-6);
  return { norm, scale: Number.isFinite(norm) && coef < 1 ? coef : 1 };
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
/** Partial sums per tensor (shard) in the gradient-norm pass: at most this many workgroups. */
export const GRAD_NORM_SLOTS = 64;

const optKernel = family("wgsl/adamw.wgsl", code, {
  sumsq: ["params:uniform", "x:read", "partials:storage"],
  finish: ["params:uniform", "clip:storage", "partials:storage"],
  adamw: [
    "params:uniform",
    "clip:storage",
    "grad:storage",
    "param:storage",
    "m:storage",
    "v:storage",
  ],
});

interface OptParams {
  n: number;
  slot?: number;
  useClip?: number;
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  decay?: number;
  stepSize?: number;
  bc2Sqrt?: number;
  maxNorm?: number;
}

function optParams(rec: Recorder, p: OptParams): GPUBufferBinding {
  const f = {
    n: p.n,
    slot: p.slot ?? 0,
    useClip: p.useClip ?? 0,
    pad0: 0,
    lr: p.lr ?? 0,
    beta1: p.beta1 ?? 0,
    beta2: p.beta2 ?? 0,
    eps: p.eps ?? 0,
    decay: p.decay ?? 0,
    stepSize: p.stepSize ?? 0,
    bc2Sqrt: p.bc2Sqrt ?? 0,
    maxNorm: p.maxNorm ?? 0,
  };
  return params(rec, f, [
    "lr",
    "beta1",
    "beta2",
    "eps",
    "decay",
    "stepSize",
    "bc2Sqrt",
    "maxNorm",
  ]);
}

const unused = new WeakMap<GPUDevice, Tensor>();
function unusedClip(rec: Recorder): Tensor {
  let t = unused.get(rec.gpu.device);
  if (!t) {
    t = createTensor(rec.gpu, { shape: [2], dtype: "f32", label: "adamw.unused_clip" });
    unused.set(rec.gpu.device, t);
  }
  return t;
}

/** A tensor or its row shards (bound one by one; all lists of one call chunked alike). */
export type Parts = Tensor | Tensor[];
const parts = (t: Parts): Tensor[] => Array.isArray(t) ? t : [t];

/**
 * Adds the squared L2 norm of `x` (all shards) to the partial sums starting at `slot`;
 * returns the next free slot. `partials` must hold every slot of the step.
 */
export function gradNormPartial(
  rec: Recorder,
  o: { x: Parts; partials: Tensor; slot: number },
): number {
  let slot = o.slot;
  for (const t of parts(o.x)) {
    const groups = Math.max(1, Math.min(GRAD_NORM_SLOTS, Math.ceil(t.numel / WG)));
    need(o.partials, "Gradient-norm partials", slot + groups);
    rec.dispatch(
      optKernel(rec, "sumsq", { WG }),
      { params: optParams(rec, { n: t.numel, slot }), x: t, partials: o.partials },
      [groups],
    );
    slot += groups;
  }
  return slot;
}

/** clip (2) = [global norm, min(1, maxNorm / (norm + 1e-6))] from the first `count` partials. */
export function gradNormFinish(
  rec: Recorder,
  o: { clip: Tensor; partials: Tensor; count: number; maxNorm: number },
): void {
  need(o.clip, "Gradient clip", 2);
  need(o.partials, "Gradient-norm partials", o.count);
  rec.dispatch(
    optKernel(rec, "finish", { WG }),
    {
      params: optParams(rec, { n: 0, slot: o.count, maxNorm: o.maxNorm }),
      clip: o.clip,
      partials: o.partials,
    },
    [1],
  );
}

/**
 * One AdamW step on param/m/v (f32, shards alike) from grad. With `clip` the gradient is scaled
 * by clip.scale and the step is skipped when the norm is not finite. `step` is 1-based.
 */
export function adamwStep(
  rec: Recorder,
  o:
    & { param: Parts; grad: Parts; m: Parts; v: Parts; clip?: Tensor }
    & AdamWHyper,
): void {
  const [ps, gs, ms, vs] = [parts(o.param), parts(o.grad), parts(o.m), parts(o.v)];
  if (gs.length !== ps.length || ms.length !== ps.length || vs.length !== ps.length) {
    throw new RangeError("AdamW param, grad, m and v must have the same number of shards");
  }
  const hyper = {
    useClip: o.clip ? 1 : 0,
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    decay: 1 - o.lr * o.weightDecay,
    stepSize: o.lr / (1 - o.beta1 ** o.step),
    bc2Sqrt: Math.sqrt(1 - o.beta2 ** o.step),
  };
  // Without clipping the kernel still binds a clip buffer (unread).
  const clip = o.clip ?? unusedClip(rec);
  ps.forEach((p, i) => {
    for (const [t, w] of [[gs[i], "grad"], [ms[i], "m"], [vs[i], "v"]] as const) {
      need(t, `AdamW ${w}`, p.numel);
    }
    rec.dispatch(
      optKernel(rec, "adamw", { WG }),
      {
        params: optParams(rec, { n: p.numel, ...hyper }),
        clip,
        grad: gs[i],
        param: p,
        m: ms[i],
        v: vs[i],
      },
      grid(p.numel, WG),
    );
  });
}
