import { assertClose, assertEquals, assertNotEquals, assertThrows } from "./assert.ts";
import {
  ADVANTAGE_CLIP,
  type AdvantageEstimator,
  groupAdvantages,
  groupPasses,
  KeptGroups,
  klPenaltyAdvantages,
  rolloutAdvantages,
  sampleSlots,
  simrlLrSchedule,
  simrlTotalSteps,
  stepsPerRolloutBatch,
  trainLayout,
} from "../train/grpo.ts";

// written by tests/reference/grpo_ref.py (numpy, OpenRLHF's loop and formulas re-implemented)
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/simrl/grpo_ref.json", import.meta.url)),
);

const STAR = { enabled: true, range: [0.01, 0.99] as const };
/** A two-sample group whose mean is exactly x (doubling is exact). */
const meanOf = (x: number) => [0, 2 * x];

Deno.test("groupPasses() keeps a mean strictly inside (lo + 1e-6, hi − 1e-6) only", () => {
  assertEquals(groupPasses(meanOf(0.01), STAR), false, "at the lower bound");
  assertEquals(groupPasses(meanOf(0.01 + 1e-7), STAR), false, "1e-7 inside: within the margin");
  assertEquals(groupPasses(meanOf(0.01 + 1e-6), STAR), false, "exactly at lo + 1e-6");
  assertEquals(groupPasses(meanOf(0.01 + 1.01e-6), STAR), true, "just past the margin");
  assertEquals(groupPasses(meanOf(0.99 - 1.01e-6), STAR), true);
  assertEquals(groupPasses(meanOf(0.99 - 1e-6), STAR), false, "exactly at hi − 1e-6");
  assertEquals(groupPasses(meanOf(0.99 - 1e-7), STAR), false);
  assertEquals(groupPasses(meanOf(0.99), STAR), false, "at the upper bound");
});

Deno.test("groupPasses() drops flat groups and all-format-failure groups, keeps all when off", () => {
  assertEquals(groupPasses(Array(8).fill(0.5), STAR), false, "flat, mean inside the range");
  assertEquals(groupPasses(Array(8).fill(0.5), { enabled: true, range: [-1, 2] }), false);
  // format failures score 0 (their reward is -1): a group of them has mean 0
  assertEquals(groupPasses(Array(8).fill(0), STAR), false);
  assertEquals(groupPasses([1, 1, 1, 1, 1, 1, 1, 0], STAR), true, "mean 0.875, spread 1");
  assertEquals(groupPasses([1, 1, 1, 1, 1, 1, 1, 1], STAR), false, "mean 1");
  assertEquals(groupPasses(Array(8).fill(0), { enabled: false, range: [0.01, 0.99] }), true);
});

Deno.test("groupPasses() agrees with grpo_ref.py on every filter case", () => {
  assertEquals(fixture.filter.length > 50, true);
  for (const c of fixture.filter) {
    const got = groupPasses(c.scores, { enabled: c.enabled ?? true, range: c.range });
    assertEquals(got, c.kept, JSON.stringify(c.scores));
  }
});

Deno.test("KeptGroups gathers over generation batches and marks the surplus, as grpo_ref.py", () => {
  for (const c of fixture.accumulate) {
    const kept = new KeptGroups<number[]>({
      rolloutBatchSize: c.rollout_batch_size,
      filter: { enabled: c.enabled, range: [0.01, 0.99] },
      scores: (g) => g,
    });
    const fates = (c.batches as number[][][]).map((b) => kept.add(b));
    assertEquals(fates, c.fates);
    assertEquals(kept.full, c.full);
    const expected = c.batches.flat().filter((_: number[], i: number) =>
      c.fates.flat()[i] === "kept"
    );
    assertEquals(kept.kept, expected);
    assertEquals(kept.seen, c.batches.flat().length);
    assertEquals(kept.passed, c.fates.flat().filter((f: string) => f !== "filtered").length);
  }
});

Deno.test("KeptGroups stops keeping at rollout_batch_size: later groups are surplus", () => {
  const kept = new KeptGroups<string>({
    rolloutBatchSize: 2,
    filter: STAR,
    scores: (g) => (g === "flat" ? [0, 0] : [0, 1]),
  });
  assertEquals(kept.add(["a", "flat"]), ["kept", "filtered"]);
  assertEquals(kept.full, false);
  assertEquals(kept.add(["b", "c", "flat", "d"]), ["kept", "surplus", "filtered", "surplus"]);
  assertEquals(kept.full, true);
  assertEquals(kept.kept, ["a", "b"]);
  assertEquals([kept.seen, kept.passed], [6, 4]);
  assertThrows(
    () => new KeptGroups({ rolloutBatchSize: 0, filter: STAR, scores: () => [] }),
    RangeError,
  );
});

