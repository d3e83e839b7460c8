/**
 * `star demo`: STAR's pipeline in miniature on an embedded default, small enough for a CPU-only
 * machine (the software WebGPU adapter) in minutes. A synthetic tool-calling set (one call per
 * request, the offered tool in a compact system turn), prepared with the built-in Qwen3 template;
 * a tokenizer cut down to what the set uses (the embedding and LM head shrink from 151,936 rows
 * to about a thousand); a tiny teacher fine-tuned on the set; a narrower student trained two
 * ways from the same initialisation for the same steps, by SFT (kd_ratio 0) and by CKD from the
 * teacher; then Sim-RL on the CKD student. Each model is scored on held-out rows (asking nothing
 * the training rows ask) with greedy generations: mean Sim-RL reward, format-valid rate and
 * exact-call rate. STAR's claim in miniature is SFT < CKD < CKD + Sim-RL on held-out reward.
 * `seed` picks the synthetic rows and every initialisation.
 */
import { join } from "node:path";
import { loadTrainset, type Sample } from "../data/batch.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { prepareFile } from "../data/prepare.ts";
import { type SynthOptions, type SynthRow, synthRows, synthRowsExcept } from "../data/synthetic.ts";
import { readTokenizerFiles, Tokenizer } from "../data/tokenizer.ts";
import { cutVocab, paddedVocabSize, writeVocabCut } from "../data/vocab_cut.ts";
import { type ModelConfig, presetConfig } from "../model/config.ts";
import { saveModel } from "../model/save.ts";
import { randomWeightChunks } from "../model/weights.ts";
import { exactCalls } from "../reward/exact.ts";
import { runCkd } from "./ckd.ts";
import { ckdConfigSchema, parseConfig, simrlConfigSchema } from "./config.ts";
import { generateAndScore } from "./eval.ts";
import { runSimrl } from "./simrl.ts";

export interface DemoOptions {
  output: string;
  seed?: number;
  trainRows?: number;
  heldoutRows?: number;
  teacherSteps?: number;
  /** Steps of each student (SFT and CKD alike). */
  studentSteps?: number;
  /** Sim-RL rollout batches' optimizer steps. */
  simrlSteps?: number;
  maxNewTokens?: number;
  log?: (line: string) => void;
}

/**
 * The models' shapes (the vocabulary is set from the cut tokenizer): two layers each, the
 * teacher twice the student's width. RoPE's base is 10,000 rather than Qwen3's 1,000,000: at
 * these head sizes and lengths the larger base leaves too few fast-turning frequencies to find
 * a value's position by, and copying values from the request is most of the task.
 */
export const DEMO_TEACHER: ModelConfig = {
  ...presetConfig("tiny"),
  hidden_size: 128,
  intermediate_size: 256,
  head_dim: 32,
  rope_theta: 10000,
  initializer_range: 0.02,
};
export const DEMO_STUDENT: ModelConfig = {
  ...presetConfig("tiny"),
  hidden_size: 96,
  intermediate_size: 192,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  head_dim: 32,
  rope_theta: 10000,
  initializer_range: 0.02,
};

/** The demo's sizes when not given: rows, steps and new tokens. */
export const DEMO_DEFAULTS = {
  trainRows: 2000,
  heldoutRows: 64,
  teacherSteps: 240,
  studentSteps: 150,
  simrlSteps: 16,
  maxNewTokens: 96,
} as const;

/** Rows of one training step (CKD and SFT); the training set needs at least this many. */
export const DEMO_BATCH = 16;

/**
 * One call at most and no distractor tool, so prompts stay short; no tool with decimal-number
 * arguments, which students this small copy badly (18.8.8): their failures would be format
 * failures that hide what the answers learned.
 */
export const DEMO_SYNTH: SynthOptions = { maxCalls: 1, maxDistractors: 0, noDecimals: true };

/** What a model scores on the held-out rows. */
export interface DemoScores {
  reward: number;
  format_rate: number;
  exact_rate: number;
}

export type DemoRowName = "teacher" | "sft" | "ckd" | "ckd_simrl";

export interface DemoResult {
  output: string;
  rows: Record<DemoRowName, DemoScores>;
  /** Wall time of the whole demo. */
  seconds: number;
  /** Wall time of each stage. */
  stages: Record<string, number>;
  vocabSize: number;
}

