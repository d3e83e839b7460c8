import { embeddingBackwardRef, embeddingForwardRef } from "../engine/ops/embedding.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose } from "./assert.ts";

Deno.test("embeddingForwardRef() gathers rows by id", () => {
  assertClose(embeddingForwardRef([1, 2, 3, 4, 5, 6], [2, 0, 2], { dim: 2 }), [5, 6, 1, 2, 5, 6]);
});

Deno.test("embeddingBackwardRef() matches finite differences with repeated ids", () => {
  const ids = [3, 1, 3, 0, 3];
  const table = randn(5 * 3, 1), g = randn(ids.length * 3, 2);
  const dTable = embeddingBackwardRef(g, ids, { vocab: 5, dim: 3 });
  const fd = finiteDiff((t) => dot(embeddingForwardRef(t, ids, { dim: 3 }), g), table);
  expectClose(dTable, fd, TOL.fd);
});
