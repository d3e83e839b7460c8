import { assertClose, assertEquals, assertThrows } from "./assert.ts";
import type { ModelConfig } from "../model/config.ts";
import { presetConfig } from "../model/config.ts";
import { logProbsRef, randomRefModel, type RefModel } from "../model/ref.ts";
import { clipGradNormRef, globalGradNormRef } from "../train/optimizer_ref.ts";
import { trainLayout } from "../train/grpo.ts";
import {
  klEstimateRef,
  type KlEstimator,
  ppoTokenRef,
  simrlMicroBatchRef,
  type SimrlTokens,
  stepMetricsRef,
} from "../train/simrl_loss_ref.ts";
import {
  clipGradNormDeepSpeedRef,
  completionLogprobsRef,
  type SimrlRefSample,
  simrlStepRef,
  simrlStepsRef,
} from "../train/simrl_ref.ts";

// written by tests/reference/grpo_ref.py (numpy formulas, gradients by torch autograd)
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/simrl/grpo_ref.json", import.meta.url)),
);

// ---------------------------------------------------------------------------------------------
// token level

Deno.test("klEstimateRef() hand values of k1, k2, k3 below the clamp", () => {
  // d = ℓ − ℓ_ref = 0.5
  assertEquals(klEstimateRef(0.5, "k1"), { value: 0.5, grad: 1 });
  assertEquals(klEstimateRef(0.5, "k2"), { value: 0.125, grad: 0.5 });
  const k3 = klEstimateRef(0.5, "k3");
  assertClose(k3.value, Math.exp(-0.5) - 0.5, { rtol: 1e-15 });
  assertClose(k3.grad, 1 - Math.exp(-0.5), { rtol: 1e-15 });
  // d = −2: k2 = 2, k3 = e² − 3
  assertEquals(klEstimateRef(-2, "k2"), { value: 2, grad: -2 });
  assertClose(klEstimateRef(-2, "k3").value, Math.exp(2) - 3, { rtol: 1e-15 });
  assertThrows(() => klEstimateRef(1, "k4" as KlEstimator), /Unknown kl_estimator "k4"/);
});

Deno.test("klEstimateRef() clamps at ±10 with zero gradient beyond, the gradient kept at the bound", () => {
  assertEquals(klEstimateRef(10, "k1"), { value: 10, grad: 1 }, "d = 10 exactly");
  assertEquals(klEstimateRef(-10, "k1"), { value: -10, grad: 1 }, "d = −10 exactly");
  assertEquals(klEstimateRef(10.5, "k1"), { value: 10, grad: 0 });
  assertEquals(klEstimateRef(-11, "k1"), { value: -10, grad: 0 });
  // k2 binds for |d| > √20 ≈ 4.472
  assertEquals(klEstimateRef(4.48, "k2"), { value: 10, grad: 0 });
  assertEquals(klEstimateRef(4.47, "k2").grad, 4.47);
  assertEquals(klEstimateRef(-4.48, "k2"), { value: 10, grad: 0 });
  // k3 = e^{−d} − 1 + d binds for d < −2.53 or d > 11 (it is never below −10)
  assertEquals(klEstimateRef(-3, "k3"), { value: 10, grad: 0 });
  assertEquals(klEstimateRef(11.5, "k3"), { value: 10, grad: 0 });
  assertEquals(klEstimateRef(10.5, "k3").grad > 0, true);
  assertEquals(klEstimateRef(-2.5, "k3").grad < 0, true);
});

Deno.test("klEstimateRef() gradients match central differences away from the clamp", () => {
  const h = 1e-6;
  for (const est of ["k1", "k2", "k3"] as KlEstimator[]) {
    for (const d of [0.7, -1.6, 2.8, -2.4, 4]) {
      const fd = (klEstimateRef(d + h, est).value - klEstimateRef(d - h, est).value) / (2 * h);
      assertClose(klEstimateRef(d, est).grad, fd, { rtol: 1e-7, atol: 1e-9, msg: `${est} ${d}` });
    }
  }
});

