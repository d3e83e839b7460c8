/**
 * `star demo`: the pipeline on an embedded default, small enough for a CPU-only machine (the
 * software WebGPU adapter) in minutes. Synthesises a tool-calling set, prepares it with the
 * built-in Qwen3 template, makes a tiny teacher by fine-tuning a random 64-wide model on it
 * (kd_ratio 0), distils it into a 32-wide student with CKD, and measures on held-out rows
 * before and after distillation: the KD loss against the teacher, the teacher-student top-1
 * agreement at target positions, and the Sim-RL reward of greedy generations.
 * What to expect: the teacher (180 steps at lr 1e-2) writes well-formed calls, mostly to the
 * right tool, but rarely copies the argument values right, so its reward is low; the student
 * after CKD writes the answers' frame (`</think><tool_call>`) and its reward rises from the
 * format floor (-1) to about 0. Sim-RL and `star eval` are not part of it yet.
 */
import { join } from "node:path";
import { loadTrainset, type Sample } from "../data/batch.ts";
import { builtinTokenizerTexts } from "../data/builtin_tokenizer.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { prepareFile } from "../data/prepare.ts";
import { type SynthOptions, type SynthRow, synthRows, synthRowsExcept } from "../data/synthetic.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { type ModelConfig, presetConfig } from "../model/config.ts";
import { saveModel } from "../model/save.ts";
import { randomWeightChunks } from "../model/weights.ts";
import { runCkd } from "./ckd.ts";
import { ckdConfigSchema, parseConfig } from "./config.ts";
import { generateAndScore, kdEval, rewardSummary } from "./eval.ts";

export interface DemoOptions {
  output: string;
  /** Training rows, held-out rows, held-out prompts generated from. */
  trainRows?: number;
  heldoutRows?: number;
  genPrompts?: number;
  maxNewTokens?: number;
  teacherSteps?: number;
  studentSteps?: number;
  /** Peak learning rates of the teacher's fine-tuning and of CKD. */
  teacherLr?: number;
  studentLr?: number;
  log?: (line: string) => void;
}

/** Teacher: the `tiny` preset (real vocabulary, 2 layers, 64 wide). Student: half as wide. */
export const DEMO_TEACHER: ModelConfig = { ...presetConfig("tiny"), initializer_range: 0.02 };
export const DEMO_STUDENT: ModelConfig = {
  ...presetConfig("tiny"),
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 16,
};

/** The demo's data: one call at most and no distractor tool, so prompts stay short. */
export const DEMO_SYNTH: SynthOptions = { maxCalls: 1, maxDistractors: 0 };

export interface DemoEval {
  kdLoss: number;
  agreement: number;
  reward: number;
  formatRate: number;
}

export interface DemoResult {
  output: string;
  before: DemoEval;
  after: DemoEval;
  teacher: { reward: number; formatRate: number };
  seconds: Record<string, number>;
  tokensPerSecond: { teacher: number; ckd: number };
}

async function writeRows(path: string, rows: Iterable<unknown>): Promise<void> {
  const w = await JsonlWriter.open(path);
  try {
    for (const r of rows) await w.write(r);
  } finally {
    await w.close();
  }
}

async function initModel(dir: string, config: ModelConfig, seed: number): Promise<void> {
  await saveModel(dir, {
    config,
    dtype: "f32",
    tensor: (spec) =>
      randomWeightChunks(spec, { seed, dtype: "F32", std: config.initializer_range }),
    tokenizerFiles: await builtinTokenizerTexts(),
  });
}

async function meanTokensPerSecond(metrics: string): Promise<number> {
  const rows = (await Deno.readTextFile(metrics)).trim().split("\n").map((l) => JSON.parse(l));
  const tokens = rows.reduce((a, r) => a + r.tokens, 0);
  const secs = rows.reduce((a, r) => a + r.seconds, 0);
  return tokens / secs;
}

/**
 * The prepared rows of `path` with each prompt cut to its last user turn: the system turn
 * (the tools block and its instructions, two thirds of a row's tokens) goes, so that training
 * steps on the CPU spend their time on what the model has to learn. The demo's tools are a
 * fixed set of a dozen, learnt from the requests' wording.
 */
