/**
 * Trainer configs: YAML files (npm:yaml, the @std/yaml substitute) validated with zod.
 * Unknown keys are an error naming each one with the closest valid key; type errors name the
 * key and the expected type; relative paths resolve against the config file's folder; the
 * resolved config is written to `output_dir/config.yaml` when a run starts.
 * Key names follow OpenRLHF's flags where one exists; defaults are STAR's recipe (DESIGN.md).
 */
import { z } from "zod";
import YAML from "yaml";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { closestName } from "../lib/suggest.ts";

/** A bad config file: names the file and the key. Exits 1. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly exitCode = 1;
}

const path = z.string().min(1);
const positiveInt = z.number().int().positive();
const lrScheduler = z.enum(["constant", "constant_with_warmup", "cosine_with_min_lr"]);

/** Keys shared by the two trainers: optimisation, schedule, checkpoints. */
const common = {
  output_dir: path,
  data: path,
  eval_data: path.optional(),
  tokenizer: path.optional(),
  seed: z.number().int().default(42),
  max_epochs: positiveInt.default(1),
  max_steps: positiveInt.optional(),
  micro_train_batch_size: positiveInt.default(1),
  train_batch_size: positiveInt,
  learning_rate: z.number().positive(),
  lr_scheduler: lrScheduler.default("cosine_with_min_lr"),
  lr_warmup_ratio: z.number().min(0).max(1).default(0.03),
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
  adam_betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.95]),
  adam_eps: z.number().positive().default(1e-8),
  weight_decay: z.number().min(0).default(1e-4),
  max_norm: z.number().positive().default(1.0),
  prompt_max_len: positiveInt.default(1024),
  generate_max_len: positiveInt.default(1024),
  save_steps: z.number().int().default(-1),
  logging_steps: positiveInt.default(1),
};

/** `star ckd`: Constrained Knowledge Distillation (STAR section 3.1). */
export const ckdConfigSchema = z.object({
  ...common,
  student: path,
  teacher: path.optional(),
  teacher_topk_cache: path.optional(),
  train_batch_size: positiveInt.default(8),
  learning_rate: z.number().positive().default(3e-6),
  kd_topk: positiveInt.max(128).default(100),
  kd_student_topm: positiveInt.max(128).default(100),
  kd_kl_type: z.enum(["fkl", "rkl", "akl"]).default("fkl"),
  kd_kl_l1_coef: z.number().min(0).default(10),
  kd_ratio: z.number().min(0).max(1).default(1),
});
export type CkdConfig = z.infer<typeof ckdConfigSchema>;

/** `star simrl`: Similarity-guided RL, GRPO-style (STAR section 3.2). */
export const simrlConfigSchema = z.object({
  ...common,
  pretrain: path,
  train_batch_size: positiveInt.default(128),
  learning_rate: z.number().positive().default(3e-7),
  generate_max_len: positiveInt.default(512),
  rollout_batch_size: positiveInt.default(128),
  micro_rollout_batch_size: positiveInt.default(8),
  n_samples_per_prompt: positiveInt.default(8),
  temperature: z.number().min(0).default(1.0),
  top_p: z.number().gt(0).max(1).default(1.0),
  init_kl_coef: z.number().min(0).default(1e-3),
  kl_estimator: z.enum(["k1", "k2", "k3"]).default("k2"),
  eps_clip: z.number().positive().default(0.2),
  advantage_estimator: z.enum(["group_norm", "dr_grpo"]).default("group_norm"),
  dynamic_filtering: z.boolean().default(true),
  dynamic_filtering_reward_range: z.tuple([z.number(), z.number()]).default([0.01, 0.99]),
});
export type SimrlConfig = z.infer<typeof simrlConfigSchema>;

/** Keys holding paths, resolved against the config file's folder. */
const PATH_KEYS = new Set([
  "output_dir",
  "data",
  "eval_data",
  "tokenizer",
  "student",
  "teacher",
  "teacher_topk_cache",
  "pretrain",
]);

/** Parses and validates a config given as text; `file` names it in errors. */
export function parseConfig<S extends z.ZodObject>(
  text: string,
  schema: S,
  file: string,
): z.infer<S> {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    const line = (err as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new ConfigError(
      `Cannot read "${file}"${line ? ` line ${line}` : ""}: ${
        (err as Error).message.split("\n")[0]
      }`,
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`Cannot read "${file}": the config must be a mapping of keys to values`);
  }
  const known = Object.keys(schema.shape);
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    const parts = unknown.map((k) => {
      const near = closestName(k, known);
      return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
    });
    throw new ConfigError(
      `Cannot read "${file}": unknown key${unknown.length > 1 ? "s" : ""} ${parts.join(", ")}`,
    );
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue.path.join(".") || "(root)";
    const more = result.error.issues.length > 1
      ? ` (and ${result.error.issues.length - 1} more)`
      : "";
    throw new ConfigError(
      `Cannot read "${file}": key "${key}": ${describeIssue(issue, raw)}${more}`,
    );
  }
  const base = dirname(resolve(file));
  const cfg = result.data as Record<string, unknown>;
  for (const k of PATH_KEYS) {
    const v = cfg[k];
    if (typeof v === "string" && !isAbsolute(v)) cfg[k] = join(base, v);
  }
  return cfg as z.infer<S>;
}

function describeIssue(issue: z.core.$ZodIssue, raw: object): string {
  if (issue.code === "invalid_type") {
    let v: unknown = raw;
    for (const p of issue.path) v = (v as Record<PropertyKey, unknown>)?.[p as PropertyKey];
    if (v === undefined) return `is required (expected ${issue.expected})`;
    return `expected ${issue.expected}, got ${JSON.stringify(v)}`;
  }
  return issue.message.replace(/^Invalid input: /, "");
}

/** Reads, validates and resolves a config file. */
export async function loadConfig<S extends z.ZodObject>(
  file: string,
  schema: S,
): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new ConfigError(`Cannot read config "${file}": ${(err as Error).message.split("\n")[0]}`);
  }
  return parseConfig(text, schema, file);
}

/** Writes the resolved config (defaults filled in, absolute paths) to output_dir/config.yaml. */
export async function writeResolvedConfig(cfg: { output_dir: string }): Promise<string> {
  await Deno.mkdir(cfg.output_dir, { recursive: true });
  const out = join(cfg.output_dir, "config.yaml");
  const tmp = `${out}.tmp`;
  await Deno.writeTextFile(tmp, YAML.stringify(cfg));
  await Deno.rename(tmp, out);
  return out;
}
