/**
 * The Sim-RL backend on the engine: one policy model that samples the rollouts (KV-cached
 * generation), scores ℓ_old and trains, with no copy of its weights anywhere (no weight sync),
 * and a frozen reference (the starting checkpoint, in its stored dtype) for ℓ_ref. Per
 * micro-batch one recording and one submit: the policy's training forward over the packed
 * samples, the Sim-RL objective (train/simrl_objective.ts) over the completion rows only, and
 * the backward; loss parts accumulate on the GPU and come back with the gradient norm in one
 * read per optimizer step; AdamW (train/optimizer.ts) reads the clip factor on the GPU.
 * Simplifications: f32 master weights, gradients and moments; activations of the whole
 * micro-batch are kept; generation reads back each step's logits and samples on the CPU.
 * Legend: T packed tokens, N completion rows.
 */
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import { generate, type GenerateOptions, type GenerateRequest } from "../model/generate.ts";
import { GpuModel, type ModelLimits } from "../model/gpu_model.ts";
import { TokenLogprobs } from "../model/objectives.ts";
import type { ModelSource, OptimizerSource } from "./checkpoint.ts";
import { gpuModelSource } from "./ckd_gpu.ts";
import { type AdamWConfig, GpuAdamW } from "./optimizer.ts";
import {
  completionSpans,
  type SimrlBackend,
  type SimrlSample,
  type SimrlSequence,
} from "./simrl_batch.ts";
import type { SimrlLossOptions } from "./simrl_loss_ref.ts";
import { SimrlObjective } from "./simrl_objective.ts";
import type { StepMetrics } from "./step.ts";

export class SimrlGpuBackend implements SimrlBackend {
  #obj?: SimrlObjective;
  #tokens = 0;
  #fresh = true;

  private constructor(
    readonly policy: GpuModel,
    readonly reference: GpuModel,
    readonly loss: SimrlLossOptions,
    readonly adam: GpuAdamW,
    /** Most tokens per forward (the reserved plans' size). */
    readonly tokens: number,
  ) {}

  static async load(o: {
    policy: string;
    reference: string;
    optimizerFile?: string;
    loss: SimrlLossOptions;
    adam: AdamWConfig;
    limits?: ModelLimits;
    /** Most tokens of a micro-batch (and of a scoring or prefill forward): plans sized once. */
    tokens: number;
    /** Most sequences decoded together. */
    decodeBatch: number;
  }): Promise<SimrlGpuBackend> {
    const policy = await GpuModel.load(o.policy, { trainable: true, limits: o.limits });
    const reference = await GpuModel.load(o.reference, {
      precision: "checkpoint",
      limits: o.limits,
    });
    if (reference.config.vocab_size !== policy.config.vocab_size) {
      throw new RangeError(
        `The reference's vocabulary (${reference.config.vocab_size}) differs from the policy's (${policy.config.vocab_size})`,
      );
    }
    const adam = await GpuAdamW.create(policy.gpu, policy.parameters(), o.adam, {
      stateFile: o.optimizerFile,
    });
    policy.reserve({ train: o.tokens, infer: o.tokens, cached: Math.max(o.tokens, o.decodeBatch) });
    reference.reserve({ infer: o.tokens });
    return new SimrlGpuBackend(policy, reference, o.loss, adam, o.tokens);
  }

  generate(reqs: GenerateRequest[], opts: GenerateOptions) {
    return generate(this.policy, reqs, { ...opts, prefillTokens: this.tokens });
  }

