import { assertClose, assertEquals } from "./assert.ts";
import { policyLoss, policyLossRef } from "../engine/ops/policy_loss.ts";
import { klEstimateRef, ppoTokenRef } from "../train/simrl_loss_ref.ts";
import { download, expectClose, NO_GPU, randn, runGpu, TOL, upload, zeros } from "./_ops.ts";

/** Rows spanning both clip sides, both advantage signs and KL values past the clamp. */
function rows(n: number, seed: number) {
  const u = randn(5 * n, seed);
  return Array.from({ length: n }, (_, i) => {
    const l = -Math.abs(u[5 * i]) * 3;
    return {
      l,
      old: l + u[5 * i + 1] * 0.5, // ratios from ~0.6 to ~1.6: inside and outside [0.8, 1.2]
      ref: l + u[5 * i + 2] * (i % 7 === 0 ? 12 : 1), // some |d| past sqrt(20)
      adv: u[5 * i + 3] * 2,
      w: 1 / (1 + Math.floor(Math.abs(u[5 * i + 4]) * 9)),
    };
  });
}

Deno.test("policyLossRef() agrees with the per-token Sim-RL reference (ppoTokenRef, klEstimateRef)", () => {
  for (const estimator of ["k1", "k2", "k3"] as const) {
    const rs = rows(300, 3);
    const o = { epsClip: 0.2, beta: 1e-3, estimator };
    const { dLoss, parts } = policyLossRef(rs, o);
    rs.forEach((r, i) => {
      const pg = ppoTokenRef(r.l - r.old, { advantage: r.adv, epsClip: 0.2 });
      const kl = klEstimateRef(r.l - r.ref, estimator);
      assertClose(dLoss[i], -r.w * (pg.grad + 1e-3 * kl.grad), { atol: 1e-15, rtol: 1e-12 });
      assertClose(Array.from(parts.subarray(4 * i, 4 * i + 4)), [
        pg.loss,
        kl.value,
        pg.clipped ? 1 : 0,
        r.old - r.l,
      ], { atol: 1e-15, rtol: 1e-12 });
    });
    // the cases the rows were built for all occur
    const clipped = rs.filter((_, i) => parts[4 * i + 2] === 1).length;
    assertEquals(clipped > 10 && clipped < 290, true, `${clipped} clipped`);
  }
});

for (const estimator of ["k1", "k2", "k3"] as const) {
  for (const n of [1, 17, 1000]) {
    Deno.test({
      name: `policyLoss() matches policyLossRef() (${estimator}, ${n} rows)`,
      ignore: NO_GPU,
      async fn() {
        const rs = rows(n, 11 + n);
        const f = (x: number) => Math.fround(x);
        const r32 = rs.map((r) => ({
          l: f(r.l),
          old: f(r.old),
          ref: f(r.ref),
          adv: f(r.adv),
          w: f(r.w),
        }));
        const o = { epsClip: 0.2, beta: 0.05, estimator };
        const want = policyLossRef(r32, o);
        const logprobs = await upload("l", r32.map((r) => r.l));
        const rowdata = await upload("rows", r32.flatMap((r) => [r.old, r.ref, r.adv, r.w]));
        const dLoss = await zeros("dLoss", n), parts = await zeros("parts", 4 * n);
        const acc = await upload("acc", [1, 2, 3, 4]); // accumulates onto what is there
        await runGpu((rec) =>
          policyLoss(rec, { ...o, logprobs, rowdata, dLoss, parts, acc, rows: n })
        );
        expectClose(await download(dLoss), want.dLoss, TOL.f32, "dLoss");
        expectClose(await download(parts), want.parts, TOL.f32, "parts");
        expectClose(await download(acc), Array.from(want.acc, (v, j) => v + j + 1), TOL.f32, "acc");
      },
    });
  }
}
