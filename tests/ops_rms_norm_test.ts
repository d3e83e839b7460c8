import { rmsNormBackwardRef, rmsNormForwardRef } from "../engine/ops/rms_norm.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("rmsNormForwardRef() matches a hand-computed row", () => {
  // x = [3, 4]: mean(x²) = 12.5, rms = sqrt(12.5 + 0.5) = sqrt(13).
  const { y, rstd } = rmsNormForwardRef([3, 4], [1, 2], { rows: 1, dim: 2, eps: 0.5 });
  assertClose(rstd[0], 1 / Math.sqrt(13));
  assertClose(y, [3 / Math.sqrt(13), 8 / Math.sqrt(13)]);
});

for (const [rows, dim] of [[1, 1], [3, 17], [2, 64]]) {
  Deno.test(`rmsNormBackwardRef() matches finite differences for rows=${rows} dim=${dim}`, () => {
    const shape = { rows, dim, eps: 1e-6 };
    const x = randn(rows * dim, 1), w = randn(dim, 2), g = randn(rows * dim, 3);
    const { dx, dWeight } = rmsNormBackwardRef(g, x, w, shape);
    expectClose(dx, finiteDiff((xx) => dot(rmsNormForwardRef(xx, w, shape).y, g), x), TOL.fd, "dx");
    expectClose(
      dWeight,
      finiteDiff((ww) => dot(rmsNormForwardRef(x, ww, shape).y, g), w),
      TOL.fd,
      "dWeight",
    );
  });
}
