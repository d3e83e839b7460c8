/**
 * A float64 CKD backend for the training loop on the CPU Qwen3 (model/qwen3_ref.ts): the
 * reference the GPU trainer's loss curve is compared with, and a way to test the loop (resume,
 * skipping, checkpoints) without a GPU. Parameters and AdamW moments are kept at f32 values
 * (rounded after every update) like the engine's f32 master copies, so a checkpoint written as
 * F32 and read back resumes bit for bit. Arithmetic is float64. Slow: tiny configs only.
 */
import { qwen3ConfigJson } from "../model/config.ts";
import {
  loadQwen3Ref,
  qwen3BackwardRef,
  qwen3ForwardRef,
  type Qwen3Ref,
  type RefParams,
  zeroGrads,
} from "../model/qwen3_ref.ts";
import { qwen3WeightSpecs } from "../model/weights.ts";
import {
  type AdamWMoments,
  adamwMoments,
  adamwStepRef,
  decaysWeight,
  globalGradNormRef,
} from "./adamw_ref.ts";
import { ckdMicroBatchRef, type CkdOptions, type TeacherTopk } from "./ckd_loss_ref.ts";
import { targetRowsRef, topkAtRowsRef } from "./ckd_step_ref.ts";
import { type ModelSource, openOptimizerState, type OptimizerSource } from "./checkpoint.ts";
import type { MicroResult, TrainBackend } from "./loop.ts";
import type { CkdBatchSample } from "./gpu_backend.ts";

export interface RefAdamW {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

export class CkdRefBackend implements TrainBackend<CkdBatchSample[]> {
  readonly grads: RefParams;
  readonly moments: Record<string, AdamWMoments>;

  constructor(
    readonly student: Qwen3Ref,
    readonly teacher: Qwen3Ref | undefined,
    readonly ckd: CkdOptions & { topk: number },
    readonly adam: RefAdamW,
    moments?: Record<string, AdamWMoments>,
  ) {
    for (const p of Object.values(student.params)) roundF32(p);
    this.grads = zeroGrads(student);
    this.moments = moments ??
      Object.fromEntries(
        Object.entries(student.params).map(([n, p]) => [n, adamwMoments(p.length)]),
      );
  }

  /** Loads the student from a model directory or checkpoint (with its optimizer.safetensors). */
  static async load(o: {
    student: string;
    teacher?: string;
    optimizerFile?: string;
    ckd: CkdOptions & { topk: number };
    adam: RefAdamW;
  }): Promise<CkdRefBackend> {
    const student = await loadQwen3Ref(o.student);
    const teacher = o.teacher ? await loadQwen3Ref(o.teacher) : undefined;
    let moments: Record<string, AdamWMoments> | undefined;
    if (o.optimizerFile) {
      const opt = await openOptimizerState(o.optimizerFile);
      moments = {};
      for (const name of Object.keys(student.params)) {
        moments[name] = {
          m: Float64Array.from(await opt.read(name, "exp_avg")),
          v: Float64Array.from(await opt.read(name, "exp_avg_sq")),
        };
      }
      opt.close();
    }
    return new CkdRefBackend(student, teacher, o.ckd, o.adam, moments);
  }

  microStep(samples: CkdBatchSample[], opts: { microBatches: number }): Promise<MicroResult> {
    const V = this.student.config.vocab_size;
    const seqs = samples.map((s) => s.ids);
    const rows = targetRowsRef(samples);
    const f = qwen3ForwardRef(this.student, seqs);
    const cached = this.ckd.kdRatio > 0 && samples.every((s) => s.teacher)
      ? samples.flatMap((s) => cachedTopk(s.teacher!, this.ckd.topk))
      : undefined;
    if (this.ckd.kdRatio > 0 && !cached && !this.teacher) {
      throw new RangeError("kd_ratio > 0 needs a teacher or the samples' cached top-k");
    }
    const topk = cached ?? (this.ckd.kdRatio > 0
      ? topkAtRowsRef(
        qwen3ForwardRef(this.teacher!, seqs).logits,
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
    qwen3BackwardRef(this.student, f, dlogits, this.grads);
    return Promise.resolve({
      loss: out.loss,
      parts: { kd_fkl: out.fkl, kd_tail: out.tail, kd_ce: out.ce },
      tokens: f.N,
    });
  }

  gradNorm(): Promise<number> {
    return Promise.resolve(globalGradNormRef(Object.values(this.grads)));
  }

  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void> {
    for (const [name, p] of Object.entries(this.student.params)) {
      const g = this.grads[name];
      if (o.clipScale !== 1) { for (let i = 0; i < g.length; i++) g[i] *= o.clipScale; }
      adamwStepRef(p, {
        lr: o.lr,
        ...this.adam,
        weightDecay: decaysWeight(name) ? this.adam.weightDecay : 0,
        grad: g,
        moments: this.moments[name],
        step: o.adamStep,
      });
      roundF32(p);
      roundF32(this.moments[name].m);
      roundF32(this.moments[name].v);
    }
    return this.zeroGrads();
  }

  zeroGrads(): Promise<void> {
    for (const g of Object.values(this.grads)) g.fill(0);
    return Promise.resolve();
  }

  model(): ModelSource {
    const c = this.student.config;
    return {
      config: qwen3ConfigJson({ ...c, torch_dtype: "float32" }),
      specs: qwen3WeightSpecs(c).map((s) => ({ name: s.name, dtype: "F32", shape: s.shape })),
      bytes: (s) => new Uint8Array(Float32Array.from(this.student.params[s.name]).buffer),
    };
  }

  optimizer(adamStep: number): OptimizerSource {
    return {
      step: adamStep,
      tensors: qwen3WeightSpecs(this.student.config).map((s) => ({ name: s.name, shape: s.shape })),
      read: (name, moment) =>
        Float32Array.from(moment === "exp_avg" ? this.moments[name].m : this.moments[name].v),
    };
  }
}

/** A sample's cached top-k (P, k) as one TeacherTopk per target position. */
function cachedTopk(t: { ids: Uint32Array; logprobs: Float32Array }, k: number): TeacherTopk[] {
  return Array.from({ length: t.ids.length / k }, (_, p) => ({
    ids: t.ids.subarray(p * k, (p + 1) * k),
    logprobs: t.logprobs.subarray(p * k, (p + 1) * k),
  }));
}

function roundF32(x: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i]);
}
