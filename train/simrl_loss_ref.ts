/**
 * Float64 reference of Sim-RL's token-level loss (shared/SIMRL.md section 3; OpenRLHF
 * `models/loss.py` PolicyLoss and `models/utils.py` compute_approx_kl as STAR ran them) and its
 * gradient with respect to the current log-probs ℓ, in closed form. Per response token:
 *   ρ = exp(ℓ − ℓ_old), surr1 = ρA, surr2 = clip(ρ, 1−ε, 1+ε)A, pg = −min(surr1, surr2),
 *   clipped ⇔ surr2 < surr1, ∂pg/∂ℓ = −Aρ when not clipped, else 0;
 *   d = ℓ − ℓ_ref, k1 = d, k2 = d²/2, k3 = e^{−d} − 1 + d, each clamped to [−10, 10] with torch's
 *   rule: zero gradient where the clamp binds, the gradient passes at the bound itself.
 * A micro-batch's loss is L_b = Σ pg / T_b + β · Σ k / T_b over its T_b response tokens (every
 * response token counts, an appended EOS included); the step's loss is the mean over its M
 * micro-batches, so a token's gradient carries 1/(M·T_b). No dual clip, no entropy term.
 */

/** `kl_estimator`. */
export type KlEstimator = "k1" | "k2" | "k3";

/** OpenRLHF's clamp on every KL estimate. */
export const KL_CLAMP = 10;

/**
 * The KL estimate of one token from d = ℓ − ℓ_ref, and its derivative with respect to ℓ
 * (= with respect to d).
 */
export function klEstimateRef(d: number, estimator: KlEstimator): { value: number; grad: number } {
  let raw: number, grad: number;
  switch (estimator) {
    case "k1":
      raw = d;
      grad = 1;
      break;
    case "k2":
      raw = d * d / 2;
      grad = d;
      break;
    case "k3":
      raw = Math.exp(-d) - 1 + d;
      grad = 1 - Math.exp(-d);
      break;
    default:
      throw new RangeError(`Unknown kl_estimator "${estimator as string}"`);
  }
  if (raw > KL_CLAMP) return { value: KL_CLAMP, grad: 0 };
  if (raw < -KL_CLAMP) return { value: -KL_CLAMP, grad: 0 };
  return { value: raw, grad };
}

/**
 * The PPO clipped loss of one token from its log-ratio ℓ − ℓ_old, whether it is clipped, and
 * ∂loss/∂ℓ.
 */
export function ppoTokenRef(
  logRatio: number,
  opts: { advantage: number; epsClip: number },
): { loss: number; ratio: number; clipped: boolean; grad: number } {
  const { advantage, epsClip } = opts;
  const ratio = Math.exp(logRatio);
  const surr1 = ratio * advantage;
  const surr2 = Math.min(1 + epsClip, Math.max(1 - epsClip, ratio)) * advantage;
  const clipped = surr2 < surr1;
  return {
    loss: -Math.min(surr1, surr2),
    ratio,
    clipped,
    grad: clipped ? 0 : -advantage * ratio,
  };
}

/** The log-probs of one sample's response tokens and its advantage. */
export interface SimrlTokens {
  /** ℓ, the current policy's log-probs (T). */
  logprobs: ArrayLike<number>;
  /** ℓ_old, from the policy before the rollout batch's first update (T). */
  oldLogprobs: ArrayLike<number>;
  /** ℓ_ref, from the frozen reference (T). */
  refLogprobs: ArrayLike<number>;
  /** One advantage for every token, or one per token (T). */
  advantage: number | ArrayLike<number>;
}

/** The loss keys (`eps_clip`, `init_kl_coef`, `kl_estimator`). */
export interface SimrlLossOptions {
  epsClip: number;
  /** β; 0 drops the KL term from the loss (its metric is still reported). */
  klCoef: number;
  klEstimator: KlEstimator;
}

/** Token means over one micro-batch, as OpenRLHF logs them. */
export interface SimrlMetrics {
  /** policyLoss + β · kl. */
  loss: number;
  policyLoss: number;
  kl: number;
  /** Fraction of tokens with surr2 < surr1. */
  clipRatio: number;
  /** Mean of ℓ_old − ℓ. */
  ppoKl: number;
  /** Response tokens. */
  tokens: number;
}

export interface SimrlMicroBatchResult extends SimrlMetrics {
  /** ∂(step loss)/∂ℓ per sample and token, 1/(M·T_b) included. */
  dlogprobs: Float64Array[];
}

/**
 * One micro-batch: its token-mean losses and metrics, and the gradient of the optimizer step's
 * loss (the mean of `microBatches` micro-batch losses) with respect to every ℓ.
 */
export function simrlMicroBatchRef(
  samples: readonly SimrlTokens[],
  opts: SimrlLossOptions & { microBatches: number },
): SimrlMicroBatchResult {
  const { epsClip, klCoef, klEstimator, microBatches: M } = opts;
  let T = 0;
  samples.forEach((s, i) => {
    const n = s.logprobs.length;
    const advLength = typeof s.advantage === "number" ? n : s.advantage.length;
    if (s.oldLogprobs.length !== n || s.refLogprobs.length !== n || advLength !== n) {
      throw new RangeError(
        `Sample ${i} has ${n} log-probs, ${s.oldLogprobs.length} old, ${s.refLogprobs.length} reference and ${advLength} advantages`,
      );
    }
    T += n;
  });
  if (T === 0) throw new RangeError("A micro-batch needs at least one response token");
  let pgSum = 0, klSum = 0, clipSum = 0, ppoKlSum = 0;
  const scale = 1 / (M * T);
  const dlogprobs = samples.map((s) => {
    const d = new Float64Array(s.logprobs.length);
    for (let t = 0; t < d.length; t++) {
      const a = typeof s.advantage === "number" ? s.advantage : s.advantage[t];
      const pg = ppoTokenRef(s.logprobs[t] - s.oldLogprobs[t], { advantage: a, epsClip });
      const kl = klEstimateRef(s.logprobs[t] - s.refLogprobs[t], klEstimator);
      pgSum += pg.loss;
      klSum += kl.value;
      clipSum += pg.clipped ? 1 : 0;
      ppoKlSum += s.oldLogprobs[t] - s.logprobs[t];
      d[t] = scale * (pg.grad + klCoef * kl.grad);
    }
    return d;
  });
  const policyLoss = pgSum / T, kl = klSum / T;
  return {
    loss: policyLoss + klCoef * kl,
    policyLoss,
    kl,
    clipRatio: clipSum / T,
    ppoKl: ppoKlSum / T,
    tokens: T,
    dlogprobs,
  };
}

/** The step's metrics: the mean over its micro-batches of each token mean; tokens summed. */
export function stepMetricsRef(microBatches: readonly SimrlMetrics[]): SimrlMetrics {
  const M = microBatches.length;
  const out: SimrlMetrics = { loss: 0, policyLoss: 0, kl: 0, clipRatio: 0, ppoKl: 0, tokens: 0 };
  if (M === 0) return out;
  for (const m of microBatches) {
    out.loss += m.loss / M;
    out.policyLoss += m.policyLoss / M;
    out.kl += m.kl / M;
    out.clipRatio += m.clipRatio / M;
    out.ppoKl += m.ppoKl / M;
    out.tokens += m.tokens;
  }
  return out;
}
