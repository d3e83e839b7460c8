/**
 * One Sim-RL rollout batch end to end, where RL spends its time: P prompts × N samples × T new
 * tokens from a random checkpoint of a preset (default tiny; a random model never stops, so every
 * sample runs the full T tokens), then the old/reference log-probs and one optimizer step on all
 * of them (dynamic filtering off, so the batch is trained whatever the rewards). Prints the wall
 * time and its split from metrics.jsonl: prefill, decode, reward, log-probs, update.
 * Usage: deno run -A tests/bench_simrl.ts [--preset tiny] [--prompts 8] [--n 8] [--tokens 128]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { synthRows } from "../data/synthetic.ts";
import { prepareFile } from "../data/prepare.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../cli/init_model.ts";
import { parseConfig, simrlConfigSchema } from "../train/config.ts";
import { runSimrl } from "../train/simrl.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    preset: { type: "string", default: "tiny" },
    prompts: { type: "string", default: "8" },
    n: { type: "string", default: "8" },
    tokens: { type: "string", default: "128" },
  },
});
const P = Number(args.values.prompts), N = Number(args.values.n), T = Number(args.values.tokens);
const root = await Deno.makeTempDir({ prefix: "star-bench-simrl-" });
const rows = [...synthRows(P, 5, { maxCalls: 1, maxDistractors: 0 })];
await Deno.writeTextFile(join(root, "m.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
await prepareFile(join(root, "m.jsonl"), join(root, "train.jsonl"), {
  tokenizer: await Tokenizer.load(),
});
await initModel({
  config: presetConfig(args.values.preset!),
  output: join(root, "policy"),
  seed: 0,
});
const yaml = join(root, "simrl.yaml");
await Deno.writeTextFile(
  yaml,
  [
    "pretrain: policy",
    "data: train.jsonl",
    "output_dir: out",
    `rollout_batch_size: ${P}`,
    `micro_rollout_batch_size: ${P}`,
    `n_samples_per_prompt: ${N}`,
    `generate_max_len: ${T}`,
    `train_batch_size: ${P * N}`,
    `micro_train_batch_size: ${Math.min(8, P * N)}`,
    "dynamic_filtering: false",
    "max_steps: 1",
    "learning_rate: 1e-6",
  ].join("\n") + "\n",
);
const t0 = performance.now();
await runSimrl(parseConfig(await Deno.readTextFile(yaml), simrlConfigSchema, yaml), {
  progress: false,
  log: () => {},
});
const wall = (performance.now() - t0) / 1000;
const m = JSON.parse((await Deno.readTextFile(join(root, "out", "metrics.jsonl"))).trim());
const parts = {
  prefill: m.prefill_seconds,
  decode: m.decode_seconds,
  reward: m.reward_seconds,
  logprobs: m.logprobs_seconds,
  update: m.update_seconds,
};
const accounted = Object.values(parts).reduce((a: number, b: number) => a + b, 0);
console.log(JSON.stringify({
  preset: args.values.preset,
  prompts: P,
  samples: N,
  new_tokens: T,
  generated_tokens: Math.round(m.response_length_mean * P * N),
  wall_seconds: +wall.toFixed(2),
  seconds: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, +v.toFixed(2)])),
  other_seconds: +(wall - accounted).toFixed(2),
  gen_tokens_per_s: +m.gen_tokens_per_s.toFixed(1),
}));
await Deno.remove(root, { recursive: true });
