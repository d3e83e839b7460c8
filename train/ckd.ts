/**
 * `star ckd`: Constrained Knowledge Distillation end to end. On the run skeleton (train/run.ts:
 * config, tokenizer, resume point, metrics, checkpoints) it reads the trainset, and runs the
 * data-order loop (train/loop.ts) on the engine (train/ckd_gpu.ts) or on the float64 CPU
 * reference (train/ckd_ref.ts, tiny models only). `kd_ratio: 0` without a teacher is plain SFT.
 * With `teacher_topk_cache: DIR` the teacher's top-k at every target position of every row is
 * computed first (resumable; skipped when the cache is complete), the teacher is released, and
 * training reads the cache. A teacher given as a server URL (`teacher: http://host:port/v1`
 * with `teacher_model`) is scored there (train/remote_teacher.ts), online or into the cache.
 * Checkpoints carry the student's tokenizer files.
 */
import { loadTrainset, type Sample } from "../data/batch.ts";
import { readModelConfig } from "../model/config.ts";
import { forwardRef, loadRefModel } from "../model/ref.ts";
import type { CkdBatchSample, CkdOptions } from "./ckd_batch.ts";
import { type CkdConfig, ConfigError } from "./config.ts";
import { targetRowsRef, topkAtRowsRef } from "./ckd_step_ref.ts";
import { type LoopResult, type TrainBackend, trainLoop } from "./loop.ts";
import type { MetricsRow } from "./metrics.ts";
import { Run } from "./run.ts";
import { TopkCacheReader, TopkCacheWriter } from "./topk_cache.ts";
import { isRemoteTeacher, RemoteTeacher } from "./remote_teacher.ts";

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

