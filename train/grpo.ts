/**
 * The bookkeeping of Sim-RL's GRPO as STAR ran it (shared/SIMRL.md sections 1-3), pure and in
 * float64: dynamic filtering of sample groups on their scores, the accumulation of kept groups
 * over generation batches, group advantages on the rewards, the learning-rate horizon, and the
 * seeded layout of a rollout batch's samples into optimizer steps and micro-batches.
 * OpenRLHF computes advantages in float32; here they are float64 (a ~1e-7 relative difference).
 * The layout shuffles with our SplitMix64, not torch's generator: equal in distribution only.
 */
import { SplitMix64 } from "./data_order.ts";
import { type LrSchedule, lrSchedule, type LrScheduleOptions } from "./schedule.ts";

// ---------------------------------------------------------------------------------------------
// dynamic filtering

/** `dynamic_filtering` and `dynamic_filtering_reward_range`. */
export interface DynamicFilter {
  enabled: boolean;
  range: readonly [number, number];
}

/** The margin OpenRLHF puts inside both ends of the range. */
export const FILTER_MARGIN = 1e-6;

/**
 * Whether a group of samples of one prompt is trained on. `scores` are the answer scores
 * (the reward with a format failure counted 0, not -1). Kept iff
 * `lo + 1e-6 < mean < hi − 1e-6` and `max − min > 0` (STAR's `dynamic_filtering_min_diff 0`);
 * every group is kept when filtering is off. The mean is summed left to right, as Python's sum.
 */
