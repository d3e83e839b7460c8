/**
 * The data-order driver of the trainers that step through a fixed data set (CKD): epochs of a
 * seeded order (train/data_order.ts) cut into optimizer steps of train_batch_size rows and
 * micro-batches of micro_train_batch_size, the learning-rate schedule over the step budget, and
 * each step run by the shared optimizer-step core (train/step.ts) on the run skeleton
 * (train/run.ts: metrics, progress, checkpoints every `save_steps` and at the end, final/).
 * Exact resume: the data order is a function of (seed, step), the lr of the step, and the
 * weights and AdamW moments come back from the checkpoint as they were (f32 master copies).
 * Simplifications: one process; no eval during training.
 */
import type { TrainerState } from "./checkpoint.ts";
import { DataOrder } from "./data_order.ts";
import type { Run } from "./run.ts";
import { type LrSchedule, lrSchedule, type LrSchedulerName, stepBudget } from "./schedule.ts";
import { metricsRow, optimizerStep, type TrainBackend } from "./step.ts";

export type { TrainBackend };

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
  /** The opened run (resume point, metrics, progress, checkpoints). */
  run: Run;
  /** Rows of the data set (after filtering). */
  rows: number;
  /** The micro-batch made of these rows (indices into the data set). */
  makeBatch(rows: number[]): Batch | Promise<Batch>;
  backend: TrainBackend<Batch>;
}

export interface LoopResult {
  steps: number;
  skipped: number;
  finalDir: string;
}

/** Runs the optimizer steps from the resume point (or 0) to the end of the budget. */
export async function trainLoop<Batch>(o: LoopOptions<Batch>): Promise<LoopResult> {
  const { cfg, backend, run } = o;
  const budget = stepBudget({
    samples: o.rows,
    trainBatchSize: cfg.train_batch_size,
    microTrainBatchSize: cfg.micro_train_batch_size,
    maxEpochs: cfg.max_epochs,
    maxSteps: cfg.max_steps,
  });
  const total = budget.totalSteps;
  const sched = lrSchedule({
    name: cfg.lr_scheduler,
    learningRate: cfg.learning_rate,
    totalSteps: total,
    warmupRatio: cfg.lr_warmup_ratio,
    minLrRatio: cfg.min_lr_ratio,
  });
  const order = new DataOrder(o.rows, {
    seed: cfg.seed,
    trainBatchSize: cfg.train_batch_size,
    microBatchSize: cfg.micro_train_batch_size,
  });
  const st = run.resume?.state;
  let step = st?.step ?? 0;
  let skipped = st?.skipped_steps ?? 0;
  let tokensSeen = st?.tokens_seen ?? 0;
  let lastLr = st?.lr_scheduler.last_lr ?? 0;
  const state = (): TrainerState => ({
    ...positionOf(order, step),
    step,
    seed: cfg.seed,
    lr_scheduler: schedulerState(cfg, sched, lastLr),
    skipped_steps: skipped,
    tokens_seen: tokensSeen,
  });
  const checkpoint = () =>
    run.checkpoint({
      model: backend.model(),
      optimizer: backend.optimizer(step - skipped),
      state: state(),
    });
  run.startProgress(total);
  try {
    while (step < total) {
      const micro: Batch[] = [];
      for (const rows of order.batch(step)) micro.push(await o.makeBatch(rows)); // one at a time
      const lr = sched.lr(step);
      const r = await optimizerStep(backend, micro, {
        lr,
        maxNorm: cfg.max_norm,
        adamStep: step - skipped + 1,
      });
      if (r.skipped) skipped++;
      step++;
      lastLr = lr;
      tokensSeen += r.tokens;
      await run.step(metricsRow(step, r), total);
      if (run.saveDue(step, total)) await checkpoint();
    }
  } finally {
    run.close();
  }
  // the last checkpoint makes a re-run a no-op that only rewrites final/
  if (st?.step !== step) await checkpoint();
  const finalDir = await run.finish(backend.model());
  return { steps: step, skipped, finalDir };
}

/** Where the data order stands before optimizer step `step`, as trainer_state.json keeps it. */
function positionOf(order: DataOrder, step: number): { epoch: number; data_index: number } {
  const pos = order.position(step);
  return { epoch: pos.epoch, data_index: pos.index };
}

/** The schedule as trainer_state.json keeps it. */
export function schedulerState(
  cfg: { learning_rate: number; min_lr_ratio: number },
  sched: LrSchedule,
  lastLr: number,
): TrainerState["lr_scheduler"] {
  return {
    name: sched.name,
    learning_rate: cfg.learning_rate,
    total_steps: sched.totalSteps,
    warmup_steps: sched.warmupSteps,
    min_lr_ratio: cfg.min_lr_ratio,
    last_lr: lastLr,
  };
}
