/**
 * Qwen3 model configs: `config.json` as transformers writes it, validated with zod, with
 * transformers' ModelConfig defaults for the fields a file may leave out. Other architectures
 * (Llama, Qwen2, Qwen3-MoE, ...) are refused with an error that names the file and what it is.
 * Features star does not implement (attention bias, rope scaling, sliding windows) are refused
 * too, rather than silently computing a different model.
 * Legend: D hidden_size, H heads, K kv heads, E head_dim, F intermediate_size, V vocab, L layers.
 */
import { z } from "zod";

/** A config.json that is not a model star can run. Exits 1. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
  readonly exitCode = 1;
}

export type TorchDtype = "float32" | "bfloat16" | "float16";

/** The architectures star runs (config.json `model_type`). */
export type ModelType = "qwen3" | "qwen2";

/** The fields star uses; names exactly as in transformers' Qwen3Config / Qwen2Config. */
export interface ModelConfig {
  model_type: ModelType;
  vocab_size: number; // V
  hidden_size: number; // D
  intermediate_size: number; // F
  num_hidden_layers: number; // L
  num_attention_heads: number; // H
  num_key_value_heads: number; // K (H % K == 0)
  head_dim: number; // E (even, for rotate-half RoPE)
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  torch_dtype: TorchDtype;
  initializer_range: number;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
}

const posInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();

/**
 * The architecture as data: what the weights table, the decoder layer and the float64 reference
 * need to know beyond the shapes.
 */
export interface Arch {
  /** Per-head RMSNorm of q and k before RoPE (Qwen3's q_norm / k_norm). */
  qkNorm: boolean;
  /** Biases on the q, k and v projections (Qwen2). */
  qkvBias: boolean;
  /** The LM head is the embedding table (no lm_head.weight). */
  tiedEmbeddings: boolean;
}

/** The architecture record of a config. */
export function archOf(c: ModelConfig): Arch {
  return {
    qkNorm: c.model_type === "qwen3",
    qkvBias: c.model_type === "qwen2",
    tiedEmbeddings: c.tie_word_embeddings,
  };
}

/** What each model type is called in `architectures`. */
const ARCHITECTURES: Record<ModelType, string[]> = {
  qwen3: ["Qwen3ForCausalLM", "Qwen3Model"],
  qwen2: ["Qwen2ForCausalLM", "Qwen2Model"],
};

/** transformers' Qwen3Config / Qwen2Config defaults where a field may be absent. */
const schema = z.object({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).nullish(),
  vocab_size: posInt.default(151936),
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  max_position_embeddings: posInt.default(32768),
  tie_word_embeddings: z.boolean().default(false),
  torch_dtype: z.enum(["float32", "bfloat16", "float16"]).nullish(),
  dtype: z.enum(["float32", "bfloat16", "float16"]).nullish(),
  initializer_range: z.number().positive().default(0.02),
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  hidden_act: z.string().default("silu"),
  attention_bias: z.boolean().default(false),
  rope_scaling: z.unknown().optional(),
  use_sliding_window: z.boolean().default(false),
});

/** The model type of a parsed config.json, or undefined when star does not run it. */
function modelTypeOf(obj: Record<string, unknown>): ModelType | undefined {
  const mt = obj.model_type;
  const arch = Array.isArray(obj.architectures) ? obj.architectures : undefined;
  const named = (t: ModelType) =>
    arch !== undefined && arch.length > 0 &&
    arch.every((a) => ARCHITECTURES[t].includes(a));
  for (const t of Object.keys(ARCHITECTURES) as ModelType[]) {
    if (mt === t && (arch === undefined || arch.length === 0 || named(t))) return t;
    if (mt === undefined && named(t)) return t;
  }
  return undefined;
}

/**
 * Validates a parsed config.json. `file` names it in errors. Unknown keys are kept out of the
 * result (config.json files carry many fields star has no use for).
 */
