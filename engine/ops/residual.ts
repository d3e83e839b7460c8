/**
 * Residual add: out = a + b over any shape; its backward hands dOut to both inputs, which on the
 * residual stream means accumulating: dst += src (the `accumulate` entry).
 */

/** Float64 reference forward. */
export function residualForwardRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

/** Float64 reference of the accumulation used by the backward: dst + src. */
export function residualBackwardRef(
  dst: ArrayLike<number>,
  src: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(dst, (v, i) => v + src[i]);
}
