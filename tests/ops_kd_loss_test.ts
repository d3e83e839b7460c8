/**
 * The CKD loss kernels (engine/ops/kd_loss.ts) against the float64 reference of
 * train/ckd_loss_ref.ts, on awkward shapes: vocabularies split in uneven chunks (compact chunk
 * buffers and windows of a full logits buffer), k and m from 1 to 128, a zero-weight row, the
 * kd_ratio = 0 (plain CE) path, the real Qwen3 vocabulary size, and in place. With compact
 * chunks the student's top-m comes from the GPU top-k op (engine/ops/topk.ts), as in training.
 */
import {
  KD_PARTS,
  kdLossBackward,
  kdLossFinish,
  kdLossReduce,
  kdLossStats,
  kdRowInfo,
  kdWorkSize,
} from "../engine/ops/kd_loss.ts";
import { topkChunk } from "../engine/ops/topk.ts";
import { ckdRowRef, type KdKlType, type TeacherTopk, topmIdsRef } from "../train/ckd_loss_ref.ts";
import { download, expectClose, f32, NO_GPU, randn, runGpu, upload, zeros } from "./_ops.ts";
import { assertEquals } from "./assert.ts";

interface Case {
  V: number;
  N: number;
  k: number;
  m: number;
  klType: KdKlType;
  kdRatio: number;
  l1Coef: number;
  /** Chunk widths; their sum is V. */
  chunks: number[];
  /** Chunks as windows of one (N, V) buffer instead of compact (N, C) buffers. */
  window: boolean;
  seed: number;
  /** The gradient overwrites the logits. */
  inplace?: boolean;
}

const CASES: Case[] = [
  {
    V: 151936,
    N: 2,
    k: 100,
    m: 100,
    klType: "akl",
    kdRatio: 1,
    l1Coef: 10,
    chunks: [50000, 50000, 50000, 1936],
    window: false,
    seed: 13,
  },
  {
    V: 1000,
    N: 3,
    k: 100,
    m: 100,
    klType: "rkl",
    kdRatio: 0.5,
    l1Coef: 10,
    chunks: [600, 400],
    window: false,
    seed: 11,
    inplace: true,
  },
  {
    V: 37,
    N: 5,
    k: 8,
    m: 6,
    klType: "akl",
    kdRatio: 1,
    l1Coef: 10,
    chunks: [5, 32],
    window: true,
    seed: 12,
    inplace: true,
  },
  {
    V: 1000,
    N: 3,
    k: 100,
    m: 100,
    klType: "fkl",
    kdRatio: 1,
    l1Coef: 10,
    chunks: [333, 333, 333, 1],
    window: false,
    seed: 1,
  },
  {
    V: 37,
    N: 5,
    k: 8,
    m: 6,
    klType: "akl",
    kdRatio: 0.6,
    l1Coef: 10,
    chunks: [17, 17, 3],
    window: true,
    seed: 2,
  },
  {
    V: 17,
    N: 1,
    k: 3,
    m: 1,
    klType: "rkl",
    kdRatio: 1,
    l1Coef: 10,
    chunks: [17],
    window: false,
    seed: 3,
  },
  {
    V: 300,
    N: 4,
    k: 128,
    m: 128,
    klType: "akl",
    kdRatio: 1,
    l1Coef: 10,
    chunks: [256, 44],
    window: true,
    seed: 4,
  },
  {
    V: 50,
    N: 2,
    k: 0,
    m: 1,
    klType: "fkl",
    kdRatio: 0,
    l1Coef: 10,
    chunks: [20, 30],
    window: false,
    seed: 5,
  },
  {
    V: 151936,
    N: 2,
    k: 100,
    m: 100,
    klType: "fkl",
    kdRatio: 0.9,
    l1Coef: 10,
    chunks: [65536, 65536, 20864],
    window: true,
    seed: 6,
  },
];

