/**
 * The optimizer-step loop shared by the trainers, independent of how the model runs: a
 * `TrainBackend` (the GPU engine, or the float64 reference of train/ref_backend.ts) does the
 * micro-batch forward/backward and the AdamW update; this loop owns the data order, gradient
 * accumulation (micro-batch losses averaged), the schedule, global-norm clipping, skipping (and
 * counting) a step whose loss or gradient norm is not finite, metrics.jsonl, the progress line,
 * checkpoints every `save_steps` and at the end, `final/`, and resume from the latest checkpoint.
 * Exact resume: the data order is a function of (seed, step), the lr of the step, and the
 * weights and AdamW moments come back from the checkpoint as they were (f32 master copies).
 * Simplifications: one process; no eval during training; the AdamW step count advances only on
 * applied updates (torch/DeepSpeed skip semantics).
 */
import { join } from "node:path";
import {
  latestCheckpoint,
  type ModelSource,
  type OptimizerSource,
  saveCheckpoint,
  saveFinalModel,
  type TrainerState,
} from "./checkpoint.ts";
import { DataOrder } from "./data_order.ts";
import { METRICS_FILE, type MetricsRow, MetricsWriter } from "./metrics.ts";
import { Progress } from "./progress.ts";
import { lrSchedule, type LrSchedulerName, stepBudget } from "./schedule.ts";

/** One micro-batch's result: means over its loss tokens. */
export interface MicroResult {
  loss: number;
  /** Loss parts for metrics (kd_fkl, kd_tail, kd_ce, ...), means over the loss tokens. */
  parts: Record<string, number>;
  /** Tokens processed (prompt and targets), for tokens/s. */
  tokens: number;
}

/** What the loop needs from whoever runs the model. */
export interface TrainBackend<Batch> {
  /**
   * Forward and backward of one micro-batch; adds ∂(loss / microBatches)/∂params to the
   * gradient accumulators (so a step's gradient is that of the mean micro-batch loss).
   */
  microStep(batch: Batch, opts: { microBatches: number }): Promise<MicroResult>;
  /** ‖accumulated gradient‖₂ over all trained tensors. */
  gradNorm(): Promise<number>;
  /** Gradients × clipScale, AdamW at 1-based `adamStep` with `lr`, then zeroed accumulators. */
  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void>;
  /** Drops the accumulated gradients (a skipped step). */
  zeroGrads(): Promise<void>;
  /** The weights as a model directory source (checkpoints, final/). */
  model(): ModelSource;
  /** The AdamW moments; `step` is the AdamW step count. */
  optimizer(adamStep: number): OptimizerSource;
}

/** The config keys the loop reads (a CKD or Sim-RL config has them all). */
export interface LoopConfig {
  output_dir: string;
  seed: number;
  max_epochs: number;
  max_steps?: number;
  micro_train_batch_size: number;
  train_batch_size: number;
  learning_rate: number;
  lr_scheduler: LrSchedulerName;
  lr_warmup_ratio: number;
  min_lr_ratio: number;
  max_norm: number;
  save_steps: number;
  logging_steps?: number;
}

export interface LoopOptions<Batch> {
  cfg: LoopConfig;
  /** Rows of the data set (after filtering). */
  rows: number;
  /** The micro-batch made of these rows (indices into the data set). */
  makeBatch(rows: number[]): Batch | Promise<Batch>;
  backend: TrainBackend<Batch>;
  /** The checkpoint the backend was loaded from (weights and moments), from resumePoint(). */
  resume?: { dir: string; state: TrainerState };
  /** Progress line options (tests: a silent writer); false: none. */
  progress?: false | { write?: (t: string) => void; tty?: boolean; label?: string };
  /** Called after each step's metrics row is written (tests stop a run here by throwing). */
  onStep?: (row: MetricsRow) => void | Promise<void>;
}

/** Where a run starts: the latest complete checkpoint of output_dir, if any. */
export function resumePoint(
  outputDir: string,
): Promise<{ dir: string; state: TrainerState } | undefined> {
  return latestCheckpoint(outputDir);
}

export interface LoopResult {
  steps: number;
  skipped: number;
  finalDir: string;
}