Deno.test("ppoTokenRef() clips on the side that helps, for A > 0 and A < 0", () => {
  const epsClip = 0.2, lr = Math.log;
  // A > 0: ρ = 1.5 is clipped (surr2 = 1.2A < 1.5A); ρ = 0.5 is not (min is ρA)
  const hi = ppoTokenRef(lr(1.5), { advantage: 2, epsClip });
  assertEquals(hi.clipped, true);
  assertClose(hi.loss, -1.2 * 2, { rtol: 1e-15 });
  assertEquals(hi.grad, 0);
  const lo = ppoTokenRef(lr(0.5), { advantage: 2, epsClip });
  assertEquals(lo.clipped, false);
  assertClose(lo.loss, -0.5 * 2, { rtol: 1e-15 });
  assertClose(lo.grad, -2 * 0.5, { rtol: 1e-15 });
  // A < 0: ρ = 0.5 is clipped (surr2 = 0.8A < 0.5A); ρ = 1.5 is not
  const nlo = ppoTokenRef(lr(0.5), { advantage: -2, epsClip });
  assertEquals(nlo.clipped, true);
  assertClose(nlo.loss, 0.8 * 2, { rtol: 1e-15 });
  assertEquals(nlo.grad, 0);
  const nhi = ppoTokenRef(lr(1.5), { advantage: -2, epsClip });
  assertEquals(nhi.clipped, false);
  assertClose(nhi.loss, 1.5 * 2, { rtol: 1e-15 });
  assertClose(nhi.grad, 2 * 1.5, { rtol: 1e-15 });
  // inside the range: surr1 = surr2, not clipped
  assertEquals(ppoTokenRef(0, { advantage: 0.7, epsClip }), {
    loss: -0.7,
    ratio: 1,
    clipped: false,
    grad: -0.7,
  });
});