async function writeRows(path: string, rows: Iterable<unknown>): Promise<void> {
  const w = await JsonlWriter.open(path);
  try {
    for (const r of rows) await w.write(r);
  } finally {
    await w.close();
  }
}

/**
 * The demo's messages rows: training rows of seed 2·s, held-out rows of seed 2·s + 1 that ask
 * nothing a training row asks (compared from the user turn on).
 */
export function demoRows(o: { trainRows: number; heldoutRows: number; seed?: number }): {
  train: SynthRow[];
  heldout: SynthRow[];
} {
  const s = 2 * (o.seed ?? 0);
  const train = [...synthRows(o.trainRows, s, DEMO_SYNTH)];
  return { train, heldout: [...synthRowsExcept(o.heldoutRows, s + 1, train, DEMO_SYNTH)] };
}

/**
 * A tool line cut to what the reward checks a call against: the name and the argument names,
 * each with its JSON type (`{"name": "set_alarm", "parameters": {"time": "string"}}`; a
 * `parameters` without `properties` lists the allowed names itself, SIMRL_REWARD.md section 3).
 */
function compactTool(line: string): string {
  const t = JSON.parse(line);
  const props: Record<string, { type?: string }> = t.parameters?.properties ?? {};
  const args = Object.entries(props).map(([k, v]) =>
    `${JSON.stringify(k)}: ${JSON.stringify(v?.type ?? "any")}`
  );
  return `{"name": ${JSON.stringify(t.name)}, "parameters": {${args.join(", ")}}}`;
}

/**
 * A prepared prompt with its system turn cut to a compact tools block (compactTool): the model
 * sees the offered tools' names and argument names and the request, in about half the tokens,
 * and the reward finds the same tools and argument names as in the full prompt.
 */
export function compactPrompt(inputs: string): string {
  // the last block, as the reward reads it: the template's preamble names the tags first
  const b = inputs.lastIndexOf("</tools>"), a = b < 0 ? -1 : inputs.lastIndexOf("<tools>", b);
  const user = inputs.indexOf("<|im_start|>user");
  if (a < 0 || user < b) return inputs;
  const lines = inputs.slice(a + "<tools>".length, b).split("\n").filter((l) => l.trim());
  return `<|im_start|>system\n<tools>\n${lines.map(compactTool).join("\n")}\n</tools><|im_end|>\n${
    inputs.slice(user)
  }`;
}

/**
 * Writes train.jsonl and heldout.jsonl (compact prompts) and the cut tokenizer in tokenizer/;
 * returns the tokenizer and the held-out rows.
 */
async function demoData(out: string, o: { trainRows: number; heldoutRows: number; seed: number }) {
  const full = await Tokenizer.load();
  const { train, heldout } = demoRows(o);
  const texts: string[] = [];
  for (const [name, rows] of [["train", train], ["heldout", heldout]] as const) {
    await writeRows(join(out, `${name}.messages.jsonl`), rows);
    const prepared = join(out, `${name}.full.jsonl`);
    await prepareFile(join(out, `${name}.messages.jsonl`), prepared, { tokenizer: full });
    const lines = (await Deno.readTextFile(prepared)).split("\n").filter((l) => l.trim());
    const compact = lines.map((l) => {
      const r = JSON.parse(l);
      texts.push(compactPrompt(r.inputs), r.targets);
      return { ...r, inputs: compactPrompt(r.inputs) };
    });
    await writeRows(join(out, `${name}.jsonl`), compact);
  }
  const cut = cutVocab(await readTokenizerFiles(), texts);
  const dir = join(out, "tokenizer");
  await writeVocabCut(dir, cut);
  const tok = await Tokenizer.load(dir);
  const id = (t: string) => tok.requireId(t);
  await Deno.writeTextFile(
    join(dir, "generation_config.json"),
    JSON.stringify(
      {
        bos_token_id: id("<|endoftext|>"),
        eos_token_id: [id("<|im_end|>"), id("<|endoftext|>")],
        pad_token_id: id("<|endoftext|>"),
      },
      null,
      2,
    ) + "\n",
  );
  const { samples } = await loadTrainset(join(out, "heldout.jsonl"), tok, {
    promptMaxLen: 4096,
    generateMaxLen: 1024,
    keepText: true,
  });
  return { tok, heldout: samples, vocab: paddedVocabSize(cut.vocabSize) };
}

