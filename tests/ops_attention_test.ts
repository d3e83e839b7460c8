import {
  attentionBackward,
  attentionBackwardRef,
  type AttentionDims,
  attentionForward,
  attentionForwardRef,
  attentionRanges,
  attentionRangeTable,
  type AttentionSeq,
} from "../engine/ops/attention.ts";
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

/**
 * Runs forward (and backward) on the GPU over packed `seqs` or a given range table; returns o,
 * lse and the gradients.
 */
async function gpuAttention(
  dims: AttentionDims,
  seqs: AttentionSeq[] | Uint32Array,
  seed: number,
  backward: boolean,
) {
  const { queryRows, keyRows, heads, kvHeads, headDim } = dims;
  const qn = queryRows * heads * headDim, kn = keyRows * kvHeads * headDim;
  const q = f32(randn(qn, seed, 2)), k = f32(randn(kn, seed + 1, 2));
  const v = f32(randn(kn, seed + 2)), dO = f32(randn(qn, seed + 3));
  const table = seqs instanceof Uint32Array ? seqs : attentionRangeTable(seqs, dims);
  const [tq, tk, tv, tr, ts, to, tdO, tdq, tdk, tdv] = await Promise.all([
    upload("q", q),
    upload("k", k),
    upload("v", v),
    upload("ranges", table, "u32"),
    zeros("stats", 2 * queryRows * heads),
    zeros("o", qn),
    upload("dO", dO),
    zeros("dq", qn),
    zeros("dk", kn),
    zeros("dv", kn),
  ]);
  await runGpu((rec) => {
    const io = { q: tq, k: tk, v: tv, ranges: tr, stats: ts, o: to, ...dims };
    attentionForward(rec, io);
    if (backward) attentionBackward(rec, { ...io, dO: tdO, dQ: tdq, dK: tdk, dV: tdv });
  });
  const stats = await download(ts);
  return {
    q,
    k,
    v,
    dO,
    keyRanges: table.subarray(0, 2 * queryRows),
    o: await download(to),
    lse: stats.filter((_, i) => i % 2 === 0),
    dq: await download(tdq),
    dk: await download(tdk),
    dv: await download(tdv),
  };
}

const CASES: [string, AttentionDims, AttentionSeq[]][] = [
  // head_dim 32 with 2 kv heads: rows of 256 bytes, so the texture variants run here
  [
    "packed lengths 5, 11 plus 1 padding row, H=4 K=2 E=32",
    { queryRows: 17, keyRows: 17, heads: 4, kvHeads: 2, headDim: 32 },
    [{ qStart: 0, qLen: 5, kStart: 0 }, { qStart: 5, qLen: 11, kStart: 5 }],
  ],
  ["one token", { queryRows: 1, keyRows: 1, heads: 1, kvHeads: 1, headDim: 1 }, [
    { qStart: 0, qLen: 1, kStart: 0 },
  ]],
  [
    "packed lengths 1, 3, 17 plus 2 padding rows, H=4 K=2 E=17",
    { queryRows: 23, keyRows: 23, heads: 4, kvHeads: 2, headDim: 17 },
    [
      { qStart: 0, qLen: 1, kStart: 0 },
      { qStart: 1, qLen: 3, kStart: 1 },
      { qStart: 4, qLen: 17, kStart: 4 },
    ],
  ],
  ["T=37 H=3 K=1 E=128", { queryRows: 37, keyRows: 37, heads: 3, kvHeads: 1, headDim: 128 }, [
    { qStart: 0, qLen: 37, kStart: 0 },
  ]],
];

/**
 * A range table where every query row sees keys 0 and 1 (and key rows 2.. are seen by none): the
 * dK and dV of those two keys sum over every query row and head of their group.
 */
function sharedKeys(queryRows: number, keyRows: number): Uint32Array {
  const t = new Uint32Array(2 * (queryRows + keyRows));
  for (let i = 0; i < queryRows; i++) t[2 * i + 1] = 2;
  for (let j = 0; j < 2; j++) t[2 * (queryRows + j) + 1] = queryRows;
  return t;
}

