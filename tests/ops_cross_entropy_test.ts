import {
  crossEntropyBackwardRef,
  crossEntropyForwardRef,
  IGNORE_INDEX,
} from "../engine/ops/cross_entropy.ts";
import { expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("crossEntropyForwardRef() of uniform logits is ln V; ignored rows give 0", () => {
  const loss = crossEntropyForwardRef([0, 0, 0, 0, 5, 1, 2, 3], [2, IGNORE_INDEX], {
    rows: 2,
    cols: 4,
  });
  assertClose(loss, [Math.log(4), 0]);
});

Deno.test("crossEntropyBackwardRef() matches finite differences for rows=3 cols=17", () => {
  const shape = { rows: 3, cols: 17 };
  const targets = [5, IGNORE_INDEX, 16];
  const x = randn(51, 1, 4), dLoss = [0.5, 1, -2];
  const f = (xx: Float64Array) => {
    const l = crossEntropyForwardRef(xx, targets, shape);
    return l.reduce((s, v, i) => s + v * dLoss[i], 0);
  };
  expectClose(crossEntropyBackwardRef(dLoss, x, targets, shape), finiteDiff(f, x), TOL.fd);
});
