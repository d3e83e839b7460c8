/**
 * Sim-RL learns: a tiny policy fine-tuned on labels that name one of five cities at random
 * answers the right one (Paris) about a fifth of the time; `star simrl` with the Sim-RL reward
 * against the right label raises its held-out reward (greedy, `star eval --bench reward`, on
 * prompts neither run trained on) well above where SFT left it.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { smallModel } from "./_small_model.ts";
import { star } from "./_star.ts";

const CITIES = ["Paris", "Rome", "Oslo", "Lima", "Kyiv"];
const TOOLS = `{"name": "get_weather", "parameters": {"city": "string"}}`;
const prompt = (k: number) =>
  `<|im_start|>system\n<tools>\n${TOOLS}\n</tools><|im_end|>\n<|im_start|>user\nweather report ${k}<|im_end|>\n<|im_start|>assistant\n<think>`;
const target = (city: string) =>
  `</think><tool_call>\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n</tool_call><|im_end|>`;
const rows = (ks: number[], city: (k: number) => string) =>
  ks.map((k) => JSON.stringify({ id: `w${k}`, inputs: prompt(k), targets: target(city(k)) }))
    .join("\n") + "\n";
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

function yaml(path: string, keys: Record<string, unknown>): string {
  Deno.writeTextFileSync(
    path,
    Object.entries(keys).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n",
  );
  return path;
}

async function heldoutReward(root: string, model: string, out: string): Promise<number> {
  const r = await star([
    "eval",
    "--model",
    join(root, model),
    "--data",
    join(root, "heldout.jsonl"),
    "--max-new-tokens",
    "32",
    "--output",
    join(root, out),
  ]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(await Deno.readTextFile(join(root, out, "summary.json"))).reward;
}

Deno.test({
  name: "star simrl raises the held-out reward of a tiny policy that SFT left guessing",
  ignore: !(await hasGpu()),
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "star-simrl-learn-" });
    // SFT labels: each city equally often; RL and held-out labels: Paris
    await Deno.writeTextFile(join(root, "sft.jsonl"), rows(range(0, 40), (k) => CITIES[k % 5]));
    await Deno.writeTextFile(join(root, "rl.jsonl"), rows(range(100, 32), () => "Paris"));
    await Deno.writeTextFile(join(root, "heldout.jsonl"), rows(range(200, 16), () => "Paris"));
    const texts = [...range(0, 5).map((k) => prompt(k)), ...CITIES.map(target)];
    await smallModel(join(root, "init"), texts, { shape: { num_hidden_layers: 1 }, seed: 3 });
    const sft = await star([
      "ckd",
      "--config",
      yaml(join(root, "sft.yaml"), {
        student: "init",
        data: "sft.jsonl",
        output_dir: "sft",
        kd_ratio: 0,
        train_batch_size: 10,
        micro_train_batch_size: 10,
        max_epochs: 100,
        max_steps: 60,
        learning_rate: 1e-2,
        lr_warmup_ratio: 0.05,
        weight_decay: 0,
        seed: 1,
      }),
    ]);
    assertEquals(sft.code, 0, sft.stderr);
    const rl = await star([
      "simrl",
      "--config",
      yaml(join(root, "rl.yaml"), {
        pretrain: "sft/final",
        data: "rl.jsonl",
        output_dir: "rl",
        rollout_batch_size: 8,
        n_samples_per_prompt: 8,
        micro_rollout_batch_size: 8,
        train_batch_size: 32,
        micro_train_batch_size: 32,
        generate_max_len: 32,
        max_steps: 16,
        num_episodes: 10,
        learning_rate: 3e-3,
        lr_warmup_ratio: 0,
        init_kl_coef: 1e-3,
        seed: 2,
      }),
    ]);
    assertEquals(rl.code, 0, rl.stderr);
    const before = await heldoutReward(root, "sft/final", "eval-sft");
    const after = await heldoutReward(root, "rl/final", "eval-rl");
    assertOk(before < 0.5, `SFT left the policy at ${before}`);
    assertOk(after > before + 0.3, `Sim-RL: ${before} -> ${after}`);
  },
});
