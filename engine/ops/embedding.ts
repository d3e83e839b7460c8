/**
 * Embedding gather out[t] = table[ids[t]] and its gradient dTable[ids[t]] += dOut[t].
 * Legend: T tokens, V vocab_size, D hidden_size.
 */

/** Float64 reference gather: out (T, D). */
export function embeddingForwardRef(
  table: ArrayLike<number>,
  ids: ArrayLike<number>,
  { dim }: { dim: number },
): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) {
    for (let d = 0; d < dim; d++) out[t * dim + d] = table[ids[t] * dim + d];
  }
  return out;
}

/** Float64 reference scatter-add: dTable (V, D), returned fresh (the kernel accumulates). */
export function embeddingBackwardRef(
  dOut: ArrayLike<number>,
  ids: ArrayLike<number>,
  { vocab, dim }: { vocab: number; dim: number },
): Float64Array {
  const dTable = new Float64Array(vocab * dim);
  for (let t = 0; t < ids.length; t++) {
    for (let d = 0; d < dim; d++) dTable[ids[t] * dim + d] += dOut[t * dim + d];
  }
  return dTable;
}
