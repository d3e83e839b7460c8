/**
 * `star ckd`: Constrained Knowledge Distillation end to end. Reads the trainset (tokenized with
 * the `tokenizer` key's, else the student's, else the built-in tokenizer), resumes from the
 * latest checkpoint of output_dir when there is one, and runs the optimizer-step loop
 * (train/loop.ts) on the engine (train/gpu_backend.ts) or on the float64 CPU reference
 * (train/ref_backend.ts, tiny models only). `kd_ratio: 0` without a teacher is plain SFT.
 * With `teacher_topk_cache: DIR` the teacher's top-k at every target position of every row is
 * computed first (resumable; skipped when the cache is complete), the teacher is released, and
 * training reads the cache. Checkpoints carry the student's tokenizer files.
 */
import { join } from "node:path";
import { loadTrainset, type Sample } from "../data/batch.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { readQwen3Config } from "../model/config.ts";
import { loadQwen3Ref, qwen3ForwardRef } from "../model/qwen3_ref.ts";
import { type CkdConfig, ConfigError, writeResolvedConfig } from "./config.ts";
import { OPTIMIZER_FILE } from "./checkpoint.ts";
import { targetRowsRef, topkAtRowsRef } from "./ckd_step_ref.ts";
import type { CkdBatchSample } from "./gpu_backend.ts";
import { type LoopResult, resumePoint, type TrainBackend, trainLoop } from "./loop.ts";
import type { MetricsRow } from "./metrics.ts";
import { TopkCacheReader, TopkCacheWriter } from "./topk_cache.ts";

export type CkdDevice = "gpu" | "cpu";

export interface CkdRunOptions {
  /** "gpu" (the engine; default) or "cpu" (the float64 reference; tiny models only). */
  device?: CkdDevice;
  /** Informational lines (data summary, resume, cache); default stderr. */
  log?: (line: string) => void;
  progress?: false | { write?: (t: string) => void; tty?: boolean; label?: string };
  onStep?: (row: MetricsRow) => void | Promise<void>;
}

export interface CkdRunResult extends LoopResult {
  rows: number;
  resumedFrom?: number;
}

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

async function existingFiles(dir: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    try {
      if ((await Deno.stat(join(dir, n))).isFile) out.push(join(dir, n));
    } catch { /* absent */ }
  }
  return out;
}

/** The CKD options of the loss references and kernels, from the config. */
export function ckdOptions(cfg: CkdConfig) {
  return {
    klType: cfg.kd_kl_type,
    l1Coef: cfg.kd_kl_l1_coef,
    topm: cfg.kd_student_topm,
    kdRatio: cfg.kd_ratio,
    topk: cfg.kd_topk,
  };
}

/** Checks the config's combination of teacher, cache and kd_ratio. */
function checkTeacher(cfg: CkdConfig): void {
  if (cfg.kd_ratio > 0 && !cfg.teacher && !cfg.teacher_topk_cache) {
    throw new ConfigError(
      `The config sets kd_ratio ${cfg.kd_ratio} but no "teacher" (or "teacher_topk_cache"); ` +
        `give a teacher, or set kd_ratio: 0 for plain fine-tuning`,
    );
  }
}

/** The teacher's top-k at each target position of some samples: (P, k) per sample. */
type TeacherTopkFn = (
  samples: Sample[],
) => Promise<{ ids: Uint32Array; logprobs: Float32Array }[]>;

async function teacherTopkFn(dir: string, k: number, device: CkdDevice): Promise<{
  fn: TeacherTopkFn;
  release: () => void;
}> {
  if (device === "cpu") {
    const t = await loadQwen3Ref(dir);
    const V = t.config.vocab_size;
    return {
      fn: (samples) =>
        Promise.resolve(samples.map((s) => {
          const ids = Array.from(s.ids);
          const top = topkAtRowsRef(
            qwen3ForwardRef(t, [ids]).logits,
            V,
            targetRowsRef([{ ids, promptLength: s.promptLength }]).map((r) => r.row),
            k,
          );
          return {
            ids: Uint32Array.from(top.flatMap((x) => Array.from(x.ids))),
            logprobs: Float32Array.from(top.flatMap((x) => Array.from(x.logprobs))),
          };
        })),
      release: () => {},
    };
  }
  const { Qwen3Gpu } = await import("../model/qwen3_gpu.ts");
  const t = await Qwen3Gpu.load(dir, { precision: "checkpoint" });
  return {
    fn: async (samples) => {
      const out = await t.logprobs(samples.map((s) => Array.from(s.ids)), { topK: k });
      return out.map((r, i) => {
        const first = Math.max(0, samples[i].promptLength - 1);
        const ids = r.topkIds!.slice(first), lp = r.topkLogprobs!.slice(first);
        return { ids: Uint32Array.from(ids.flat()), logprobs: Float32Array.from(lp.flat()) };
      });
    },
    release: () => t.release(),
  };
}

