/**
 * engine/ops/attention_decode.ts: decode attention split over keys against the float64
 * attention reference and against attentionForward on the same inputs, for every kernel variant
 * and several split counts, on KV-cache layouts with awkward query counts and key lengths.
 */
import { getGpu } from "../engine/device.ts";
import {
  attentionForward,
  attentionForwardRef,
  attentionRangeTable,
  type AttentionSeq,
  type AttentionShape,
} from "../engine/ops/attention.ts";
import {
  attentionDecode,
  attentionDecodePlan,
  attentionDecodeScratchSize,
  type AttentionDecodeVariant,
} from "../engine/ops/attention_decode.ts";
import { assertEquals, assertThrows } from "./assert.ts";
import { download, expectClose, f32, NO_GPU, randn, runGpu, TOL, upload, zeros } from "./_ops.ts";

/** Decoding rows: row r attends to the first lengths[r] rows of cache slot r (0 = padding). */
function cacheSeqs(lengths: number[], maxLen: number): AttentionSeq[] {
  return lengths.flatMap((len, r) =>
    len > 0 ? [{ qStart: r, qLen: 1, kStart: r * maxLen, past: len - 1 }] : []
  );
}

interface Case {
  what: string;
  shape: AttentionShape;
  lengths: number[];
}

const CASES: Case[] = [
  { what: "1 query, 1 key, E=1", shape: { heads: 1, kvHeads: 1, headDim: 1 }, lengths: [1] },
  {
    what: "3 queries of 100, 1, 1000 keys, H=4 K=2 E=32",
    shape: { heads: 4, kvHeads: 2, headDim: 32 },
    lengths: [100, 1, 1000],
  },
  {
    what: "17 queries of 1..1000 keys and a padding row, H=6 K=2 E=17",
    shape: { heads: 6, kvHeads: 2, headDim: 17 },
    lengths: [1, 3, 17, 100, 1000, 0, 999, 5, 64, 65, 2, 500, 33, 31, 7, 250, 129],
  },
  {
    what: "1 query of 5000 keys, Qwen3-0.6B heads H=16 K=8 E=128",
    shape: { heads: 16, kvHeads: 8, headDim: 128 },
    lengths: [5000],
  },
  {
    what: "3 queries of 5000, 100, 4999 keys, H=8 K=1 E=64",
    shape: { heads: 8, kvHeads: 1, headDim: 64 },
    lengths: [5000, 100, 4999],
  },
  {
    what: "17 queries of 100 keys, no grouping, H=4 K=4 E=8",
    shape: { heads: 4, kvHeads: 4, headDim: 8 },
    lengths: Array.from({ length: 17 }, (_, i) => (i === 9 ? 0 : 100 - i)),
  },
  {
    what: "2 queries of 1000 keys, group of 16 heads, H=16 K=1 E=128",
    shape: { heads: 16, kvHeads: 1, headDim: 128 },
    lengths: [1000, 17],
  },
];

/** Inputs of one case: q (Tq, H, E), a KV cache of Tq slots, the range table. */
function inputs(c: Case, seed: number) {
  const { heads: H, kvHeads: K, headDim: E } = c.shape;
  const Tq = c.lengths.length, maxLen = Math.max(...c.lengths, 1), Tk = Tq * maxLen;
  const dims = { queryRows: Tq, keyRows: Tk, ...c.shape };
  const table = attentionRangeTable(cacheSeqs(c.lengths, maxLen), dims);
  return {
    dims,
    maxKeys: maxLen,
    table,
    q: f32(randn(Tq * H * E, seed, 2)),
    k: f32(randn(Tk * K * E, seed + 1, 2)),
    v: f32(randn(Tk * K * E, seed + 2)),
  };
}