  /** Packs sequences into forwards of at most `tokens` tokens and reads back ℓ per token. */
  async completionLogprobs(
    seqs: SimrlSequence[],
    which: "policy" | "reference",
  ): Promise<Float64Array[]> {
    const m = which === "policy" ? this.policy : this.reference;
    const out: Float64Array[] = [];
    const budget = Math.min(m.maxTokens(), this.tokens);
    for (let i = 0; i < seqs.length;) {
      let j = i, tokens = 0;
      while (j < seqs.length) {
        const n = seqs[j].promptIds.length + seqs[j].completionIds.length;
        if (j > i && tokens + n > budget) break;
        tokens += n;
        j++;
      }
      const part = seqs.slice(i, j);
      const { spans, targets } = completionSpans(part);
      const lp = new TokenLogprobs(m.gpu, targets.length);
      const rec = new Recorder(m.gpu, `simrl.${which}_logprobs`);
      const f = m.forward(rec, part.map((s) => [...s.promptIds, ...s.completionIds]));
      try {
        lp.write(targets);
        f.vocab([lp], spans);
        const [l] = await readMany(rec, [lp.logprobs]);
        let off = 0;
        for (const s of part) {
          out.push(Float64Array.from(l.subarray(off, off + s.completionIds.length)));
          off += s.completionIds.length;
        }
      } finally {
        f.release();
        lp.release();
      }
      i = j;
    }
    return out;
  }

  #objective(N: number): SimrlObjective {
    if (this.#obj && this.#obj.cap >= N) return this.#obj;
    const old = this.#obj;
    const next = new SimrlObjective(this.policy.gpu, Math.max(N, 2 * (old?.cap ?? 0), 64), {
      epsClip: this.loss.epsClip,
      beta: this.loss.klCoef,
      estimator: this.loss.klEstimator,
    });
    if (old) {
      // carry the step's accumulated parts over
      const rec = new Recorder(this.policy.gpu, "simrl.grow");
      rec.copy(old.acc, next.acc);
      rec.submit();
      old.release();
    }
    return this.#obj = next;
  }

  microStep(batch: SimrlSample[], opts: { microBatches: number }): Promise<void> {
    const { spans, targets } = completionSpans(batch);
    const obj = this.#objective(targets.length);
    const rec = new Recorder(this.policy.gpu, "simrl.micro");
    if (this.#fresh) obj.clearAcc(rec);
    this.#fresh = false;
    const w = 1 / (opts.microBatches * targets.length);
    obj.begin(batch.flatMap((s) =>
      s.completionIds.map((target, t) => ({
        target,
        old: s.oldLogprobs[t],
        ref: s.refLogprobs[t],
        adv: typeof s.advantage === "number" ? s.advantage : s.advantage[t],
        w,
      }))
    ));
    const f = this.policy.forward(rec, batch.map((s) => [...s.promptIds, ...s.completionIds]), {
      train: true,
    });
    f.backward(f.vocab([obj], spans), obj);
    rec.submit();
    f.release();
    this.#tokens += batch.reduce((a, s) => a + s.promptIds.length + s.completionIds.length, 0);
    return Promise.resolve();
  }

  async stepMetrics(): Promise<StepMetrics> {
    const rec = new Recorder(this.policy.gpu, "simrl.metrics");
    const obj = this.#objective(1);
    if (this.#fresh) obj.clearAcc(rec);
    this.adam.recordGradNorm(rec);
    const [acc, clip] = await readMany(rec, [obj.acc, this.adam.clip]);
    const tokens = this.#tokens;
    this.#tokens = 0;
    this.#fresh = true;
    const [policy_loss, kl, clip_ratio, ppo_kl] = Array.from(acc);
    return {
      loss: policy_loss + this.loss.klCoef * kl,
      parts: { policy_loss, kl, clip_ratio, ppo_kl },
      tokens,
      gradNorm: clip[0],
    };
  }

  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void> {
    const rec = new Recorder(this.policy.gpu, "simrl.adamw");
    this.adam.recordStep(rec, { lr: o.lr, step: o.adamStep });
    rec.submit();
    return Promise.resolve();
  }

  zeroGrads(): Promise<void> {
    const rec = new Recorder(this.policy.gpu, "simrl.zero");
    this.adam.recordZeroGrads(rec);
    rec.submit();
    return Promise.resolve();
  }

  model(): ModelSource {
    return gpuModelSource(this.policy);
  }

  optimizer(adamStep: number): OptimizerSource {
    return this.adam.state(adamStep);
  }

  release(): void {
    this.#obj?.release();
    this.adam.release();
    this.policy.release();
    this.reference.release();
  }
}
