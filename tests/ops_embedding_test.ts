import { getGpu } from "../engine/device.ts";
import {
  embeddingBackward,
  embeddingBackwardRef,
  embeddingForward,
  embeddingForwardRef,
} from "../engine/ops/embedding.ts";
import { createTensor, rowChunks } from "../engine/tensor.ts";
import {
  dot,
  download,
  expectClose,
  f32,
  finiteDiff,
  gpuFiniteDiff,
  NO_GPU,
  randIds,
  randn,
  runGpu,
  TOL,
  upload,
  zeros,
} from "./_ops.ts";
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

for (const [vocab, dim, tokens] of [[1, 1, 1], [37, 5, 50], [300, 17, 3]]) {
  Deno.test({
    name:
      `embeddingForward()/embeddingBackward() match the reference over row shards for V=${vocab} D=${dim} T=${tokens}`,
    ignore: NO_GPU,
    fn: async () => {
      const gpu = await getGpu();
      const table = f32(randn(vocab * dim, 1)), dOut = f32(randn(tokens * dim, 2));
      const dT0 = f32(randn(vocab * dim, 3));
      const ids = randIds(tokens, vocab, 4);
      const mk = (label: string, data: Float64Array) =>
        createTensor(gpu, {
          shape: [vocab, dim],
          dtype: "f32",
          label,
          data: Float32Array.from(data),
        });
      const tTable = mk("table", table), tdTable = mk("dTable", dT0);
      // Small shards (a few rows each) stand in for the 128 MiB binding limit.
      const shards = rowChunks(gpu, tTable, 8 * dim * 4);
      const dShards = rowChunks(gpu, tdTable, 8 * dim * 4);
      const [tIds, tOut, tdOut, tLinks] = await Promise.all([
        upload("ids", ids, "u32"),
        zeros("out", tokens * dim),
        upload("dOut", dOut),
        zeros("links", tokens, "u32"),
      ]);
      await runGpu((rec) => {
        embeddingForward(rec, { out: tOut, ids: tIds, table: shards, tokens, dim });
        embeddingBackward(rec, {
          dTable: dShards,
          dOut: tdOut,
          ids: tIds,
          links: tLinks,
          tokens,
          dim,
        });
      });
      expectClose(await download(tOut), embeddingForwardRef(table, ids, { dim }), TOL.f32, "out");
      const ref = embeddingBackwardRef(dOut, ids, { vocab, dim }).map((v, i) => v + dT0[i]);
      expectClose(await download(tdTable), ref, TOL.f32, "dTable");
    },
  });
}

for (const dtype of ["f16", "bf16"] as const) {
  Deno.test({
    name: `embeddingForward() gathers from a ${dtype} table within 1e-2`,
    ignore: NO_GPU,
    fn: async () => {
      const vocab = 33, dim = 7, tokens = 19;
      const table = f32(randn(vocab * dim, 5, 3)), ids = randIds(tokens, vocab, 6);
      const [tTable, tIds, tOut] = await Promise.all([
        upload("table", table, dtype, [vocab, dim]),
        upload("ids", ids, "u32"),
        zeros("out", tokens * dim),
      ]);
      await runGpu((rec) =>
        embeddingForward(rec, { out: tOut, ids: tIds, table: tTable, tokens, dim })
      );
      expectClose(await download(tOut), embeddingForwardRef(table, ids, { dim }), TOL[dtype]);
    },
  });
}

Deno.test({
  name: "embeddingBackward() matches central differences of embeddingForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const vocab = 6, dim = 3, tokens = 7, ids = [5, 0, 5, 2, 5, 0, 1];
    const table = f32(randn(vocab * dim, 80)), g = f32(randn(tokens * dim, 81));
    const [tIds, tdOut, tLinks] = await Promise.all([
      upload("ids", ids, "u32"),
      upload("dOut", g),
      zeros("links", tokens, "u32"),
    ]);
    const run = async (tb: Float64Array) => {
      const [tTable, out, dTable] = await Promise.all([
        upload("table", tb),
        zeros("out", tokens * dim),
        zeros("dTable", vocab * dim),
      ]);
      await runGpu((rec) => {
        embeddingForward(rec, { out, ids: tIds, table: tTable, tokens, dim });
        embeddingBackward(rec, { dTable, dOut: tdOut, ids: tIds, links: tLinks, tokens, dim });
      });
      return { loss: dot(await download(out), g), dTable: await download(dTable) };
    };
    const { dTable } = await run(table);
    const idx = [...table.keys()];
    const fd = await gpuFiniteDiff(async (tb) => (await run(tb)).loss, table, idx);
    expectClose(fd, dTable, { atol: 2e-3, rtol: 2e-3 });
  },
});
