import {
  ropeBackward,
  ropeBackwardRef,
  ropeForward,
  ropeForwardRef,
  ropeInvFreq,
  ropeTable,
} from "../engine/ops/rope.ts";
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
} from "./_ops.ts";
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

for (
  const [tokens, heads, headDim, posOffset] of [[1, 1, 2, 0], [3, 5, 34, 9], [17, 2, 128, 100]]
) {
  Deno.test({
    name:
      `ropeForward()/ropeBackward() match the reference for T=${tokens} H=${heads} E=${headDim}`,
    ignore: NO_GPU,
    fn: async () => {
      const shape = { tokens, heads, headDim, posOffset };
      const n = tokens * heads * headDim;
      const pos = Array.from({ length: tokens }, (_, t) => (t * 37) % 200);
      const x = f32(randn(n, 1)), dy = f32(randn(n, 2));
      const table = ropeTable({ theta: 1e6, headDim, positions: 400 });
      const [tx, tdx, tp, tt] = await Promise.all([
        upload("x", x),
        upload("dx", dy),
        upload("pos", pos, "u32"),
        upload("table", table),
      ]);
      await runGpu((rec) => {
        ropeForward(rec, { x: tx, positions: tp, table: tt, ...shape });
        ropeBackward(rec, { dx: tdx, positions: tp, table: tt, ...shape });
      });
      expectClose(await download(tx), ropeForwardRef(x, pos, 1e6, shape), TOL.f32, "y");
      expectClose(await download(tdx), ropeBackwardRef(dy, pos, 1e6, shape), TOL.f32, "dx");
    },
  });
}

Deno.test({
  name: "ropeBackward() matches central differences of ropeForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const shape = { tokens: 3, heads: 2, headDim: 6, posOffset: 3 }, n = 36;
    const pos = [0, 5, 11], x = f32(randn(n, 50)), g = f32(randn(n, 51));
    const table = ropeTable({ theta: 1e4, headDim: 6, positions: 20 });
    const [tp, tt] = await Promise.all([upload("pos", pos, "u32"), upload("table", table)]);
    const run = async (xx: Float64Array) => {
      const [tx, tdx] = await Promise.all([upload("x", xx), upload("dx", g)]);
      await runGpu((rec) => {
        ropeForward(rec, { x: tx, positions: tp, table: tt, ...shape });
        ropeBackward(rec, { dx: tdx, positions: tp, table: tt, ...shape });
      });
      return { loss: dot(await download(tx), g), dx: await download(tdx) };
    };
    const { dx } = await run(x);
    const idx = [0, 4, 13, 29, 35];
    const fd = await gpuFiniteDiff(async (xx) => (await run(xx)).loss, x, idx);
    expectClose(fd, idx.map((i) => dx[i]), { atol: 2e-3, rtol: 2e-3 });
  },
});
