/**
 * SwiGLU (Qwen3 MLP): h = silu(gate) · up with silu(g) = g·σ(g), elementwise over (T, F).
 * Backward: dGate = dH·up·σ(g)·(1 + g·(1 − σ(g))), dUp = dH·silu(g).
 * Legend: T tokens, F intermediate_size.
 */

function sigmoid(g: number): number {
  return 1 / (1 + Math.exp(-g));
}

/** Float64 reference forward. */
export function swigluForwardRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

/** Float64 reference backward. */
export function swigluBackwardRef(
  dOut: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = new Float64Array(gate.length), dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i], s = sigmoid(g);
    dGate[i] = dOut[i] * up[i] * s * (1 + g * (1 - s));
    dUp[i] = dOut[i] * g * s;
  }
  return { dGate, dUp };
}