export function parseModelConfig(raw: unknown, file = "config.json"): ModelConfig {
  const where = `Cannot use "${file}"`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ModelConfigError(`${where}: the config must be a JSON object`);
  }
  const obj = raw as Record<string, unknown>;
  const modelType = modelTypeOf(obj);
  if (modelType === undefined) {
    const mt = obj.model_type;
    const arch = Array.isArray(obj.architectures) ? obj.architectures : undefined;
    const what = [
      mt !== undefined ? `model_type ${JSON.stringify(mt)}` : "",
      arch ? `architectures ${JSON.stringify(arch)}` : "",
    ].filter(Boolean).join(", ") || "no model_type";
    throw new ModelConfigError(
      `${where}: it describes ${what}; star runs Qwen3 and Qwen2/Qwen2.5 models only ` +
        `(model_type "qwen3" or "qwen2", architectures ["Qwen3ForCausalLM"] or ["Qwen2ForCausalLM"])`,
    );
  }
  const r = schema.safeParse(
    modelType === "qwen2" && obj.rope_theta === undefined ? { ...obj, rope_theta: 10000 } : obj,
  );
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = issue.path.join(".") || "(root)";
    const v = issue.path.length ? obj[String(issue.path[0])] : obj;
    const got = v === undefined ? "is required" : `got ${JSON.stringify(v)}`;
    throw new ModelConfigError(`${where}: field "${key}" ${got} (${issue.message})`);
  }
  const c = r.data;
  const unsupported = (field: string, why: string) => {
    throw new ModelConfigError(`${where}: field "${field}" ${why}; star does not implement it`);
  };
  if (c.hidden_act !== "silu") unsupported("hidden_act", `is ${JSON.stringify(c.hidden_act)}`);
  if (modelType === "qwen3" && c.attention_bias) unsupported("attention_bias", "is true");
  if (c.use_sliding_window) unsupported("use_sliding_window", "is true");
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    const type = c.rope_scaling as { rope_type?: unknown; type?: unknown };
    const kind = type?.rope_type ?? type?.type;
    if (kind !== "default") unsupported("rope_scaling", `asks for ${JSON.stringify(kind)}`);
  }
  const H = c.num_attention_heads;
  const K = c.num_key_value_heads ?? H;
  // Qwen3Config defaults head_dim to 128; Qwen2 derives it from the hidden size
  const E = c.head_dim ?? (modelType === "qwen2" ? Math.floor(c.hidden_size / H) : 128);
  if (H % K !== 0) {
    throw new ModelConfigError(
      `${where}: field "num_attention_heads" (${H}) must be a multiple of "num_key_value_heads" (${K})`,
    );
  }
  if (E % 2 !== 0) {
    throw new ModelConfigError(
      `${where}: field "head_dim" must be even for rotary embeddings, got ${E}`,
    );
  }
  return {
    model_type: modelType,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: H,
    num_key_value_heads: K,
    head_dim: E,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    max_position_embeddings: c.max_position_embeddings,
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: c.torch_dtype ?? c.dtype ?? "float32",
    initializer_range: c.initializer_range,
    bos_token_id: c.bos_token_id ?? null,
    eos_token_id: c.eos_token_id ?? null,
  };
}

