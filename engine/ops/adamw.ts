/**
 * AdamW (PyTorch semantics: decoupled weight decay p ← p·(1 − lr·wd), bias-corrected moments) and
 * the global gradient norm with clipping. The clip factor min(1, maxNorm / (norm + 1e-6)) is
 * computed on the GPU into a small buffer that the AdamW kernel reads, so nothing is read back.
 */

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

/** Float64 reference: the L2 norm of all tensors together and the clip factor. */
export function gradNormRef(
  grads: ArrayLike<number>[],
  maxNorm: number,
): { norm: number; scale: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  return { norm, scale: Math.min(1, maxNorm / (norm + 1e-6)) };
}
