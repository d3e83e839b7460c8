/**
 * Saving a Qwen3 model directory in the Hugging Face layout: config.json, the weights
 * (model.safetensors, or shards + model.safetensors.index.json) and the tokenizer files, copied
 * from a source model directory or given by the caller (the built-in Qwen3 tokenizer lives in
 * data/, which model/ does not import). Used by `star init-model` and
 * by the trainers' checkpoints; transformers, vLLM and star load the result.
 * Tensors are asked for one at a time, so a caller can read each back from the GPU in turn.
 */
import { join } from "node:path";
import { configJson, type ModelConfig, type TorchDtype } from "./config.ts";
import { f32ToBytes, type StDtype, type TensorBytes, writeCheckpoint } from "./safetensors.ts";
import { type WeightSpec, weightSpecs } from "./weights.ts";

export const DTYPES: Record<string, { st: StDtype; torch: TorchDtype }> = {
  f32: { st: "F32", torch: "float32" },
  float32: { st: "F32", torch: "float32" },
  bf16: { st: "BF16", torch: "bfloat16" },
  bfloat16: { st: "BF16", torch: "bfloat16" },
  f16: { st: "F16", torch: "float16" },
  float16: { st: "F16", torch: "float16" },
};

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

/**
 * Writes the tokenizer files beside the weights: copied from `from` when it has a
 * tokenizer.json, else the given `files` (name → text). Returns where they came from ("given"
 * for `files`), or null when none was written.
 */
export async function writeTokenizerFiles(
  dir: string,
  o: { from?: string; files?: Record<string, string> },
): Promise<string | null> {
  if (o.from !== undefined && await isFile(join(o.from, "tokenizer.json"))) {
    for (const f of TOKENIZER_FILES) {
      if (await isFile(join(o.from, f))) await Deno.copyFile(join(o.from, f), join(dir, f));
    }
    return o.from;
  }
  if (!o.files) return null;
  for (const [name, text] of Object.entries(o.files)) {
    await Deno.writeTextFile(join(dir, name), text);
  }
  return "given";
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Saves a model: `tensor(spec)` gives each parameter as f32 values (converted here to `dtype`,
 * rounding to nearest even) or directly as bytes of `dtype` (chunks allowed).
 * Returns the weight files written and where the tokenizer came from.
 */
export async function saveModel(
  dir: string,
  opts: {
    config: ModelConfig;
    dtype: string;
    tensor: (spec: WeightSpec) => Float32Array | TensorBytes | Promise<Float32Array | TensorBytes>;
    maxShardBytes?: number;
    /** Copy the tokenizer files of this model directory (when it has them). */
    tokenizerFrom?: string;
    /** Else write these tokenizer files (name → text), e.g. the built-in Qwen3 tokenizer. */
    tokenizerFiles?: Record<string, string>;
  },
): Promise<{ files: string[]; tokenizer: string | null }> {
  const dt = DTYPES[opts.dtype.toLowerCase()];
  if (!dt) throw new RangeError(`Unknown dtype "${opts.dtype}"; use f32, bf16 or f16`);
  const config: ModelConfig = { ...opts.config, torch_dtype: dt.torch };
  const specs = weightSpecs(config);
  const byName = new Map(specs.map((s) => [s.name, s]));
  await Deno.mkdir(dir, { recursive: true });
  const files = await writeCheckpoint(
    dir,
    specs.map((s) => ({ name: s.name, dtype: dt.st, shape: s.shape })),
    async (s) => {
      const t = await opts.tensor(byName.get(s.name)!);
      return t instanceof Float32Array ? f32ToBytes(t, dt.st) : t;
    },
    { maxShardBytes: opts.maxShardBytes },
  );
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify(configJson(config), null, 2) + "\n",
  );
  const tokenizer = await writeTokenizerFiles(dir, {
    from: opts.tokenizerFrom,
    files: opts.tokenizerFiles,
  });
  return { files, tokenizer };
}
