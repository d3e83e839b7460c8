import { lseChunk } from "../engine/ops/softmax.ts";
import { topkChunk, topkFinish, topkRef } from "../engine/ops/topk.ts";
import { assertClose, assertEquals } from "./assert.ts";
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

Deno.test("topkRef() returns ids by descending logit, ties by smaller id, with log-probs", () => {
  const x = [1, 3, 2, 3, 0];
  const { ids, logprobs } = topkRef(x, { rows: 1, cols: 5, k: 3 });
  assertEquals([...ids], [1, 3, 2]);
  const lse = Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
  assertClose(logprobs, [3 - lse, 3 - lse, 2 - lse]);
});

const TOPK_CASES: [number, number[], number, boolean | "constant"][] = [
  [1, [1], 1, false],
  [3, [1, 17, 300, 682], 5, false],
  [2, [1, 17, 300, 682], 128, false],
  [3, [3, 997], 100, true], // logits rounded to quarters: many ties, broken by smaller id
  [1, [50, 50], 128, false], // fewer candidates than k: the tail stays (-inf, 0xffffffff)
  [2, [2000, 1500], 10, "constant"], // all equal: more than the shared cache holds
];

for (const [rows, widths, k, ties] of TOPK_CASES) {
  Deno.test({
    name: `topkChunk()/topkFinish() match the reference for rows=${rows} chunks [${widths}] k=${k}${
      ties === true ? " with ties" : ties ? " all equal" : ""
    }`,
    ignore: NO_GPU,
    fn: async () => {
      const V = widths.reduce((a, b) => a + b, 0);
      let x = f32(randn(rows * V, 5, 8));
      if (ties === true) x = x.map((v) => Math.round(v * 4) / 4);
      if (ties === "constant") x = x.map(() => 0.5);
      const xs = await uploadChunks(x, rows, widths, 1);
      const [stats, vals, ids] = await Promise.all([
        zeros("stats", 2 * rows),
        zeros("vals", rows * k),
        zeros("ids", rows * k, "u32"),
      ]);
      await runGpu((rec) => {
        xs.forEach((c, i) => {
          const shape = { rows, cols: c.cols, ld: c.ld };
          lseChunk(rec, { stats, x: c.t, first: i === 0, ...shape });
          topkChunk(rec, { vals, ids, x: c.t, colStart: c.colStart, k, first: i === 0, ...shape });
        });
        topkFinish(rec, { vals, stats, rows, k });
      });
      const kk = Math.min(k, V);
      const ref = topkRef(x, { rows, cols: V, k: kk });
      const gotIds = await download(ids), gotVals = await download(vals);
      for (let r = 0; r < rows; r++) {
        assertEquals(
          [...gotIds.subarray(r * k, r * k + kk)],
          [...ref.ids.subarray(r * kk, (r + 1) * kk)],
          `row ${r} ids`,
        );
        expectClose(
          gotVals.subarray(r * k, r * k + kk),
          ref.logprobs.subarray(r * kk, (r + 1) * kk),
          TOL.f32,
          `row ${r} log-probs`,
        );
        for (let j = kk; j < k; j++) {
          assertEquals([gotIds[r * k + j], gotVals[r * k + j]], [0xffffffff, -Infinity]);
        }
      }
    },
  });
}
