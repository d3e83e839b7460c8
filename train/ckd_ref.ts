/**
 * A float64 CKD backend on the CPU reference model (model/ref.ts), for `--device cpu`: the
 * reference the GPU trainer's steps are compared with, and a way to run the trainer (resume,
 * skipping, checkpoints) without a GPU. Parameters and AdamW moments are kept at f32 values
 * (train/optimizer_ref.ts rounds after every update) like the engine's f32 master copies, so a
 * checkpoint written as F32 and read back resumes bit for bit. Slow: tiny configs only.
 */
import { configJson } from "../model/config.ts";
import { backwardRef, forwardRef, loadRefModel, type RefModel, zeroGrads } from "../model/ref.ts";
import { weightSpecs } from "../model/weights.ts";
import type { ModelSource, OptimizerSource } from "./checkpoint.ts";
import type { CkdBatchSample, CkdOptions } from "./ckd_batch.ts";
import { ckdMicroBatchRef, type TeacherTopk } from "./ckd_loss_ref.ts";
import { targetRowsRef, topkAtRowsRef } from "./ckd_step_ref.ts";
import type { AdamWConfig } from "./optimizer.ts";
import { globalGradNormRef, RefAdamW } from "./optimizer_ref.ts";
import type { StepMetrics, TrainBackend } from "./step.ts";

/**
 * The optimizer side of a float64 backend: gradients of the trained model, AdamW on them, and
 * the model and optimizer as checkpoint sources.
 */
export abstract class RefTrainer {
  readonly grads: Record<string, Float64Array>;

  constructor(readonly trained: RefModel, readonly adam: RefAdamW) {
    this.grads = zeroGrads(trained);
  }

  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void> {
    this.adam.step(this.grads, { lr: o.lr, clipScale: o.clipScale, step: o.adamStep });
    return this.zeroGrads();
  }

  zeroGrads(): Promise<void> {
    for (const g of Object.values(this.grads)) g.fill(0);
    return Promise.resolve();
  }

  model(): ModelSource {
    return refModelSource(this.trained);
  }

  optimizer(adamStep: number): OptimizerSource {
    return this.adam.state(adamStep, weightSpecs(this.trained.config));
  }
}

export class CkdRefBackend extends RefTrainer implements TrainBackend<CkdBatchSample[]> {
  #step = { loss: 0, parts: { kd_fkl: 0, kd_tail: 0, kd_ce: 0 }, tokens: 0 };

  constructor(
    readonly student: RefModel,
    readonly teacher: RefModel | undefined,
    readonly ckd: CkdOptions,
    adam: RefAdamW,
  ) {
    super(student, adam);
  }

  /** Loads the student from a model directory or checkpoint (with its optimizer.safetensors). */
  static async load(o: {
    student: string;
    teacher?: string;
    optimizerFile?: string;
    ckd: CkdOptions;
    adam: Omit<AdamWConfig, "maxNorm">;
  }): Promise<CkdRefBackend> {
    const student = await loadRefModel(o.student);
    const teacher = o.teacher ? await loadRefModel(o.teacher) : undefined;
    const adam = await RefAdamW.create(student.params, o.adam, { stateFile: o.optimizerFile });
    return new CkdRefBackend(student, teacher, o.ckd, adam);
  }

  microStep(samples: CkdBatchSample[], opts: { microBatches: number }): Promise<void> {
    const V = this.student.config.vocab_size;
    const seqs = samples.map((s) => s.ids);
    const rows = targetRowsRef(samples);
    const f = forwardRef(this.student, seqs);
    const cached = this.ckd.kdRatio > 0 && samples.every((s) => s.teacher)
      ? samples.flatMap((s) => cachedTopk(s.teacher!, this.ckd.topk))
      : undefined;
    if (this.ckd.kdRatio > 0 && !cached && !this.teacher) {
      throw new RangeError("kd_ratio > 0 needs a teacher or the samples' cached top-k");
    }
    const topk = cached ??
      (this.ckd.kdRatio > 0
        ? topkAtRowsRef(
          forwardRef(this.teacher!, seqs).logits,
          V,
          rows.map((r) => r.row),
          this.ckd.topk,
        )
        : undefined);
    const logits = new Float64Array(rows.length * V);
    rows.forEach((r, i) => logits.set(f.logits.subarray(r.row * V, (r.row + 1) * V), i * V));
    const out = ckdMicroBatchRef(logits, {
      ...this.ckd,
      vocab: V,
      targets: rows.map((r) => r.target),
      teacher: topk,
      microBatches: opts.microBatches,
    });
    const dlogits = new Float64Array(f.N * V);
    rows.forEach((r, i) => dlogits.set(out.dlogits.subarray(i * V, (i + 1) * V), r.row * V));
    backwardRef(this.student, f, dlogits, this.grads);
    const M = opts.microBatches, st = this.#step;
    st.loss += out.loss / M;
    st.parts.kd_fkl += out.fkl / M;
    st.parts.kd_tail += out.tail / M;
    st.parts.kd_ce += out.ce / M;
    st.tokens += f.N;
    return Promise.resolve();
  }

  stepMetrics(): Promise<StepMetrics> {
    const st = this.#step;
    this.#step = { loss: 0, parts: { kd_fkl: 0, kd_tail: 0, kd_ce: 0 }, tokens: 0 };
    return Promise.resolve({ ...st, gradNorm: globalGradNormRef(Object.values(this.grads)) });
  }
}

/** A reference model's parameters as an F32 model directory source. */
export function refModelSource(m: RefModel): ModelSource {
  const c = m.config;
  return {
    config: configJson({ ...c, torch_dtype: "float32" }),
    specs: weightSpecs(c).map((s) => ({ name: s.name, dtype: "F32", shape: s.shape })),
    bytes: (s) => new Uint8Array(Float32Array.from(m.params[s.name]).buffer),
  };
}

/** A sample's cached top-k (P, k) as one TeacherTopk per target position. */
function cachedTopk(t: { ids: Uint32Array; logprobs: Float32Array }, k: number): TeacherTopk[] {
  return Array.from({ length: t.ids.length / k }, (_, p) => ({
    ids: t.ids.subarray(p * k, (p + 1) * k),
    logprobs: t.logprobs.subarray(p * k, (p + 1) * k),
  }));
}
