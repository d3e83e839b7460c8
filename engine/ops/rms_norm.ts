/**
 * RMSNorm (Qwen3): y = x / sqrt(mean(x²) + eps) · w over the last dimension of `rows` rows.
 * Used on the hidden state (dim = D) and per head on q/k (rows = T·H, dim = E).
 * Legend: T tokens, D hidden_size, H heads, E head_dim.
 */
import code from "../../wgsl/rms_norm.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

export interface RmsNormShape {
  rows: number;
  dim: number;
  eps: number;
}

/** Float64 reference: y (rows, dim) and the saved 1/rms per row (rows). */
export function rmsNormForwardRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  { rows, dim, eps }: RmsNormShape,
): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * dim);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * s * weight[i];
  }
  return { y, rstd };
}

/**
 * Float64 reference backward: dx = s·w·dy − x·s³/dim·Σ(dy·w·x), dWeight = Σ_rows dy·x·s
 * (returned fresh; the kernel accumulates it into dWeight).
 */
export function rmsNormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  { rows, dim, eps }: RmsNormShape,
): { dx: Float64Array; dWeight: Float64Array } {
  const dx = new Float64Array(rows * dim);
  const dWeight = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0, dot = 0;
    for (let i = 0; i < dim; i++) {
      const xi = x[r * dim + i];
      ss += xi * xi;
      dot += dy[r * dim + i] * weight[i] * xi;
    }
    const s = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) {
      const xi = x[r * dim + i];
      dx[r * dim + i] = s * weight[i] * dy[r * dim + i] - xi * s * s * s / dim * dot;
      dWeight[i] += dy[r * dim + i] * xi * s;
    }
  }
  return { dx, dWeight };
}

// ---- GPU kernels ----------------------------------------------------------------------------

const FILE = "wgsl/rms_norm.wgsl";
const WG = 64;

const rmsKernel = family(FILE, code, {
  forward: ["params:uniform", "x:read", "weight:read", "y:storage", "rstd:storage"],
  backward: ["params:uniform", "x:read", "weight:read", "dy:read", "rstd:storage", "dx:storage"],
  backward_weight: ["params:uniform", "x:read", "dWeight:storage", "dy:read", "rstd:storage"],
});

function rmsParams(rec: Recorder, { rows, dim, eps }: RmsNormShape) {
  return params(rec, { rows, dim, eps, pad: 0 }, ["eps"]);
}

/** y (rows, dim) = rmsnorm(x) · weight; saves rstd (rows) for the backward. */
export function rmsNormForward(
  rec: Recorder,
  o: { y: Tensor; rstd: Tensor; x: Tensor; weight: Tensor } & RmsNormShape,
): void {
  need(o.x, "RMSNorm input", o.rows * o.dim);
  need(o.weight, "RMSNorm weight", o.dim);
  need(o.y, "RMSNorm output", o.rows * o.dim);
  need(o.rstd, "RMSNorm rstd", o.rows);
  rec.dispatch(
    rmsKernel(rec, "forward", { WG }),
    { params: rmsParams(rec, o), x: o.x, weight: o.weight, y: o.y, rstd: o.rstd },
    grid(o.rows, 1),
  );
}

/** dx (rows, dim) = ∂/∂x (overwritten); dWeight (dim) += Σ_rows dy·x·rstd. */
export function rmsNormBackward(
  rec: Recorder,
  o:
    & { dx: Tensor; dWeight: Tensor; dy: Tensor; x: Tensor; weight: Tensor; rstd: Tensor }
    & RmsNormShape,
): void {
  need(o.dy, "RMSNorm dy", o.rows * o.dim);
  need(o.dx, "RMSNorm dx", o.rows * o.dim);
  need(o.dWeight, "RMSNorm dWeight", o.dim);
  const p = rmsParams(rec, o);
  rec.dispatch(
    rmsKernel(rec, "backward", { WG }),
    { params: p, x: o.x, weight: o.weight, dy: o.dy, rstd: o.rstd, dx: o.dx },
    grid(o.rows, 1),
  );
  rec.dispatch(
    rmsKernel(rec, "backward_weight", { WG }),
    { params: p, x: o.x, dWeight: o.dWeight, dy: o.dy, rstd: o.rstd },
    [Math.ceil(o.dim / WG)],
  );
}
