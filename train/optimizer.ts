/**
 * The optimizer every trainer uses on the engine: AdamW with f32 moments for every trained
 * tensor, the global gradient-norm clip computed on the GPU (partial sums per tensor shard, then
 * one finishing pass writing (norm, clip factor) into a two-float tensor that the AdamW kernel
 * reads, so clipping needs no readback), OpenRLHF's no-decay rule for norms and biases, and the
 * moments as a checkpoint source (optimizer.safetensors) and back. The float64 twin is
 * train/optimizer_ref.ts; the per-element formulas are engine/ops/adamw.ts.
 * Simplification: the clip factor is min(1, max_norm / (‖g‖ + 1e-6)) (torch's; DeepSpeed's
 * g / max(1, (‖g‖ + 1e-6) / max_norm) is the same number).
 */
import type { Gpu } from "../engine/device.ts";
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import {
  createTensor,
  releaseTensor,
  rowChunks,
  type Tensor,
  writeTensor,
} from "../engine/tensor.ts";
import {
  adamwStep,
  GRAD_NORM_SLOTS,
  gradNormFinish,
  gradNormPartial,
} from "../engine/ops/adamw.ts";
import type { OptimizerSource } from "./checkpoint.ts";
import { openOptimizerState } from "./checkpoint.ts";

/** AdamW and clipping settings (config keys adam_betas, adam_eps, weight_decay, max_norm). */
export interface AdamWConfig {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  maxNorm: number;
}

/** Name fragments OpenRLHF exempts from weight decay (biases and every norm weight). */
const NO_DECAY = ["bias", "layer_norm.weight", "layernorm.weight", "norm.weight", "ln_f.weight"];

/**
 * Whether a parameter (HF tensor name) gets weight decay: OpenRLHF's grouping, under which every
 * norm (`input_layernorm`, `post_attention_layernorm`, `q_norm`, `k_norm`, `model.norm`) and
 * every bias is exempt and every projection and embedding decays.
 */
export function decaysWeight(name: string): boolean {
  return !NO_DECAY.some((s) => name.includes(s));
}

/** A trained tensor and its gradient (a model's parameters()). */
export interface Param {
  name: string;
  w: Tensor;
  g: Tensor;
}

export class GpuAdamW {
  readonly #m = new Map<string, Tensor>();
  readonly #v = new Map<string, Tensor>();
  /** (2): the gradient norm and the clip factor, after recordGradNorm. */
  readonly clip: Tensor;
  readonly #partials: Tensor;
  readonly #slots: number;

  private constructor(readonly gpu: Gpu, readonly params: Param[], readonly cfg: AdamWConfig) {
    let slots = 0;
    for (const p of params) {
      for (const s of this.#shards(p.g)) {
        slots += Math.max(1, Math.min(GRAD_NORM_SLOTS, Math.ceil(s.numel / 256)));
      }
    }
    this.#slots = slots;
    this.#partials = createTensor(gpu, { shape: [slots], dtype: "f32", label: "adamw.partials" });
    this.clip = createTensor(gpu, { shape: [2], dtype: "f32", label: "adamw.clip" });
    const rec = new Recorder(gpu, "adamw.init");
    for (const p of params) {
      for (const [map, moment] of [[this.#m, "exp_avg"], [this.#v, "exp_avg_sq"]] as const) {
        const t = createTensor(gpu, {
          shape: p.w.shape,
          dtype: "f32",
          label: `${moment}.${p.name}`,
          chunked: true,
        });
        rec.clear(t);
        map.set(p.name, t);
      }
    }
    rec.submit();
  }

  /** Zeroed moments for `params`, or those of a checkpoint's optimizer.safetensors. */
  static async create(
    gpu: Gpu,
    params: Param[],
    cfg: AdamWConfig,
    opts: { stateFile?: string } = {},
  ): Promise<GpuAdamW> {
    const o = new GpuAdamW(gpu, params, cfg);
    if (opts.stateFile) {
      const st = await openOptimizerState(opts.stateFile);
      try {
        for (const p of params) {
          writeTensor(gpu, o.#m.get(p.name)!, await st.read(p.name, "exp_avg"));
          writeTensor(gpu, o.#v.get(p.name)!, await st.read(p.name, "exp_avg_sq"));
        }
      } finally {
        st.close();
      }
    }
    return o;
  }

  /** Row shards of a tensor that each fit one binding. */
  #shards(t: Tensor): Tensor[] {
    return t.byteSize > this.gpu.limits.maxStorageBufferBindingSize ? rowChunks(this.gpu, t) : [t];
  }

  /** Records the global norm of the accumulated gradients into `clip` (norm, factor). */
  recordGradNorm(rec: Recorder): void {
    let slot = 0;
    for (const p of this.params) {
      slot = gradNormPartial(rec, { x: this.#shards(p.g), partials: this.#partials, slot });
    }
    if (slot !== this.#slots) throw new Error("Gradient-norm slots miscounted");
    gradNormFinish(rec, {
      clip: this.clip,
      partials: this.#partials,
      count: slot,
      maxNorm: this.cfg.maxNorm,
    });
  }

  /** The gradient norm (records the norm pass and reads it back). */
  async gradNorm(): Promise<number> {
    const rec = new Recorder(this.gpu, "adamw.grad_norm");
    this.recordGradNorm(rec);
    return (await readMany(rec, [this.clip]))[0][0];
  }

  /**
   * Records AdamW at 1-based `step` with `lr` on the clipped gradients (the factor in `clip`,
   * from recordGradNorm), then zeroes the gradients.
   */
  recordStep(rec: Recorder, o: { lr: number; step: number }): void {
    for (const p of this.params) {
      adamwStep(rec, {
        param: this.#shards(p.w),
        grad: this.#shards(p.g),
        m: this.#shards(this.#m.get(p.name)!),
        v: this.#shards(this.#v.get(p.name)!),
        clip: this.clip,
        lr: o.lr,
        beta1: this.cfg.betas[0],
        beta2: this.cfg.betas[1],
        eps: this.cfg.eps,
        weightDecay: decaysWeight(p.name) ? this.cfg.weightDecay : 0,
        step: o.step,
      });
    }
    this.recordZeroGrads(rec);
  }

  recordZeroGrads(rec: Recorder): void {
    for (const p of this.params) rec.clear(p.g);
  }

  /** The moments as a checkpoint source; `step` is the AdamW step count. */
  state(step: number): OptimizerSource {
    return {
      step,
      tensors: this.params.map((p) => ({ name: p.name, shape: p.w.shape })),
      read: async (name, moment) =>
        (await readMany(new Recorder(this.gpu), [
          (moment === "exp_avg" ? this.#m : this.#v).get(name)!,
        ]))[0] as Float32Array,
    };
  }

  release(): void {
    for (const t of [...this.#m.values(), ...this.#v.values(), this.clip, this.#partials]) {
      releaseTensor(this.gpu, t);
    }
  }
}