/** Fills the offline cache up to every row (resumable), then opens it for reading. */
async function ensureCache(
  cfg: CkdConfig,
  samples: Sample[],
  vocab: number,
  device: CkdDevice,
  log: (s: string) => void,
): Promise<TopkCacheReader> {
  const dir = cfg.teacher_topk_cache!;
  const meta = { k: cfg.kd_topk, vocab_size: vocab, teacher: cfg.teacher ?? "", data: cfg.data };
  const w = await TopkCacheWriter.open(dir, meta);
  try {
    if (w.rows < samples.length) {
      if (!cfg.teacher) {
        throw new ConfigError(
          `The teacher top-k cache "${dir}" holds ${w.rows} of ${samples.length} rows and no "teacher" is given to fill it`,
        );
      }
      log(
        `ckd: teacher top-k cache "${dir}": ${w.rows} of ${samples.length} rows; computing the rest`,
      );
      const t0 = performance.now();
      const teacher = await teacherTopkFn(cfg.teacher, cfg.kd_topk, device);
      try {
        const BATCH = 8;
        for (let r = w.rows; r < samples.length; r += BATCH) {
          const part = samples.slice(r, Math.min(samples.length, r + BATCH));
          for (const t of await teacher.fn(part)) await w.append(t.ids, t.logprobs);
        }
      } finally {
        teacher.release();
      }
      log(`ckd: cache complete in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    w.close();
  }
  return await TopkCacheReader.open(dir, meta);
}

/** Adds the tokenizer files to every model directory the backend writes. */
function withSideFiles<B>(b: TrainBackend<B>, sideFiles: string[]): TrainBackend<B> {
  return {
    microStep: (batch, o) => b.microStep(batch, o),
    gradNorm: () => b.gradNorm(),
    applyUpdate: (o) => b.applyUpdate(o),
    zeroGrads: () => b.zeroGrads(),
    model: () => ({ ...b.model(), sideFiles }),
    optimizer: (s) => b.optimizer(s),
  };
}

/** Runs (or resumes) a CKD training run as configured. */
export async function runCkd(cfg: CkdConfig, opts: CkdRunOptions = {}): Promise<CkdRunResult> {
  const device = opts.device ?? "gpu";
  const log = opts.log ?? ((s: string) => console.error(s));
  checkTeacher(cfg);
  await writeResolvedConfig(cfg);
  const studentConfig = await readQwen3Config(cfg.student);
  if (cfg.teacher && cfg.kd_ratio > 0) {
    const tc = await readQwen3Config(cfg.teacher);
    if (tc.vocab_size !== studentConfig.vocab_size) {
      throw new ConfigError(
        `The teacher "${cfg.teacher}" has a vocabulary of ${tc.vocab_size}, the student "${cfg.student}" ${studentConfig.vocab_size}; CKD needs the same vocabulary`,
      );
    }
  }
  const tokenizer = await Tokenizer.load(cfg.tokenizer ?? cfg.student);
  const { samples, stats } = await loadTrainset(cfg.data, tokenizer, {
    promptMaxLen: cfg.prompt_max_len,
    generateMaxLen: cfg.generate_max_len,
  });
  const V = studentConfig.vocab_size;
  for (const s of samples) {
    const bad = s.ids.find((id) => id >= V);
    if (bad !== undefined) {
      throw new ConfigError(
        `Cannot train on "${cfg.data}" line ${s.line}: token id ${bad} is outside the student's vocabulary (${V})`,
      );
    }
  }
  log(
    `ckd: ${stats.kept} rows from "${cfg.data}" (${stats.droppedLongPrompt} dropped: prompt over ` +
      `${cfg.prompt_max_len} tokens; ${stats.truncatedTargets} targets cut at ${cfg.generate_max_len}), ` +
      `${stats.promptTokens + stats.targetTokens} tokens, ${stats.targetTokens} target tokens`,
  );
  const ckd = ckdOptions(cfg);
  const cache = cfg.kd_ratio > 0 && cfg.teacher_topk_cache
    ? await ensureCache(cfg, samples, V, device, log)
    : undefined;
  const resume = await resumePoint(cfg.output_dir);
  if (resume) log(`ckd: resuming from "${resume.dir}" (step ${resume.state.step})`);
  const studentDir = resume?.dir ?? cfg.student;
  const optimizerFile = resume ? join(resume.dir, OPTIMIZER_FILE) : undefined;
  const teacherDir = cache || cfg.kd_ratio === 0 ? undefined : cfg.teacher;
  const adam = { betas: cfg.adam_betas, eps: cfg.adam_eps, weightDecay: cfg.weight_decay };
  const sideFiles = await existingFiles(
    cfg.tokenizer ?? cfg.student,
    TOKENIZER_FILES,
  );
  let backend: TrainBackend<CkdBatchSample[]>;
  let release = () => {};
  if (device === "cpu") {
    const { CkdRefBackend } = await import("./ref_backend.ts");
    backend = await CkdRefBackend.load({
      student: studentDir,
      teacher: teacherDir,
      optimizerFile,
      ckd,
      adam,
    });
  } else {
    const { CkdGpuBackend } = await import("./gpu_backend.ts");
    const b = await CkdGpuBackend.load({
      student: studentDir,
      teacher: teacherDir,
      optimizerFile,
      ckd,
      adam: { ...adam, maxNorm: cfg.max_norm },
    });
    backend = b;
    release = () => b.release();
  }
  try {
    const result = await trainLoop({
      cfg,
      rows: samples.length,
      makeBatch: async (rows) => {
        const out: CkdBatchSample[] = [];
        for (const r of rows) {
          const s: CkdBatchSample = {
            ids: Array.from(samples[r].ids),
            promptLength: samples[r].promptLength,
          };
          if (cache) {
            const t = await cache.read(r);
            s.teacher = { ids: t.ids, logprobs: t.logprobs };
          }
          out.push(s);
        }
        return out;
      },
      backend: withSideFiles(backend, sideFiles),
      resume,
      progress: opts.progress ?? { label: "ckd" },
      onStep: opts.onStep,
    });
    return { ...result, rows: samples.length, resumedFrom: resume?.state.step };
  } finally {
    cache?.close();
    release();
  }
}
