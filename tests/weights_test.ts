import { assertClose, assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { type ModelConfig, parseModelConfig } from "../model/config.ts";
import {
  bf16ToF32,
  Checkpoint,
  CheckpointError,
  f32ToBf16,
  type TensorSpec,
  writeCheckpoint,
} from "../model/safetensors.ts";
import { loadRefModel, randomRefModel } from "../model/ref.ts";
import {
  loadWeights,
  randomWeightChunks,
  randomWeightF32,
  type WeightSpec,
  weightSpecs,
} from "../model/weights.ts";
import { initModel } from "../cli/init_model.ts";

const toy = (tied: boolean): ModelConfig =>
  parseModelConfig({
    model_type: "qwen3",
    vocab_size: 11,
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 4,
    tie_word_embeddings: tied,
  });

Deno.test("weightSpecs() lists transformers' Qwen3 tensor names and shapes", () => {
  const specs = weightSpecs(toy(false));
  assertEquals(specs.length, 1 + 2 * 11 + 1 + 1);
  const byName = Object.fromEntries(specs.map((s) => [s.name, s.shape]));
  assertEquals(byName["model.embed_tokens.weight"], [11, 8]);
  assertEquals(byName["model.layers.1.self_attn.q_proj.weight"], [8, 8]);
  assertEquals(byName["model.layers.1.self_attn.k_proj.weight"], [4, 8]);
  assertEquals(byName["model.layers.0.self_attn.o_proj.weight"], [8, 8]);
  assertEquals(byName["model.layers.0.self_attn.k_norm.weight"], [4]);
  assertEquals(byName["model.layers.0.mlp.down_proj.weight"], [8, 12]);
  assertEquals(byName["model.layers.0.post_attention_layernorm.weight"], [8]);
  assertEquals(byName["lm_head.weight"], [11, 8]);
  assertEquals(weightSpecs(toy(true)).some((s) => s.name === "lm_head.weight"), false);
});

/** Writes the toy's tensors, with `edit` applied to the list, into a fresh directory. */
async function writeEdited(c: ModelConfig, edit: (specs: TensorSpec[]) => TensorSpec[]) {
  const dir = await Deno.makeTempDir();
  const specs = edit(
    weightSpecs(c).map((s) => ({ name: s.name, dtype: "F32", shape: s.shape })),
  );
  await writeCheckpoint(
    dir,
    specs,
    (s) => new Uint8Array(4 * s.shape.reduce((a, b) => a * b, 1)),
  );
  return dir;
}

Deno.test("loadWeights() names a missing tensor, a wrong shape and an unexpected tensor", async () => {
  const c = toy(false);
  const cases: [string, (s: TensorSpec[]) => TensorSpec[], RegExp][] = [
    [
      "missing",
      (s) => s.filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight"),
      /missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
    ],
    [
      "shape",
      (s) =>
        s.map((t) =>
          t.name === "model.layers.0.self_attn.q_norm.weight" ? { ...t, shape: [8] } : t
        ),
      /wrong shape "model\.layers\.0\.self_attn\.q_norm\.weight" is \[8\], the config needs \[4\]/,
    ],
    [
      "unexpected",
      (s) => [...s, { name: "model.layers.2.mlp.up_proj.weight", dtype: "F32", shape: [1] }],
      /unexpected tensor "model\.layers\.2\.mlp\.up_proj\.weight"/,
    ],
    [
      "dtype",
      (s) => s.map((t, i) => i === 3 ? { ...t, dtype: "I32" } : t),
      /unsupported dtype ".*" is I32/,
    ],
  ];
  for (const [what, edit, re] of cases) {
    const dir = await writeEdited(c, edit);
    const ck = await Checkpoint.open(dir);
    try {
      const err = await assertRejects(async () => {
        for await (const _ of loadWeights(ck, c)) { /* drain */ }
      }, CheckpointError);
      assertMatch(err.message, re, what);
      assertMatch(err.message, /does not match its qwen3 config/);
    } finally {
      ck.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("loadWeights() accepts a tied model's redundant lm_head.weight and rotary buffers", async () => {
  const c = toy(true);
  const dir = await writeEdited(c, (s) => [
    ...s,
    { name: "lm_head.weight", dtype: "F32", shape: [11, 8] },
    { name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2] },
  ]);
  const ck = await Checkpoint.open(dir);
  try {
    const names: string[] = [];
    for await (const { spec, data } of loadWeights(ck, c)) {
      names.push(spec.name);
      assertEquals(data.length, spec.shape.reduce((a, b) => a * b, 1));
    }
    assertEquals(names, weightSpecs(c).map((s) => s.name));
  } finally {
    ck.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("randomWeightChunks() draws normal(0, std) for projections and ones for norms", () => {
  const spec: WeightSpec = { name: "x", shape: [1000, 1000], kind: "linear" };
  const x = randomWeightF32(spec, { seed: 3, std: 0.02 });
  let m = 0, v = 0, over3 = 0;
  for (const a of x) m += a;
  m /= x.length;
  for (const a of x) {
    v += (a - m) ** 2;
    if (Math.abs(a) > 0.06) over3++;
  }
  const sd = Math.sqrt(v / x.length);
  assertClose(m, 0, { atol: 1e-4 }); // 4 sigma of the mean is 8e-5
  assertClose(sd, 0.02, { rtol: 3e-3 });
  assertClose(over3 / x.length, 0.0027, { atol: 3e-4 }); // P(|z| > 3) = 0.0027
  const other = randomWeightF32({ ...spec, name: "y" }, { seed: 3, std: 0.02 });
  assertOk(other[0] !== x[0] && other[1] !== x[1]);
  const ones = [
    ...randomWeightChunks({ name: "n", shape: [5], kind: "norm" }, {
      seed: 1,
      dtype: "BF16",
      std: 1,
    }),
  ];
  assertEquals([...bf16ToF32(new Uint16Array(ones[0].buffer))], [1, 1, 1, 1, 1]);
});

Deno.test("initModel() stores the same seeded weights in f32, bf16 (rounded) and in shards", async () => {
  const c = toy(false);
  const root = await Deno.makeTempDir();
  try {
    const f32Dir = join(root, "f32"), bfDir = join(root, "bf16"), shDir = join(root, "sharded");
    await initModel({ config: c, output: f32Dir, seed: 5, dtype: "f32" });
    await initModel({ config: c, output: bfDir, seed: 5, dtype: "bf16" });
    const r = await initModel({
      config: c,
      output: shDir,
      seed: 5,
      dtype: "f32",
      maxShardBytes: 600,
    });
    assertOk(r.files.length > 3, `expected shards, got ${r.files}`);
    const ref = randomRefModel(c, 5);
    const [a, b, s] = await Promise.all([f32Dir, bfDir, shDir].map(loadRefModel));
    assertEquals(b.config.torch_dtype, "bfloat16");
    for (const spec of weightSpecs(c)) {
      assertEquals([...a.params[spec.name]], [...ref.params[spec.name]], spec.name);
      assertEquals([...s.params[spec.name]], [...ref.params[spec.name]], spec.name);
      const rounded = bf16ToF32(f32ToBf16(Float32Array.from(ref.params[spec.name])));
      assertEquals([...b.params[spec.name]], [...rounded], spec.name);
    }
    // and a different seed gives different weights
    const other = randomRefModel(c, 6);
    assertOk(
      other.params["model.embed_tokens.weight"][0] !== ref.params["model.embed_tokens.weight"][0],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