async function gpuDecode(
  c: Case,
  seed: number,
  opts: { variant?: AttentionDecodeVariant; splits?: number; alsoForward?: boolean },
) {
  const gpu = await getGpu();
  const x = inputs(c, seed);
  const { queryRows: Tq, heads: H, headDim: E } = x.dims;
  const dims = { ...x.dims, maxKeys: x.maxKeys, ...opts };
  const [q, k, v, ranges, stats, o, stats2, o2, scratch] = await Promise.all([
    upload("q", x.q),
    upload("k", x.k),
    upload("v", x.v),
    upload("ranges", x.table, "u32"),
    zeros("stats", 2 * Tq * H),
    zeros("o", Tq * H * E),
    zeros("stats.forward", 2 * Tq * H),
    zeros("o.forward", Tq * H * E),
    zeros("scratch", attentionDecodeScratchSize(gpu, dims)),
  ]);
  await runGpu((rec) => {
    attentionDecode(rec, { ...dims, q, k, v, ranges, stats, o, scratch });
    if (opts.alsoForward) {
      attentionForward(rec, {
        ...x.dims,
        q,
        k,
        v,
        ranges,
        stats: stats2,
        o: o2,
        variant: "buffer",
      });
    }
  });
  const even = (a: Float64Array) => a.filter((_, i) => i % 2 === 0);
  return {
    x,
    plan: attentionDecodePlan(gpu, dims),
    o: await download(o),
    lse: even(await download(stats)),
    oForward: await download(o2),
    lseForward: even(await download(stats2)),
  };
}

for (const c of CASES) {
  for (const variant of ["lanes", "tiled"] as const) {
    for (const splits of [undefined, 1, 7]) {
      Deno.test({
        name: `attentionDecode() (${variant}, ${splits ?? "auto"} splits) matches the reference ` +
          `for ${c.what}`,
        ignore: NO_GPU,
        fn: async () => {
          const r = await gpuDecode(c, 3, { variant, splits, alsoForward: splits === undefined });
          const ref = attentionForwardRef(
            r.x.q,
            r.x.k,
            r.x.v,
            r.x.table.subarray(0, 2 * c.lengths.length),
            c.shape,
          );
          expectClose(r.o, ref.o, TOL.f32, "o");
          expectClose(r.lse, ref.lse, TOL.f32, "lse");
          if (splits === undefined) {
            expectClose(r.o, r.oForward, TOL.f32, "o vs attentionForward");
            expectClose(r.lse, r.lseForward, TOL.f32, "lse vs attentionForward");
          }
        },
      });
    }
  }
}

Deno.test({
  name: "attentionDecodePlan() picks the variant's kernel, splits long rows and keeps splits long",
  ignore: NO_GPU,
  fn: async () => {
    const gpu = await getGpu();
    const qwen = { heads: 16, kvHeads: 8, headDim: 128, queryRows: 1, keyRows: 5000 };
    assertEquals(attentionDecodePlan(gpu, { ...qwen, variant: "lanes" }).entryPoint, "partial4");
    const tiled = attentionDecodePlan(gpu, { ...qwen, variant: "tiled" });
    assertEquals([tiled.entryPoint, tiled.headsPerGroup], ["partial_tiled", 2]);
    const odd = { ...qwen, headDim: 17, variant: "tiled" as const };
    assertEquals(attentionDecodePlan(gpu, odd).entryPoint, "partial");
    const wide = { ...qwen, kvHeads: 1, variant: "tiled" as const };
    assertEquals(attentionDecodePlan(gpu, wide).headsPerGroup, 8);
    for (const variant of ["lanes", "tiled"] as const) {
      const long = attentionDecodePlan(gpu, { ...qwen, variant }).splits;
      const short = attentionDecodePlan(gpu, { ...qwen, variant, maxKeys: 30 }).splits;
      if (!(long > 1 && short === 1)) throw new Error(`${variant}: ${long} / ${short} splits`);
      assertEquals(attentionDecodePlan(gpu, { ...qwen, variant, maxKeys: 1 }).splits, 1);
    }
    // a given split count is raised until every split fits the adapter's loop guard: 5000 keys
    // at ~103 iterations each (lanes, E=128) need 9 splits of at most 581
    assertEquals(attentionDecodePlan(gpu, { ...qwen, variant: "lanes", splits: 1 }).splits, 9);
    assertEquals(attentionDecodePlan(gpu, { ...qwen, variant: "lanes", splits: 20 }).splits, 20);
    assertThrows(
      () => attentionDecodePlan(gpu, { ...qwen, heads: 12, kvHeads: 8 }),
      RangeError,
      "multiple",
    );
  },
});

