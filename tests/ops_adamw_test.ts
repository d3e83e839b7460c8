import { adamwRef, gradNormRef } from "../engine/ops/adamw.ts";
import { assertClose } from "./assert.ts";

Deno.test("adamwRef() first step moves each weight by lr·sign(g) plus decay", () => {
  // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
  const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0.5, step: 1 };
  const r = adamwRef([1, -2], [3, -0.5], [0, 0], [0, 0], h);
  assertClose(r.param, [1 * (1 - 0.05) - 0.1, -2 * (1 - 0.05) + 0.1], { rtol: 1e-12 });
  assertClose(r.m, [0.3, -0.05]);
  assertClose(r.v, [0.001 * 9, 0.001 * 0.25]);
});

Deno.test("adamwRef() applies gradScale before the moments", () => {
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 7 };
  const a = adamwRef([0.5], [4], [0.2], [0.3], h, 0.25);
  const b = adamwRef([0.5], [1], [0.2], [0.3], h, 1);
  assertClose(a.param, b.param);
  assertClose(a.m, b.m);
});

Deno.test("gradNormRef() is the joint L2 norm and clips to maxNorm", () => {
  const { norm, scale } = gradNormRef([[3], [4, 0]], 1);
  assertClose(norm, 5);
  assertClose(scale, 1 / (5 + 1e-6));
  assertClose(gradNormRef([[0.3], [0.4]], 1).scale, 1);
});
