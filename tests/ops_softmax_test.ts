import { logSoftmaxForwardRef, lseChunk } from "../engine/ops/softmax.ts";
import {
  download,
  expectClose,
  f32,
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

for (
  const [rows, widths, pad] of [[1, [1], 0], [3, [1, 17, 300, 682], 3], [2, [1000], 0]] as const
) {
  Deno.test({
    name: `lseChunk() matches the reference lse over chunks [${widths}] rows=${rows}`,
    ignore: NO_GPU,
    fn: async () => {
      const V = widths.reduce((a, b) => a + b, 0);
      const x = f32(randn(rows * V, 1, 12));
      const xs = await uploadChunks(x, rows, [...widths], pad);
      const stats = await zeros("stats", 2 * rows);
      await runGpu((rec) => {
        xs.forEach((c, i) =>
          lseChunk(rec, { stats, x: c.t, first: i === 0, rows, cols: c.cols, ld: c.ld })
        );
      });
      const ref = logSoftmaxForwardRef(x, { rows, cols: V });
      const st = await download(stats);
      const lse = Array.from({ length: rows }, (_, r) => st[2 * r] + Math.log(st[2 * r + 1]));
      expectClose(lse, ref.lse, TOL.f32, "lse");
    },
  });
}
