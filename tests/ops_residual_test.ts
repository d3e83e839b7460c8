import {
  residualBackward,
  residualBackwardRef,
  residualForward,
  residualForwardRef,
} from "../engine/ops/residual.ts";
import {
  dot,
  download,
  expectClose,
  f32,
  finiteDiff,
  NO_GPU,
  randn,
  runGpu,
  TOL,
  upload,
  zeros,
} from "./_ops.ts";
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

for (const n of [1, 3, 1000, 70001]) {
  Deno.test({
    name: `residualForward()/residualBackward() match the reference for n=${n}`,
    ignore: NO_GPU,
    fn: async () => {
      const a = f32(randn(n, 1)), b = f32(randn(n, 2)), acc = f32(randn(n, 3));
      const [ta, tb, to, tacc] = await Promise.all([
        upload("a", a),
        upload("b", b),
        zeros("out", n),
        upload("acc", acc),
      ]);
      await runGpu((rec) => {
        residualForward(rec, { out: to, a: ta, b: tb, n });
        residualBackward(rec, { dst: tacc, src: ta, n });
      });
      expectClose(await download(to), residualForwardRef(a, b), TOL.f32, "out");
      expectClose(await download(tacc), residualBackwardRef(acc, a), TOL.f32, "dst");
    },
  });
}