async function userTurnRows(path: string): Promise<unknown[]> {
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() !== "");
  return lines.map((l) => {
    const r = JSON.parse(l);
    return { ...r, inputs: r.inputs.slice(r.inputs.lastIndexOf("<|im_start|>user")) };
  });
}

async function loadHeldout(path: string, tok: Tokenizer): Promise<Sample[]> {
  const { samples } = await loadTrainset(path, tok, {
    promptMaxLen: 4096,
    generateMaxLen: 1024,
    keepText: true,
  });
  return samples;
}

/** Mean Sim-RL reward and format rate of greedy generations from the held-out prompts. */
async function rewardEval(
  model: string,
  samples: Sample[],
  full: Sample[],
  tok: Tokenizer,
  maxNewTokens: number,
): Promise<{ reward: number; formatRate: number; example: string }> {
  const scored = await generateAndScore({
    model,
    // scored against the whole prompt: its tools block is what the calls are checked against
    rows: samples.map((s, i) => ({
      prompt: Array.from(s.ids.subarray(0, s.promptLength)),
      inputs: full[i].inputs!,
      targets: full[i].targets!,
    })),
    tokenizer: tok,
    maxNewTokens,
  });
  return { ...rewardSummary(scored), example: scored[0]?.completion ?? "" };
}

function ckdYaml(o: Record<string, unknown>): string {
  return Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n";
}

/** The settings every demo training run shares (relative paths: the output folder). */
const COMMON = {
  data: "train.jsonl",
  train_batch_size: 4,
  micro_train_batch_size: 2,
  max_epochs: 100,
  lr_scheduler: "cosine_with_min_lr",
  lr_warmup_ratio: 0.1,
  weight_decay: 0,
  save_steps: -1,
  seed: 0,
};

/** Writes `name`.yaml into `out` and runs `star ckd` on it; returns its final/ folder. */
async function ckdRun(
  out: string,
  name: string,
  keys: Record<string, unknown>,
  log: (s: string) => void,
): Promise<string> {
  const yaml = join(out, `${name}.yaml`);
  await Deno.writeTextFile(yaml, ckdYaml({ ...COMMON, ...keys, output_dir: name }));
  await runCkd(parseConfig(await Deno.readTextFile(yaml), ckdConfigSchema, yaml), {
    log,
    progress: { label: name },
  });
  return join(out, name, "final");
}

/**
 * The demo's messages rows: training rows of seed 0, held-out rows of seed 1 that ask nothing a
 * training row asks (compared from the user turn on, as the models see them).
 */
export function demoRows(o: { trainRows: number; heldoutRows: number }): {
  train: SynthRow[];
  heldout: SynthRow[];
} {
  const train = [...synthRows(o.trainRows, 0, DEMO_SYNTH)];
  return { train, heldout: [...synthRowsExcept(o.heldoutRows, 1, train, DEMO_SYNTH)] };
}

/**
 * The demo's data: synthetic messages rows prepared with the built-in Qwen3 template; the
 * models see the conversation from the user turn on (see DEMO_SYNTH), the reward the whole
 * prompt. Returns the held-out rows both ways.
 */
async function demoData(out: string, o: { trainRows: number; heldoutRows: number }) {
  const tok = await Tokenizer.load();
  const { train, heldout: held } = demoRows(o);
  await writeRows(join(out, "train.messages.jsonl"), train);
  await writeRows(join(out, "heldout.messages.jsonl"), held);
  for (const name of ["train", "heldout"]) {
    const full = join(out, `${name}.full.jsonl`);
    await prepareFile(join(out, `${name}.messages.jsonl`), full, { tokenizer: tok });
    await writeRows(join(out, `${name}.jsonl`), await userTurnRows(full));
  }
  const heldout = await loadHeldout(join(out, "heldout.jsonl"), tok);
  const heldoutFull = await loadHeldout(join(out, "heldout.full.jsonl"), tok);
  if (heldoutFull.length !== heldout.length) {
    throw new Error(`"${out}/heldout.jsonl" and "heldout.full.jsonl" differ in length`);
  }
  return { tok, heldout, heldoutFull };
}

