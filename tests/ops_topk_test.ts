import { topkRef } from "../engine/ops/topk.ts";
import { assertClose, assertEquals } from "./assert.ts";

Deno.test("topkRef() returns ids by descending logit, ties by smaller id, with log-probs", () => {
  const x = [1, 3, 2, 3, 0];
  const { ids, logprobs } = topkRef(x, { rows: 1, cols: 5, k: 3 });
  assertEquals([...ids], [1, 3, 2]);
  const lse = Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
  assertClose(logprobs, [3 - lse, 3 - lse, 2 - lse]);
});
