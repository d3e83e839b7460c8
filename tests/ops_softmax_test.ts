import { logSoftmaxBackwardRef, logSoftmaxForwardRef } from "../engine/ops/softmax.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("logSoftmaxForwardRef() of [0, ln 3] is [ln 1/4, ln 3/4]", () => {
  const { y, lse } = logSoftmaxForwardRef([0, Math.log(3)], { rows: 1, cols: 2 });
  assertClose(lse, [Math.log(4)]);
  assertClose(y, [Math.log(0.25), Math.log(0.75)]);
});

Deno.test("logSoftmaxBackwardRef() matches finite differences for rows=3 cols=17", () => {
  const shape = { rows: 3, cols: 17 };
  const x = randn(51, 1, 5), g = randn(51, 2);
  const dx = logSoftmaxBackwardRef(g, logSoftmaxForwardRef(x, shape).y, shape);
  expectClose(dx, finiteDiff((xx) => dot(logSoftmaxForwardRef(xx, shape).y, g), x), TOL.fd);
});
