/**
 * Top-k over the vocabulary (k ≤ 128), chunk by chunk: a running (N, k) list of (logit, id) is
 * merged with each vocabulary chunk; at the end the logits become log-probs by subtracting lse.
 * Order: value descending, ties by smaller id first.
 * Legend: N token rows, V vocab, C chunk columns, k kept entries.
 */

export const TOPK_MAX = 128;

/** Float64 reference: ids (N, k) and log-probs (N, k) of the k largest entries of each row. */
export function topkRef(
  x: ArrayLike<number>,
  { rows, cols, k }: { rows: number; cols: number; k: number },
): { ids: Uint32Array; logprobs: Float64Array } {
  const ids = new Uint32Array(rows * k), logprobs = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    const lse = m + Math.log(s);
    const order = Array.from({ length: cols }, (_, c) => c);
    order.sort((a, b) => x[r * cols + b] - x[r * cols + a] || a - b);
    for (let i = 0; i < k; i++) {
      ids[r * k + i] = order[i];
      logprobs[r * k + i] = x[r * cols + order[i]] - lse;
    }
  }
  return { ids, logprobs };
}
