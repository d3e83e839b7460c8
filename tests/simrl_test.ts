/**
 * `star simrl` as a user runs it, on a tiny policy (its tokenizer cut to the test's texts) and
 * short tool-calling prompts, with replayed completions (replay_rollouts) so that the runs are short
 * and exactly known: two optimizer steps' loss, policy_loss, kl, clip_ratio and grad_norm and
 * the rollout log's rewards, kept groups and advantages against a float64 recomputation
 * (train/simrl_ref.ts, reward/, train/grpo.ts); the engine against `--device cpu`; a replayed
 * run against the sampled run it replays; a run killed with SIGKILL and re-run against an
 * uninterrupted one; bad rows reported and skipped.
 */
import { assertClose, assertEquals, assertMatch, assertOk } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { presetConfig } from "../model/config.ts";
import { loadRefModel } from "../model/ref.ts";
import { smallModel } from "./_small_model.ts";
import { simRlReward } from "../reward/sim_rl.ts";
import { groupAdvantages, groupPasses } from "../train/grpo.ts";
import { readMetrics } from "../train/metrics.ts";
import { simrlStepsRef } from "../train/simrl_ref.ts";
import { star } from "./_star.ts";

const device = (await hasGpu()) ? "gpu" : "cpu";
const config = { ...presetConfig("tiny"), num_hidden_layers: 1 };

const TOOLS =
  `{"name": "add", "description": "Add two numbers.", "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}`;

function row(i: number) {
  const [a, b] = [i + 2, 3 * i + 1];
  return {
    id: `r${i}`,
    inputs:
      `<|im_start|>system\n<tools>\n${TOOLS}\n</tools><|im_end|>\n<|im_start|>user\nadd ${a} and ${b}<|im_end|>\n<|im_start|>assistant\n<think>`,
    targets:
      `</think>\n\n<tool_call>\n{"name": "add", "arguments": {"a": ${a}, "b": ${b}}}\n</tool_call><|im_end|>`,
    a,
    b,
  };
}

/** Four completions per prompt with different rewards: exact, half right, a reply, broken. */
function completions(r: ReturnType<typeof row>): string[] {
  return [
    r.targets,
    `</think>\n\n<tool_call>\n{"name": "add", "arguments": {"a": ${r.a}, "b": 0}}\n</tool_call><|im_end|>`,
    `</think>\n\nThe sum is ${r.a + r.b}.<|im_end|>`,
    `no think at all<|im_end|>`,
  ];
}

async function setup(rows = 4): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "star-simrl-" });
  const data = Array.from({ length: rows }, (_, i) => row(i));
  await Deno.writeTextFile(
    join(root, "train.jsonl"),
    data.map(({ id, inputs, targets }) => JSON.stringify({ id, inputs, targets })).join("\n") +
      "\n",
  );
  // a tokenizer cut to these texts keeps the model's LM head small
  const texts = data.flatMap((r) => [r.inputs, r.targets, ...completions(r)]);
  const { tok } = await smallModel(join(root, "policy"), texts, {
    shape: config,
    seed: 7,
    std: 0.2,
    normJitter: 0.2,
  });
  await Deno.writeTextFile(
    join(root, "replay.jsonl"),
    data.flatMap((r) =>
      completions(r).map((c) => JSON.stringify({ id: r.id, completion_ids: tok.encode(c) }))
    ).join("\n") + "\n",
  );
  return root;
}

const BASE: Record<string, unknown> = {
  pretrain: "policy",
  data: "train.jsonl",
  rollout_batch_size: 2,
  n_samples_per_prompt: 4,
  train_batch_size: 4,
  micro_train_batch_size: 2,
  generate_max_len: 40,
  num_episodes: 1,
  learning_rate: 0.05,
  lr_warmup_ratio: 0,
  init_kl_coef: 0.1,
  max_norm: 0.5,
  seed: 5,
};

/** Writes `out`.yaml: the base keys, `keys` over them, output_dir `out`. */
function yaml(root: string, out: string, keys: Record<string, unknown> = {}): string {
  const path = join(root, `${out}.yaml`);
  const all = { ...BASE, ...keys, output_dir: out };
  Deno.writeTextFileSync(
    path,
    Object.entries(all).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n",
  );
  return path;
}

const strip = (rows: Record<string, unknown>[]) =>
  rows.map((
    {
      seconds: _s,
      tokens_per_second: _t,
      gen_tokens_per_s: _g,
      train_tokens_per_s: _r,
      generate_seconds: _gs,
      prefill_seconds: _ps,
      decode_seconds: _ds,
      reward_seconds: _rs,
      logprobs_seconds: _ls,
      update_seconds: _us,
      ...r
    },
  ) => r);