/** Reads and validates `path` (a config.json, or a model directory holding one). */
export async function readModelConfig(path: string): Promise<ModelConfig> {
  let file = path;
  try {
    if ((await Deno.stat(path)).isDirectory) file = `${path.replace(/\/+$/, "")}/config.json`;
  } catch { /* reported below */ }
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new ModelConfigError(`Cannot read "${file}": ${(err as Error).message.split("\n")[0]}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`Cannot read "${file}": ${(err as Error).message}`);
  }
  return parseModelConfig(raw, file);
}

/** config.json as transformers writes it (keys sorted, like save_pretrained). */
export function configJson(c: ModelConfig): Record<string, unknown> {
  const common = {
    attention_dropout: 0.0,
    bos_token_id: c.bos_token_id,
    eos_token_id: c.eos_token_id,
    hidden_act: "silu",
    hidden_size: c.hidden_size,
    initializer_range: c.initializer_range,
    intermediate_size: c.intermediate_size,
    max_position_embeddings: c.max_position_embeddings,
    max_window_layers: c.num_hidden_layers,
    model_type: c.model_type,
    num_attention_heads: c.num_attention_heads,
    num_hidden_layers: c.num_hidden_layers,
    num_key_value_heads: c.num_key_value_heads,
    rms_norm_eps: c.rms_norm_eps,
    rope_scaling: null,
    rope_theta: c.rope_theta,
    sliding_window: null,
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: c.torch_dtype,
    transformers_version: "4.51.0",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: c.vocab_size,
  };
  const extra: Record<string, unknown> = c.model_type === "qwen3"
    ? { architectures: ["Qwen3ForCausalLM"], attention_bias: false, head_dim: c.head_dim }
    : {
      architectures: ["Qwen2ForCausalLM"],
      // written only when it differs from hidden_size / heads, as Qwen2Config has none
      ...(c.head_dim * c.num_attention_heads === c.hidden_size ? {} : { head_dim: c.head_dim }),
    };
  const all: Record<string, unknown> = { ...common, ...extra };
  return Object.fromEntries(Object.keys(all).sort().map((k) => [k, all[k]]));
}

/** Shared by the published Qwen3 dense models (their config.json files agree on these). */
const QWEN3_COMMON = {
  model_type: "qwen3",
  vocab_size: 151936,
  head_dim: 128,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 40960,
  torch_dtype: "bfloat16",
  initializer_range: 0.02,
  bos_token_id: 151643,
  eos_token_id: 151645,
} as const;

/** Shared by the published Qwen2.5 dense models (the Instruct config.json files). */
const QWEN25_COMMON = {
  model_type: "qwen2",
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 32768,
  torch_dtype: "bfloat16",
  initializer_range: 0.02,
  bos_token_id: 151643,
  eos_token_id: 151645,
} as const;

/**
 * Named shapes for `star init-model`. The qwen3-* presets are the shapes of the published
 * Qwen/Qwen3-{0.6B,1.7B,8B} config.json, the qwen2.5-* presets those of
 * Qwen/Qwen2.5-{0.5B,1.5B,3B}-Instruct; `tiny` keeps the real vocabulary (so the built-in
 * tokenizer fits) on a 2-layer, 64-wide body for tests, `tiny-qwen2` is its Qwen2 twin.
 */
export const PRESETS = {
  "qwen3-0.6b": {
    ...QWEN3_COMMON,
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    tie_word_embeddings: true,
  },
  "qwen3-1.7b": {
    ...QWEN3_COMMON,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    tie_word_embeddings: true,
  },
  "qwen3-8b": {
    ...QWEN3_COMMON,
    hidden_size: 4096,
    intermediate_size: 12288,
    num_hidden_layers: 36,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    tie_word_embeddings: false,
  },
  "tiny": {
    ...QWEN3_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    tie_word_embeddings: true,
    torch_dtype: "float32",
  },
  "qwen2.5-0.5b": {
    ...QWEN25_COMMON,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    head_dim: 64,
    tie_word_embeddings: true,
  },
  "qwen2.5-1.5b": {
    ...QWEN25_COMMON,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    head_dim: 128,
    tie_word_embeddings: true,
  },
  "qwen2.5-3b": {
    ...QWEN25_COMMON,
    hidden_size: 2048,
    intermediate_size: 11008,
    num_hidden_layers: 36,
    num_attention_heads: 16,
    num_key_value_heads: 2,
    head_dim: 128,
    tie_word_embeddings: true,
  },
  "tiny-qwen2": {
    ...QWEN25_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    tie_word_embeddings: true,
    torch_dtype: "float32",
  },
} as const satisfies Record<string, ModelConfig>;

export type PresetName = keyof typeof PRESETS;

/** The config of a preset, or an error listing the presets. */
export function presetConfig(name: string): ModelConfig {
  if (!Object.hasOwn(PRESETS, name)) {
    throw new ModelConfigError(
      `Unknown preset "${name}"; choose one of ${
        Object.keys(PRESETS).map((n) => `"${n}"`).join(", ")
      }`,
    );
  }
  return { ...PRESETS[name as PresetName] };
}

/** Parameter count of a config (the tied LM head counted once). */
export function parameterCount(c: ModelConfig): number {
  const D = c.hidden_size, E = c.head_dim, F = c.intermediate_size;
  const qo = c.num_attention_heads * E, kv = c.num_key_value_heads * E;
  const arch = archOf(c);
  const layer = D * qo * 2 + D * kv * 2 + (arch.qkNorm ? 2 * E : 0) +
    (arch.qkvBias ? qo + 2 * kv : 0) + 3 * D * F + 2 * D;
  return c.vocab_size * D * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * layer + D;
}
