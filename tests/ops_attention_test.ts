import {
  attentionBackwardRef,
  attentionForwardRef,
  attentionRanges,
} from "../engine/ops/attention.ts";
import { dot, expectClose, finiteDiff, randn, TOL } from "./_ops.ts";
import { assertClose, assertEquals } from "./assert.ts";

Deno.test("attentionRanges() gives per-sequence causal key ranges and their inverse", () => {
  // Two packed sequences (lengths 2 and 3) then one padding row; a decode sequence with 2 cached.
  const { keyRanges, queryRanges } = attentionRanges(
    [{ qStart: 0, qLen: 2, kStart: 0 }, { qStart: 2, qLen: 3, kStart: 2 }],
    { queryRows: 6, keyRows: 6 },
  );
  assertEquals([...keyRanges], [0, 1, 0, 2, 2, 3, 2, 4, 2, 5, 0, 0]);
  assertEquals([...queryRanges], [0, 2, 1, 2, 2, 5, 3, 5, 4, 5, 0, 0]);
  const dec = attentionRanges([{ qStart: 0, qLen: 1, kStart: 4, past: 2 }], {
    queryRows: 1,
    keyRows: 8,
  });
  assertEquals([...dec.keyRanges], [4, 7]);
  assertEquals([...dec.queryRanges], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0]);
});

Deno.test("attentionForwardRef() with one key returns that value row", () => {
  const { o, lse } = attentionForwardRef([1, 2], [3, 4], [5, 6], [0, 1], {
    heads: 1,
    kvHeads: 1,
    headDim: 2,
  });
  assertClose(o, [5, 6]);
  assertClose(lse, [(3 + 8) / Math.sqrt(2)]);
});

Deno.test("attentionForwardRef() of two keys is the softmax-weighted mean", () => {
  const { o } = attentionForwardRef([1], [0, 1], [10, 20], [0, 2], {
    heads: 1,
    kvHeads: 1,
    headDim: 1,
  });
  const p1 = Math.exp(1) / (1 + Math.exp(1));
  assertClose(o, [10 * (1 - p1) + 20 * p1]);
});

Deno.test("attentionBackwardRef() matches finite differences (packed GQA, H=4 K=2 E=3)", () => {
  const shape = { heads: 4, kvHeads: 2, headDim: 3 };
  const { keyRanges } = attentionRanges(
    [{ qStart: 0, qLen: 3, kStart: 0 }, { qStart: 3, qLen: 2, kStart: 3 }],
    { queryRows: 5, keyRows: 5 },
  );
  const q = randn(5 * 4 * 3, 1), k = randn(5 * 2 * 3, 2), v = randn(5 * 2 * 3, 3);
  const g = randn(5 * 4 * 3, 4);
  const { dq, dk, dv } = attentionBackwardRef(g, q, k, v, keyRanges, shape);
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) =>
    dot(attentionForwardRef(qq, kk, vv, keyRanges, shape).o, g);
  expectClose(dq, finiteDiff((x) => loss(x, k, v), q), TOL.fd, "dq");
  expectClose(dk, finiteDiff((x) => loss(q, x, v), k), TOL.fd, "dk");
  expectClose(dv, finiteDiff((x) => loss(q, k, x), v), TOL.fd, "dv");
});
