import { getGpu } from "../engine/device.ts";
import {
  adamwRef,
  adamwStep,
  gradNormFinish,
  gradNormPartial,
  gradNormRef,
} from "../engine/ops/adamw.ts";
import { createTensor, rowChunks, writeTensor } from "../engine/tensor.ts";
import { adamwMoments, adamwStepRef } from "../train/optimizer_ref.ts";
import { assertClose, assertEquals } from "./assert.ts";
import { download, expectClose, f32, NO_GPU, randn, runGpu, TOL, upload, zeros } from "./_ops.ts";

Deno.test("adamwRef() first step moves each weight by lr·sign(g) plus decay", () => {
  // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
  const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0, weightDecay: 0.5, step: 1 };
  const r = adamwRef([1, -2], [3, -0.5], [0, 0], [0, 0], h);
  assertClose(r.param, [1 * (1 - 0.05) - 0.1, -2 * (1 - 0.05) + 0.1], { rtol: 1e-12 });
  assertClose(r.m, [0.3, -0.05]);
  assertClose(r.v, [0.001 * 9, 0.001 * 0.25]);
});

Deno.test("adamwRef() applies gradScale before the moments", () => {
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 7 };
  const a = adamwRef([0.5], [4], [0.2], [0.3], h, 0.25);
  const b = adamwRef([0.5], [1], [0.2], [0.3], h, 1);
  assertClose(a.param, b.param);
  assertClose(a.m, b.m);
});

Deno.test("gradNormRef() is the joint L2 norm and clips to maxNorm", () => {
  const { norm, scale } = gradNormRef([[3], [4, 0]], 1);
  assertClose(norm, 5);
  assertClose(scale, 1 / (5 + 1e-6));
  assertClose(gradNormRef([[0.3], [0.4]], 1).scale, 1);
});

Deno.test({
  name:
    "adamwStep() over shards matches adamwRef() and the torch-checked adamwStepRef() for 3 steps",
  ignore: NO_GPU,
  fn: async () => {
    const gpu = await getGpu();
    const n = 1003, h = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    let p: Float64Array = f32(randn(n, 1));
    let m: Float64Array = new Float64Array(n), v: Float64Array = new Float64Array(n);
    const mk = (label: string, data: ArrayLike<number>) =>
      createTensor(gpu, { shape: [n, 1], dtype: "f32", label, data: Float32Array.from(data) });
    const tp = mk("p", p), tg = mk("g", new Float64Array(n)), tm = mk("m", m), tv = mk("v", v);
    const sh = (t: typeof tp) => rowChunks(gpu, t, 4 * 400);
    const torchP = Float64Array.from(p), moments = adamwMoments(n);
    for (let step = 1; step <= 3; step++) {
      const g = f32(randn(n, 10 + step, 0.01 * step));
      writeTensor(gpu, tg, Float32Array.from(g));
      await runGpu((rec) =>
        adamwStep(rec, { param: sh(tp), grad: sh(tg), m: sh(tm), v: sh(tv), ...h, step })
      );
      ({ param: p, m, v } = adamwRef(p, g, m, v, { ...h, step }));
      adamwStepRef(torchP, {
        lr: h.lr,
        betas: [h.beta1, h.beta2],
        eps: h.eps,
        weightDecay: h.weightDecay,
        grad: g,
        moments,
        step,
      });
    }
    const got = await download(tp);
    expectClose(got, p, TOL.f32, "param");
    expectClose(got, torchP, TOL.f32, "param vs adamwStepRef");
    expectClose(await download(tm), m, TOL.f32, "m");
    expectClose(await download(tv), v, { atol: 1e-9, rtol: 1e-5 }, "v");
  },
});

for (const maxNorm of [1, 1e6]) {
  Deno.test({
    name:
      `gradNormPartial()/gradNormFinish() give the joint norm and the clip factor for ${maxNorm}`,
    ignore: NO_GPU,
    fn: async () => {
      const gpu = await getGpu();
      const sizes = [1, 3, 17, 1000, 70001];
      const grads = sizes.map((s, i) => f32(randn(s, 20 + i, 0.1)));
      const ts = await Promise.all(grads.map((g, i) => upload(`g${i}`, g)));
      const big = createTensor(gpu, {
        shape: [70001, 1],
        dtype: "f32",
        label: "big",
        data: Float32Array.from(grads[4]),
      });
      const [partials, clip] = await Promise.all([zeros("partials", 1024), zeros("clip", 2)]);
      await runGpu((rec) => {
        let slot = 0;
        for (const t of ts.slice(0, 4)) slot = gradNormPartial(rec, { x: t, partials, slot });
        slot = gradNormPartial(rec, { x: rowChunks(gpu, big, 4 * 30000), partials, slot });
        gradNormFinish(rec, { clip, partials, count: slot, maxNorm });
      });
      const ref = gradNormRef(grads, maxNorm);
      const c = await download(clip);
      expectClose([c[0], c[1]], [ref.norm, ref.scale], TOL.f32, "norm, scale");
    },
  });
}

Deno.test({
  name: "adamwStep() with a non-finite gradient norm leaves param and moments untouched",
  ignore: NO_GPU,
  fn: async () => {
    const [p, g, m, v, partials, clip] = await Promise.all([
      upload("p", [1, 2, 3]),
      upload("g", [1, Infinity, 0]),
      upload("m", [0.5, 0.5, 0.5]),
      upload("v", [0.25, 0.25, 0.25]),
      zeros("partials", 4),
      zeros("clip", 2),
    ]);
    const h = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 2 };
    await runGpu((rec) => {
      const count = gradNormPartial(rec, { x: g, partials, slot: 0 });
      gradNormFinish(rec, { clip, partials, count, maxNorm: 1 });
      adamwStep(rec, { param: p, grad: g, m, v, clip, ...h });
    });
    assertEquals([...await download(clip)], [Infinity, 1]);
    assertEquals([...await download(p)], [1, 2, 3]);
    assertEquals([...await download(m)], [0.5, 0.5, 0.5]);
  },
});
