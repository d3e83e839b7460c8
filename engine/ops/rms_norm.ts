/**
 * RMSNorm (Qwen3): y = x / sqrt(mean(x²) + eps) · w over the last dimension of `rows` rows.
 * Used on the hidden state (dim = D) and per head on q/k (rows = T·H, dim = E).
 * Legend: T tokens, D hidden_size, H heads, E head_dim.
 */

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
