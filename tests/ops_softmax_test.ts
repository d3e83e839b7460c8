import {
  logSoftmaxBackward,
  logSoftmaxBackwardRef,
  logSoftmaxForward,
  logSoftmaxForwardRef,
  lseChunk,
} from "../engine/ops/softmax.ts";
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
  uploadChunks,
  zeros,
} from "./_ops.ts";
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

for (
  const [rows, widths, pad] of [[1, [1], 0], [3, [1, 17, 300, 682], 3], [2, [1000], 0]] as const
) {
  Deno.test({
    name:
      `lseChunk()/logSoftmaxForward()/logSoftmaxBackward() match the reference over chunks [${widths}] rows=${rows}`,
    ignore: NO_GPU,
    fn: async () => {
      const V = widths.reduce((a, b) => a + b, 0);
      const x = f32(randn(rows * V, 1, 12)), dy = f32(randn(rows * V, 2));
      const xs = await uploadChunks(x, rows, [...widths], pad);
      const ys = await uploadChunks(new Float64Array(rows * V), rows, [...widths], pad);
      const dys = await uploadChunks(dy, rows, [...widths], pad);
      const dxs = await uploadChunks(new Float64Array(rows * V), rows, [...widths], pad);
      const stats = await zeros("stats", 2 * rows), rowSum = await zeros("rowSum", rows);
      await runGpu((rec) => {
        xs.forEach((c, i) =>
          lseChunk(rec, { stats, x: c.t, first: i === 0, rows, cols: c.cols, ld: c.ld })
        );
        xs.forEach((c, i) =>
          logSoftmaxForward(rec, { y: ys[i].t, x: c.t, stats, rows, cols: c.cols, ld: c.ld })
        );
        dys.forEach((c, i) =>
          logSoftmaxBackward(rec, {
            pass: "sum",
            first: i === 0,
            dy: c.t,
            stats,
            rowSum,
            rows,
            cols: c.cols,
            ld: c.ld,
          })
        );
        dys.forEach((c, i) =>
          logSoftmaxBackward(rec, {
            pass: "grad",
            dy: c.t,
            x: xs[i].t,
            dx: dxs[i].t,
            stats,
            rowSum,
            rows,
            cols: c.cols,
            ld: c.ld,
          })
        );
      });
      const ref = logSoftmaxForwardRef(x, { rows, cols: V });
      const st = await download(stats);
      const lse = Array.from({ length: rows }, (_, r) => st[2 * r] + Math.log(st[2 * r + 1]));
      expectClose(lse, ref.lse, TOL.f32, "lse");
      expectClose(await downloadChunks(ys, rows), ref.y, TOL.f32, "y");
      const dx = logSoftmaxBackwardRef(dy, ref.y, { rows, cols: V });
      expectClose(await downloadChunks(dxs, rows), dx, TOL.f32, "dx");
    },
  });
}

Deno.test({
  name: "logSoftmaxBackward() matches central differences of logSoftmaxForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const rows = 2, widths = [5, 12], V = 17;
    const x = f32(randn(rows * V, 60, 3)), g = f32(randn(rows * V, 61));
    const run = async (xx: Float64Array) => {
      const xs = await uploadChunks(xx, rows, widths);
      const ys = await uploadChunks(new Float64Array(rows * V), rows, widths);
      const dys = await uploadChunks(g, rows, widths);
      const dxs = await uploadChunks(new Float64Array(rows * V), rows, widths);
      const stats = await zeros("stats", 2 * rows), rowSum = await zeros("rowSum", rows);
      await runGpu((rec) => {
        xs.forEach((c, i) => lseChunk(rec, { stats, x: c.t, first: i === 0, rows, cols: c.cols }));
        xs.forEach((c, i) => {
          const o = { stats, rows, cols: c.cols };
          logSoftmaxForward(rec, { ...o, y: ys[i].t, x: c.t });
          logSoftmaxBackward(rec, { ...o, pass: "sum", first: i === 0, dy: dys[i].t, rowSum });
        });
        xs.forEach((c, i) =>
          logSoftmaxBackward(rec, {
            pass: "grad",
            dy: dys[i].t,
            x: c.t,
            dx: dxs[i].t,
            stats,
            rowSum,
            rows,
            cols: c.cols,
          })
        );
      });
      return { loss: dot(await downloadChunks(ys, rows), g), dx: await downloadChunks(dxs, rows) };
    };
    const { dx } = await run(x);
    const idx = [0, 4, 5, 16, 20, 33];
    const fd = await gpuFiniteDiff(async (xx) => (await run(xx)).loss, x, idx);
    expectClose(fd, idx.map((i) => dx[i]), { atol: 2e-3, rtol: 2e-3 });
  },
});
