import {
  crossEntropyBackward,
  crossEntropyBackwardRef,
  crossEntropyForward,
  crossEntropyForwardRef,
  IGNORE_INDEX,
} from "../engine/ops/cross_entropy.ts";
import {
  dot,
  download,
  downloadChunks,
  expectClose,
  f32,
  finiteDiff,
  gpuFiniteDiff,
  NO_GPU,
  randn,
  runGpu,
  TOL,
  upload,
  uploadChunks,
  zeros,
} from "./_ops.ts";
import { lseChunk } from "../engine/ops/softmax.ts";
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

Deno.test({
  name:
    "crossEntropyForward()/crossEntropyBackward() match the reference over chunks [1, 17, 300, 682]",
  ignore: NO_GPU,
  fn: async () => {
    const rows = 5, widths = [1, 17, 300, 682], V = 1000;
    const targets = [0, IGNORE_INDEX, 999, 18, 317];
    const x = f32(randn(rows * V, 3, 10)), dLoss = f32(randn(rows, 4));
    const xs = await uploadChunks(x, rows, widths, 2);
    const dxs = await uploadChunks(new Float64Array(rows * V), rows, widths, 2);
    const [stats, tTargets, loss, tdLoss] = await Promise.all([
      zeros("stats", 2 * rows),
      upload("targets", targets, "u32"),
      zeros("loss", rows),
      upload("dLoss", dLoss),
    ]);
    await runGpu((rec) => {
      xs.forEach((c, i) =>
        lseChunk(rec, { stats, x: c.t, first: i === 0, rows, cols: c.cols, ld: c.ld })
      );
      xs.forEach((c, i) => {
        const o = {
          x: c.t,
          colStart: c.colStart,
          stats,
          targets: tTargets,
          rows,
          cols: c.cols,
          ld: c.ld,
        };
        crossEntropyForward(rec, { ...o, loss });
        crossEntropyBackward(rec, { ...o, dLoss: tdLoss, dx: dxs[i].t });
      });
    });
    const shape = { rows, cols: V };
    expectClose(await download(loss), crossEntropyForwardRef(x, targets, shape), TOL.f32, "loss");
    expectClose(
      await downloadChunks(dxs, rows),
      crossEntropyBackwardRef(dLoss, x, targets, shape),
      TOL.f32,
      "dx",
    );
  },
});

Deno.test({
  name: "crossEntropyBackward() matches central differences of crossEntropyForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const rows = 3, widths = [7, 10], V = 17, targets = [3, IGNORE_INDEX, 12];
    const x = f32(randn(rows * V, 70, 3)), dLoss = [0.7, 1, -1.3];
    const [tt, tdl] = await Promise.all([
      upload("targets", targets, "u32"),
      upload("dLoss", dLoss),
    ]);
    const run = async (xx: Float64Array) => {
      const xs = await uploadChunks(xx, rows, widths);
      const dxs = await uploadChunks(new Float64Array(rows * V), rows, widths);
      const [stats, loss] = await Promise.all([zeros("stats", 2 * rows), zeros("loss", rows)]);
      await runGpu((rec) => {
        xs.forEach((c, i) => lseChunk(rec, { stats, x: c.t, first: i === 0, rows, cols: c.cols }));
        xs.forEach((c, i) => {
          const o = { x: c.t, colStart: c.colStart, stats, targets: tt, rows, cols: c.cols };
          crossEntropyForward(rec, { ...o, loss });
          crossEntropyBackward(rec, { ...o, dLoss: tdl, dx: dxs[i].t });
        });
      });
      return { loss: dot(await download(loss), dLoss), dx: await downloadChunks(dxs, rows) };
    };
    const { dx } = await run(x);
    const idx = [0, 3, 12, 20, 37, 46];
    const fd = await gpuFiniteDiff(async (xx) => (await run(xx)).loss, x, idx);
    expectClose(fd, idx.map((i) => dx[i]), { atol: 2e-3, rtol: 2e-3 });
  },
});
