import type { CkdLossOptions as CkdOptions } from "../train/ckd_batch.ts";
import { assertClose, assertEquals, assertThrows } from "./assert.ts";
import {
  ckdMicroBatchRef,
  ckdRowRef,
  type KdKlType,
  stepLossRef,
  topmIdsRef,
} from "../train/ckd_loss_ref.ts";

/** A seeded uniform generator (mulberry32) for test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random row: student logits, the teacher's top-k (descending, full-vocab log-probs). */
function randomRow(V: number, k: number, seed: number, flat = 1) {
  const r = rng(seed);
  const tz = Array.from({ length: V }, () => (r() * 2 - 1) * 4 * flat);
  const tmax = Math.max(...tz);
  const tlse = tmax + Math.log(tz.reduce((a, x) => a + Math.exp(x - tmax), 0));
  const ids = topmIdsRef(tz, k);
  const logprobs = ids.map((i) => tz[i] - tlse);
  const z = Float64Array.from(tz, (x) => 0.6 * x + (r() * 2 - 1) * 2);
  return { z, teacher: { ids, logprobs }, target: Math.floor(r() * V) };
}

Deno.test("ckdRowRef() hand-computed: fkl on a top-1 teacher, tail over the top-2, ce", () => {
  // p_S = (1/2, 1/4, 1/4); teacher top-1 = id 0 with p_T = 0.8; student top-2 = ids 0, 1
  const z = [Math.log(2), 0, 0];
  const teacher = { ids: [0], logprobs: [Math.log(0.8)] };
  const base: CkdOptions = { klType: "fkl", l1Coef: 10, topm: 2, kdRatio: 1 };
  const r = ckdRowRef(z, { ...base, teacher, target: 2 });
  assertClose(r.fkl, 0.8 * Math.log(1.6), { rtol: 1e-14 });
  assertClose(r.rkl, 0.5 * Math.log(0.5 / 0.8), { rtol: 1e-14 });
  assertClose(r.tail, 0.25, { rtol: 1e-14 });
  assertClose(r.ce, Math.log(4), { rtol: 1e-14 });
  assertClose(r.loss, 0.8 * Math.log(1.6) + 2.5, { rtol: 1e-14 });
  // gradient by hand: g_0 = -0.8, g_1 = 10 · 1/4; dz_a = g_a - p_a (g_0 + g_1) = g_a - p_a · 1.7
  assertClose(r.dlogits, [-0.8 - 0.5 * 1.7, 2.5 - 0.25 * 1.7, -0.25 * 1.7], { rtol: 1e-14 });
  // kd_ratio 0.25 mixes in CE; kd_ratio 0 is plain cross-entropy without a teacher
  const mix = ckdRowRef(z, { ...base, kdRatio: 0.25, teacher, target: 2 });
  assertClose(mix.loss, 0.25 * (0.8 * Math.log(1.6) + 2.5) + 0.75 * Math.log(4), { rtol: 1e-14 });
  const sft = ckdRowRef(z, { ...base, kdRatio: 0, target: 2 });
  assertClose(sft.loss, Math.log(4), { rtol: 1e-14 });
  assertClose(sft.dlogits, [0.5, 0.25, 0.25 - 1], { rtol: 1e-14 });
});

Deno.test("ckdRowRef() akl hand-computed: one head entry, one tail entry", () => {
  // teacher (0.6, 0.3) on ids (0, 1): head = {0} (mass before id 1 is 0.6 >= 0.5)
  const z = [0, 0, 0, 0]; // q = 1/4 each
  const teacher = { ids: [0, 1], logprobs: [Math.log(0.6), Math.log(0.3)] };
  const r = ckdRowRef(z, { klType: "akl", l1Coef: 0, topm: 1, kdRatio: 1, teacher, target: 0 });
  const fkl = 0.6 * Math.log(0.6 / 0.25) + 0.3 * Math.log(0.3 / 0.25);
  const rkl = 0.25 * Math.log(0.25 / 0.6) + 0.25 * Math.log(0.25 / 0.3);
  const gh = 0.35, gt = 0.05;
  assertClose(r.kl, (gh * fkl + gt * rkl) / (gh + gt), { rtol: 1e-13 });
  assertClose(r.loss, r.kl, { rtol: 0 });
});

interface TorchCase {
  vocab: number;
  k: number;
  m: number;
  kl_type: KdKlType;
  l1: number;
  kd_ratio: number;
  logits: number[][];
  teacher_ids: number[][];
  teacher_logprobs: number[][];
  targets: number[];
  loss: number[];
  kl: number[];
  fkl: number[];
  tail: number[];
  ce: number[];
  dlogits: number[][];
}

