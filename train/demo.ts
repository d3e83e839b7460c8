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
import { type SynthOptions, synthRows } from "../data/synthetic.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { saveQwen3 } from "../model/save.ts";
import { randomWeightChunks } from "../model/weights.ts";
import { simRlReward } from "../reward/sim_rl.ts";
import { runCkd } from "./ckd.ts";
import { ckdConfigSchema, parseConfig } from "./config.ts";
import type { CkdBatchSample } from "./gpu_backend.ts";

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
export const DEMO_TEACHER: Qwen3Config = { ...presetConfig("tiny"), initializer_range: 0.02 };
export const DEMO_STUDENT: Qwen3Config = {
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

async function initModel(dir: string, config: Qwen3Config, seed: number): Promise<void> {
  await saveQwen3(dir, {
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

/** Held-out KD loss and top-1 agreement of `student` against `teacher` (GPU). */
async function kdEval(
  student: string,
  teacher: string,
  samples: Sample[],
): Promise<{ kdLoss: number; agreement: number }> {
  const { CkdGpuBackend } = await import("./gpu_backend.ts");
  const b = await CkdGpuBackend.load({
    student,
    teacher,
    ckd: { klType: "fkl", l1Coef: 10, topm: 100, kdRatio: 1, topk: 100 },
    adam: { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxNorm: 1 },
  });
  try {
    let loss = 0, agree = 0, rows = 0;
    for (let i = 0; i < samples.length; i += 4) {
      const batch: CkdBatchSample[] = samples.slice(i, i + 4).map((s) => ({
        ids: Array.from(s.ids),
        promptLength: s.promptLength,
      }));
      const r = await b.evaluate(batch);
      loss += r.loss * r.rows;
      agree += r.agree;
      rows += r.rows;
    }
    return { kdLoss: loss / rows, agreement: agree / rows };
  } finally {
    b.release();
  }
}

/** Mean Sim-RL reward and format rate of greedy generations from the held-out prompts. */
async function rewardEval(
  model: string,
  samples: Sample[],
  full: Sample[],
  tok: Tokenizer,
  maxNewTokens: number,
): Promise<{ reward: number; formatRate: number; example: string }> {
  const { Qwen3Gpu } = await import("../model/qwen3_gpu.ts");
  const { generate } = await import("../model/generate.ts");
  const m = await Qwen3Gpu.load(model, { precision: "checkpoint" });
  try {
    const gens = await generate(
      m,
      samples.map((s, i) => ({
        prompt: Array.from(s.ids.subarray(0, s.promptLength)),
        example: i,
      })),
      { maxNewTokens, temperature: 0, maxBatch: 8 },
    );
    let reward = 0, format = 0;
    let example = "";
    gens.forEach((g, i) => {
      const completion = tok.decode(g.ids);
      if (i === 0) example = completion;
      // scored against the whole prompt: its tools block is what the calls are checked against
      const r = simRlReward(full[i].inputs!, completion, full[i].targets!);
      reward += r.reward;
      if (r.format === 1) format++;
    });
    return { reward: reward / gens.length, formatRate: format / gens.length, example };
  } finally {
    m.release();
  }
}

function ckdYaml(o: Record<string, unknown>): string {
  return Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n";
}

/** Runs the demo; everything is written under `output`. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const trainRows = o.trainRows ?? 96, heldoutRows = o.heldoutRows ?? 16;
  const genPrompts = o.genPrompts ?? 8, maxNewTokens = o.maxNewTokens ?? 48;
  const teacherSteps = o.teacherSteps ?? 180, studentSteps = o.studentSteps ?? 56;
  const teacherLr = o.teacherLr ?? 1e-2, studentLr = o.studentLr ?? 1e-2;
  const out = o.output;
  await Deno.mkdir(out, { recursive: true });
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (name: string) => {
    seconds[name] = (performance.now() - t0) / 1000;
    log(`demo: ${name} done in ${seconds[name].toFixed(1)} s`);
    t0 = performance.now();
  };

  // 1. data: synthetic messages rows, prepared with the built-in Qwen3 template; the models
  // see the conversation from the user turn on (see DEMO_SYNTH), the reward the whole prompt
  const tok = await Tokenizer.load();
  await writeRows(join(out, "train.messages.jsonl"), synthRows(trainRows, 0, DEMO_SYNTH));
  await writeRows(join(out, "heldout.messages.jsonl"), synthRows(heldoutRows, 1, DEMO_SYNTH));
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
  lap("synth + prepare");

  // 2. models: a random teacher and a random, narrower student
  await initModel(join(out, "teacher-init"), DEMO_TEACHER, 1);
  await initModel(join(out, "student-init"), DEMO_STUDENT, 2);
  lap("init-model");

  // 3. the teacher: supervised fine-tuning (kd_ratio 0, no teacher)
  const common = {
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
  const progress = { label: "" };
  const teacherYaml = join(out, "teacher_sft.yaml");
  await Deno.writeTextFile(
    teacherYaml,
    ckdYaml({
      ...common,
      student: "teacher-init",
      output_dir: "teacher-sft",
      kd_ratio: 0,
      learning_rate: teacherLr,
      max_steps: teacherSteps,
    }),
  );
  log(`demo: fine-tuning the teacher (${teacherSteps} steps, kd_ratio 0)`);
  await runCkd(parseConfig(await Deno.readTextFile(teacherYaml), ckdConfigSchema, teacherYaml), {
    log,
    progress: { ...progress, label: "teacher sft" },
  });
  const teacher = join(out, "teacher-sft", "final");
  lap("teacher SFT");

  // 4. before: the random student against the teacher
  const before = await kdEval(join(out, "student-init"), teacher, heldout);
  const gen = heldout.slice(0, genPrompts), genFull = heldoutFull.slice(0, genPrompts);
  const beforeR = await rewardEval(join(out, "student-init"), gen, genFull, tok, maxNewTokens);
  const teacherR = await rewardEval(teacher, gen, genFull, tok, maxNewTokens);
  lap("evaluation before CKD");

  // 5. CKD of the student from the teacher
  const ckdYamlPath = join(out, "ckd.yaml");
  await Deno.writeTextFile(
    ckdYamlPath,
    ckdYaml({
      ...common,
      student: "student-init",
      teacher: "teacher-sft/final",
      output_dir: "ckd",
      kd_ratio: 1,
      learning_rate: studentLr,
      max_steps: studentSteps,
    }),
  );
  log(`demo: distilling the student (${studentSteps} steps, CKD fkl + tail)`);
  await runCkd(parseConfig(await Deno.readTextFile(ckdYamlPath), ckdConfigSchema, ckdYamlPath), {
    log,
    progress: { ...progress, label: "ckd" },
  });
  lap("CKD");

  // 6. after
  const student = join(out, "ckd", "final");
  const after = await kdEval(student, teacher, heldout);
  const afterR = await rewardEval(student, gen, genFull, tok, maxNewTokens);
  lap("evaluation after CKD");
  await Deno.writeTextFile(
    join(out, "examples.txt"),
    `teacher:\n${teacherR.example}\n\nstudent before:\n${beforeR.example}\n\nstudent after:\n${afterR.example}\n`,
  );
  const result: DemoResult = {
    output: out,
    before: { ...before, reward: beforeR.reward, formatRate: beforeR.formatRate },
    after: { ...after, reward: afterR.reward, formatRate: afterR.formatRate },
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