/** Two decoding sequences: 3 new tokens after `past0` cached keys, 2 after `past1`. */
function decoding(past0: number, past1: number): AttentionSeq[] {
  return [
    { qStart: 0, qLen: 3, kStart: 0, past: past0 },
    { qStart: 3, qLen: 2, kStart: past0 + 100, past: past1 },
  ];
}

// Long ranges: Mesa's software adapter silently ends an invocation's loops after 65535
// iterations in all, so one invocation per (row, head) walking 512 keys of E = 128 (or 7000 keys
// of E = 16), or per key row summing 2200 query rows, came out wrong there. These run the
// kernels in several passes on that adapter (both variants; the E = 16 T = 512 case in one).
const LONG_CASES: [string, AttentionDims, AttentionSeq[] | Uint32Array][] = [
  [
    "T=512 H=4 K=2 E=128",
    { queryRows: 512, keyRows: 512, heads: 4, kvHeads: 2, headDim: 128 },
    [{ qStart: 0, qLen: 512, kStart: 0 }],
  ],
  [
    "T=512 H=8 K=4 E=16",
    { queryRows: 512, keyRows: 512, heads: 8, kvHeads: 4, headDim: 16 },
    [{ qStart: 0, qLen: 512, kStart: 0 }],
  ],
  [
    "packed lengths 600 and 400 given as maxSeqLen, H=4 K=2 E=128",
    { queryRows: 1000, keyRows: 1000, heads: 4, kvHeads: 2, headDim: 128, maxSeqLen: 600 },
    [{ qStart: 0, qLen: 600, kStart: 0 }, { qStart: 600, qLen: 400, kStart: 600 }],
  ],
  [
    "3 and 2 new tokens after 1200 and 2500 cached keys, H=4 K=2 E=128",
    { queryRows: 5, keyRows: 3810, heads: 4, kvHeads: 2, headDim: 128 },
    decoding(1200, 2500),
  ],
  [
    "3 and 2 new tokens after 1000 and 7000 cached keys, H=8 K=4 E=16",
    { queryRows: 5, keyRows: 8110, heads: 8, kvHeads: 4, headDim: 16 },
    decoding(1000, 7000),
  ],
  [
    "T=1100 H=12 K=1 E=5 (scalar loads; a key row sums 12 heads of up to 1100 query rows)",
    { queryRows: 1100, keyRows: 1100, heads: 12, kvHeads: 1, headDim: 5 },
    [{ qStart: 0, qLen: 1100, kStart: 0 }],
  ],
  [
    "2200 query rows sharing 2 keys, H=4 K=2 E=128",
    { queryRows: 2200, keyRows: 3, heads: 4, kvHeads: 2, headDim: 128 },
    sharedKeys(2200, 3),
  ],
  [
    "9000 query rows sharing 2 keys, H=8 K=4 E=16",
    { queryRows: 9000, keyRows: 3, heads: 8, kvHeads: 4, headDim: 16 },
    sharedKeys(9000, 3),
  ],
];

/**
 * f32 tolerance, its absolute part relative to the tensor's largest value where each element
 * sums thousands of terms (their rounding grows with the terms, not with the sum).
 */
function tol(ref: ArrayLike<number>, long: boolean) {
  let big = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isFinite(ref[i])) big = Math.max(big, Math.abs(ref[i]));
  }
  return long ? { atol: TOL.f32.atol * Math.max(1, big), rtol: TOL.f32.rtol } : TOL.f32;
}

for (
  const [what, shape, seqs, long] of [
    ...CASES.map((c) => [...c, false] as const),
    ...LONG_CASES.map((c) => [...c, true] as const),
  ]
) {
  for (const variant of ["buffer", "texture"] as const) {
    Deno.test({
      name: `attentionForward()/attentionBackward() (${variant}) match the reference for ${what}`,
      ignore: NO_GPU,
      fn: async () => {
        const dims = { ...shape, variant };
        const r = await gpuAttention(dims, seqs, 7, true);
        const ref = attentionForwardRef(r.q, r.k, r.v, r.keyRanges, dims);
        const g = attentionBackwardRef(r.dO, r.q, r.k, r.v, r.keyRanges, dims);
        expectClose(r.o, ref.o, tol(ref.o, long), "o");
        expectClose(r.lse, ref.lse, tol(ref.lse, long), "lse");
        expectClose(r.dq, g.dq, tol(g.dq, long), "dq");
        expectClose(r.dk, g.dk, tol(g.dk, long), "dk");
        expectClose(r.dv, g.dv, tol(g.dv, long), "dv");
      },
    });
  }
}

