/**
 * Residual add: out = a + b over any shape; its backward hands dOut to both inputs, which on the
 * residual stream means accumulating: dst += src (the `accumulate` entry).
 */
import code from "../../wgsl/residual.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

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

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const residualKernel = family("wgsl/residual.wgsl", code, {
  forward: ["params:uniform", "a:read", "b:read", "out:storage"],
  backward: ["params:uniform", "src:read", "dst:storage"],
});

/** out = a + b over n elements. */
export function residualForward(
  rec: Recorder,
  o: { out: Tensor; a: Tensor; b: Tensor; n: number },
): void {
  for (const [t, w] of [[o.out, "output"], [o.a, "a"], [o.b, "b"]] as const) {
    need(t, `Residual ${w}`, o.n);
  }
  rec.dispatch(
    residualKernel(rec, "forward", { WG }),
    { params: params(rec, { n: o.n }), a: o.a, b: o.b, out: o.out },
    grid(o.n, WG),
  );
}

/** dst += src over n elements (a residual branch's gradient into the stream's; also x += f(x)). */
export function residualBackward(
  rec: Recorder,
  o: { dst: Tensor; src: Tensor; n: number },
): void {
  need(o.dst, "Residual dst", o.n);
  need(o.src, "Residual src", o.n);
  rec.dispatch(
    residualKernel(rec, "backward", { WG }),
    { params: params(rec, { n: o.n }), src: o.src, dst: o.dst },
    grid(o.n, WG),
  );
}
