import { assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { readModelConfig } from "../model/config.ts";
import { bf16ToF32, Checkpoint, f32ToBf16 } from "../model/safetensors.ts";
import { loadRefModel } from "../model/ref.ts";
import { saveModel } from "../model/save.ts";
import { loadWeights } from "../model/weights.ts";

const TOY = new URL("./testdata/qwen3/toy_tied", import.meta.url).pathname;

Deno.test("saveModel() writes a model that loads back equal (f32) or rounded (bf16), tokenizer copied", async () => {
  const root = await Deno.makeTempDir();
  try {
    const config = await readModelConfig(TOY);
    const ck = await Checkpoint.open(TOY);
    const tensors = new Map<string, Float32Array>();
    for await (const { spec, data } of loadWeights(ck, config)) tensors.set(spec.name, data);
    ck.close();
    // a source directory with tokenizer files, as a trainer's student would have
    const src = join(root, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "tokenizer.json"), '{"model": {}}');
    await Deno.writeTextFile(join(src, "tokenizer_config.json"), '{"chat_template": "x"}');
    const f32 = join(root, "f32"), bf16 = join(root, "bf16");
    const r = await saveModel(f32, {
      config,
      dtype: "f32",
      tensor: (s) => tensors.get(s.name)!,
      tokenizerFrom: src,
    });
    assertEquals(r, { files: ["model.safetensors"], tokenizer: src });
    assertEquals(await Deno.readTextFile(join(f32, "tokenizer.json")), '{"model": {}}');
    await saveModel(bf16, { config, dtype: "bf16", tensor: (s) => tensors.get(s.name)! });
    const [a, b, orig] = await Promise.all([f32, bf16, TOY].map(loadRefModel));
    assertEquals(b.config.torch_dtype, "bfloat16");
    for (const [name, x] of tensors) {
      assertEquals([...a.params[name]], [...orig.params[name]], name);
      assertEquals([...b.params[name]], [...bf16ToF32(f32ToBf16(x))], name);
    }
    await assertRejects(
      () => saveModel(join(root, "x"), { config, dtype: "f64", tensor: () => new Float32Array() }),
      /Unknown dtype "f64"/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
