/**
 * Learning-rate schedules and the optimizer-step budget, with the semantics of HF transformers'
 * `get_scheduler` as OpenRLHF calls it:
 *   warmup steps  W = ceil(lr_warmup_ratio × total steps N)
 *   min lr        = min_lr_ratio × learning_rate (OpenRLHF passes 0.1 × lr)
 *   factor(s)     = s / max(1, W)                                 for s < W (linear warmup from 0)
 *                 = c·(1 − r) + r, c = ½(1 + cos(π · p)),
 *                   p = (s − W) / max(1, N − W), r = min_lr_ratio  afterwards (cosine_with_min_lr)
 * with `s` the 0-based index of the optimizer step: as in HF, the scheduler is stepped after the
 * optimizer, so the first update uses factor(0) (zero during warmup). `constant` is HF's: no
 * warmup at all; `constant_with_warmup` is the linear warmup followed by a flat factor of 1.
 * The budget follows OpenRLHF's SFT trainer: floor(samples / train_batch_size) steps per epoch (the
 * last partial batch of an epoch is dropped), times max_epochs, capped by max_steps.
 */

/** The schedules a config may name (`lr_scheduler`). */
export type LrSchedulerName = "constant" | "constant_with_warmup" | "cosine_with_min_lr";

/** What a schedule needs, all in optimizer steps. */
export interface LrScheduleOptions {
  name: LrSchedulerName;
  /** Peak learning rate (`learning_rate`). */
  learningRate: number;
  /** Total optimizer steps N of the run. */
  totalSteps: number;
  /** `lr_warmup_ratio`: W = ceil(ratio × N). */
  warmupRatio: number;
  /** `min_lr_ratio`: the cosine floor as a fraction of the peak. */
  minLrRatio: number;
}

/** A schedule: the learning rate of each optimizer step. */
export interface LrSchedule {
  readonly name: LrSchedulerName;
  readonly totalSteps: number;
  readonly warmupSteps: number;
  /** The multiplier of `learningRate` used by the update with 0-based index `step`. */
  factor(step: number): number;
  /** The learning rate used by the update with 0-based index `step`. */
  lr(step: number): number;
}

/** Builds the schedule; throws RangeError on a negative or non-integer step count. */
export function lrSchedule(opts: LrScheduleOptions): LrSchedule {
  const { name, learningRate, totalSteps, warmupRatio, minLrRatio } = opts;
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw new RangeError(`The total step count must be a whole number >= 0, got ${totalSteps}`);
  }
  const warmupSteps = name === "constant" ? 0 : Math.ceil(warmupRatio * totalSteps);
  const warm = (s: number) => s / Math.max(1, warmupSteps);
  let factor: (s: number) => number;
  switch (name) {
    case "constant":
      factor = () => 1;
      break;
    case "constant_with_warmup":
      factor = (s) => (s < warmupSteps ? warm(s) : 1);
      break;
    case "cosine_with_min_lr":
      factor = (s) => {
        if (s < warmupSteps) return warm(s);
        const progress = (s - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        const c = 0.5 * (1 + Math.cos(Math.PI * progress));
        return Math.max(0, c * (1 - minLrRatio) + minLrRatio);
      };
      break;
    default:
      throw new RangeError(`Unknown lr_scheduler "${name as string}"`);
  }
  return {
    name,
    totalSteps,
    warmupSteps,
    factor,
    lr: (s) => learningRate * factor(s),
  };
}

/** Counts of one run, in optimizer steps. */
export interface StepBudget {
  /** Optimizer steps in one pass over the data. */
  stepsPerEpoch: number;
  /** Micro-batches accumulated into one optimizer step. */
  accumulation: number;
  /** Optimizer steps of the run: stepsPerEpoch × maxEpochs, capped by maxSteps. */
  totalSteps: number;
}

/**
 * The step budget from the data size and the batch keys. `train_batch_size` must be a multiple
 * of `micro_train_batch_size` (OpenRLHF's rule, one process); an epoch must hold a full batch.
 */
export function stepBudget(opts: {
  samples: number;
  trainBatchSize: number;
  microTrainBatchSize: number;
  maxEpochs: number;
  maxSteps?: number;
}): StepBudget {
  const { samples, trainBatchSize, microTrainBatchSize, maxEpochs, maxSteps } = opts;
  if (trainBatchSize % microTrainBatchSize !== 0) {
    throw new RangeError(
      `"train_batch_size" (${trainBatchSize}) must be a multiple of "micro_train_batch_size" (${microTrainBatchSize})`,
    );
  }
  const stepsPerEpoch = Math.floor(samples / trainBatchSize);
  if (stepsPerEpoch === 0) {
    throw new RangeError(
      `The data has ${samples} usable rows, fewer than one batch ("train_batch_size" ${trainBatchSize})`,
    );
  }
  let totalSteps = stepsPerEpoch * maxEpochs;
  if (maxSteps !== undefined) totalSteps = Math.min(totalSteps, maxSteps);
  return { stepsPerEpoch, accumulation: trainBatchSize / microTrainBatchSize, totalSteps };
}