async function initModel(
  dir: string,
  config: ModelConfig,
  o: { seed: number; tokenizer: string },
): Promise<void> {
  await saveModel(dir, {
    config,
    dtype: "f32",
    tensor: (spec) =>
      randomWeightChunks(spec, { seed: o.seed, dtype: "F32", std: config.initializer_range }),
    tokenizerFrom: o.tokenizer,
  });
}

function yamlOf(o: Record<string, unknown>): string {
  return Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n";
}

/** The settings every demo CKD run shares (relative paths: the output folder). */
function ckdCommon(seed: number) {
  return {
    data: "train.jsonl",
    train_batch_size: DEMO_BATCH,
    micro_train_batch_size: DEMO_BATCH,
    max_epochs: 100,
    lr_scheduler: "cosine_with_min_lr",
    lr_warmup_ratio: 0.05,
    weight_decay: 0,
    save_steps: -1,
    seed,
  };
}

/** Writes `name`.yaml and runs `star ckd` on it; returns its final/ folder. */
async function ckdRun(
  out: string,
  name: string,
  keys: Record<string, unknown>,
  log: (s: string) => void,
): Promise<string> {
  const yaml = join(out, `${name}.yaml`);
  await Deno.writeTextFile(yaml, yamlOf({ ...keys, output_dir: name }));
  await runCkd(parseConfig(await Deno.readTextFile(yaml), ckdConfigSchema, yaml), {
    log,
    progress: { label: name },
  });
  return join(out, name, "final");
}

/** Writes simrl.yaml and runs `star simrl` on the CKD student; returns its final/ folder. */
async function simrlRun(
  out: string,
  o: { steps: number; seed: number; maxNewTokens: number; trainRows: number },
  log: (s: string) => void,
): Promise<string> {
  const yaml = join(out, "simrl.yaml");
  await Deno.writeTextFile(
    yaml,
    yamlOf({
      pretrain: "ckd/final",
      data: "train.jsonl",
      output_dir: "simrl",
      rollout_batch_size: 4,
      n_samples_per_prompt: 8,
      micro_rollout_batch_size: 4,
      train_batch_size: 16,
      micro_train_batch_size: 16,
      // enough passes over the prompts for the steps even when most groups are filtered out,
      // and no more: a student that never answers well would otherwise sample for a long time
      num_episodes: Math.max(1, Math.ceil((o.steps * 4 * 4) / o.trainRows)),
      max_steps: o.steps,
      generate_max_len: o.maxNewTokens,
      learning_rate: 1e-4,
      lr_warmup_ratio: 0,
      lr_scheduler: "constant",
      init_kl_coef: 1e-3,
      seed: o.seed,
      save_steps: -1,
    }),
  );
  await runSimrl(parseConfig(await Deno.readTextFile(yaml), simrlConfigSchema, yaml), {
    log,
    progress: { label: "simrl" },
  });
  return join(out, "simrl", "final");
}

/** Greedy generations from the held-out prompts, scored. */
async function score(
  model: string,
  heldout: Sample[],
  tok: Tokenizer,
  maxNewTokens: number,
): Promise<DemoScores & { example: string }> {
  const scored = await generateAndScore({
    model,
    rows: heldout.map((s) => ({
      prompt: Array.from(s.ids.subarray(0, s.promptLength)),
      inputs: s.inputs!,
      targets: s.targets!,
    })),
    tokenizer: tok,
    maxNewTokens,
  });
  const n = Math.max(1, scored.length);
  return {
    reward: scored.reduce((a, s) => a + s.reward, 0) / n,
    format_rate: scored.filter((s) => s.format === 1).length / n,
    exact_rate:
      scored.filter((s) =>
        exactCalls(heldout[s.row].inputs!, s.completion, heldout[s.row].targets!)
      ).length / n,
    example: scored[0]?.completion ?? "",
  };
}