async function readRows(path: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test(`star simrl (${device}) with replay_rollouts: steps and rollout log equal a float64 recomputation`, async () => {
  const root = await setup();
  const r = await star([
    "simrl",
    "--config",
    yaml(root, "out", { replay_rollouts: "replay.jsonl", max_steps: 2 }),
    "--device",
    device,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const metrics = await readMetrics(join(root, "out", "metrics.jsonl"));
  assertEquals(metrics.length, 2);
  const rollouts = await readRows(join(root, "out", "rollouts.jsonl"));
  const data = new Map(Array.from({ length: 4 }, (_, i) => [`r${i}`, row(i)]));
  const tok = await Tokenizer.load(join(root, "policy"));
  // every sample's reward from reward/, groups of 4 kept by the filter, advantages per group
  const batch1 = rollouts.filter((x) => x.rollout_batch === 1);
  assertEquals(batch1.length, 8);
  for (let g = 0; g < 2; g++) {
    const group = batch1.slice(4 * g, 4 * g + 4);
    const d = data.get(group[0].id as string)!;
    const rewards = group.map((x) => {
      const want = simRlReward(d.inputs, tok.decode(x.completion_ids as number[]), d.targets);
      assertEquals([x.reward, x.format, x.answer], [want.reward, want.format, want.answer]);
      return want.reward;
    });
    const kept = groupPasses(group.map((x) => x.answer as number), {
      enabled: true,
      range: [0.01, 0.99],
    });
    assertEquals(group.map((x) => x.kept), [kept, kept, kept, kept]);
    const adv = groupAdvantages(rewards, "group_norm");
    group.forEach((x, j) => assertClose(x.advantage as number, adv[j], { atol: 1e-12 }));
  }
  // the two steps from the logged layout, in float64
  const kept = batch1.filter((x) => x.kept);
  const layout: number[][][] = [];
  kept.forEach((x, i) => {
    const s = (x.step as number) - 1, m = x.micro_batch as number;
    ((layout[s] ??= [])[m] ??= []).push(i);
  });
  const policy = await loadRefModel(join(root, "policy"));
  const want = simrlStepsRef({
    policy,
    reference: policy,
    samples: kept.map((x) => ({
      promptIds: tok.encode(data.get(x.id as string)!.inputs),
      completionIds: x.completion_ids as number[],
      advantage: x.advantage as number,
    })),
    layout,
    loss: { epsClip: 0.2, klCoef: 0.1, klEstimator: "k2" },
    optim: {
      lr: (k) => metrics[k].lr,
      stepsBefore: 0,
      betas: [0.9, 0.95],
      eps: 1e-8,
      weightDecay: 0,
      maxNorm: 0.5,
    },
  });
  metrics.forEach((m, k) => {
    const w = want.steps[k];
    assertClose(m.loss!, w.loss, { atol: 1e-4, msg: `step ${k + 1} loss` });
    assertClose(m.policy_loss as number, w.policyLoss, { atol: 1e-4, msg: "policy_loss" });
    assertClose(m.kl as number, w.kl, { atol: 1e-4, msg: "kl" });
    assertClose(m.clip_ratio as number, w.clipRatio, { atol: 1e-4, msg: "clip_ratio" });
    assertClose(m.ppo_kl as number, w.ppoKl, { atol: 1e-4, msg: "ppo_kl" });
    assertClose(m.grad_norm!, w.gradNorm, { rtol: 1e-3, msg: `step ${k + 1} grad_norm` });
  });
  // the second step runs on updated weights: it is off-policy and the KL is no longer zero
  assertOk((metrics[1].kl as number) > 0, "kl after one update");
  assertEquals(metrics[0].kept_groups, 2);
});

Deno.test({
  name: "star simrl on the engine equals star simrl --device cpu step for step (replayed)",
  ignore: device !== "gpu",
  async fn() {
    const root = await setup();
    for (const d of ["gpu", "cpu"]) {
      const r = await star([
        "simrl",
        "--config",
        yaml(root, d, { replay_rollouts: "replay.jsonl", max_steps: 3 }),
        "--device",
        d,
      ]);
      assertEquals(r.code, 0, r.stderr);
    }
    const g = await readMetrics(join(root, "gpu", "metrics.jsonl"));
    const c = await readMetrics(join(root, "cpu", "metrics.jsonl"));
    assertEquals(g.length, 3);
    g.forEach((row, i) => {
      for (const k of ["loss", "policy_loss", "kl", "clip_ratio", "ppo_kl"]) {
        assertClose(row[k] as number, c[i][k] as number, { atol: 1e-4, msg: `step ${i + 1} ${k}` });
      }
      assertClose(row.grad_norm!, c[i].grad_norm!, { rtol: 1e-3 });
    });
    assertEquals(
      (await readRows(join(root, "gpu", "rollouts.jsonl"))).map((x) => [x.reward, x.advantage]),
      (await readRows(join(root, "cpu", "rollouts.jsonl"))).map((x) => [x.reward, x.advantage]),
    );
  },
});

Deno.test(`star simrl (${device}) replaying its own rollouts.jsonl trains exactly as the sampled run`, async () => {
  const root = await setup();
  const cfg = { generate_max_len: 6, dynamic_filtering: false, max_steps: 2 };
  const a = await star(["simrl", "--config", yaml(root, "a", cfg), "--device", device]);
  assertEquals(a.code, 0, a.stderr);
  const b = await star([
    "simrl",
    "--config",
    yaml(root, "b", { ...cfg, replay_rollouts: "a/rollouts.jsonl" }),
    "--device",
    device,
  ]);
  assertEquals(b.code, 0, b.stderr);
  const ra = await readRows(join(root, "a", "rollouts.jsonl"));
  const rb = await readRows(join(root, "b", "rollouts.jsonl"));
  assertEquals(rb.map((x) => x.completion_ids), ra.map((x) => x.completion_ids));
  assertEquals(rb.map((x) => x.finish_reason), ra.map((x) => x.finish_reason));
  assertEquals(
    strip(await readMetrics(join(root, "b", "metrics.jsonl"))),
    strip(await readMetrics(join(root, "a", "metrics.jsonl"))),
  );
});

Deno.test(`star simrl (${device}) killed with SIGKILL after a checkpoint resumes to the uninterrupted run`, async () => {
  const root = await setup(8);
  const extra = { replay_rollouts: "replay.jsonl", save_steps: 2, max_steps: 6 };
  const full = await star(["simrl", "--config", yaml(root, "full", extra), "--device", device]);
  assertEquals(full.code, 0, full.stderr);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "simrl",
      "--config",
      yaml(root, "cut", extra),
      "--device",
      device,
    ],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const metrics = join(root, "cut", "metrics.jsonl");
  for (let i = 0; i < 1200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const text = await Deno.readTextFile(metrics).catch(() => "");
    if (text.split("\n").filter(Boolean).length >= 3) break;
  }
  child.kill("SIGKILL");
  await child.status;
  const again = await star(["simrl", "--config", yaml(root, "cut", extra), "--device", device]);
  assertEquals(again.code, 0, again.stderr);
  assertMatch(again.stderr, /simrl: resuming from ".*checkpoint-2"/);
  assertEquals(
    strip(await readMetrics(metrics)),
    strip(await readMetrics(join(root, "full", "metrics.jsonl"))),
  );
  const strip2 = (rows: Record<string, unknown>[]) => rows.map((x) => JSON.stringify(x));
  assertEquals(
    strip2(await readRows(join(root, "cut", "rollouts.jsonl"))),
    strip2(await readRows(join(root, "full", "rollouts.jsonl"))),
  );
  const wa = await Deno.readFile(join(root, "full", "final", "model.safetensors"));
  const wb = await Deno.readFile(join(root, "cut", "final", "model.safetensors"));
  assertEquals(wb, wa);
});

Deno.test("star simrl reports rows without targets or with a bad label by line, skips them, and trains", async () => {
  const root = await setup();
  const extra = [
    JSON.stringify({ id: "no-targets", inputs: row(0).inputs }),
    JSON.stringify({ id: "bad-label", inputs: row(1).inputs, targets: "no think here" }),
  ].join("\n");
  await Deno.writeTextFile(join(root, "train.jsonl"), extra + "\n", { append: true });
  const r = await star([
    "simrl",
    "--config",
    yaml(root, "out", { replay_rollouts: "replay.jsonl", max_steps: 1 }),
    "--device",
    device,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /train\.jsonl" line 5: field "targets" is missing \(skipped\)/);
  assertMatch(r.stderr, /train\.jsonl" line 6: .*label.* \(skipped\)/);
  assertMatch(r.stderr, /4 prompts from .*2 skipped: bad row/);
  const bad = await star([
    "simrl",
    "--config",
    yaml(root, "x", { replay_rollouts: "replay.jsonl", kd_topk: 3 }),
  ]);
  assertEquals(bad.code, 1);
  assertMatch(bad.stderr, /unknown key "kd_topk"/);
});
