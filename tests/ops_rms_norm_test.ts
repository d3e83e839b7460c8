import {
  rmsNormBackward,
  rmsNormBackwardRef,
  rmsNormForward,
  rmsNormForwardRef,
} from "../engine/ops/rms_norm.ts";
import {
  dot,
  download,
  expectClose,
  f32,
  finiteDiff,
  gpuFiniteDiff,
  NO_GPU,
  randn,
  runGpu,
  TOL,
  upload,
  zeros,
} from "./_ops.ts";
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

for (const [rows, dim] of [[1, 1], [3, 17], [5, 1000], [70, 3]]) {
  Deno.test({
    name: `rmsNormForward()/rmsNormBackward() match the reference for rows=${rows} dim=${dim}`,
    ignore: NO_GPU,
    fn: async () => {
      const shape = { rows, dim, eps: 1e-6 };
      const x = f32(randn(rows * dim, 10)), w = f32(randn(dim, 11, 2));
      const dyv = f32(randn(rows * dim, 12));
      const dW0 = f32(randn(dim, 13));
      const [tx, tw, ty, tr, tdy, tdx, tdw] = await Promise.all([
        upload("x", x),
        upload("w", w),
        zeros("y", rows * dim),
        zeros("rstd", rows),
        upload("dy", dyv),
        zeros("dx", rows * dim),
        upload("dW", dW0),
      ]);
      await runGpu((rec) => {
        rmsNormForward(rec, { y: ty, rstd: tr, x: tx, weight: tw, ...shape });
        rmsNormBackward(rec, {
          dx: tdx,
          dWeight: tdw,
          dy: tdy,
          x: tx,
          weight: tw,
          rstd: tr,
          ...shape,
        });
      });
      const ref = rmsNormForwardRef(x, w, shape);
      const bref = rmsNormBackwardRef(dyv, x, w, shape);
      expectClose(await download(ty), ref.y, TOL.f32, "y");
      expectClose(await download(tr), ref.rstd, TOL.f32, "rstd");
      expectClose(await download(tdx), bref.dx, TOL.f32, "dx");
      expectClose(await download(tdw), bref.dWeight.map((v, i) => v + dW0[i]), TOL.f32, "dWeight");
    },
  });
}

Deno.test({
  name: "rmsNormBackward() matches central differences of rmsNormForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const shape = { rows: 3, dim: 17, eps: 1e-6 };
    const x = f32(randn(51, 30)), w = f32(randn(17, 31)), g = f32(randn(51, 32));
    const run = async (xx: Float64Array, ww: Float64Array) => {
      const [tx, tw, ty, tr, tdy, tdx, tdw] = await Promise.all([
        upload("x", xx),
        upload("w", ww),
        zeros("y", 51),
        zeros("rstd", 3),
        upload("dy", g),
        zeros("dx", 51),
        zeros("dW", 17),
      ]);
      await runGpu((rec) => {
        rmsNormForward(rec, { y: ty, rstd: tr, x: tx, weight: tw, ...shape });
        rmsNormBackward(rec, {
          dx: tdx,
          dWeight: tdw,
          dy: tdy,
          x: tx,
          weight: tw,
          rstd: tr,
          ...shape,
        });
      });
      return { loss: dot(await download(ty), g), dx: await download(tdx), dW: await download(tdw) };
    };
    const { dx, dW } = await run(x, w);
    const ix = [0, 7, 20, 33, 50], iw = [0, 5, 16];
    const tol = { atol: 2e-3, rtol: 2e-3 };
    const fdx = await gpuFiniteDiff(async (xx) => (await run(xx, w)).loss, x, ix);
    expectClose(fdx, ix.map((i) => dx[i]), tol, "dx");
    const fdw = await gpuFiniteDiff(async (ww) => (await run(x, ww)).loss, w, iw);
    expectClose(fdw, iw.map((i) => dW[i]), tol, "dWeight");
  },
});