/** Runs the demo; everything is written under `output`. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const seed = o.seed ?? 0,
    out = o.output,
    maxNewTokens = o.maxNewTokens ?? DEMO_DEFAULTS.maxNewTokens;
  await Deno.mkdir(out, { recursive: true });
  const start = performance.now(), stages: Record<string, number> = {};
  let t0 = start;
  const lap = (name: string) => {
    stages[name] = (performance.now() - t0) / 1000;
    log(`demo: ${name} done in ${stages[name].toFixed(1)} s`);
    t0 = performance.now();
  };
  const { tok, heldout, vocab } = await demoData(out, {
    trainRows: o.trainRows ?? DEMO_DEFAULTS.trainRows,
    heldoutRows: o.heldoutRows ?? DEMO_DEFAULTS.heldoutRows,
    seed,
  });
  const ids = {
    bos_token_id: tok.requireId("<|endoftext|>"),
    eos_token_id: tok.requireId("<|im_end|>"),
  };
  const tokenizer = join(out, "tokenizer");
  await initModel(join(out, "teacher-init"), { ...DEMO_TEACHER, ...ids, vocab_size: vocab }, {
    seed: 1000 * seed + 1,
    tokenizer,
  });
  await initModel(join(out, "student-init"), { ...DEMO_STUDENT, ...ids, vocab_size: vocab }, {
    seed: 1000 * seed + 2,
    tokenizer,
  });
  lap(`data and models (vocabulary ${vocab})`);
  const common = ckdCommon(seed), student = o.studentSteps ?? DEMO_DEFAULTS.studentSteps;
  const teacher = await ckdRun(out, "teacher-sft", {
    ...common,
    student: "teacher-init",
    kd_ratio: 0,
    learning_rate: 5e-3,
    max_steps: o.teacherSteps ?? DEMO_DEFAULTS.teacherSteps,
  }, log);
  lap("teacher SFT");
  const sft = await ckdRun(out, "sft", {
    ...common,
    student: "student-init",
    kd_ratio: 0,
    learning_rate: 7e-3,
    max_steps: student,
  }, log);
  lap("student SFT");
  const ckd = await ckdRun(out, "ckd", {
    ...common,
    student: "student-init",
    teacher: "teacher-sft/final",
    kd_ratio: 0.5,
    learning_rate: 7e-3,
    max_steps: student,
  }, log);
  lap("student CKD");
  const rl = await simrlRun(out, {
    steps: o.simrlSteps ?? DEMO_DEFAULTS.simrlSteps,
    seed,
    maxNewTokens,
    trainRows: o.trainRows ?? DEMO_DEFAULTS.trainRows,
  }, log);
  lap("Sim-RL");
  const rows = {} as Record<DemoRowName, DemoScores>;
  const examples: string[] = [];
  for (
    const [name, dir] of [["teacher", teacher], ["sft", sft], ["ckd", ckd], [
      "ckd_simrl",
      rl,
    ]] as const
  ) {
    const { example, ...s } = await score(dir, heldout, tok, maxNewTokens);
    rows[name] = s;
    examples.push(`${name}:\n${example}`);
  }
  lap("held-out evaluation");
  await Deno.writeTextFile(join(out, "examples.txt"), examples.join("\n\n") + "\n");
  const result: DemoResult = {
    output: out,
    rows,
    seconds: (performance.now() - start) / 1000,
    stages,
    vocabSize: vocab,
  };
  await Deno.writeTextFile(join(out, "demo.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}

/** The table: one row per model, held-out reward, format-valid rate, exact-call rate. */
export function demoTable(r: DemoResult): string {
  const names: [DemoRowName, string][] = [
    ["teacher", `teacher (SFT, ${DEMO_TEACHER.hidden_size} wide)`],
    ["sft", "student SFT"],
    ["ckd", "student CKD"],
    ["ckd_simrl", "student CKD + Sim-RL"],
  ];
  const rows = [
    ["", "held-out reward", "format rate", "exact calls"],
    ...names.map(([k, label]) => [
      label,
      r.rows[k].reward.toFixed(3),
      r.rows[k].format_rate.toFixed(3),
      r.rows[k].exact_rate.toFixed(3),
    ]),
  ];
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) =>
    row.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join("  ")
  )
    .join("\n");
}
