/**
 * The Sim-RL backend on the float64 CPU reference (`--device cpu`, tiny models only): the same
 * trainer on model/ref.ts, with the oracle's micro-batch gradient (train/simrl_ref.ts), the
 * float64 AdamW (parameters and moments rounded to f32 after each update, like the engine's
 * master copies, so checkpoints resume bit for bit) and sampling that picks tokens as the
 * engine does (model/sampling.ts, the same random stream per (seed, example, sample)).
 */
import type { GenerateOptions, GenerateRequest, Generation } from "../model/generate.ts";
import { generateRef, loadRefModel, type RefModel } from "../model/ref.ts";
import { sampleSeed } from "../model/sampling.ts";
import { RefTrainer } from "./ckd_ref.ts";
import type { AdamWConfig } from "./optimizer.ts";
import { globalGradNormRef, RefAdamW } from "./optimizer_ref.ts";
import type { SimrlBackend, SimrlSample, SimrlSequence } from "./simrl_batch.ts";
import { type SimrlLossOptions, stepMetricsRef } from "./simrl_loss_ref.ts";
import type { SimrlMetrics } from "./simrl_loss_ref.ts";
import { completionLogprobsRef, simrlMicroBatchGradRef } from "./simrl_ref.ts";
import type { StepMetrics } from "./step.ts";

export class SimrlCpuBackend extends RefTrainer implements SimrlBackend {
  #metrics: SimrlMetrics[] = [];
  #tokens = 0;

  private constructor(
    readonly policy: RefModel,
    readonly reference: RefModel,
    readonly loss: SimrlLossOptions,
    adam: RefAdamW,
  ) {
    super(policy, adam);
  }

  static async load(o: {
    policy: string;
    reference: string;
    optimizerFile?: string;
    loss: SimrlLossOptions;
    adam: Omit<AdamWConfig, "maxNorm">;
  }): Promise<SimrlCpuBackend> {
    const policy = await loadRefModel(o.policy);
    const reference = await loadRefModel(o.reference);
    const adam = await RefAdamW.create(policy.params, o.adam, { stateFile: o.optimizerFile });
    return new SimrlCpuBackend(policy, reference, o.loss, adam);
  }

  generate(reqs: GenerateRequest[], o: GenerateOptions): Promise<Generation[]> {
    const sampling = { temperature: o.temperature ?? 1, topP: o.topP ?? 1, topK: o.topK ?? 0 };
    return Promise.resolve(reqs.map((r, j) =>
      generateRef(this.policy, r.prompt, {
        maxNewTokens: o.maxNewTokens,
        stopIds: o.stopIds,
        sampling,
        stream: sampleSeed(o.seed ?? 0, r.example ?? j, r.sample ?? 0),
      })
    ));
  }

  completionLogprobs(seqs: SimrlSequence[], which: "policy" | "reference") {
    return Promise.resolve(
      completionLogprobsRef(which === "policy" ? this.policy : this.reference, seqs),
    );
  }

  microStep(batch: SimrlSample[], opts: { microBatches: number }): Promise<void> {
    const r = simrlMicroBatchGradRef(
      this.policy,
      batch,
      { ...this.loss, microBatches: opts.microBatches },
      this.grads,
    );
    this.#metrics.push(r.metrics);
    this.#tokens += batch.reduce((a, s) => a + s.promptIds.length + s.completionIds.length, 0);
    return Promise.resolve();
  }

  stepMetrics(): Promise<StepMetrics> {
    const m = stepMetricsRef(this.#metrics);
    const tokens = this.#tokens;
    this.#metrics = [];
    this.#tokens = 0;
    return Promise.resolve({
      loss: m.loss,
      parts: { policy_loss: m.policyLoss, kl: m.kl, clip_ratio: m.clipRatio, ppo_kl: m.ppoKl },
      tokens,
      gradNorm: globalGradNormRef(Object.values(this.grads)),
    });
  }

  release(): void {}
}