Deno.test({
  name: "attentionDecodeScratchSize() covers every smaller batch and key count",
  ignore: NO_GPU,
  fn: async () => {
    const gpu = await getGpu();
    const d = { heads: 16, kvHeads: 8, headDim: 128, queryRows: 64, keyRows: 8000 };
    for (const variant of ["lanes", "tiled"] as const) {
      const size = attentionDecodeScratchSize(gpu, { ...d, variant });
      for (let rows = 1; rows <= 64; rows++) {
        for (const maxKeys of [1, 100, 1000, 8000]) {
          const p = attentionDecodePlan(gpu, { ...d, variant, queryRows: rows, maxKeys });
          if (p.splits * rows * 16 * 132 > size) {
            throw new Error(`${variant}: ${rows} rows, ${maxKeys} keys need more than ${size}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "attentionDecode() sees every key when each key raises the running max (the loop guard " +
    "of the software adapter at its worst)",
  ignore: NO_GPU,
  fn: async () => {
    const gpu = await getGpu();
    const cases: [AttentionDecodeVariant, AttentionShape][] = [
      ["lanes", { heads: 2, kvHeads: 1, headDim: 128 }],
      ["lanes", { heads: 1, kvHeads: 1, headDim: 17 }],
      ["lanes", { heads: 2, kvHeads: 1, headDim: 8 }],
      ["tiled", { heads: 8, kvHeads: 1, headDim: 128 }],
      ["tiled", { heads: 2, kvHeads: 2, headDim: 32 }],
    ];
    for (const [variant, shape] of cases) {
      const { heads: H, kvHeads: K, headDim: E } = shape;
      // the most keys the plan gives one split, then two splits of exactly that many
      const base = { queryRows: 1, ...shape, splits: 1, variant };
      let cap = 1;
      while (attentionDecodePlan(gpu, { ...base, keyRows: 2 * cap }).splits === 1) cap *= 2;
      for (let step = cap / 2; step >= 1; step /= 2) {
        if (attentionDecodePlan(gpu, { ...base, keyRows: cap + step }).splits === 1) cap += step;
      }
      const N = 2 * cap;
      const dims = { ...base, keyRows: N };
      assertEquals(attentionDecodePlan(gpu, dims).splits, 2);
      const table = attentionRangeTable([{ qStart: 0, qLen: 1, kStart: 0, past: N - 1 }], dims);
      // q = 1, key j = j / N in every element: the score rises at every key
      const q = new Float64Array(H * E).fill(1);
      const k = f32(
        Float64Array.from({ length: N * K * E }, (_, i) => Math.floor(i / (K * E)) / N),
      );
      const v = f32(randn(N * K * E, 9));
      const [tq, tk, tv, tr, stats, o, scratch] = await Promise.all([
        upload("q", q),
        upload("k", k),
        upload("v", v),
        upload("ranges", table, "u32"),
        zeros("stats", 2 * H),
        zeros("o", H * E),
        zeros("scratch", attentionDecodeScratchSize(gpu, dims)),
      ]);
      await runGpu((rec) =>
        attentionDecode(rec, { ...dims, q: tq, k: tk, v: tv, ranges: tr, stats, o, scratch })
      );
      const ref = attentionForwardRef(q, k, v, table.subarray(0, 2), shape);
      expectClose(await download(o), ref.o, TOL.f32, `${variant} E=${E}: 2 splits of ${cap} keys`);
    }
  },
});
