import { ropeBackwardRef, ropeForwardRef, ropeInvFreq, ropeTable } from "../engine/ops/rope.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("ropeForwardRef() rotates each (i, i+E/2) pair by pos·θ^(-2i/E)", () => {
  // E = 4, θ = 100: inv_freq = [1, 0.1]; position 2 → angles 2 and 0.2.
  const inv = ropeInvFreq(100, 4);
  assertClose(inv, [1, 0.1], { rtol: 1e-7 });
  const y = ropeForwardRef([1, 2, 3, 4], [2], 100, { tokens: 1, heads: 1, headDim: 4 });
  const a0 = Math.fround(2 * inv[0]), a1 = Math.fround(2 * inv[1]);
  assertClose(y, [
    1 * Math.cos(a0) - 3 * Math.sin(a0),
    2 * Math.cos(a1) - 4 * Math.sin(a1),
    3 * Math.cos(a0) + 1 * Math.sin(a0),
    4 * Math.cos(a1) + 2 * Math.sin(a1),
  ]);
});

Deno.test("ropeForwardRef() adds posOffset to the position ids", () => {
  const x = randn(2 * 3 * 8, 4);
  const shape = { tokens: 2, heads: 3, headDim: 8 };
  expectClose(
    ropeForwardRef(x, [0, 1], 1e4, { ...shape, posOffset: 5 }),
    ropeForwardRef(x, [5, 6], 1e4, shape),
    { atol: 0, rtol: 0 },
  );
});

Deno.test("ropeTable() holds cos/sin of the f32 angle", () => {
  const t = ropeTable({ theta: 1e6, headDim: 6, positions: 9 });
  const inv = ropeInvFreq(1e6, 6);
  const a = Math.fround(Math.fround(7) * inv[2]);
  assertClose(t[(7 * 3 + 2) * 2], Math.cos(a), { rtol: 1e-7 });
  assertClose(t[(7 * 3 + 2) * 2 + 1], Math.sin(a), { rtol: 1e-7 });
});

Deno.test("ropeBackwardRef() matches finite differences for T=3 H=2 E=10", () => {
  const shape = { tokens: 3, heads: 2, headDim: 10, posOffset: 7 };
  const pos = [0, 4, 1000];
  const x = randn(60, 5), g = randn(60, 6);
  const dx = ropeBackwardRef(g, pos, 1e6, shape);
  expectClose(dx, finiteDiff((xx) => dot(ropeForwardRef(xx, pos, 1e6, shape), g), x), TOL.fd);
});