/** Runs the demo; everything is written under `output`. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const genPrompts = o.genPrompts ?? 8, maxNewTokens = o.maxNewTokens ?? 48;
  const teacherSteps = o.teacherSteps ?? 180, studentSteps = o.studentSteps ?? 56;
  const out = o.output;
  await Deno.mkdir(out, { recursive: true });
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (name: string) => {
    seconds[name] = (performance.now() - t0) / 1000;
    log(`demo: ${name} done in ${seconds[name].toFixed(1)} s`);
    t0 = performance.now();
  };
  const { tok, heldout, heldoutFull } = await demoData(out, {
    trainRows: o.trainRows ?? 96,
    heldoutRows: o.heldoutRows ?? 16,
  });
  lap("synth + prepare");
  // models: a random teacher and a random, narrower student
  await initModel(join(out, "teacher-init"), DEMO_TEACHER, 1);
  await initModel(join(out, "student-init"), DEMO_STUDENT, 2);
  lap("init-model");
  log(`demo: fine-tuning the teacher (${teacherSteps} steps, kd_ratio 0)`);
  const teacher = await ckdRun(out, "teacher-sft", {
    student: "teacher-init",
    kd_ratio: 0,
    learning_rate: o.teacherLr ?? 1e-2,
    max_steps: teacherSteps,
  }, log);
  lap("teacher SFT");
  const gen = heldout.slice(0, genPrompts), genFull = heldoutFull.slice(0, genPrompts);
  const evalOf = async (model: string) => ({
    ...await kdEval(model, teacher, heldout),
    ...await rewardEval(model, gen, genFull, tok, maxNewTokens),
  });
  const before = await evalOf(join(out, "student-init"));
  const teacherR = await rewardEval(teacher, gen, genFull, tok, maxNewTokens);
  lap("evaluation before CKD");
  log(`demo: distilling the student (${studentSteps} steps, CKD fkl + tail)`);
  const student = await ckdRun(out, "ckd", {
    student: "student-init",
    teacher: "teacher-sft/final",
    kd_ratio: 1,
    learning_rate: o.studentLr ?? 1e-2,
    max_steps: studentSteps,
  }, log);
  lap("CKD");
  const after = await evalOf(student);
  lap("evaluation after CKD");
  await Deno.writeTextFile(
    join(out, "examples.txt"),
    `teacher:\n${teacherR.example}\n\nstudent before:\n${before.example}\n\nstudent after:\n${after.example}\n`,
  );
  const pick = (e: typeof before) => ({ ...e, example: undefined });
  const result: DemoResult = {
    output: out,
    before: pick(before),
    after: pick(after),
    teacher: { reward: teacherR.reward, formatRate: teacherR.formatRate },
    seconds,
    tokensPerSecond: {
      teacher: await meanTokensPerSecond(join(out, "teacher-sft", "metrics.jsonl")),
      ckd: await meanTokensPerSecond(join(out, "ckd", "metrics.jsonl")),
    },
  };
  await Deno.writeTextFile(join(out, "demo.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}

/** The before/after table. */
export function demoTable(r: DemoResult): string {
  const f = (x: number, d = 3) => x.toFixed(d);
  const rows = [
    ["", "student before", "student after CKD", "teacher"],
    ["held-out KD loss (fkl + tail)", f(r.before.kdLoss), f(r.after.kdLoss), "0"],
    [
      "teacher-student top-1 agreement",
      f(r.before.agreement),
      f(r.after.agreement),
      "1",
    ],
    ["Sim-RL reward (greedy)", f(r.before.reward), f(r.after.reward), f(r.teacher.reward)],
    ["format-valid rate", f(r.before.formatRate), f(r.after.formatRate), f(r.teacher.formatRate)],
  ];
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) =>
    row.map((x, c) => c === 0 ? x.padEnd(w[c]) : x.padStart(w[c])).join("  ")
  )
    .join("\n");
}
