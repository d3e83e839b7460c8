import { swigluBackwardRef, swigluForwardRef } from "../engine/ops/swiglu.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("swigluForwardRef() is g·sigmoid(g)·u", () => {
  assertClose(swigluForwardRef([0, 2], [5, 3]), [0, 3 * 2 / (1 + Math.exp(-2))]);
});

Deno.test("swigluBackwardRef() matches finite differences for n=17", () => {
  const gate = randn(17, 1, 4), up = randn(17, 2), g = randn(17, 3);
  const { dGate, dUp } = swigluBackwardRef(g, gate, up);
  expectClose(dGate, finiteDiff((x) => dot(swigluForwardRef(x, up), g), gate), TOL.fd, "dGate");
  expectClose(dUp, finiteDiff((x) => dot(swigluForwardRef(gate, x), g), up), TOL.fd, "dUp");
});