Deno.test("ckdRowRef() matches STAR's loss written in torch, with autograd gradients", async () => {
  const { cases }: { cases: TorchCase[] } = JSON.parse(
    await Deno.readTextFile(new URL("./testdata/ckd/ckd_torch.json", import.meta.url)),
  );
  assertEquals(cases.length, 9);
  for (const c of cases) {
    c.targets.forEach((target, r) => {
      const label = `${c.kl_type} ratio=${c.kd_ratio} V=${c.vocab} row ${r}`;
      const got = ckdRowRef(c.logits[r], {
        klType: c.kl_type,
        l1Coef: c.l1,
        topm: c.m,
        kdRatio: c.kd_ratio,
        teacher: { ids: c.teacher_ids[r], logprobs: c.teacher_logprobs[r] },
        target,
      });
      assertClose(got.loss, c.loss[r], { rtol: 1e-12, msg: `loss ${label}` });
      if (c.kd_ratio > 0) {
        assertClose(got.kl, c.kl[r], { rtol: 1e-12, atol: 1e-15, msg: `kl ${label}` });
        assertClose(got.tail, c.tail[r], { rtol: 1e-12, atol: 1e-15, msg: `tail ${label}` });
      }
      assertClose(got.ce, c.ce[r], { rtol: 1e-12, msg: `ce ${label}` });
      assertClose(got.dlogits, c.dlogits[r], { rtol: 1e-9, atol: 1e-13, msg: `grad ${label}` });
    });
  }
});

for (const klType of ["fkl", "rkl", "akl"] as const) {
  for (const kdRatio of [1, 0.7]) {
    Deno.test(`ckdRowRef() ${klType} kd_ratio=${kdRatio} gradient matches central finite differences`, () => {
      for (const [seed, flat] of [[1, 1], [2, 0.2], [3, 2]]) {
        const V = 41, k = 9, m = 7;
        const { z, teacher, target } = randomRow(V, k, seed * 10 + kdRatio, flat);
        const opts = { klType, l1Coef: 10, topm: m, kdRatio, teacher, target };
        const r = ckdRowRef(z, opts);
        assertEquals(r.tail > 0, true, "the case exercises the tail");
        const h = 1e-6;
        const fd = new Float64Array(V);
        for (let a = 0; a < V; a++) {
          const zp = Float64Array.from(z), zm = Float64Array.from(z);
          zp[a] += h;
          zm[a] -= h;
          fd[a] = (ckdRowRef(zp, opts).loss - ckdRowRef(zm, opts).loss) / (2 * h);
        }
        assertClose(r.dlogits, fd, { rtol: 1e-6, atol: 1e-8, msg: `seed ${seed}` });
      }
    });
  }
}

Deno.test("ckdMicroBatchRef() averages over target tokens and scales gradients by 1/(N·micro)", () => {
  const V = 23, k = 5, N = 3;
  const rows = [0, 1, 2].map((i) => randomRow(V, k, 100 + i));
  const logits = new Float64Array(N * V);
  rows.forEach((r, i) => logits.set(r.z, i * V));
  const opts: CkdOptions = { klType: "fkl", l1Coef: 10, topm: 4, kdRatio: 1 };
  const mb = ckdMicroBatchRef(logits, {
    ...opts,
    vocab: V,
    targets: rows.map((r) => r.target),
    teacher: rows.map((r) => r.teacher),
    microBatches: 2,
  });
  const each = rows.map((r) => ckdRowRef(r.z, { ...opts, teacher: r.teacher, target: r.target }));
  assertEquals(mb.tokens, 3);
  assertClose(mb.loss, (each[0].loss + each[1].loss + each[2].loss) / 3, { rtol: 1e-14 });
  assertClose(mb.tail, (each[0].tail + each[1].tail + each[2].tail) / 3, { rtol: 1e-14 });
  assertClose(mb.dlogits.subarray(V, 2 * V), each[1].dlogits.map((x) => x / 6), { rtol: 1e-14 });
  assertEquals(stepLossRef([1, 2, 4.5]), 2.5);
});

Deno.test("topmIdsRef() breaks ties by the lower id; ckdRowRef() rejects a bad target", () => {
  assertEquals(topmIdsRef([1, 3, 3, 0, 3], 2), [1, 2]);
  assertEquals(topmIdsRef([1, 2], 5), [1, 0]);
  assertThrows(
    () => ckdRowRef([0, 1], { klType: "fkl", l1Coef: 0, topm: 1, kdRatio: 0, target: 2 }),
    /Target id 2 is outside \[0, 2\)/,
  );
});
