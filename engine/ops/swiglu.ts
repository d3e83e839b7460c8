/**
 * SwiGLU (Qwen3 MLP): h = silu(gate) · up with silu(g) = g·σ(g), elementwise over (T, F).
 * Backward: dGate = dH·up·σ(g)·(1 + g·(1 − σ(g))), dUp = dH·silu(g).
 * Legend: T tokens, F intermediate_size.
 */
import code from "../../wgsl/swiglu.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

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

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const swigluKernel = family("wgsl/swiglu.wgsl", code, {
  forward: ["params:uniform", "gate:read", "up:read", "h:storage"],
  backward: ["params:uniform", "gate:read", "up:read", "dH:read", "dGate:storage", "dUp:storage"],
});

/** h = silu(gate)·up over n elements (T·F). */
export function swigluForward(
  rec: Recorder,
  o: { h: Tensor; gate: Tensor; up: Tensor; n: number },
): void {
  for (const [t, w] of [[o.h, "output"], [o.gate, "gate"], [o.up, "up"]] as const) {
    need(t, `SwiGLU ${w}`, o.n);
  }
  rec.dispatch(
    swigluKernel(rec, "forward", { WG }),
    { params: params(rec, { n: o.n }), gate: o.gate, up: o.up, h: o.h },
    grid(o.n, WG),
  );
}

/** dGate and dUp (overwritten) from dH, gate and up, n elements each. */
export function swigluBackward(
  rec: Recorder,
  o: { dGate: Tensor; dUp: Tensor; dH: Tensor; gate: Tensor; up: Tensor; n: number },
): void {
  for (const [t, w] of [[o.dGate, "dGate"], [o.dUp, "dUp"], [o.dH, "dH"]] as const) {
    need(t, `SwiGLU ${w}`, o.n);
  }
  rec.dispatch(
    swigluKernel(rec, "backward", { WG }),
    {
      params: params(rec, { n: o.n }),
      gate: o.gate,
      up: o.up,
      dH: o.dH,
      dGate: o.dGate,
      dUp: o.dUp,
    },
    grid(o.n, WG),
  );
}
