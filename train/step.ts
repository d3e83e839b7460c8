/**
 * One optimizer step, the same for every trainer and backend: the micro-batches' forward and
 * backward (gradients of the mean micro-batch loss accumulate; the loss parts accumulate where
 * the model runs), one read of the step's loss parts and gradient norm, then either the clipped
 * AdamW update or, when the loss or the norm is not finite, dropped gradients and a skipped step
 * (the AdamW step count advances only on applied updates, as torch/DeepSpeed skip).
 * A backend is the engine (the CKD and Sim-RL GPU backends) or the float64 reference.
 */
import type { ModelSource, OptimizerSource } from "./checkpoint.ts";
import type { MetricsRow } from "./metrics.ts";

/** The step's means over its micro-batches, read once. */
export interface StepMetrics {
  /** Mean over micro-batches of each micro-batch's loss. */
  loss: number;
  /** The loss's parts for metrics.jsonl (kd_fkl, ..., policy_loss, kl, ...), means likewise. */
  parts: Record<string, number>;
  /** Tokens processed (prompt and response), for tokens/s. */
  tokens: number;
  /** ‖accumulated gradient‖₂ over all trained tensors, before clipping. */
  gradNorm: number;
}

/** What a trainer needs from whoever runs the model. */
export interface TrainBackend<Batch> {
  /**
   * Forward and backward of one micro-batch: adds ∂(loss / microBatches)/∂params to the
   * gradient accumulators and the micro-batch's loss parts to the step's. No readback needed.
   */
  microStep(batch: Batch, opts: { microBatches: number }): Promise<void>;
  /** The step's metrics (one readback), and a fresh start for the next step's. */
  stepMetrics(): Promise<StepMetrics>;
  /** AdamW at 1-based `adamStep` with `lr` on the gradients × clipScale, then zeroed. */
  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void>;
  /** Drops the accumulated gradients (a skipped step). */
  zeroGrads(): Promise<void>;
  /** The weights as a model directory source (checkpoints, final/). */
  model(): ModelSource;
  /** The AdamW moments; `step` is the AdamW step count. */
  optimizer(adamStep: number): OptimizerSource;
}

export interface StepResult extends StepMetrics {
  lr: number;
  /** The update was skipped (non-finite loss or gradient norm). */
  skipped: boolean;
  seconds: number;
}

/**
 * Runs one optimizer step over `micro` (its micro-batches, in order) with learning rate `lr`;
 * `adamStep` is the 1-based AdamW count this update would have.
 */
export async function optimizerStep<B>(
  backend: TrainBackend<B>,
  micro: B[],
  o: { lr: number; maxNorm: number; adamStep: number },
): Promise<StepResult> {
  const t0 = performance.now();
  for (const batch of micro) await backend.microStep(batch, { microBatches: micro.length });
  const m = await backend.stepMetrics();
  const finite = Number.isFinite(m.loss) && Number.isFinite(m.gradNorm);
  if (finite) {
    const clipScale = Math.min(1, o.maxNorm / (m.gradNorm + 1e-6));
    await backend.applyUpdate({ lr: o.lr, clipScale, adamStep: o.adamStep });
  } else {
    await backend.zeroGrads();
  }
  return { ...m, lr: o.lr, skipped: !finite, seconds: (performance.now() - t0) / 1000 };
}

/** A step's metrics.jsonl row (`step` is the 1-based count of steps done). */
export function metricsRow(step: number, r: StepResult): MetricsRow {
  const row: MetricsRow = {
    step,
    loss: r.loss,
    lr: r.lr,
    grad_norm: r.gradNorm,
    tokens: r.tokens,
    seconds: r.seconds,
    tokens_per_second: r.tokens / Math.max(r.seconds, 1e-9),
    ...r.parts,
  };
  if (r.skipped) row.skipped = true;
  return row;
}
