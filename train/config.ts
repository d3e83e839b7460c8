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
import { UsageError } from "../lib/errors.ts";

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
  teacher_model: z.string().min(1).optional(),
  teacher_concurrency: positiveInt.default(8),
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
  reference: path.optional(),
  replay_rollouts: path.optional(),
  num_episodes: positiveInt.default(3),
  micro_train_batch_size: positiveInt.default(2),
  train_batch_size: positiveInt.default(128),
  learning_rate: z.number().positive().default(3e-7),
  weight_decay: z.number().min(0).default(0),
  prompt_max_len: positiveInt.default(5120),
  generate_max_len: positiveInt.default(512),
  rollout_batch_size: positiveInt.default(128),
  micro_rollout_batch_size: positiveInt.default(4),
  n_samples_per_prompt: positiveInt.default(8),
  temperature: z.number().min(0).default(1.0),
  top_p: z.number().gt(0).max(1).default(1.0),
  top_k: z.number().int().min(-1).default(-1),
  use_kl_loss: z.boolean().default(true),
  init_kl_coef: z.number().min(0).default(1e-3),
  kl_estimator: z.enum(["k1", "k2", "k3"]).default("k2"),
  eps_clip: z.number().positive().default(0.2),
  advantage_estimator: z.enum(["group_norm", "dr_grpo"]).default("group_norm"),
  dynamic_filtering: z.boolean().default(true),
  dynamic_filtering_reward_range: z.tuple([z.number(), z.number()]).default([0.01, 0.99]),
});
export type SimrlConfig = z.infer<typeof simrlConfigSchema>;

/**
 * `star rollout`: STAR's teacher rollout (data_process/teacher_rollout.py) on the engine
 * (`teacher`) or on an OpenAI-compatible server (`server` + `model`). Defaults are STAR's
 * script's, except rollout_n (8, the issue's recipe) and the seed.
 */
export const rolloutConfigSchema = z.object({
  input: path,
  output: path,
  teacher: path.optional(),
  server: z.string().regex(/^https?:\/\/\S+$/, "expected an http:// or https:// URL").optional(),
  model: z.string().min(1).optional(),
  concurrency: positiveInt.default(32),
  request_timeout: z.number().positive().default(600),
  tokenizer: path.optional(),
  rollout_n: positiveInt.default(8),
  temperature: z.number().min(0).default(1.0),
  top_p: z.number().gt(0).max(1).default(1.0),
  top_k: z.number().int().min(-1).default(-1),
  max_tokens: positiveInt.default(2048),
  batch_size: positiveInt.default(128),
  max_rollout: positiveInt.default(3),
  seed: z.number().int().default(42),
  save_interval: positiveInt.default(100),
  min_reward: z.number().min(-1).max(1).optional(),
  overwrite: z.boolean().default(false),
});
export type RolloutConfig = z.infer<typeof rolloutConfigSchema>;

/** Keys holding paths, resolved against the config file's folder. */
const PATH_KEYS = new Set([
  "input",
  "output",
  "output_dir",
  "data",
  "eval_data",
  "tokenizer",
  "student",
  "teacher",
  "teacher_topk_cache",
  "pretrain",
  "reference",
  "replay_rollouts",
]);

/** Parses and validates a config given as text; `file` names it in errors. */
export function parseConfig<S extends z.ZodObject>(
  text: string,
  schema: S,
  file: string,
): z.infer<S> {
  const raw = readMapping(text, file);
  checkKnown(raw, schema, file);
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue.path.join(".") || "(root)";
    throw new ConfigError(
      `Cannot read "${file}": key "${key}": ${describeIssue(issue, raw)}${more(result.error)}`,
    );
  }
  return resolvePaths(result.data, dirname(resolve(file)));
}

/**
 * A config from an optional file with flag values laid over it (flags win). Paths in the file
 * resolve against its folder, paths given as flags against the working directory. A bad file
 * value is a ConfigError naming the file; a bad or missing flag value is a UsageError naming
 * the flag (`flags` holds config keys; the flag is the key with "-" for "_").
 */
export async function loadConfigWithFlags<S extends z.ZodObject>(
  file: string | undefined,
  flags: Record<string, unknown>,
  schema: S,
  command: string,
): Promise<z.infer<S>> {
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    raw = readMapping(await readConfigText(file), file);
    checkKnown(raw, schema, file);
    raw = resolvePaths(raw, dirname(resolve(file)), true);
  }
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const merged = { ...raw, ...resolvePaths(given, resolve("."), true) };
  const result = schema.safeParse(merged);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = String(issue.path[0] ?? "");
  const flag = `--${key.replaceAll("_", "-")}`;
  const missing = issue.code === "invalid_type" && merged[key] === undefined;
  if (missing) {
    const where = file === undefined ? "" : ` or set "${key}" in "${file}"`;
    throw new UsageError(`Missing "${key}": pass ${flag}${where} ("star ${command}")`);
  }
  const what = describeIssue(issue, merged) + more(result.error);
  if (key in given) throw new UsageError(`Flag "${flag}": ${what} ("star ${command}")`);
  throw new ConfigError(`Cannot read "${file}": key "${issue.path.join(".")}": ${what}`);
}

function more(error: z.ZodError): string {
  return error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
}

/** The YAML text as a mapping of keys to values. */
function readMapping(text: string, file: string): Record<string, unknown> {
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
  return raw as Record<string, unknown>;
}

/** Unknown keys are an error naming each with the closest valid key. */
function checkKnown(raw: object, schema: z.ZodObject, file: string): void {
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
}

/**
 * Relative paths made absolute against `base`. With `keepStdin` (values not yet validated, as
 * loadConfigWithFlags reads them) "" stays for validation to name and "-" stays for stdin; the
 * trainers' configs resolve every relative path.
 */
function resolvePaths<T extends Record<string, unknown>>(
  cfg: T,
  base: string,
  keepStdin = false,
): T {
  const out: Record<string, unknown> = { ...cfg };
  for (const k of PATH_KEYS) {
    const v = out[k];
    if (typeof v !== "string" || isAbsolute(v) || /^https?:\/\//.test(v)) continue;
    if (keepStdin && (v === "" || v === "-")) continue;
    out[k] = join(base, v);
  }
  return out as T;
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
  return parseConfig(await readConfigText(file), schema, file);
}

async function readConfigText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    throw new ConfigError(`Cannot read config "${file}": ${(err as Error).message.split("\n")[0]}`);
  }
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
