import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { join } from "node:path";
import { star } from "./_star.ts";
import { parseSize } from "../cli/init_model.ts";
import { readModelConfig } from "../model/config.ts";
import { Checkpoint } from "../model/safetensors.ts";
import { checkCheckpoint } from "../model/weights.ts";

Deno.test("star init-model --preset tiny writes config, safetensors and the built-in tokenizer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await star(["init-model", "--preset", "tiny", "--output", dir, "--seed", "3"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /9,798,016 parameters/);
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assertEquals(cfg.architectures, ["Qwen3ForCausalLM"]);
    assertEquals(cfg.model_type, "qwen3");
    assertEquals(cfg.torch_dtype, "float32");
    const c = await readModelConfig(dir);
    assertEquals([c.vocab_size, c.hidden_size, c.num_hidden_layers, c.head_dim], [
      151936,
      64,
      2,
      16,
    ]);
    const ck = await Checkpoint.open(dir);
    try {
      checkCheckpoint(ck, c);
      assertEquals(ck.info("model.embed_tokens.weight").dtype, "F32");
    } finally {
      ck.close();
    }
    const tok = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer.json")));
    assertEquals(
      tok.added_tokens.find((t: { content: string }) => t.content === "<|im_end|>").id,
      151645,
    );
    const tokCfg = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json")));
    assertOk(tokCfg.chat_template.includes("<|im_start|>"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("star init-model needs exactly one of --preset and --config (exit 2)", async () => {
  const none = await star(["init-model", "--output", "/tmp/x"]);
  assertEquals(none.code, 2);
  assertMatch(none.stderr, /exactly one of "--preset" and "--config"/);
  const both = await star([
    "init-model",
    "--preset",
    "tiny",
    "--config",
    "c.json",
    "--output",
    "/tmp/x",
  ]);
  assertEquals(both.code, 2);
  const missing = await star(["init-model", "--preset", "tiny"]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /Missing required flag "--output"/);
});

Deno.test("star init-model rejects an unknown preset or dtype (exit 2) and a Llama config (exit 1)", async () => {
  const p = await star(["init-model", "--preset", "qwen3-4b", "--output", "/tmp/x"]);
  assertEquals(p.code, 2);
  assertMatch(p.stderr, /Unknown preset "qwen3-4b".*"qwen3-0\.6b"/);
  const d = await star(["init-model", "--preset", "tiny", "--dtype", "f64", "--output", "/tmp/x"]);
  assertEquals(d.code, 2);
  assertMatch(d.stderr, /"--dtype" must be f32, bf16 or f16, got "f64"/);
  const dir = await Deno.makeTempDir();
  try {
    const cfg = join(dir, "config.json");
    await Deno.writeTextFile(cfg, JSON.stringify({ model_type: "llama", hidden_size: 8 }));
    const l = await star(["init-model", "--config", cfg, "--output", join(dir, "m")]);
    assertEquals(l.code, 1);
    assertMatch(l.stderr, /model_type "llama".*Qwen3 and Qwen2\/Qwen2\.5 models only/);
    assertEquals(l.stderr.trim().split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseSize() reads decimal and binary units", () => {
  assertEquals(parseSize("2GB"), 2e9);
  assertEquals(parseSize("500MB"), 5e8);
  assertEquals(parseSize("64KiB"), 65536);
  assertEquals(parseSize("1000"), 1000);
  assertEquals(parseSize("1.5 kb"), 1500);
});
