/**
 * Cross-entropy against target ids, per token row: loss = lse − x[target]; gradient w.r.t. the
 * logits dx = (softmax(x) − onehot(target))·dLoss. Both run per vocabulary chunk once the lse of
 * the row is known (softmax.ts); a target of IGNORE_INDEX gives loss 0 and a zero gradient.
 * Legend: N token rows, V vocab.
 */

export const IGNORE_INDEX = 0xffffffff;

/** Float64 reference: loss per row (N). */
export function crossEntropyForwardRef(
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const loss = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    loss[r] = m + Math.log(s) - x[r * cols + targets[r]];
  }
  return loss;
}

/** Float64 reference gradient of Σ_r dLoss[r]·loss[r] w.r.t. the logits (N, V). */
export function crossEntropyBackwardRef(
  dLoss: ArrayLike<number>,
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) {
      const p = Math.exp(x[r * cols + c] - m) / s;
      dx[r * cols + c] = (p - (c === targets[r] ? 1 : 0)) * dLoss[r];
    }
  }
  return dx;
}
