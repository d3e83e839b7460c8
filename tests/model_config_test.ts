import { assertEquals, assertMatch, assertRejects, assertThrows } from "./assert.ts";
import { join } from "node:path";
import {
  archOf,
  configJson,
  ModelConfigError,
  parameterCount,
  parseModelConfig,
  presetConfig,
  PRESETS,
  readModelConfig,
} from "../model/config.ts";

/** Qwen/Qwen3-0.6B config.json as published on the Hugging Face hub. */
const QWEN3_06B = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: "qwen3",
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-06,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.51.0",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** Qwen/Qwen2.5-0.5B-Instruct config.json as published on the Hugging Face hub. */
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-06,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

Deno.test("parseModelConfig() reads the published Qwen2.5-0.5B-Instruct config.json as its preset", () => {
  const c = parseModelConfig(QWEN25_05B);
  assertEquals(c, presetConfig("qwen2.5-0.5b"));
  assertEquals(c.head_dim, 64); // hidden_size / heads: Qwen2 configs have no head_dim
  assertEquals(archOf(c), { qkNorm: false, qkvBias: true, tiedEmbeddings: true });
  assertEquals(archOf(presetConfig("qwen3-0.6b")), {
    qkNorm: true,
    qkvBias: false,
    tiedEmbeddings: true,
  });
  // Qwen2Config's rope_theta default differs from the published 1e6
  assertEquals(parseModelConfig({ ...QWEN25_05B, rope_theta: undefined }).rope_theta, 10000);
});

Deno.test("parseModelConfig() reads the published Qwen3-0.6B config.json as the qwen3-0.6b preset", () => {
  assertEquals(parseModelConfig(QWEN3_06B), presetConfig("qwen3-0.6b"));
});

Deno.test("configJson() writes a config that parses back to the same config", () => {
  for (const name of Object.keys(PRESETS)) {
    const c = presetConfig(name);
    assertEquals(parseModelConfig(JSON.parse(JSON.stringify(configJson(c)))), c, name);
  }
  assertEquals(configJson(presetConfig("qwen3-0.6b")), QWEN3_06B);
});

Deno.test("parameterCount() matches the model cards' totals and non-embedding counts", () => {
  // Qwen3 model cards: 0.6B (0.44B non-embedding), 1.7B (1.4B), 8.2B (6.95B)
  const nonEmb = (n: keyof typeof PRESETS) => {
    const c = PRESETS[n];
    return parameterCount(c) - c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
  };
  assertEquals(parameterCount(PRESETS["qwen3-0.6b"]), 596_049_920);
  assertEquals(Math.round(nonEmb("qwen3-0.6b") / 1e7), 44);
  assertEquals(Math.round(parameterCount(PRESETS["qwen3-1.7b"]) / 1e8), 17);
  assertEquals(Math.round(nonEmb("qwen3-1.7b") / 1e8), 14);
  assertEquals(Math.round(parameterCount(PRESETS["qwen3-8b"]) / 1e8), 82);
  assertEquals(Math.round(nonEmb("qwen3-8b") / 1e7), 695);
  // Qwen2.5 model cards (q/k/v biases counted): 0.49B (0.36B), 1.54B (1.31B), 3.09B (2.77B)
  assertEquals(Math.round(parameterCount(PRESETS["qwen2.5-0.5b"]) / 1e7), 49);
  assertEquals(Math.round(nonEmb("qwen2.5-0.5b") / 1e7), 36);
  assertEquals(Math.round(parameterCount(PRESETS["qwen2.5-1.5b"]) / 1e7), 154);
  assertEquals(Math.round(nonEmb("qwen2.5-1.5b") / 1e7), 131);
  assertEquals(Math.round(parameterCount(PRESETS["qwen2.5-3b"]) / 1e7), 309);
  assertEquals(Math.round(nonEmb("qwen2.5-3b") / 1e7), 277);
});

Deno.test("parseModelConfig() fills transformers' ModelConfig defaults", () => {
  const c = parseModelConfig({
    model_type: "qwen3",
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 4,
  });
  assertEquals(c.vocab_size, 151936);
  assertEquals(c.num_key_value_heads, 4);
  assertEquals(c.head_dim, 128);
  assertEquals(c.rms_norm_eps, 1e-6);
  assertEquals(c.rope_theta, 10000);
  assertEquals(c.max_position_embeddings, 32768);
  assertEquals(c.tie_word_embeddings, false);
  assertEquals(c.torch_dtype, "float32");
  // newer transformers write "dtype" instead of "torch_dtype"
  assertEquals(
    parseModelConfig({ ...QWEN3_06B, torch_dtype: undefined, dtype: "float16" }).torch_dtype,
    "float16",
  );
});

Deno.test("parseModelConfig() refuses other architectures, naming what the file describes", () => {
  const e1 = assertThrows(
    () =>
      parseModelConfig(
        { ...QWEN3_06B, model_type: "llama", architectures: ["LlamaForCausalLM"] },
        "m/config.json",
      ),
    ModelConfigError,
  );
  assertMatch(
    e1.message,
    /"m\/config\.json".*model_type "llama".*LlamaForCausalLM.*Qwen3 and Qwen2\/Qwen2\.5 models only/,
  );
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, model_type: "qwen3_moe" }),
    /model_type "qwen3_moe"/,
  );
  assertThrows(
    () =>
      parseModelConfig({
        ...QWEN3_06B,
        model_type: undefined,
        architectures: ["MistralForCausalLM"],
      }),
    /MistralForCausalLM/,
  );
  assertThrows(() => parseModelConfig({ hidden_size: 8 }), /no model_type/);
});

Deno.test("parseModelConfig() names a bad or unsupported field", () => {
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, hidden_size: "big" }),
    /field "hidden_size" got "big"/,
  );
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, num_hidden_layers: undefined }),
    /field "num_hidden_layers" is required/,
  );
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, num_key_value_heads: 3 }),
    /multiple of "num_key_value_heads" \(3\)/,
  );
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, attention_bias: true }),
    /field "attention_bias" is true/,
  );
  assertThrows(
    () => parseModelConfig({ ...QWEN3_06B, rope_scaling: { rope_type: "yarn", factor: 4 } }),
    /field "rope_scaling" asks for "yarn"/,
  );
  assertThrows(() => parseModelConfig({ ...QWEN3_06B, head_dim: 7 }), /"head_dim" must be even/);
});

Deno.test("readModelConfig() takes a directory or a file and names a missing or broken one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(QWEN3_06B));
    assertEquals((await readModelConfig(dir)).hidden_size, 1024);
    assertEquals((await readModelConfig(join(dir, "config.json"))).hidden_size, 1024);
    await Deno.writeTextFile(join(dir, "bad.json"), "{ nope");
    await assertRejects(() => readModelConfig(join(dir, "bad.json")), /Cannot read ".*bad\.json"/);
    await assertRejects(() => readModelConfig(join(dir, "none")), /Cannot read ".*none"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