/** Runs the optimizer steps from the resume point (or 0) to the end of the budget. */
export async function trainLoop<Batch>(o: LoopOptions<Batch>): Promise<LoopResult> {
  const { cfg, backend } = o;
  const budget = stepBudget({
    samples: o.rows,
    trainBatchSize: cfg.train_batch_size,
    microTrainBatchSize: cfg.micro_train_batch_size,
    maxEpochs: cfg.max_epochs,
    maxSteps: cfg.max_steps,
  });
  const sched = lrSchedule({
    name: cfg.lr_scheduler,
    learningRate: cfg.learning_rate,
    totalSteps: budget.totalSteps,
    warmupRatio: cfg.lr_warmup_ratio,
    minLrRatio: cfg.min_lr_ratio,
  });
  const order = new DataOrder(o.rows, {
    seed: cfg.seed,
    trainBatchSize: cfg.train_batch_size,
    microBatchSize: cfg.micro_train_batch_size,
  });
  const st = o.resume?.state;
  if (st && st.seed !== cfg.seed) {
    throw new Error(
      `Cannot resume from "${
        o.resume!.dir
      }": it was trained with seed ${st.seed}, the config says ${cfg.seed}`,
    );
  }
  let step = st?.step ?? 0;
  let skipped = st?.skipped_steps ?? 0;
  let tokensSeen = st?.tokens_seen ?? 0;
  let lastLr = st?.lr_scheduler.last_lr ?? 0;
  await Deno.mkdir(cfg.output_dir, { recursive: true });
  const metrics = await MetricsWriter.open(join(cfg.output_dir, METRICS_FILE), {
    resumeStep: st ? step : undefined,
  });
  const progress = o.progress === false ? undefined : new Progress({
    totalSteps: budget.totalSteps,
    startStep: step,
    ...o.progress,
  });
  const state = (): TrainerState => {
    const pos = order.position(step);
    return {
      step,
      epoch: pos.epoch,
      data_index: pos.index,
      seed: cfg.seed,
      lr_scheduler: {
        name: sched.name,
        learning_rate: cfg.learning_rate,
        total_steps: budget.totalSteps,
        warmup_steps: sched.warmupSteps,
        min_lr_ratio: cfg.min_lr_ratio,
        last_lr: lastLr,
      },
      skipped_steps: skipped,
      tokens_seen: tokensSeen,
    };
  };
  const checkpoint = () =>
    saveCheckpoint(cfg.output_dir, {
      model: backend.model(),
      optimizer: backend.optimizer(step - skipped),
      state: state(),
    });
  try {
    while (step < budget.totalSteps) {
      const t0 = performance.now();
      const micro = order.batch(step);
      let loss = 0, tokens = 0;
      const parts: Record<string, number> = {};
      for (const rows of micro) {
        const r = await backend.microStep(await o.makeBatch(rows), { microBatches: micro.length });
        loss += r.loss / micro.length;
        tokens += r.tokens;
        for (const [k, v] of Object.entries(r.parts)) parts[k] = (parts[k] ?? 0) + v / micro.length;
      }
      const norm = await backend.gradNorm();
      const lr = sched.lr(step);
      const finite = Number.isFinite(loss) && Number.isFinite(norm);
      if (finite) {
        const clipScale = Math.min(1, cfg.max_norm / (norm + 1e-6));
        await backend.applyUpdate({ lr, clipScale, adamStep: step - skipped + 1 });
      } else {
        await backend.zeroGrads();
        skipped++;
      }
      step++;
      lastLr = lr;
      tokensSeen += tokens;
      const seconds = (performance.now() - t0) / 1000;
      const tokensPerSecond = tokens / Math.max(seconds, 1e-9);
      const row: MetricsRow = {
        step,
        loss,
        lr,
        grad_norm: norm,
        tokens,
        seconds,
        tokens_per_second: tokensPerSecond,
        ...parts,
      };
      if (!finite) row.skipped = true;
      await metrics.write(row);
      if (progress && (step % (cfg.logging_steps ?? 1) === 0 || step === budget.totalSteps)) {
        progress.update({ step, loss, lr, tokensPerSecond });
      }
      await o.onStep?.(row);
      if (cfg.save_steps > 0 && step % cfg.save_steps === 0 && step < budget.totalSteps) {
        await checkpoint();
      }
    }
  } finally {
    progress?.done();
    metrics.close();
  }
  // the last checkpoint makes a re-run a no-op that only rewrites final/
  if (st?.step !== step) await checkpoint();
  const finalDir = await saveFinalModel(cfg.output_dir, backend.model());
  return { steps: step, skipped, finalDir };
}
