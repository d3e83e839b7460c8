/**
 * The run skeleton every trainer shares (CKD, Sim-RL): the resolved config written to
 * output_dir/config.yaml, the tokenizer (the `tokenizer` key's, else the model's, else the
 * built-in Qwen3 one) and the check of tokenized rows against the model's vocabulary, the resume
 * point (the latest
 * complete checkpoint), the tokenizer files copied into every model directory written,
 * metrics.jsonl (kept up to the resume step), the progress line, and checkpoints / final/.
 * A trainer reads its data, builds its backend from `run.startDir` (the checkpoint to resume
 * from, else the model to train) and calls run.step() after each optimizer step.
 */
import { join } from "node:path";
import { Tokenizer } from "../data/tokenizer.ts";
import { readModelConfig } from "../model/config.ts";
import {
  latestCheckpoint,
  type ModelSource,
  OPTIMIZER_FILE,
  type OptimizerSource,
  saveCheckpoint,
  saveFinalModel,
  type TrainerState,
} from "./checkpoint.ts";
import { ConfigError, writeResolvedConfig } from "./config.ts";
import { METRICS_FILE, type MetricsRow, MetricsWriter } from "./metrics.ts";
import { Progress } from "./progress.ts";

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

/** Progress line options (tests: a silent writer); false: none. */
export type ProgressSetting = false | {
  write?: (t: string) => void;
  tty?: boolean;
  label?: string;
};

export interface RunOptions {
  /** The trainer's name in log lines ("ckd", "simrl"). */
  name: string;
  /** The model directory being trained (`student` / `pretrain`). */
  model: string;
  /** Optimizer steps of the whole run (the progress line's total). */
  totalSteps?: number;
  log?: (line: string) => void;
  progress?: ProgressSetting;
  /** Called after each step's metrics row is written (tests stop a run here by throwing). */
  onStep?: (row: MetricsRow) => void | Promise<void>;
}

/** What a run needs from its config (CKD and Sim-RL configs have these keys). */
export interface RunConfig {
  output_dir: string;
  tokenizer?: string;
  seed: number;
  save_steps: number;
  logging_steps?: number;
}

export class Run {
  readonly tokenizer: Tokenizer;
  /** The trained model's vocabulary (config vocab_size). */
  readonly vocabSize: number;
  /** The checkpoint to resume from (weights, moments, trainer state), if any. */
  readonly resume?: { dir: string; state: TrainerState };
  /** Files copied into every model directory written. */
  readonly sideFiles: string[];
  #metrics!: MetricsWriter;
  #progress?: Progress;
  readonly log: (line: string) => void;

  private constructor(
    readonly cfg: RunConfig,
    readonly o: RunOptions,
    init: {
      tokenizer: Tokenizer;
      resume?: { dir: string; state: TrainerState };
      side: string[];
      vocab: number;
    },
  ) {
    this.tokenizer = init.tokenizer;
    this.vocabSize = init.vocab;
    this.resume = init.resume;
    this.sideFiles = init.side;
    this.log = o.log ?? ((s: string) => console.error(s));
  }

  /** Opens (or resumes) a run: config written, tokenizer checked, metrics opened. */
  static async open(cfg: RunConfig, o: RunOptions): Promise<Run> {
    await writeResolvedConfig(cfg);
    const tokDir = cfg.tokenizer ?? o.model;
    const tokenizer = await Tokenizer.load(tokDir);
    const vocab = (await readModelConfig(o.model)).vocab_size;
    const resume = await latestCheckpoint(cfg.output_dir);
    if (resume && resume.state.seed !== cfg.seed) {
      throw new ConfigError(
        `Cannot resume from "${resume.dir}": it was trained with seed ${resume.state.seed}, the config says ${cfg.seed}`,
      );
    }
    const side: string[] = [];
    for (const n of TOKENIZER_FILES) {
      try {
        if ((await Deno.stat(join(tokDir, n))).isFile) side.push(join(tokDir, n));
      } catch { /* absent */ }
    }
    const run = new Run(cfg, o, { tokenizer, resume, side, vocab });
    if (resume) run.log(`${o.name}: resuming from "${resume.dir}" (step ${resume.state.step})`);
    run.#metrics = await MetricsWriter.open(join(cfg.output_dir, METRICS_FILE), {
      resumeStep: resume?.state.step,
    });
    return run;
  }

  /**
   * Checks that tokenized rows fit the model's vocabulary: a token id the model has no row for
   * is an error naming the data file and line (a tokenizer that does not match the model).
   */
  checkTokens(file: string, rows: Iterable<{ ids: ArrayLike<number>; line: number }>): void {
    for (const r of rows) {
      for (let i = 0; i < r.ids.length; i++) {
        if (r.ids[i] >= this.vocabSize) {
          throw new ConfigError(
            `Cannot train on "${file}" line ${r.line}: token id ${r.ids[i]} is outside the ` +
              `model's vocabulary (${this.vocabSize}); give the model's "tokenizer"`,
          );
        }
      }
    }
  }

  /** The model directory to load: the resume checkpoint, else the model being trained. */
  get startDir(): string {
    return this.resume?.dir ?? this.o.model;
  }

  /** The resume checkpoint's optimizer moments, if resuming. */
  get optimizerFile(): string | undefined {
    return this.resume ? join(this.resume.dir, OPTIMIZER_FILE) : undefined;
  }

  /** Starts the progress line once the step count is known. */
  startProgress(totalSteps: number): void {
    if (this.o.progress === false) return;
    this.#progress = new Progress({
      totalSteps,
      startStep: this.resume?.state.step ?? 0,
      label: this.o.progress?.label,
      ...this.o.progress,
    });
  }

  /** Writes a step's metrics row, updates the progress line and calls onStep. */
  async step(row: MetricsRow, totalSteps: number): Promise<void> {
    await this.#metrics.write(row);
    const every = this.cfg.logging_steps ?? 1;
    if (this.#progress && (row.step % every === 0 || row.step === totalSteps)) {
      this.#progress.update({
        step: row.step,
        loss: row.loss ?? NaN,
        lr: row.lr,
        tokensPerSecond: row.tokens / Math.max(row.seconds, 1e-9),
      });
    }
    await this.o.onStep?.(row);
  }

  /** Whether `save_steps` asks for a checkpoint after `step` (the last one is always saved). */
  saveDue(step: number, totalSteps: number): boolean {
    return this.cfg.save_steps > 0 && step % this.cfg.save_steps === 0 && step < totalSteps;
  }

  /** Writes checkpoint-STEP/ (the model with the tokenizer files, moments, state). */
  checkpoint(c: { model: ModelSource; optimizer: OptimizerSource; state: TrainerState }) {
    return saveCheckpoint(this.cfg.output_dir, {
      ...c,
      model: { ...c.model, sideFiles: this.sideFiles },
    });
  }

  /** Ends the run: closes metrics and the progress line, writes final/. */
  async finish(model: ModelSource): Promise<string> {
    this.close();
    return await saveFinalModel(this.cfg.output_dir, { ...model, sideFiles: this.sideFiles });
  }

  /** Closes the metrics file and the progress line (also on failure). */
  close(): void {
    this.#progress?.done();
    this.#progress = undefined;
    try {
      this.#metrics.close();
    } catch { /* already closed */ }
  }
}
