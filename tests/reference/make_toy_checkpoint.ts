/**
 * Writes a seeded random checkpoint for the torch fixtures: like `star init-model`, but with
 * norms jittered around 1 and non-zero biases (transformers initialises biases to zero, which
 * would leave the bias paths of a Qwen2 model untested).
 *   deno run -A tests/reference/make_toy_checkpoint.ts CONFIG.json OUT_DIR SEED [f32|bf16]
 */
import { readModelConfig } from "../../model/config.ts";
import { randomRefModel } from "../../model/ref.ts";
import { saveModel } from "../../model/save.ts";

const [configPath, out, seed, dtype = "f32"] = Deno.args;
const config = await readModelConfig(configPath);
const ref = randomRefModel(config, Number(seed), { normJitter: 0.2, biasStd: 0.3 });
await saveModel(out, {
  config,
  dtype,
  tensor: (spec) => Float32Array.from(ref.params[spec.name]),
});