Deno.test("groupAdvantages() hand-computed group_norm and dr_grpo", () => {
  // [1, 0, 0, 0]: mean 1/4, unbiased var (9/16 + 3/16)/3 = 1/4, std 1/2
  const s = 0.5 + 1e-9;
  assertClose(groupAdvantages([1, 0, 0, 0], "group_norm"), [
    0.75 / s,
    -0.25 / s,
    -0.25 / s,
    -0.25 / s,
  ], {
    rtol: 1e-15,
  });
  assertClose(groupAdvantages([1, 0, 0, 0], "dr_grpo"), [0.75, -0.25, -0.25, -0.25], {
    rtol: 1e-15,
  });
  // [-1, 1]: mean 0, var 2, the 1e-9 outside the square root
  const r = Math.SQRT2 + 1e-9;
  assertClose(groupAdvantages([-1, 1], "group_norm"), [-1 / r, 1 / r], { rtol: 1e-15 });
  // format failures (-1) against answers: [-1, -1, 0.5, 1] mean -1/8
  const d = [-0.875, -0.875, 0.625, 1.125];
  const sd = Math.sqrt(d.reduce((a, x) => a + x * x, 0) / 3) + 1e-9;
  assertClose(groupAdvantages([-1, -1, 0.5, 1], "group_norm"), d.map((x) => x / sd), {
    rtol: 1e-14,
  });
  // a constant group: 0 / (0 + 1e-9)
  assertEquals(Array.from(groupAdvantages([-1, -1, -1], "group_norm")), [0, 0, 0]);
});

Deno.test("groupAdvantages() clamps to ±10 after normalising", () => {
  assertEquals(Array.from(groupAdvantages([100, 0, 0, 0], "dr_grpo")), [10, -10, -10, -10]);
  // one 1 among 199 zeros: mean 1/200, unbiased std 1/√200, so the 1 gets 199/√200 ≈ 14.1
  const g = groupAdvantages([1, ...Array(199).fill(0)], "group_norm");
  assertEquals(g[0], ADVANTAGE_CLIP);
  assertClose(g[1], -(1 / 200) / (1 / Math.sqrt(200) + 1e-9), { rtol: 1e-13 });
});

Deno.test("groupAdvantages() agrees with grpo_ref.py (numpy, float64)", () => {
  for (const c of fixture.advantages) {
    for (const est of ["group_norm", "dr_grpo"] as AdvantageEstimator[]) {
      assertClose(groupAdvantages(c.rewards, est), c[est], {
        rtol: 1e-12,
        atol: 1e-12,
        msg: `${est} ${c.rewards}`,
      });
    }
  }
});

Deno.test("rolloutAdvantages() normalises each consecutive group on its own", () => {
  const rewards = [1, 0, 0, 0, -1, -1, 0.5, 1];
  const a = rolloutAdvantages(rewards, { n: 4, estimator: "group_norm" });
  assertClose(a.subarray(0, 4), groupAdvantages([1, 0, 0, 0], "group_norm"), { rtol: 0 });
  assertClose(a.subarray(4), groupAdvantages([-1, -1, 0.5, 1], "group_norm"), { rtol: 0 });
  assertThrows(() => rolloutAdvantages(rewards, { n: 3, estimator: "dr_grpo" }), RangeError);
  assertThrows(() => groupAdvantages([1], "group_norm"), /at least 2/);
});

Deno.test("klPenaltyAdvantages() adds −β times the KL still to come, per token", () => {
  // A = 0.5, kl = [0.2, −0.1, 0.4], β = 0.5: tails 0.5, 0.3, 0.4
  assertClose(klPenaltyAdvantages([0.2, -0.1, 0.4], { advantage: 0.5, klCoef: 0.5 }), [
    0.25,
    0.35,
    0.3,
  ], {
    rtol: 1e-15,
  });
});

Deno.test("simrlTotalSteps() is floor(prompts·n / train_batch_size)·episodes·epochs", () => {
  // STAR: 1000 prompts × 8 / 128 = 62.5 -> 62, × 3 episodes
  assertEquals(
    simrlTotalSteps({
      prompts: 1000,
      nSamplesPerPrompt: 8,
      trainBatchSize: 128,
      numEpisodes: 3,
      maxEpochs: 1,
    }),
    186,
  );
  for (const c of fixture.schedule) {
    const size = {
      prompts: c.prompts,
      nSamplesPerPrompt: c.n,
      trainBatchSize: c.train_batch_size,
      numEpisodes: c.num_episodes,
      maxEpochs: c.max_epochs,
    };
    assertEquals(simrlTotalSteps(size), c.total_steps);
  }
  assertThrows(
    () =>
      simrlTotalSteps({
        prompts: 15,
        nSamplesPerPrompt: 8,
        trainBatchSize: 128,
        numEpisodes: 3,
        maxEpochs: 1,
      }),
    /fewer than one train_batch_size/,
  );
});