/** The CKD options of the loss references and kernels, from the config. */
export function ckdOptions(cfg: CkdConfig): CkdOptions {
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
  if (isRemoteTeacher(cfg.teacher) && !cfg.teacher_model) {
    throw new ConfigError(
      `The config's teacher is a server ("${cfg.teacher}"): set "teacher_model" to the name it serves the teacher under`,
    );
  }
  if (cfg.teacher_model && !isRemoteTeacher(cfg.teacher)) {
    throw new ConfigError(
      `"teacher_model" names a served model; "teacher" must then be the server's URL (http://host:port/v1)`,
    );
  }
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
    const t = await loadRefModel(dir);
    const V = t.config.vocab_size;
    return {
      fn: (samples) =>
        Promise.resolve(samples.map((s) => {
          const ids = Array.from(s.ids);
          const top = topkAtRowsRef(
            forwardRef(t, [ids]).logits,
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
  const { GpuModel } = await import("../model/gpu_model.ts");
  const t = await GpuModel.load(dir, { precision: "checkpoint" });
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
  remote: RemoteTeacher | undefined,
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
      const teacher = remote
        ? { fn: (part: Sample[]) => remote.topk(part), release: () => {} }
        : await teacherTopkFn(cfg.teacher, cfg.kd_topk, device);
      try {
        const BATCH = remote ? 4 * cfg.teacher_concurrency : 8;
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

/** Runs (or resumes) a CKD training run as configured. */
export async function runCkd(cfg: CkdConfig, opts: CkdRunOptions = {}): Promise<CkdRunResult> {
  const device = opts.device ?? "gpu";
  checkTeacher(cfg);
  const run = await Run.open(cfg, {
    name: "ckd",
    model: cfg.student,
    log: opts.log,
    onStep: opts.onStep,
    progress: opts.progress ?? { label: "ckd" },
  });
  try {
    const { samples, vocab } = await loadData(cfg, run);
    const remote = cfg.kd_ratio > 0 && isRemoteTeacher(cfg.teacher)
      ? await RemoteTeacher.connect({
        url: cfg.teacher,
        model: cfg.teacher_model!,
        k: cfg.kd_topk,
        concurrency: cfg.teacher_concurrency,
        apiKey: Deno.env.get("STAR_TEACHER_API_KEY"),
        log: run.log,
      }, run.tokenizer)
      : undefined;
    if (remote) run.log(`ckd: teacher "${cfg.teacher_model}" served at "${cfg.teacher}"`);
    const cache = cfg.kd_ratio > 0 && cfg.teacher_topk_cache
      ? await ensureCache(cfg, samples, vocab, device, run.log, remote)
      : undefined;
    const tokens = cfg.micro_train_batch_size * Math.max(...samples.map((s) => s.ids.length));
    const online = !cache && !remote;
    const { backend, release } = await loadBackend(cfg, run, device, online, tokens);
    try {
      const result = await trainLoop({
        cfg,
        run,
        rows: samples.length,
        makeBatch: async (rows) => {
          const out: CkdBatchSample[] = [];
          // a served teacher scores the batch's rows concurrently
          const served = !cache && remote ? await remote.topk(rows.map((r) => samples[r])) : [];
          for (const [i, r] of rows.entries()) {
            const s = samples[r];
            const b: CkdBatchSample = { ids: Array.from(s.ids), promptLength: s.promptLength };
            if (cache) {
              const t = await cache.read(r);
              b.teacher = { ids: t.ids, logprobs: t.logprobs };
            } else if (remote) {
              b.teacher = served[i];
            }
            out.push(b);
          }
          return out;
        },
        backend,
      });
      return { ...result, rows: samples.length, resumedFrom: run.resume?.state.step };
    } finally {
      cache?.close();
      release();
    }
  } finally {
    run.close();
  }
}

/** The trainset tokenized with the run's tokenizer, checked against the models' vocabulary. */
async function loadData(cfg: CkdConfig, run: Run): Promise<{ samples: Sample[]; vocab: number }> {
  const vocab = (await readModelConfig(cfg.student)).vocab_size;
  if (cfg.teacher && cfg.kd_ratio > 0 && !isRemoteTeacher(cfg.teacher)) {
    const tc = await readModelConfig(cfg.teacher);
    if (tc.vocab_size !== vocab) {
      throw new ConfigError(
        `The teacher "${cfg.teacher}" has a vocabulary of ${tc.vocab_size}, the student "${cfg.student}" ${vocab}; CKD needs the same vocabulary`,
      );
    }
  }
  const { samples, stats } = await loadTrainset(cfg.data, run.tokenizer, {
    promptMaxLen: cfg.prompt_max_len,
    generateMaxLen: cfg.generate_max_len,
  });
  run.checkTokens(cfg.data, samples);
  run.log(
    `ckd: ${stats.kept} rows from "${cfg.data}" (${stats.droppedLongPrompt} dropped: prompt over ` +
      `${cfg.prompt_max_len} tokens; ${stats.truncatedTargets} targets cut at ${cfg.generate_max_len}), ` +
      `${stats.promptTokens + stats.targetTokens} tokens, ${stats.targetTokens} target tokens`,
  );
  return { samples, vocab };
}

/** The engine backend or the float64 one, from the resume point (with the online teacher). */
async function loadBackend(
  cfg: CkdConfig,
  run: Run,
  device: CkdDevice,
  onlineTeacher: boolean,
  tokens: number,
): Promise<{ backend: TrainBackend<CkdBatchSample[]>; release: () => void }> {
  const adam = { betas: cfg.adam_betas, eps: cfg.adam_eps, weightDecay: cfg.weight_decay };
  const load = {
    student: run.startDir,
    teacher: onlineTeacher && cfg.kd_ratio > 0 ? cfg.teacher : undefined,
    optimizerFile: run.optimizerFile,
    ckd: ckdOptions(cfg),
  };
  if (device === "cpu") {
    const { CkdRefBackend } = await import("./ckd_ref.ts");
    return { backend: await CkdRefBackend.load({ ...load, adam }), release: () => {} };
  }
  const { CkdGpuBackend } = await import("./ckd_gpu.ts");
  const b = await CkdGpuBackend.load({
    ...load,
    adam: { ...adam, maxNorm: cfg.max_norm },
    tokens,
  });
  return { backend: b, release: () => b.release() };
}