for (const E of [8, 32]) {
  Deno.test({
    name:
      `attentionForward() decoding from a KV cache equals the full causal forward's last rows (E=${E})`,
    ignore: NO_GPU,
    fn: async () => {
      // Cache of 2 sequences x 8 slots; sequence 0 has 3 cached + 2 new, sequence 1 has 6 + 1.
      const dims = { queryRows: 3, keyRows: 16, heads: 4, kvHeads: 2, headDim: E };
      const seqs = [
        { qStart: 0, qLen: 2, kStart: 0, past: 3 },
        { qStart: 2, qLen: 1, kStart: 8, past: 6 },
      ];
      const r = await gpuAttention(dims, seqs, 11, false);
      const H = 4, KH = 2;
      for (const [s, rows, first] of [[0, 5, 0], [1, 7, 2]] as const) {
        const qFull = new Float64Array(rows * H * E);
        const new0 = rows - seqs[s].qLen;
        qFull.set(r.q.subarray(first * H * E, (first + seqs[s].qLen) * H * E), new0 * H * E);
        const kv = (x: Float64Array) =>
          x.subarray(seqs[s].kStart * KH * E, (seqs[s].kStart + rows) * KH * E);
        const { keyRanges } = attentionRanges([{ qStart: 0, qLen: rows, kStart: 0 }], {
          queryRows: rows,
          keyRows: rows,
        });
        const full = attentionForwardRef(qFull, kv(r.k), kv(r.v), keyRanges, dims);
        expectClose(
          r.o.subarray(first * H * E, (first + seqs[s].qLen) * H * E),
          full.o.subarray(new0 * H * E),
          TOL.f32,
          `sequence ${s}`,
        );
      }
    },
  });
}

Deno.test({
  name: "attentionBackward() matches central differences of attentionForward() on the GPU",
  ignore: NO_GPU,
  fn: async () => {
    const dims = { queryRows: 6, keyRows: 6, heads: 4, kvHeads: 2, headDim: 5 };
    const seqs = [{ qStart: 0, qLen: 2, kStart: 0 }, { qStart: 2, qLen: 4, kStart: 2 }];
    const r = await gpuAttention(dims, seqs, 21, true);
    const table = attentionRangeTable(seqs, dims);
    const tr = await upload("ranges", table, "u32");
    // Loss Σ o·dO with o from the GPU forward; the inputs are perturbed on the host.
    const loss = async (q: Float64Array, k: Float64Array, v: Float64Array) => {
      const [tq, tk, tv, ts, to] = await Promise.all([
        upload("q", q),
        upload("k", k),
        upload("v", v),
        zeros("stats", 2 * 6 * 4),
        zeros("o", q.length),
      ]);
      await runGpu((rec) =>
        attentionForward(rec, { q: tq, k: tk, v: tv, ranges: tr, stats: ts, o: to, ...dims })
      );
      return dot(await download(to), r.dO);
    };
    const pick = (n: number, seed: number) => [...randIds(5, n, seed)];
    const iq = pick(r.q.length, 1), ik = pick(r.k.length, 2), iv = pick(r.v.length, 3);
    const scale = Math.max(...[...r.dq, ...r.dk, ...r.dv].map(Math.abs));
    const tol = { atol: 2e-3 * scale, rtol: 2e-3 };
    expectClose(
      await gpuFiniteDiff((x) => loss(x, r.k, r.v), r.q, iq),
      iq.map((i) => r.dq[i]),
      tol,
      "dq",
    );
    expectClose(
      await gpuFiniteDiff((x) => loss(r.q, x, r.v), r.k, ik),
      ik.map((i) => r.dk[i]),
      tol,
      "dk",
    );
    expectClose(
      await gpuFiniteDiff((x) => loss(r.q, r.k, x), r.v, iv),
      iv.map((i) => r.dv[i]),
      tol,
      "dv",
    );
  },
});