export function groupPasses(scores: readonly number[], filter: DynamicFilter): boolean {
  if (!filter.enabled) return true;
  if (scores.length === 0) return false;
  let sum = 0, min = Infinity, max = -Infinity;
  for (const s of scores) {
    sum += s;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  const mean = sum / scores.length;
  const [lo, hi] = filter.range;
  return lo + FILTER_MARGIN < mean && mean < hi - FILTER_MARGIN && max - min > 0;
}

/** What became of a group: trained on, dropped by the filter, or passed but over the batch. */
export type GroupFate = "kept" | "filtered" | "surplus";

/**
 * The groups of one rollout batch, gathered from successive generation batches until
 * `rolloutBatchSize` have passed the filter (OpenRLHF `ppo_trainer.py`): groups that pass after
 * the batch is full are surplus and dropped. Use one instance per rollout batch; an instance
 * still short when the episode's prompts run out is discarded (STAR drops that remainder).
 */
export class KeptGroups<G> {
  #kept: G[] = [];
  #seen = 0;
  #passed = 0;

  constructor(
    readonly opts: {
      rolloutBatchSize: number;
      filter: DynamicFilter;
      /** The answer scores of a group's samples. */
      scores: (group: G) => readonly number[];
    },
  ) {
    if (!Number.isInteger(opts.rolloutBatchSize) || opts.rolloutBatchSize < 1) {
      throw new RangeError(`rollout_batch_size must be >= 1, got ${opts.rolloutBatchSize}`);
    }
  }

  /** Adds one generation batch's groups in order; returns each group's fate. */
  add(groups: readonly G[]): GroupFate[] {
    return groups.map((g) => {
      this.#seen++;
      if (!groupPasses(this.opts.scores(g), this.opts.filter)) return "filtered";
      this.#passed++;
      if (this.full) return "surplus";
      this.#kept.push(g);
      return "kept";
    });
  }

  /** True once `rolloutBatchSize` groups are kept. */
  get full(): boolean {
    return this.#kept.length >= this.opts.rolloutBatchSize;
  }

  /** The kept groups, in the order they came (at most `rolloutBatchSize`). */
  get kept(): readonly G[] {
    return this.#kept;
  }

  /** Groups added so far (the `groups` metric). */
  get seen(): number {
    return this.#seen;
  }

  /** Groups that passed the filter, surplus included. */
  get passed(): number {
    return this.#passed;
  }
}

// ---------------------------------------------------------------------------------------------
// advantages

/** `advantage_estimator`. */
export type AdvantageEstimator = "group_norm" | "dr_grpo";

/** Added to the group's standard deviation (outside the square root). */
export const STD_EPS = 1e-9;
/** OpenRLHF's `reward_clip_range`, applied to the normalised advantage. */
export const ADVANTAGE_CLIP = 10;

/**
 * The advantages of one group from its rewards (format failure -1): `group_norm`
 * (r − mean) / (std + 1e-9) with the unbiased (n − 1) std, `dr_grpo` r − mean; then clamped to
 * [−10, 10]. Every response token of a sample gets its sample's advantage (γ = 1).
 */
export function groupAdvantages(
  rewards: readonly number[],
  estimator: AdvantageEstimator,
): Float64Array {
  const n = rewards.length;
  if (n === 0) return new Float64Array(0);
  let sum = 0;
  for (const r of rewards) sum += r;
  const mean = sum / n;
  let div = 1;
  if (estimator === "group_norm") {
    if (n < 2) throw new RangeError("group_norm needs at least 2 samples per prompt");
    let ss = 0;
    for (const r of rewards) ss += (r - mean) * (r - mean);
    div = Math.sqrt(ss / (n - 1)) + STD_EPS;
  } else if (estimator !== "dr_grpo") {
    throw new RangeError(`Unknown advantage_estimator "${estimator as string}"`);
  }
  return Float64Array.from(
    rewards,
    (r) => Math.min(ADVANTAGE_CLIP, Math.max(-ADVANTAGE_CLIP, (r - mean) / div)),
  );
}

/** Advantages of consecutive groups of `n` samples (a rollout batch, group-major). */
export function rolloutAdvantages(
  rewards: readonly number[],
  opts: { n: number; estimator: AdvantageEstimator },
): Float64Array {
  const { n, estimator } = opts;
  if (!Number.isInteger(n) || n < 1 || rewards.length % n !== 0) {
    throw new RangeError(`${rewards.length} rewards do not split into groups of ${n}`);
  }
  const out = new Float64Array(rewards.length);
  for (let o = 0; o < rewards.length; o += n) {
    out.set(groupAdvantages(rewards.slice(o, o + n), estimator), o);
  }
  return out;
}

/**
 * Per-token advantages when the KL goes into the reward instead of the loss
 * (`use_kl_loss: false`, OpenRLHF `compute_reward` + `get_cumulative_returns` with γ = 1):
 * token t gets A − β·Σ_{t' ≥ t} kl_{t'}, kl the clamped estimate of (ℓ_old − ℓ_ref) per token.
 */
export function klPenaltyAdvantages(
  kl: ArrayLike<number>,
  opts: { advantage: number; klCoef: number },
): Float64Array {
  const { advantage, klCoef } = opts;
  const out = new Float64Array(kl.length);
  let tail = 0;
  for (let t = kl.length - 1; t >= 0; t--) {
    tail += -klCoef * kl[t];
    out[t] = advantage + tail;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// schedule horizon and step counts

/** The keys that size a Sim-RL run. */
export interface SimrlRunSize {
  /** Prompts of the training set (after skipping the unusable ones). */
  prompts: number;
  nSamplesPerPrompt: number;
  trainBatchSize: number;
  numEpisodes: number;
  maxEpochs: number;
}

/**
 * The LR horizon T = ⌊prompts·n / train_batch_size⌋ · num_episodes · max_epochs
 * (`ppo_trainer.py` max_steps). It counts unfiltered samples, so with dynamic filtering fewer
 * steps happen and the cosine stops early (SIMRL.md 4.3, kept as STAR ran it).
 */
export function simrlTotalSteps(o: SimrlRunSize): number {
  for (const k of ["prompts", "nSamplesPerPrompt", "trainBatchSize", "numEpisodes", "maxEpochs"]) {
    const v = o[k as keyof SimrlRunSize], least = k === "prompts" ? 0 : 1;
    if (!Number.isInteger(v) || v < least) {
      throw new RangeError(`${k} must be a whole number >= ${least}, got ${v}`);
    }
  }
  const T = Math.floor(o.prompts * o.nSamplesPerPrompt / o.trainBatchSize) * o.numEpisodes *
    o.maxEpochs;
  if (T === 0) {
    throw new RangeError(
      `${o.prompts} prompts × ${o.nSamplesPerPrompt} samples are fewer than one train_batch_size (${o.trainBatchSize})`,
    );
  }
  return T;
}

/**
 * The schedule of a Sim-RL run: lr(k) for the update after k optimizer steps (global, across
 * rollout batches), over simrlTotalSteps() with W = ⌈warmup_ratio · T⌉. λ(0) = 0: the first
 * update has lr 0 but still feeds Adam's moments.
 */
export function simrlLrSchedule(
  o: SimrlRunSize & Omit<LrScheduleOptions, "totalSteps">,
): LrSchedule {
  return lrSchedule({
    name: o.name,
    learningRate: o.learningRate,
    warmupRatio: o.warmupRatio,
    minLrRatio: o.minLrRatio,
    totalSteps: simrlTotalSteps(o),
  });
}

/** The batch keys that cut a rollout batch into optimizer steps. */
export interface StepShape {
  /** Samples of the rollout batch: rollout_batch_size × n_samples_per_prompt. */
  samples: number;
  trainBatchSize: number;
  microTrainBatchSize: number;
  maxEpochs: number;
  /**
   * Data-parallel ranks emulated (default 1). STAR ran 8: each rank shuffles only its own
   * contiguous slice of the samples, so micro-batches never pair samples across slices.
   */
  ranks?: number;
}

/** Throws unless the samples cut into whole steps and micro-batches (per rank). */
function checkShape(o: StepShape): { ranks: number; perRank: number; accumulation: number } {
  const { samples, trainBatchSize: tbs, microTrainBatchSize: mbs, maxEpochs } = o;
  const ranks = o.ranks ?? 1;
  for (const [k, v] of Object.entries({ samples, tbs, mbs, maxEpochs, ranks })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be >= 1, got ${v}`);
  }
  if (tbs % (mbs * ranks) !== 0) {
    throw new RangeError(
      `train_batch_size (${tbs}) must be a multiple of micro_train_batch_size (${mbs}) × ranks (${ranks})`,
    );
  }
  if (samples % tbs !== 0) {
    throw new RangeError(
      `A rollout batch of ${samples} samples does not split into steps of train_batch_size ${tbs}`,
    );
  }
  return { ranks, perRank: samples / ranks, accumulation: tbs / (mbs * ranks) };
}

/** Optimizer steps per rollout batch: samples / train_batch_size × max_epochs. */
export function stepsPerRolloutBatch(o: StepShape): number {
  checkShape(o);
  return (o.samples / o.trainBatchSize) * o.maxEpochs;
}

// ---------------------------------------------------------------------------------------------
// layout into optimizer steps and micro-batches

/** Steps of one rollout batch: `layout[step][microBatch]` = sample indices (0-based). */
export type TrainLayout = number[][][];

const LAYOUT_TAG = 0x53494d524c4f5554n; // "SIMRLOUT"

/** The generator of one (rollout batch, epoch, rank), from the run seed alone. */
function layoutRng(seed: number, rolloutBatch: number, epoch: number, rank: number): SplitMix64 {
  let h = BigInt.asUintN(64, BigInt(seed)) ^ LAYOUT_TAG;
  for (const x of [rolloutBatch, epoch, rank]) h = new SplitMix64(h ^ BigInt(x)).next();
  return new SplitMix64(h);
}

/**
 * The seeded layout of a rollout batch (OpenRLHF `ppo_actor.py` + DeepSpeed accumulation):
 * per epoch and per rank, a Fisher-Yates shuffle of that rank's contiguous slice of the samples,
 * cut into micro-batches of `microTrainBatchSize`; step k of an epoch takes micro-batches
 * k·G … k·G+G−1 of every rank (G = train_batch_size / (micro × ranks)), numbered rank-major.
 * Steps of later epochs follow those of earlier ones. Depends only on (seed, rolloutBatch).
 */
export function trainLayout(
  o: StepShape & { seed: number; rolloutBatch: number },
): TrainLayout {
  const { ranks, perRank, accumulation: G } = checkShape(o);
  const mbs = o.microTrainBatchSize;
  const stepsPerEpoch = o.samples / o.trainBatchSize;
  const layout: TrainLayout = [];
  for (let epoch = 0; epoch < o.maxEpochs; epoch++) {
    const shards = Array.from({ length: ranks }, (_, r) => {
      const order = Array.from({ length: perRank }, (_, i) => r * perRank + i);
      const rng = layoutRng(o.seed, o.rolloutBatch, epoch, r);
      for (let i = perRank - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      return order;
    });
    for (let k = 0; k < stepsPerEpoch; k++) {
      const step: number[][] = [];
      for (const order of shards) {
        for (let j = 0; j < G; j++) {
          const start = (k * G + j) * mbs;
          step.push(order.slice(start, start + mbs));
        }
      }
      layout.push(step);
    }
  }
  return layout;
}

/** Where a sample is trained: its 0-based step within the rollout batch and micro-batch. */
export interface SampleSlot {
  step: number;
  microBatch: number;
}

/** Each sample's slots (one per epoch), in step order: the inverse of the layout. */
export function sampleSlots(layout: TrainLayout, samples: number): SampleSlot[][] {
  const slots: SampleSlot[][] = Array.from({ length: samples }, () => []);
  layout.forEach((mbs, step) =>
    mbs.forEach((mb, microBatch) => {
      for (const i of mb) {
        if (!Number.isInteger(i) || i < 0 || i >= samples) {
          throw new RangeError(`Layout names sample ${i}, outside 0..${samples - 1}`);
        }
        slots[i].push({ step, microBatch });
      }
    })
  );
  return slots;
}