Deno.test("simrlLrSchedule() follows HF cosine_with_min_lr over STAR's horizon, λ(0) = 0", () => {
  for (const c of fixture.schedule) {
    const s = simrlLrSchedule({
      prompts: c.prompts,
      nSamplesPerPrompt: c.n,
      trainBatchSize: c.train_batch_size,
      numEpisodes: c.num_episodes,
      maxEpochs: c.max_epochs,
      name: "cosine_with_min_lr",
      learningRate: 3e-7,
      warmupRatio: 0.03,
      minLrRatio: 0.1,
    });
    assertEquals(s.totalSteps, c.total_steps);
    assertEquals(s.warmupSteps, c.warmup_steps);
    for (const [k, f] of c.factors) {
      assertClose(s.factor(k), f, { rtol: 1e-14, atol: 1e-16, msg: `k=${k}` });
      assertClose(s.lr(k), 3e-7 * f, { rtol: 1e-14, atol: 1e-22 });
    }
    assertEquals(s.lr(0), 0);
  }
});

Deno.test("stepsPerRolloutBatch() is 8 for STAR's run and rejects ragged shapes", () => {
  const star = { samples: 1024, trainBatchSize: 128, microTrainBatchSize: 2, maxEpochs: 1 };
  assertEquals(stepsPerRolloutBatch(star), 8);
  assertEquals(stepsPerRolloutBatch({ ...star, ranks: 8 }), 8);
  assertEquals(stepsPerRolloutBatch({ ...star, maxEpochs: 2 }), 16);
  assertThrows(() => stepsPerRolloutBatch({ ...star, samples: 1000 }), /does not split/);
  assertThrows(() => stepsPerRolloutBatch({ ...star, microTrainBatchSize: 3 }), /multiple/);
  assertThrows(() => stepsPerRolloutBatch({ ...star, ranks: 128 }), /multiple/);
});

Deno.test("trainLayout() puts every sample once per epoch into steps of train_batch_size", () => {
  const o = {
    samples: 48,
    trainBatchSize: 16,
    microTrainBatchSize: 2,
    maxEpochs: 2,
    seed: 7,
    rolloutBatch: 3,
  };
  const layout = trainLayout(o);
  assertEquals(layout.length, 6);
  for (const step of layout) {
    assertEquals(step.length, 8);
    for (const mb of step) assertEquals(mb.length, 2);
  }
  for (const epoch of [layout.slice(0, 3), layout.slice(3)]) {
    const seen = epoch.flat(2).sort((a, b) => a - b);
    assertEquals(seen, Array.from({ length: 48 }, (_, i) => i));
  }
  assertNotEquals(layout.slice(0, 3), layout.slice(3), "each epoch reshuffles");
  const slots = sampleSlots(layout, 48);
  for (let i = 0; i < 48; i++) {
    assertEquals(slots[i].length, 2);
    for (const { step, microBatch } of slots[i]) {
      assertEquals(layout[step][microBatch].includes(i), true);
    }
    assertEquals(slots[i][0].step < 3 && slots[i][1].step >= 3, true);
  }
});

Deno.test("trainLayout() is a function of (seed, rollout batch) alone", () => {
  const o = { samples: 64, trainBatchSize: 16, microTrainBatchSize: 2, maxEpochs: 1 };
  const a = trainLayout({ ...o, seed: 1, rolloutBatch: 0 });
  assertEquals(trainLayout({ ...o, seed: 1, rolloutBatch: 0 }), a);
  assertNotEquals(trainLayout({ ...o, seed: 2, rolloutBatch: 0 }), a);
  assertNotEquals(trainLayout({ ...o, seed: 1, rolloutBatch: 1 }), a);
  // not the identity order
  assertNotEquals(a.flat(2), Array.from({ length: 64 }, (_, i) => i));
});

Deno.test("trainLayout() with 8 ranks, STAR's shape: 8 steps of 64 pairs, no pair crosses a rank", () => {
  const layout = trainLayout({
    samples: 1024,
    trainBatchSize: 128,
    microTrainBatchSize: 2,
    maxEpochs: 1,
    ranks: 8,
    seed: 42,
    rolloutBatch: 0,
  });
  assertEquals(layout.length, 8);
  for (const step of layout) {
    assertEquals(step.length, 64);
    step.forEach((pair, b) => {
      const rank = Math.floor(b / 8); // rank-major: 8 micro-batches per rank per step
      for (const i of pair) assertEquals(Math.floor(i / 128), rank);
    });
  }
  assertEquals(layout.flat(2).sort((a, b) => a - b), Array.from({ length: 1024 }, (_, i) => i));
});

Deno.test("trainLayout() shuffles fairly: each sample lands in each step about equally often", () => {
  // 8 samples, 4 steps of 2: over 4000 seeds each (sample, step) cell expects 1000
  const counts = Array.from({ length: 8 }, () => new Array(4).fill(0));
  for (let seed = 0; seed < 4000; seed++) {
    const layout = trainLayout({
      samples: 8,
      trainBatchSize: 2,
      microTrainBatchSize: 1,
      maxEpochs: 1,
      seed,
      rolloutBatch: 0,
    });
    layout.forEach((step, k) => step.flat().forEach((i) => counts[i][k]++));
  }
  // binomial(4000, 1/4): sd ≈ 27; 5 sd
  for (const row of counts) {
    for (const c of row) assertEquals(Math.abs(c - 1000) < 140, true, `${c}`);
  }
});
