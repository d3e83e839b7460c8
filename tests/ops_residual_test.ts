import { residualBackwardRef, residualForwardRef } from "../engine/ops/residual.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("residualForwardRef() adds elementwise", () => {
  assertClose(residualForwardRef([1, 2], [10, -2]), [11, 0]);
});

Deno.test("residualBackwardRef() accumulates dOut, the finite-difference gradient of a + b", () => {
  const a = randn(5, 1), b = randn(5, 2), g = randn(5, 3), acc = randn(5, 4);
  const fdA = finiteDiff((x) => dot(residualForwardRef(x, b), g), a);
  const fdB = finiteDiff((x) => dot(residualForwardRef(a, x), g), b);
  expectClose(residualBackwardRef(acc, g), residualForwardRef(acc, fdA), TOL.fd, "dA");
  expectClose(fdB, g, TOL.fd, "dB");
});