for (const c of CASES) {
  Deno.test({
    name:
      `kdLossStats/Finish/Backward() match ckdRowRef() for ${c.klType} kd_ratio=${c.kdRatio} V=${c.V} N=${c.N} k=${c.k} m=${c.m} chunks=${c.chunks.length}${
        c.inplace ? " in place" : ""
      }`,
    ignore: NO_GPU,
    fn: () => runCase(c),
  });
}

async function runCase(c: Case): Promise<void> {
  const { V, N, k, m } = c;
  // teacher logits -> full-vocab log-probs -> top-k; student logits correlated with the teacher
  const tz = randn(N * V, c.seed, 6);
  const z = f32(Float64Array.from(randn(N * V, c.seed + 100, 3), (x, i) => 0.5 * tz[i] + x));
  const targets = Array.from({ length: N }, (_, r) => Math.floor((r * 7919 + c.seed) % V));
  const weights = Array.from({ length: N }, (_, r) => (c.N > 2 && r === 1 ? 0 : 1 / (N + 1)));
  const tIds = new Uint32Array(Math.max(1, N * k)), tLp = new Float32Array(Math.max(1, N * k));
  const mIds = new Uint32Array(N * m), mLogits = new Float32Array(N * m);
  const teacher: TeacherTopk[] = [];
  for (let r = 0; r < N; r++) {
    const row = tz.subarray(r * V, (r + 1) * V);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - mx);
    const lse = mx + Math.log(s);
    const ids = topmIdsRef(row, k);
    const logprobs = f32(ids.map((i) => row[i] - lse));
    tIds.set(ids, r * k);
    tLp.set(logprobs, r * k);
    teacher.push({ ids, logprobs });
    const zr = z.subarray(r * V, (r + 1) * V);
    const top = topmIdsRef(zr, m);
    mIds.set(top, r * m);
    mLogits.set(top.map((i) => zr[i]), r * m);
  }
  const opts = { klType: c.klType, l1Coef: c.l1Coef, topm: m, kdRatio: c.kdRatio };
  const ref = Array.from({ length: N }, (_, r) =>
    ckdRowRef(z.subarray(r * V, (r + 1) * V), {
      ...opts,
      teacher: c.kdRatio > 0 ? teacher[r] : undefined,
      target: targets[r],
    }));

  const shape = { rows: N, k, m };
  const [teacherIds, teacherLogprobs, topmIds, topmLogits, rowInfo, work, parts] = await Promise
    .all([
      upload("teacher_ids", tIds, "u32"),
      upload("teacher_logprobs", tLp),
      // compact chunks: the GPU top-k op fills these; windows: the CPU's top-m
      upload("topm_ids", c.window ? mIds : new Uint32Array(N * m), "u32"),
      upload("topm_logits", c.window ? mLogits : new Float32Array(N * m)),
      upload("row_info", kdRowInfo(targets, weights), "u32"),
      zeros("work", kdWorkSize(shape)),
      zeros("parts", N * KD_PARTS.length),
    ]);
  const acc = await upload("acc", [0.5, 0, 0, 0, 0, 0, 0, 0]);
  // logits as compact (N, C) chunk buffers, or one (N, V) buffer bound by windows
  const starts = c.chunks.map((_, i) => c.chunks.slice(0, i).reduce((a, b) => a + b, 0));
  const chunkOf = (i: number) => {
    const out = new Float32Array(N * c.chunks[i]);
    for (let r = 0; r < N; r++) {
      out.set(z.subarray(r * V + starts[i], r * V + starts[i] + c.chunks[i]), r * c.chunks[i]);
    }
    return out;
  };
  const full = c.window ? await upload("logits", z) : undefined;
  const dfull = c.window ? (c.inplace ? full : await zeros("dlogits", N * V)) : undefined;
  const logitChunks = c.window
    ? c.chunks.map(() => full!)
    : await Promise.all(c.chunks.map((_, i) => upload(`logits.${i}`, chunkOf(i))));
  const dChunks = c.window
    ? c.chunks.map(() => dfull!)
    : c.inplace
    ? logitChunks
    : await Promise.all(c.chunks.map((w, i) => zeros(`dlogits.${i}`, N * w)));
  const chunk = (i: number) =>
    c.window
      ? { c0: starts[i], cols: c.chunks[i], ld: V, base: starts[i] }
      : { c0: starts[i], cols: c.chunks[i], ld: c.chunks[i] };

  await runGpu((rec) => {
    c.chunks.forEach((_, i) => {
      kdLossStats(rec, {
        ...shape,
        ...chunk(i),
        logits: logitChunks[i],
        teacherIds,
        rowInfo,
        work,
        first: i === 0,
      });
      // the student's own top-m, running over the chunks (raw logits: no topkFinish)
      if (!c.window) {
        topkChunk(rec, {
          vals: topmLogits,
          ids: topmIds,
          x: logitChunks[i],
          colStart: starts[i],
          k: m,
          first: i === 0,
          rows: N,
          cols: c.chunks[i],
        });
      }
    });
    kdLossFinish(rec, {
      ...shape,
      teacherIds,
      teacherLogprobs,
      topmIds,
      topmLogits,
      rowInfo,
      work,
      parts,
      klType: c.klType,
      l1Coef: c.l1Coef,
      kdRatio: c.kdRatio,
    });
    kdLossReduce(rec, { parts, rowInfo, acc, rows: N });
    c.chunks.forEach((_, i) =>
      kdLossBackward(rec, {
        ...shape,
        ...chunk(i),
        logits: logitChunks[i],
        dlogits: c.inplace ? undefined : dChunks[i],
        teacherIds,
        topmIds,
        rowInfo,
        work,
      })
    );
  });

  if (!c.window) {
    assertEquals(Array.from(await download(topmIds)), Array.from(mIds), "GPU top-m ids");
  }
  const got = await download(parts);
  const col = (name: (typeof KD_PARTS)[number]) =>
    Array.from({ length: N }, (_, r) => got[r * KD_PARTS.length + KD_PARTS.indexOf(name)]);
  const tol = { atol: 2e-5, rtol: 1e-5 };
  expectClose(col("loss"), ref.map((r) => r.loss), tol, "loss");
  expectClose(col("ce"), ref.map((r) => r.ce), tol, "ce");
  if (c.kdRatio > 0) {
    expectClose(col("kl"), ref.map((r) => r.kl), tol, "kl");
    expectClose(col("fkl"), ref.map((r) => r.fkl), tol, "fkl");
    expectClose(col("rkl"), ref.map((r) => r.rkl), tol, "rkl");
    expectClose(col("tail"), ref.map((r) => r.tail), tol, "tail");
  }
  // the weighted sums, added to what the accumulator held
  const sums = await download(acc);
  const wsum = (f: (r: (typeof ref)[number]) => number) =>
    ref.reduce((a, r, i) => a + weights[i] * f(r), 0);
  expectClose(
    [sums[0], sums[4], sums[5]],
    [0.5 + wsum((r) => r.loss), wsum((r) => r.tail), wsum((r) => r.ce)],
    tol,
    "reduced loss, tail, ce",
  );
  // gradients: the weighted reference, at the scale of the row's largest entry
  const dz = new Float64Array(N * V);
  if (c.window) dz.set(await download(dfull!));
  else {
    for (let i = 0; i < c.chunks.length; i++) {
      const d = await download(dChunks[i]);
      for (let r = 0; r < N; r++) {
        dz.set(d.subarray(r * c.chunks[i], (r + 1) * c.chunks[i]), r * V + starts[i]);
      }
    }
  }
  for (let r = 0; r < N; r++) {
    const want = ref[r].dlogits.map((x) => x * weights[r]);
    const scale = want.reduce((a, x) => Math.max(a, Math.abs(x)), 1e-30);
    const gotRow = dz.subarray(r * V, (r + 1) * V);
    if (weights[r] === 0) assertEquals(gotRow.every((x) => x === 0), true, `row ${r} is zero`);
    else expectClose(gotRow, want, { atol: 2e-6 * scale, rtol: 1e-5 }, `dlogits row ${r}`);
  }
}
