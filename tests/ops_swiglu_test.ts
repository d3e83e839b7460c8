import {
  swigluBackward,
  swigluBackwardRef,
  swigluForward,
  swigluForwardRef,
} from "../engine/ops/swiglu.ts";
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

Deno.test("swigluForwardRef() is g·sigmoid(g)·u", () => {
  assertClose(swigluForwardRef([0, 2], [5, 3]), [0, 3 * 2 / (1 + Math.exp(-2))]);
});

Deno.test("swigluBackwardRef() matches finite differences for n=17", () => {
  const gate = randn(17, 1, 4), up = randn(17, 2), g = randn(17, 3);
  const { dGate, dUp } = swigluBackwardRef(g, gate, up);
  expectClose(dGate, finiteDiff((x) => dot(swigluForwardRef(x, up), g), gate), TOL.fd, "dGate");
  expectClose(dUp, finiteDiff((x) => dot(swigluForwardRef(gate, x), g), up), TOL.fd, "dUp");
});

for (const n of [1, 3, 17, 1000]) {
  Deno.test({
    name: `swigluForward()/swigluBackward() match the reference for n=${n}`,
    ignore: NO_GPU,
    fn: async () => {
      const gate = f32(randn(n, 1, 8)), up = f32(randn(n, 2)), dH = f32(randn(n, 3));
      const [tg, tu, th, tdh, tdg, tdu] = await Promise.all([
        upload("gate", gate),
        upload("up", up),
        zeros("h", n),
        upload("dH", dH),
        zeros("dGate", n),
        zeros("dUp", n),
      ]);
      await runGpu((rec) => {
        swigluForward(rec, { h: th, gate: tg, up: tu, n });
        swigluBackward(rec, { dGate: tdg, dUp: tdu, dH: tdh, gate: tg, up: tu, n });
      });
      const ref = swigluBackwardRef(dH, gate, up);
      expectClose(await download(th), swigluForwardRef(gate, up), TOL.f32, "h");
      expectClose(await download(tdg), ref.dGate, TOL.f32, "dGate");
      expectClose(await download(tdu), ref.dUp, TOL.f32, "dUp");
    },
  });
}

Deno.test({
  name: "swigluBackward() matches central differences of swigluForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const n = 17, gate = f32(randn(n, 40, 3)), up = f32(randn(n, 41)), g = f32(randn(n, 42));
    const run = async (gg: Float64Array, uu: Float64Array) => {
      const [tg, tu, th, tdh, tdg, tdu] = await Promise.all([
        upload("gate", gg),
        upload("up", uu),
        zeros("h", n),
        upload("dH", g),
        zeros("dGate", n),
        zeros("dUp", n),
      ]);
      await runGpu((rec) => {
        swigluForward(rec, { h: th, gate: tg, up: tu, n });
        swigluBackward(rec, { dGate: tdg, dUp: tdu, dH: tdh, gate: tg, up: tu, n });
      });
      return { loss: dot(await download(th), g), dg: await download(tdg), du: await download(tdu) };
    };
    const { dg, du } = await run(gate, up);
    const idx = [0, 4, 9, 16], tol = { atol: 2e-3, rtol: 2e-3 };
    const fg = await gpuFiniteDiff(async (x) => (await run(x, up)).loss, gate, idx);
    expectClose(fg, idx.map((i) => dg[i]), tol, "dGate");
    const fu = await gpuFiniteDiff(async (x) => (await run(gate, x)).loss, up, idx);
    expectClose(fu, idx.map((i) => du[i]), tol, "dUp");
  },
});
