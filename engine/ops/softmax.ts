/**
 * Log-softmax over a vocabulary processed in column chunks (blocks of vocabulary rows of the LM
 * head): a running (max, sum of exp) per token row is updated chunk by chunk (online
 * log-sum-exp), finalised to lse, and each chunk's log-probs are x − lse. The backward of
 * y = log_softmax(x) is dx = dy − exp(y)·Σ dy, where Σ dy is also accumulated chunk by chunk.
 * Legend: N token rows, V vocab, C chunk columns.
 */

/** Float64 reference: log-probs (N, V) and lse (N). */
export function logSoftmaxForwardRef(
  x: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): { y: Float64Array; lse: Float64Array } {
  const y = new Float64Array(rows * cols), lse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    lse[r] = m + Math.log(s);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - lse[r];
  }
  return { y, lse };
}

/** Float64 reference backward: dx = dy − exp(y)·Σ_row dy. */
export function logSoftmaxBackwardRef(
  dy: ArrayLike<number>,
  y: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[r * cols + c];
    for (let c = 0; c < cols; c++) {
      dx[r * cols + c] = dy[r * cols + c] - Math.exp(y[r * cols + c]) * s;
    }
  }
  return dx;
}