Deno.test("ppoTokenRef() gradient matches central differences on both clip sides, both signs", () => {
  const h = 1e-6;
  for (const advantage of [1.3, -0.9]) {
    const o = { advantage, epsClip: 0.2 };
    for (const x of [-0.9, -0.5, -0.1, 0, 0.1, 0.5, 0.9]) {
      const fd = (ppoTokenRef(x + h, o).loss - ppoTokenRef(x - h, o).loss) / (2 * h);
      assertClose(ppoTokenRef(x, o).grad, fd, {
        rtol: 1e-7,
        atol: 1e-10,
        msg: `A=${advantage} log ρ=${x}`,
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// micro-batches

interface FixtureSample {
  logp: number[];
  old: number[];
  ref: number[];
  adv: number | number[];
}

const tokensOf = (s: FixtureSample, logp = s.logp): SimrlTokens => ({
  logprobs: logp,
  oldLogprobs: s.old,
  refLogprobs: s.ref,
  advantage: s.adv,
});

Deno.test("simrlMicroBatchRef() metrics and ∂loss/∂ℓ agree with grpo_ref.py (torch autograd)", () => {
  assertEquals(fixture.loss.length >= 12, true);
  for (const c of fixture.loss) {
    const mbs = c.micro_batches as FixtureSample[][];
    const opts = {
      epsClip: c.eps_clip,
      klCoef: c.kl_coef,
      klEstimator: c.estimator as KlEstimator,
      microBatches: mbs.length,
    };
    const outs = mbs.map((mb) => simrlMicroBatchRef(mb.map((s) => tokensOf(s)), opts));
    outs.forEach((o, b) => {
      const m = c.metrics[b];
      const tag = `${c.estimator} micro-batch ${b}`;
      assertEquals(o.tokens, m.tokens);
      assertClose(
        [o.loss, o.policyLoss, o.kl, o.clipRatio, o.ppoKl],
        [m.loss, m.policy_loss, m.kl, m.clip_ratio, m.ppo_kl],
        { rtol: 1e-12, atol: 1e-14, msg: tag },
      );
      o.dlogprobs.forEach((d, i) =>
        assertClose(d, c.dlogp[b][i], { rtol: 1e-12, atol: 1e-15, msg: `${tag} sample ${i}` })
      );
    });
    const step = stepMetricsRef(outs);
    assertClose(
      [step.loss, step.policyLoss, step.kl, step.clipRatio, step.ppoKl],
      [c.step.loss, c.step.policy_loss, c.step.kl, c.step.clip_ratio, c.step.ppo_kl],
      { rtol: 1e-12, atol: 1e-14, msg: c.estimator },
    );
  }
});

/** The step loss of the fixture case as a function of all current log-probs. */
function stepLoss(c: { micro_batches: FixtureSample[][] }, opts: {
  epsClip: number;
  klCoef: number;
  klEstimator: KlEstimator;
}, logp: number[][][]): number {
  const M = c.micro_batches.length;
  return stepMetricsRef(
    c.micro_batches.map((mb, b) =>
      simrlMicroBatchRef(mb.map((s, i) => tokensOf(s, logp[b][i])), { ...opts, microBatches: M })
    ),
  ).loss;
}

Deno.test("simrlMicroBatchRef() ∂(step loss)/∂ℓ matches central differences with unequal lengths", () => {
  const h = 1e-6;
  for (const c of fixture.loss.slice(0, 9)) {
    const opts = { epsClip: c.eps_clip, klCoef: c.kl_coef, klEstimator: c.estimator };
    const M = c.micro_batches.length;
    const base = c.micro_batches.map((mb: FixtureSample[]) => mb.map((s) => [...s.logp]));
    c.micro_batches.forEach((mb: FixtureSample[], b: number) => {
      const grads = simrlMicroBatchRef(mb.map((s) => tokensOf(s)), { ...opts, microBatches: M })
        .dlogprobs;
      mb.forEach((s, i) =>
        s.logp.forEach((x, t) => {
          const plus = structuredClone(base), minus = structuredClone(base);
          plus[b][i][t] = x + h;
          minus[b][i][t] = x - h;
          const fd = (stepLoss(c, opts, plus) - stepLoss(c, opts, minus)) / (2 * h);
          assertClose(grads[i][t], fd, {
            rtol: 1e-6,
            atol: 1e-9,
            msg: `${c.estimator} mb ${b} sample ${i} token ${t}`,
          });
        })
      );
    });
  }
});

Deno.test("simrlMicroBatchRef() pools tokens per micro-batch, then averages micro-batches", () => {
  // β = 0, ρ = 1 on every token: pg = −A, so L_b = −Σ A / T_b
  const tok = (n: number, a: number): SimrlTokens => ({
    logprobs: Array(n).fill(-1),
    oldLogprobs: Array(n).fill(-1),
    refLogprobs: Array(n).fill(-1),
    advantage: a,
  });
  const opts = { epsClip: 0.2, klCoef: 0, klEstimator: "k2" as const, microBatches: 2 };
  // micro-batch 0: one token with A = 1 and three with A = −1 → (1 − 3)/4 · −1 = 0.5
  const mb0 = simrlMicroBatchRef([tok(1, 1), tok(3, -1)], opts);
  assertClose(mb0.policyLoss, 0.5, { rtol: 1e-15 });
  // a per-sequence mean would give −(1 + (−1))/2 = 0; each token weighs 1/(M·T_b) = 1/8
  assertClose(mb0.dlogprobs[0][0], -1 / 8, { rtol: 1e-15 });
  assertClose(mb0.dlogprobs[1][2], 1 / 8, { rtol: 1e-15 });
  const mb1 = simrlMicroBatchRef([tok(2, 2)], opts);
  assertClose(mb1.policyLoss, -2, { rtol: 1e-15 });
  assertClose(mb1.dlogprobs[0][0], -2 / 4, { rtol: 1e-15 });
  const step = stepMetricsRef([mb0, mb1]);
  assertClose(step.policyLoss, (0.5 - 2) / 2, { rtol: 1e-15 });
  assertEquals([step.clipRatio, step.ppoKl, step.tokens], [0, 0, 6]);
  assertThrows(() => simrlMicroBatchRef([tok(0, 1)], opts), /at least one response token/);
  assertThrows(
    () => simrlMicroBatchRef([{ ...tok(2, 1), oldLogprobs: [-1] }], opts),
    /2 log-probs, 1 old/,
  );
});

// ---------------------------------------------------------------------------------------------
// whole model

const small: ModelConfig = {
  ...presetConfig("tiny"),
  vocab_size: 97,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  tie_word_embeddings: false,
};

const sequences = [
  { promptIds: [5, 17, 3], completionIds: [90, 41, 7, 2] },
  { promptIds: [5, 17, 3], completionIds: [60, 2] },
  { promptIds: [88, 12, 33, 4], completionIds: [4, 19, 50, 61, 62] },
  { promptIds: [1], completionIds: [9] },
];
const advantages = [1.1, -0.7, 0.4, -1.3];

function withParam(m: RefModel, name: string, i: number, v: number): RefModel {
  const p = Float64Array.from(m.params[name]);
  p[i] = v;
  return { config: m.config, params: { ...m.params, [name]: p } };
}

/** Samples whose old and reference log-probs sit at set offsets from the policy's own. */
function offPolicySamples(policy: RefModel): SimrlRefSample[] {
  const own = completionLogprobsRef(policy, sequences);
  // ratio offsets: some beyond ±ln 1.2 (clipped when the advantage's sign agrees); reference
  // offsets: some beyond √20 (k2 clamped)
  const oldShift = [0.5, -0.45, 0.05, -0.1, 0.3, -0.6, 0.15, 0.4, -0.3, 0.02, -0.25, 0.6];
  const refShift = [1.0, -5.0, 0.3, 4.8, -0.7, 2.2, -0.2, 6.0, 0.1, -1.5, 0.9, -3.0];
  let k = 0;
  return sequences.map((s, i) => {
    const old = own[i].map((x) => x + oldShift[k % 12]);
    const ref = own[i].map((x) => x + refShift[k++ % 12]);
    return { ...s, advantage: advantages[i], oldLogprobs: old, refLogprobs: ref };
  });
}

Deno.test("completionLogprobsRef() equals logProbsRef() over the completion tokens", () => {
  const m = randomRefModel(small, 11, { std: 0.5 });
  const lps = completionLogprobsRef(m, sequences);
  sequences.forEach((s, i) => {
    const all = logProbsRef(m, [[...s.promptIds, ...s.completionIds]])[0].logprobs;
    assertClose(lps[i], all.slice(s.promptIds.length - 1), { rtol: 1e-14, atol: 1e-14 });
  });
  assertThrows(() => completionLogprobsRef(m, [{ promptIds: [], completionIds: [1] }]), RangeError);
});

for (const klEstimator of ["k1", "k2", "k3"] as KlEstimator[]) {
  Deno.test(`simrlStepRef() ${klEstimator}: parameter gradients match finite differences of the step loss`, () => {
    const policy = randomRefModel(small, 12, { std: 0.4, normJitter: 0.1 });
    const samples = offPolicySamples(policy);
    const microBatches = [[0, 3], [2], [1]];
    const loss = { epsClip: 0.2, klCoef: 0.3, klEstimator };
    const base = simrlStepRef({ policy, samples, microBatches, loss });
    assertEquals(base.tokens, 12);
    assertEquals(base.clipRatio > 0 && base.clipRatio < 1, true, "some tokens are clipped");
    if (klEstimator === "k2") {
      const binds = samples.flatMap((s, i) =>
        Array.from(s.refLogprobs, (r, t) => Math.abs(base.logprobs[i]![t] - r) > Math.sqrt(20))
      );
      assertEquals(binds.filter(Boolean).length, 3, "three tokens beyond the k2 clamp");
    }
    const h = 1e-5;
    const probes: [string, number][] = [
      ["lm_head.weight", 90 * 16 + 3],
      ["lm_head.weight", 2 * 16 + 11],
      ["model.embed_tokens.weight", 17 * 16 + 2],
      ["model.layers.0.self_attn.q_proj.weight", 11],
      ["model.layers.0.self_attn.v_proj.weight", 5],
      ["model.layers.0.mlp.down_proj.weight", 40],
      ["model.layers.0.input_layernorm.weight", 6],
      ["model.norm.weight", 9],
    ];
    for (const [name, i] of probes) {
      const x = policy.params[name][i];
      const at = (v: number) =>
        simrlStepRef({ policy: withParam(policy, name, i, v), samples, microBatches, loss }).loss;
      const fd = (at(x + h) - at(x - h)) / (2 * h);
      assertEquals(Math.abs(fd) > 1e-6, true, `${name}[${i}] has a gradient to check`);
      assertClose(base.grads[name][i], fd, { atol: 1e-8, rtol: 1e-5, msg: `${name}[${i}]` });
    }
  });
}

Deno.test("simrlStepRef() on-policy: ρ = 1, no clipping, policy_loss = −token mean of A", () => {
  const policy = randomRefModel(small, 13, { std: 0.4 });
  const own = completionLogprobsRef(policy, sequences);
  const samples = sequences.map((s, i) => ({
    ...s,
    advantage: advantages[i],
    oldLogprobs: own[i],
    refLogprobs: own[i],
  }));
  const r = simrlStepRef({
    policy,
    samples,
    microBatches: [[0, 1], [2, 3]],
    loss: { epsClip: 0.2, klCoef: 1e-3, klEstimator: "k2" },
  });
  // micro-batch 0: 4 tokens of A = 1.1 and 2 of −0.7; micro-batch 1: 5 of 0.4 and 1 of −1.3
  const expected = (-(4 * 1.1 - 2 * 0.7) / 6 - (5 * 0.4 - 1.3) / 6) / 2;
  assertClose(r.policyLoss, expected, { rtol: 1e-12 });
  assertEquals([r.clipRatio, r.kl], [0, 0]);
  assertClose(r.ppoKl, 0, { atol: 1e-15 });
  assertClose(r.loss, r.policyLoss, { rtol: 0 });
  assertEquals(r.microBatchMetrics.map((m) => m.tokens), [6, 6]);
});

Deno.test("clipGradNormDeepSpeedRef() agrees with clipGradNormRef() to rounding", () => {
  const a = [Float64Array.from([3, -4, 1e-3]), Float64Array.from([12, 0.5])];
  const b = a.map((g) => g.slice());
  const ds = clipGradNormDeepSpeedRef(a, 1.0);
  const torch = clipGradNormRef(b, 1.0);
  assertEquals(ds.norm, torch.norm);
  assertClose(ds.scale, torch.scale, { rtol: 2e-16 });
  a.forEach((g, i) => assertClose(g, b[i], { rtol: 4e-16, atol: 0 }));
  assertClose(globalGradNormRef(a), 1 / (1 + 1e-6 / ds.norm), { rtol: 1e-15 });
  // under the limit nothing moves; a non-finite norm leaves the gradients alone
  const small = [Float64Array.from([0.3, 0.4])];
  assertEquals(clipGradNormDeepSpeedRef(small, 1.0).scale, 1);
  assertEquals(Array.from(small[0]), [0.3, 0.4]);
  const bad = [Float64Array.from([NaN, 1])];
  assertEquals(clipGradNormDeepSpeedRef(bad, 1.0).finite, false);
  assertEquals(bad[0][1], 1);
});

Deno.test("simrlStepRef() with optim clips to max_norm and takes AdamW's first step", () => {
  const policy = randomRefModel(small, 14, { std: 0.4 });
  const samples = offPolicySamples(policy);
  const r = simrlStepRef({
    policy,
    samples,
    microBatches: [[0, 1], [2, 3]],
    loss: { epsClip: 0.2, klCoef: 0.1, klEstimator: "k2" },
    optim: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.5, maxNorm: 0.01, step: 1 },
  });
  assertClose(r.gradNorm, globalGradNormRef(Object.values(r.grads)), { rtol: 1e-14 });
  assertEquals(r.gradNorm > 0.01, true, "the step clips");
  assertClose(r.clipScale, 0.01 / (r.gradNorm + 1e-6), { rtol: 1e-14 });
  // first AdamW step: p·(1 − lr·wd) − lr·g/(|g| + eps) with g the clipped gradient
  for (
    const [name, i, wd] of [
      ["model.layers.0.mlp.up_proj.weight", 7, 0.5],
      ["model.layers.0.post_attention_layernorm.weight", 3, 0],
    ] as const
  ) {
    const g = r.grads[name][i] * r.clipScale;
    const p = policy.params[name][i];
    assertClose(r.params![name][i], p * (1 - 1e-3 * wd) - 1e-3 * g / (Math.abs(g) + 1e-8), {
      rtol: 1e-12,
      msg: name,
    });
  }
});

Deno.test("simrlStepsRef() keeps ℓ_old from before the first update: later steps are off-policy", () => {
  const policy = randomRefModel(small, 15, { std: 0.4 });
  const reference = randomRefModel(small, 16, { std: 0.4 });
  const layout = trainLayout({
    samples: 4,
    trainBatchSize: 2,
    microTrainBatchSize: 1,
    maxEpochs: 1,
    seed: 3,
    rolloutBatch: 0,
  });
  const run = (lr: (k: number) => number, stepsBefore: number) =>
    simrlStepsRef({
      policy,
      reference,
      samples: sequences.map((s, i) => ({ ...s, advantage: advantages[i] })),
      layout,
      loss: { epsClip: 0.2, klCoef: 1e-3, klEstimator: "k2" },
      optim: { lr, stepsBefore, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxNorm: 1 },
    });
  const r = run(() => 1e-2, 5);
  assertEquals(r.steps.length, 2);
  assertEquals(r.oldLogprobs, completionLogprobsRef(policy, sequences));
  assertEquals(r.refLogprobs, completionLogprobsRef(reference, sequences));
  assertEquals(r.steps[0].ppoKl, 0, "step 0 is on-policy");
  // step 1 runs on θ_1: its ℓ differ from ℓ_old, and ppo_kl is their token mean per micro-batch
  const s1 = r.steps[1];
  const mbKl = layout[1].map((mb) => {
    const i = mb[0];
    const d = r.oldLogprobs[i].map((o, t) => o - s1.logprobs[i]![t]);
    return d.reduce((a, x) => a + x, 0) / d.length;
  });
  assertEquals(mbKl.some((x) => Math.abs(x) > 1e-6), true);
  assertClose(s1.ppoKl, (mbKl[0] + mbKl[1]) / 2, { rtol: 1e-12 });
  // AdamW counts on from the global step (6, then 7) and carries its moments between steps
  const name = "model.layers.0.mlp.gate_proj.weight", j = 13;
  const g = r.steps.map((s) => s.grads[name][j] * s.clipScale);
  const m = [0.1 * g[0], 0.09 * g[0] + 0.1 * g[1]];
  const v = [0.05 * g[0] ** 2, 0.0475 * g[0] ** 2 + 0.05 * g[1] ** 2];
  let p = policy.params[name][j];
  for (const [k, t] of [[0, 6], [1, 7]]) {
    p -= 1e-2 * (m[k] / (1 - 0.9 ** t)) / (Math.sqrt(v[k] / (1 - 0.95 ** t)) + 1e-8);
    assertClose(r.steps[k].params![name][j], p, { rtol: 1e-12, msg: `step ${k}` });
  }
  assertEquals(r.policy.params, s1.params);
  // with lr(k) = 0 for the first update (λ(0) = 0), θ_1 = θ_0 but Adam's moments move
  const z = run((k) => (k === 0 ? 0 : 1e-2), 0);
  assertEquals(z.steps[0].params, policy.params);
  assertEquals(z.steps[1].ppoKl, 0, "still on-policy after a zero-lr update");
  assertEquals(z.moments["lm_head.weight"].v.some((x) => x > 0), true);
});
