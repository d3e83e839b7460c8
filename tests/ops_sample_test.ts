/**
 * engine/ops/sample.ts: the noise (uniform bits, Gumbel moments), the float64 reference (kept
 * sets by hand, draw frequencies against the tempered softmax by chi-square), and the device
 * kernels against the reference on awkward shapes and chunkings, their independence of batching
 * and chunking, their own draw frequencies, and the exact flag of top-p.
 */
import {
  gumbelOf,
  sampleBits,
  sampleChunk,
  sampleFinish,
  type SampleOptions,
  samplePlan,
  sampleRef,
  sampleResults,
  sampleScratchSize,
  type SampleVariant,
} from "../engine/ops/sample.ts";
import { assertEquals, assertThrows } from "./assert.ts";
import {
  download,
  expectClose,
  f32,
  NO_GPU,
  randn,
  runGpu,
  TOL,
  upload,
  uploadChunks,
  zeros,
} from "./_ops.ts";

/** Chi-square statistic of counts against probabilities (cells with tiny expectation pooled). */
function chiSquare(counts: number[], probs: number[]): { stat: number; df: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let stat = 0, df = -1, poolC = 0, poolE = 0;
  counts.forEach((c, i) => {
    const e = probs[i] * n;
    if (e < 5) {
      poolC += c;
      poolE += e;
      return;
    }
    stat += (c - e) ** 2 / e;
    df++;
  });
  if (poolE > 0) {
    stat += (poolC - poolE) ** 2 / Math.max(poolE, 1e-9);
    df++;
  }
  return { stat, df };
}

