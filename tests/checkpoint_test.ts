import { assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { Checkpoint, f32ToBytes, type TensorSpec } from "../model/safetensors.ts";
import {
  latestCheckpoint,
  type ModelSource,
  openOptimizerState,
  type OptimizerSource,
  saveCheckpoint,
  saveFinalModel,
  type TrainerState,
} from "../train/checkpoint.ts";

const W = {
  "model.embed_tokens.weight": { shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) },
  "model.norm.weight": { shape: [2], data: Float32Array.of(1, -0.5) },
};

function model(scale = 1, failOn?: string): ModelSource {
  return {
    config: { vocab_size: 3, hidden_size: 2, torch_dtype: "bfloat16" },
    specs: [
      { name: "model.embed_tokens.weight", dtype: "BF16", shape: [3, 2] },
      { name: "model.norm.weight", dtype: "F32", shape: [2] },
    ],
    bytes(s: TensorSpec) {
      if (s.name === failOn) throw new Error("disk full");
      const d = W[s.name as keyof typeof W].data.map((x) => x * scale);
      return f32ToBytes(d, s.dtype as "F32" | "BF16");
    },
  };
}

const optimizer = (step: number): OptimizerSource => ({
  step,
  tensors: Object.entries(W).map(([name, t]) => ({ name, shape: t.shape })),
  read: (name, moment) =>
    W[name as keyof typeof W].data.map((x) => (moment === "exp_avg" ? x / 10 : x * x)),
});

const state = (step: number): TrainerState => ({
  step,
  epoch: 1,
  data_index: 16,
  seed: 42,
  lr_scheduler: {
    name: "cosine_with_min_lr",
    learning_rate: 3e-6,
    total_steps: 10,
    warmup_steps: 1,
    min_lr_ratio: 0.1,
    last_lr: 2e-6,
  },
  skipped_steps: 0,
  tokens_seen: 1234,
});

Deno.test("saveCheckpoint() writes a loadable model dir, the AdamW moments and trainer_state.json", async () => {
  const out = await Deno.makeTempDir();
  const tok = join(out, "tokenizer.json");
  await Deno.writeTextFile(tok, "{}");
  const dir = await saveCheckpoint(out, {
    model: { ...model(), sideFiles: [tok] },
    optimizer: optimizer(4),
    state: state(4),
  });
  assertEquals(dir, join(out, "checkpoint-4"));
  assertEquals(
    (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
    [
      "config.json",
      "model.safetensors",
      "optimizer.safetensors",
      "tokenizer.json",
      "trainer_state.json",
    ],
  );
  const ck = await Checkpoint.open(dir);
  assertEquals(Array.from(await ck.readF32("model.embed_tokens.weight")), [1, 2, 3, 4, 5, 6.5]);
  assertEquals(ck.info("model.embed_tokens.weight").dtype, "BF16");
  assertEquals(Array.from(await ck.readF32("model.norm.weight")), [1, -0.5]);
  ck.close();
  const opt = await openOptimizerState(join(dir, "optimizer.safetensors"));
  assertEquals(opt.step, 4);
  assertEquals(opt.names.sort(), ["model.embed_tokens.weight", "model.norm.weight"]);
  assertEquals(Array.from(await opt.read("model.norm.weight", "exp_avg_sq")), [1, 0.25]);
  assertEquals(
    Array.from(await opt.read("model.norm.weight", "exp_avg")),
    [0.1, -0.05].map(Math.fround),
  );
  opt.close();
  const latest = await latestCheckpoint(out);
  assertEquals(latest?.dir, dir);
  assertEquals(latest?.state, state(4));
});

Deno.test("latestCheckpoint() picks the highest complete step and ignores broken folders", async () => {
  const out = await Deno.makeTempDir();
  assertEquals(await latestCheckpoint(join(out, "missing")), undefined);
  assertEquals(await latestCheckpoint(out), undefined);
  await saveCheckpoint(out, { model: model(), optimizer: optimizer(2), state: state(2) });
  await saveCheckpoint(out, { model: model(), optimizer: optimizer(10), state: state(10) });
  // a folder without trainer_state.json, one whose state names another step, a stale temp
  await Deno.mkdir(join(out, "checkpoint-30"));
  await Deno.mkdir(join(out, "checkpoint-20"));
  await Deno.writeTextFile(
    join(out, "checkpoint-20", "trainer_state.json"),
    JSON.stringify(state(3)),
  );
  await Deno.mkdir(join(out, ".checkpoint-40.tmp-123"));
  const latest = await latestCheckpoint(out);
  assertEquals(latest?.state.step, 10);
  assertEquals(latest?.dir, join(out, "checkpoint-10"));
  const names = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
  assertEquals(names, ["checkpoint-10", "checkpoint-2", "checkpoint-20", "checkpoint-30"]);
});

Deno.test("saveCheckpoint() that fails midway leaves no checkpoint folder behind", async () => {
  const out = await Deno.makeTempDir();
  await saveCheckpoint(out, { model: model(), optimizer: optimizer(1), state: state(1) });
  await assertRejects(
    () =>
      saveCheckpoint(out, {
        model: model(1, "model.norm.weight"),
        optimizer: optimizer(2),
        state: state(2),
      }),
    /disk full/,
  );
  assertEquals((await Array.fromAsync(Deno.readDir(out))).map((e) => e.name), ["checkpoint-1"]);
  assertEquals((await latestCheckpoint(out))?.state.step, 1);
});

Deno.test("saveCheckpoint() of the same step again and saveFinalModel() replace the old folder", async () => {
  const out = await Deno.makeTempDir();
  await saveCheckpoint(out, { model: model(), optimizer: optimizer(5), state: state(5) });
  await saveCheckpoint(out, { model: model(2), optimizer: optimizer(5), state: state(5) });
  const ck = await Checkpoint.open(join(out, "checkpoint-5"));
  assertEquals(Array.from(await ck.readF32("model.norm.weight")), [2, -1]);
  ck.close();
  await saveFinalModel(out, model(3));
  const dir = await saveFinalModel(out, model(4));
  const fin = await Checkpoint.open(dir);
  assertEquals(Array.from(await fin.readF32("model.norm.weight")), [4, -2]);
  fin.close();
  assertEquals(
    (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
    ["config.json", "model.safetensors"],
  );
  assertEquals((await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort(), [
    "checkpoint-5",
    "final",
  ]);
});
