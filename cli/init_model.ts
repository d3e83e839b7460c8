/**
 * `star init-model`: a randomly initialised Qwen3 checkpoint in the Hugging Face layout
 * (config.json, model.safetensors or shards + index, the built-in tokenizer files), for tests
 * and demos. Tensors are generated and written one chunk at a time, so even the 8B shape needs
 * only a few tens of MB of memory.
 */
import type { CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import {
  type ModelConfig,
  parameterCount,
  presetConfig,
  PRESETS,
  readModelConfig,
} from "../model/config.ts";
import { DEFAULT_MAX_SHARD_BYTES } from "../model/safetensors.ts";
import { randomWeightChunks } from "../model/weights.ts";
import { DTYPES, saveModel } from "../model/save.ts";
import { BUILTIN_TOKENIZER_VOCAB, builtinTokenizerTexts } from "../data/builtin_tokenizer.ts";

const spec = {
  name: "init-model",
  summary: "Write a randomly initialised Qwen3 checkpoint (tests, demos)",
  flags: {
    preset: {
      type: "string",
      value: "NAME",
      description: `A named shape: ${Object.keys(PRESETS).join(", ")}`,
    },
    config: {
      type: "string",
      value: "FILE",
      description: "A Qwen3 config.json (or a model directory) giving the shape instead",
    },
    output: {
      type: "string",
      value: "DIR",
      required: true,
      description: "Model directory to write",
    },
    seed: { type: "integer", default: 0, description: "Seed of the random weights" },
    dtype: {
      type: "string",
      value: "f32|bf16|f16",
      description: "Stored dtype (default: the config's torch_dtype; presets qwen3-* are bf16)",
    },
    "max-shard-size": {
      type: "string",
      value: "SIZE",
      description:
        "Largest shard, e.g. 2GB, 500MB or bytes (default 2GB); bigger models are sharded",
    },
  },
  details: `Weights are normal(0, initializer_range) for embeddings and projections, ones for
norms (as transformers initialises Qwen3), each tensor from its own stream seeded by (seed,
name), so the values do not depend on dtype or sharding. The built-in Qwen3 tokenizer files are
written when the vocabulary is large enough to hold its ids.`,
} as const;

/** "2GB", "500MB", "64KiB", "1000" -> bytes (decimal units like transformers, binary with i). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`Flag "--max-shard-size" expects a size like 2GB, got "${text}"`);
  const unit = (m[2] ?? "").toLowerCase().replace(/b$/, "");
  const pow = { "": 0, k: 1, m: 2, g: 3, t: 4 }[unit.replace("i", "")];
  if (pow === undefined) {
    throw new UsageError(`Flag "--max-shard-size" has an unknown unit in "${text}"`);
  }
  const bytes = Math.floor(Number(m[1]) * (unit.endsWith("i") ? 1024 : 1000) ** pow);
  if (bytes < 1) throw new UsageError(`Flag "--max-shard-size" must be positive, got "${text}"`);
  return bytes;
}

/** Writes the checkpoint; returns what was written, for the summary line. */
export async function initModel(opts: {
  config: ModelConfig;
  output: string;
  seed: number;
  dtype?: string;
  maxShardBytes?: number;
}): Promise<{ files: string[]; params: number; bytes: number; tokenizer: boolean }> {
  const dtype = (opts.dtype ?? opts.config.torch_dtype).toLowerCase();
  const dt = DTYPES[dtype];
  if (!dt) {
    throw new UsageError(`Flag "--dtype" must be f32, bf16 or f16, got "${opts.dtype}"`);
  }
  const { files, tokenizer } = await saveModel(opts.output, {
    config: opts.config,
    dtype,
    tensor: (spec) =>
      randomWeightChunks(spec, {
        seed: opts.seed,
        dtype: dt.st,
        std: opts.config.initializer_range,
      }),
    maxShardBytes: opts.maxShardBytes,
    tokenizerFiles: opts.config.vocab_size >= BUILTIN_TOKENIZER_VOCAB
      ? await builtinTokenizerTexts()
      : undefined,
  });
  const params = parameterCount(opts.config);
  return {
    files,
    params,
    bytes: params * (dt.st === "F32" ? 4 : 2),
    tokenizer: tokenizer !== null,
  };
}

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    if ((flags.preset === undefined) === (flags.config === undefined)) {
      throw new UsageError(`Give exactly one of "--preset" and "--config" ("star init-model")`);
    }
    if (flags.preset !== undefined && !Object.hasOwn(PRESETS, flags.preset)) {
      const names = Object.keys(PRESETS).map((n) => `"${n}"`).join(", ");
      throw new UsageError(
        `Unknown preset "${flags.preset}" ("star init-model"); choose one of ${names}`,
      );
    }
    const config = flags.preset !== undefined
      ? presetConfig(flags.preset)
      : await readModelConfig(flags.config!);
    const maxShardBytes = flags["max-shard-size"] !== undefined
      ? parseSize(flags["max-shard-size"])
      : DEFAULT_MAX_SHARD_BYTES;
    const t0 = performance.now();
    const r = await initModel({
      config,
      output: flags.output,
      seed: flags.seed,
      dtype: flags.dtype,
      maxShardBytes,
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.error(
      `init-model: ${r.params.toLocaleString("en-US")} parameters, ` +
        `${
          r.bytes >= 1e6 ? `${(r.bytes / 1e6).toFixed(1)} MB` : `${(r.bytes / 1e3).toFixed(1)} kB`
        } in ${r.files.join(", ")}` +
        `${r.tokenizer ? " + tokenizer" : " (vocabulary too small for the built-in tokenizer)"}` +
        ` -> ${flags.output} in ${secs} s`,
    );
    return 0;
  },
};