/** The 0.999 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.0902; // the standard normal's 0.999 quantile
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

function assertFits(counts: number[], probs: number[], what: string): void {
  counts.forEach((c, i) => {
    if (probs[i] === 0 && c > 0) throw new Error(`${what}: id ${i} has probability 0, drawn ${c}`);
  });
  const { stat, df } = chiSquare(counts, probs);
  const crit = chiSquareCritical(df);
  if (!(stat < crit)) {
    throw new Error(`${what}: chi-square ${stat.toFixed(2)} >= ${crit.toFixed(2)} (df ${df})`);
  }
}

/** The distribution sampling should follow, in float64: temperature, top-k, then top-p. */
function targetProbs(x: number[], o: SampleOptions): number[] {
  const V = x.length, T = o.temperature;
  const order = x.map((_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
  let kept = o.topK && o.topK < V ? order.slice(0, o.topK) : order;
  const w = x.map((v) => Math.exp((v - x[order[0]]) / T));
  if ((o.topP ?? 1) < 1) {
    const total = kept.reduce((s, i) => s + w[i], 0);
    let cum = 0, n = kept.length;
    for (let j = 0; j < kept.length; j++) {
      cum += w[kept[j]];
      if (cum >= o.topP! * total) {
        n = j + 1;
        break;
      }
    }
    while (n < kept.length && x[kept[n]] === x[kept[n - 1]]) n++; // ties with the cut stay
    kept = kept.slice(0, n);
  }
  const z = kept.reduce((s, i) => s + w[i], 0);
  const p = new Array(V).fill(0);
  for (const i of kept) p[i] = w[i] / z;
  return p;
}

/** rowInfo (stream, step) for `rows` rows: stream = first + r, step fixed. */
function streams(rows: number, first = 0, step = 3): Uint32Array {
  const info = new Uint32Array(2 * rows);
  for (let r = 0; r < rows; r++) [info[2 * r], info[2 * r + 1]] = [first + r, step];
  return info;
}

// ---- noise and reference (no GPU) -----------------------------------------------------------

Deno.test("sampleBits() is a deterministic 24-bit hash, uniform over ids, streams and steps", () => {
  assertEquals(sampleBits(1, 2, 3, 4), sampleBits(1, 2, 3, 4));
  const bins = new Array(16).fill(0);
  let n = 0;
  const seen = new Set<number>();
  for (let stream = 0; stream < 20; stream++) {
    for (let step = 0; step < 10; step++) {
      for (let id = 0; id < 500; id++) {
        const b = sampleBits(7, stream, step, id);
        if (b < 0 || b >= 2 ** 24 || !Number.isInteger(b)) throw new Error(`bits ${b}`);
        bins[b >>> 20]++;
        seen.add(b);
        n++;
      }
    }
  }
  assertFits(bins, new Array(16).fill(1 / 16), "top 4 bits");
  // 100,000 draws of 24 bits: about 300 collisions expected, not thousands
  if (n - seen.size > 600) throw new Error(`${n - seen.size} repeated values`);
  // neighbouring keys give different streams
  const a = [0, 1, 2, 3].map((id) => sampleBits(7, 0, 0, id));
  const b = [0, 1, 2, 3].map((id) => sampleBits(7, 1, 0, id));
  const c = [0, 1, 2, 3].map((id) => sampleBits(8, 0, 0, id));
  if (a.some((v, i) => v === b[i] || v === c[i])) throw new Error("streams repeat");
});

Deno.test("gumbelOf() has the Gumbel mean and variance and bounded extremes", () => {
  let s = 0, s2 = 0;
  const n = 200000;
  for (let i = 0; i < n; i++) {
    const g = gumbelOf(sampleBits(1, i, 0, 0));
    s += g;
    s2 += g * g;
  }
  const mean = s / n, variance = s2 / n - mean * mean;
  const gamma = 0.5772156649, piVar = Math.PI ** 2 / 6;
  if (Math.abs(mean - gamma) > 0.015) throw new Error(`mean ${mean}`);
  if (Math.abs(variance - piVar) > 0.04) throw new Error(`variance ${variance}`);
  const top = gumbelOf(0xffffff), bottom = gumbelOf(0);
  if (Math.abs(top - -Math.log(2 ** -25)) > 1e-3 || top > 17.5) throw new Error(`top ${top}`);
  if (Math.abs(bottom - -Math.log(25 * Math.LN2)) > 1e-3) throw new Error(`bottom ${bottom}`);
});

const LOGITS = [1.0, 3.0, 2.5, 3.0, -1.0, 0.0]; // ids 1 and 3 tie for the maximum

function refDraws(x: number[], o: SampleOptions, n: number): number[] {
  const rows = n, logits = new Float64Array(rows * x.length);
  for (let r = 0; r < rows; r++) logits.set(x, r * x.length);
  const { ids } = sampleRef(logits, streams(rows), { ...o, rows, cols: x.length });
  const counts = new Array(x.length).fill(0);
  for (const id of ids) counts[id]++;
  return counts;
}

Deno.test("sampleRef() with temperature 0 is argmax with the lowest id on ties", () => {
  const { ids, logprobs } = sampleRef(LOGITS, [0, 0], { temperature: 0, rows: 1, cols: 6 });
  assertEquals([...ids], [1]);
  const lse = Math.log(LOGITS.reduce((s, v) => s + Math.exp(v), 0));
  expectClose(logprobs, [3 - lse], TOL.fd, "logprob");
});

Deno.test("sampleRef() draws follow softmax(x / T), also under top-k and top-p (chi-square)", () => {
  const n = 20000;
  const cases: SampleOptions[] = [
    { temperature: 1, seed: 1 },
    { temperature: 0.5, seed: 2 },
    { temperature: 2, seed: 3 },
    { temperature: 1, topK: 2, seed: 4 },
    { temperature: 1, topK: 3, seed: 5 },
    // probabilities at T=1: 0.36, 0.36, 0.22, ...: p=0.7 keeps the tied pair only
    { temperature: 1, topP: 0.7, seed: 6 },
    { temperature: 0.8, topK: 4, topP: 0.9, seed: 7 },
  ];
  for (const o of cases) {
    const counts = refDraws(LOGITS, o, n);
    assertFits(counts, targetProbs(LOGITS, o), JSON.stringify(o));
  }
  // the kept sets by hand
  const kept = (o: SampleOptions) => refDraws(LOGITS, o, 3000).map((c) => c > 0);
  assertEquals(kept({ temperature: 1, topK: 2 }), [false, true, false, true, false, false]);
  assertEquals(kept({ temperature: 1, topK: 3 }), [false, true, true, true, false, false]);
  assertEquals(kept({ temperature: 1, topP: 0.7 }), [false, true, false, true, false, false]);
  assertEquals(kept({ temperature: 1, topP: 0.8 }), [false, true, true, true, false, false]);
});

Deno.test("sampleRef() flags top-p as inexact when the nucleus reaches the candidate count", () => {
  const x = [5, 4, 3, 2, 1, 0, -1, -2];
  const o = { temperature: 1, topP: 0.99, rows: 1, cols: 8 };
  // the nucleus at 0.99 is the 5 largest: exact with 6 candidates, not with 5
  assertEquals([...sampleRef(x, [0, 0], { ...o, candidates: 6 }).exact], [1]);
  assertEquals([...sampleRef(x, [0, 0], { ...o, candidates: 5 }).exact], [0]);
  assertEquals([...sampleRef(x, [0, 0], { ...o, candidates: 5, topK: 5 }).exact], [1]);
});

Deno.test("samplePlan() picks the mode and the candidate count, and rejects top-k over 128", () => {
  assertEquals(samplePlan({ temperature: 0, topK: 5 }, 100).mode, "greedy");
  assertEquals(samplePlan({ temperature: 1 }, 100).mode, "temperature");
  assertEquals(samplePlan({ temperature: 1, topK: 100 }, 100).mode, "temperature");
  assertEquals(samplePlan({ temperature: 1, topK: 7 }, 100).candidates, 7);
  assertEquals(samplePlan({ temperature: 1, topP: 0.9 }, 1000).candidates, 128);
  assertEquals(samplePlan({ temperature: 1, topP: 0.9 }, 50).candidates, 50);
  assertThrows(() => samplePlan({ temperature: 1, topK: 200 }, 1000), RangeError, "top-k 200");
  assertThrows(() => samplePlan({ temperature: 1, topP: 0 }, 1000), RangeError, "Top-p");
});

// ---- device ---------------------------------------------------------------------------------

/** Samples rows of x (B, V) on the device over chunks of the given widths. */
async function gpuSample(
  x: ArrayLike<number>,
  info: Uint32Array,
  o: SampleOptions & { rows: number; widths: number[]; variant?: SampleVariant },
) {
  const { rows, widths } = o, V = widths.reduce((a, b) => a + b, 0);
  const plan = samplePlan(o, V);
  const chunks = await uploadChunks(x, rows, widths, 3);
  const [state, scratch, rowInfo, out] = await Promise.all([
    zeros("state", rows * 8, "u32"),
    zeros("scratch", sampleScratchSize({ rows, cols: Math.max(...widths) }), "u32"),
    upload("rowInfo", info, "u32"),
    zeros("out", rows * 3, "u32"),
  ]);
  const k = plan.candidates;
  const cand = k
    ? { vals: await zeros("cand.vals", rows * k), ids: await zeros("cand.ids", rows * k, "u32") }
    : undefined;
  await runGpu((rec) => {
    const t = { state, rowInfo, cand, vocab: V, ...o };
    chunks.forEach((c, i) =>
      sampleChunk(rec, {
        ...t,
        x: c.t,
        scratch,
        rows,
        cols: c.cols,
        ld: c.ld,
        colStart: c.colStart,
        first: i === 0,
      })
    );
    sampleFinish(rec, { ...t, out });
  });
  return sampleResults(Uint32Array.from(await download(out)), rows);
}

const GPU_CASES: [string, SampleOptions][] = [
  ["greedy", { temperature: 0 }],
  ["temperature 0.7", { temperature: 0.7, seed: 11 }],
  ["temperature 1.5", { temperature: 1.5, seed: 12 }],
  ["top-k 5", { temperature: 1, topK: 5, seed: 13 }],
  ["top-k 128 at T 0.5", { temperature: 0.5, topK: 128, seed: 14 }],
  ["top-p 0.9", { temperature: 1, topP: 0.9, seed: 15 }],
  ["top-p 0.5 at T 0.6", { temperature: 0.6, topP: 0.5, seed: 16 }],
  ["top-k 20 and top-p 0.8", { temperature: 1.2, topK: 20, topP: 0.8, seed: 17 }],
];

// Spans of 1024 ("short") or 16384 ("long") columns: chunks of one and of several partials.
const SHAPES: [number, number[], number, boolean][] = [
  [1, [1], 4, false],
  [3, [17, 300, 682], 6, false],
  [17, [1000], 5, false],
  [2, [5000, 3, 2100], 8, false],
  [3, [40, 997], 3, true], // logits rounded to quarters: ties everywhere
  [2, [40000, 17], 10, false],
];

for (const [what, opts] of GPU_CASES) {
  for (const [rows, widths, scale, ties] of SHAPES) {
    const V = widths.reduce((a, b) => a + b, 0);
    Deno.test({
      name: `sampleChunk()/sampleFinish() (${what}) pick the reference's tokens for rows=${rows} ` +
        `chunks [${widths}]${ties ? " with ties" : ""}`,
      ignore: NO_GPU,
      fn: async () => {
        let x = f32(randn(rows * V, 31 + rows, scale));
        if (ties) x = x.map((v) => Math.round(v * 4) / 4);
        const info = streams(rows, 5, 9);
        const got = await gpuSample(x, info, { ...opts, rows, widths, variant: "short" });
        const long = await gpuSample(x, info, { ...opts, rows, widths, variant: "long" });
        assertEquals([...long.ids], [...got.ids], "long spans");
        expectClose(long.logprobs, got.logprobs, { atol: 2e-5, rtol: 1e-5 }, "long spans");
        const ref = sampleRef(x, info, { ...opts, rows, cols: V });
        assertEquals([...got.exact], [...ref.exact], "exact flags");
        for (let r = 0; r < rows; r++) {
          if (!ref.exact[r]) continue;
          assertEquals(got.ids[r], ref.ids[r], `row ${r} id`);
        }
        expectClose(
          got.logprobs.filter((_, r) => ref.exact[r]),
          ref.logprobs.filter((_, r) => ref.exact[r]),
          { atol: 2e-5, rtol: 1e-5 },
          "logprobs",
        );
      },
    });
  }
}

Deno.test({
  name: "sampleChunk()/sampleFinish() choose the same tokens whatever the batch and chunking",
  ignore: NO_GPU,
  fn: async () => {
    const rows = 17, V = 3001, x = f32(randn(rows * V, 41, 4));
    const info = streams(rows, 100, 2);
    for (
      const o of [
        { temperature: 1, seed: 5 },
        { temperature: 0.9, topK: 40, seed: 6 },
        { temperature: 1, topP: 0.3, seed: 7 },
      ] as SampleOptions[]
    ) {
      const whole = await gpuSample(x, info, { ...o, rows, widths: [V] });
      const split = await gpuSample(x, info, { ...o, rows, widths: [1, 13, 2500, 487] });
      assertEquals([...split.ids], [...whole.ids], `chunked, ${JSON.stringify(o)}`);
      // row 9 alone, as the first row of a batch of one
      const one = await gpuSample(x.subarray(9 * V, 10 * V), info.subarray(18, 20), {
        ...o,
        rows: 1,
        widths: [700, V - 700],
      });
      assertEquals(one.ids[0], whole.ids[9], `row 9 alone, ${JSON.stringify(o)}`);
    }
  },
});

Deno.test({
  name: "sampleChunk()/sampleFinish() draw frequencies follow the tempered, cut softmax",
  ignore: NO_GPU,
  fn: async () => {
    const x = [1.0, 3.0, 2.5, 3.0, -1.0, 0.0, 2.0, 0.5, 1.5, -0.5], V = x.length, rows = 4000;
    const logits = new Float64Array(rows * V);
    for (let r = 0; r < rows; r++) logits.set(x, r * V);
    const cases: SampleOptions[] = [
      { temperature: 1, seed: 21 },
      { temperature: 0.5, seed: 22 },
      { temperature: 2, seed: 23 },
      { temperature: 1, topK: 3, seed: 24 },
      { temperature: 1, topP: 0.8, seed: 25 },
      { temperature: 0.7, topK: 5, topP: 0.9, seed: 26 },
    ];
    for (const o of cases) {
      const got = await gpuSample(logits, streams(rows, 1000, 0), { ...o, rows, widths: [4, 6] });
      const counts = new Array(V).fill(0);
      for (const id of got.ids) counts[id]++;
      assertFits(counts, targetProbs(x, o), `device ${JSON.stringify(o)}`);
    }
  },
});

Deno.test({
  name: "sampleFinish() flags top-p rows whose nucleus the 128 candidates cannot hold",
  ignore: NO_GPU,
  fn: async () => {
    // row 0 flat over 1000 tokens (nucleus ~900), row 1 peaked (logits spread over [-40, 40):
    // 12.5 tokens per unit, the nucleus about 2.3 units below the top, ~30 tokens)
    const V = 1000, x = new Float64Array(2 * V);
    x.set(f32(randn(V, 51, 0.1)), 0);
    x.set(f32(randn(V, 52, 40)), V);
    const info = streams(2);
    const got = await gpuSample(x, info, { temperature: 1, topP: 0.9, rows: 2, widths: [V] });
    assertEquals([...got.exact], [0, 1]);
    const ref = sampleRef(x, info, { temperature: 1, topP: 0.9, rows: 2, cols: V });
    assertEquals([...ref.exact], [0, 1]);
    assertEquals(got.ids[1], ref.ids[1]);
  },
});

Deno.test({
  name: "sampleFinish() keeps tokens tied with the top-p cut, and flags ties past the candidates",
  ignore: NO_GPU,
  fn: async () => {
    // probabilities ~ e^2, e, e, e, 1, 1, ...: p = 0.5 cuts at the first e, its ties stay
    const x = [2, 1, 1, 1, 0, 0, -1, -3], rows = 600;
    const logits = new Float64Array(rows * x.length);
    for (let r = 0; r < rows; r++) logits.set(x, r * x.length);
    const o = { temperature: 1, topP: 0.5, seed: 3 };
    const info = streams(rows);
    const got = await gpuSample(logits, info, { ...o, rows, widths: [3, 5] });
    const ref = sampleRef(logits, info, { ...o, rows, cols: x.length });
    assertEquals([...got.ids], [...ref.ids]);
    assertEquals(new Set(got.ids).size, 4);
    // 5 distinct logits then 195 equal ones: the cut lands in the tied block, which runs past
    // the 128 candidates
    const V = 200, y = Array.from({ length: V }, (_, i) => (i < 5 ? 4 - i : -2));
    const tied = await gpuSample(y, streams(1), {
      temperature: 1,
      topP: 0.9,
      rows: 1,
      widths: [V],
    });
    assertEquals([...tied.exact], [0]);
    assertEquals([
      ...sampleRef(y, streams(1), { temperature: 1, topP: 0.9, rows: 1, cols: V }).exact,
    ], [0]);
  },
});
