/**
 * The CKD backend on the engine. Per micro-batch one recording and one submit: the frozen
 * teacher's forward (its linear weights in the checkpoint's dtype: BF16 stays BF16) and its
 * top-k log-probs at the target rows (a TopK objective writing straight into the CKD loss's
 * inputs) or, offline, the cached top-k uploaded; the student's forward, the CKD objective
 * (train/ckd_objective.ts) over its target rows, and the backward. Loss parts accumulate on the
 * GPU across the step's micro-batches; the parts and the gradient norm come back in one read
 * per optimizer step; AdamW (train/optimizer.ts) reads the clip factor on the GPU.
 * Only target rows go through the LM heads (a tool-calling prompt is most of a sample).
 * Simplifications: f32 master weights, gradients and moments throughout (no mixed precision);
 * activations for the whole micro-batch are kept (no recomputation).
 * Legend: T packed tokens, N target rows, k teacher top-k, m student top-m.
 */
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import { writeTensor } from "../engine/tensor.ts";
import { configJson } from "../model/config.ts";
import { GpuModel, type ModelLimits } from "../model/gpu_model.ts";
import { TopK } from "../model/objectives.ts";
import { weightSpecs } from "../model/weights.ts";
import type { ModelSource, OptimizerSource } from "./checkpoint.ts";
import { type CkdBatchSample, type CkdOptions, targetSpans } from "./ckd_batch.ts";
import { CkdObjective, KD_PARTS } from "./ckd_objective.ts";
import { type AdamWConfig, GpuAdamW } from "./optimizer.ts";
import type { StepMetrics, TrainBackend } from "./step.ts";

/** The step's parts as metrics.jsonl names them. */
function partsOf(acc: ArrayLike<number>, scale = 1) {
  const a = (name: (typeof KD_PARTS)[number]) => acc[KD_PARTS.indexOf(name)] * scale;
  return { loss: a("loss"), parts: { kd_fkl: a("fkl"), kd_tail: a("tail"), kd_ce: a("ce") } };
}

export class CkdGpuBackend implements TrainBackend<CkdBatchSample[]> {
  #obj?: CkdObjective;
  #tokens = 0;
  #fresh = true;

  private constructor(
    readonly student: GpuModel,
    readonly teacher: GpuModel | undefined,
    readonly ckd: CkdOptions,
    readonly adam?: GpuAdamW,
  ) {}

  /** Loads the student (trainable f32, unless `frozen`) and the teacher (frozen, stored dtype). */
  static async load(o: {
    student: string;
    teacher?: string;
    optimizerFile?: string;
    ckd: CkdOptions;
    adam: AdamWConfig;
    limits?: ModelLimits;
    /** Evaluation only: no gradients, no optimizer. */
    frozen?: boolean;
    /** Most tokens of a micro-batch: plans sized once (see GpuModel.reserve). */
    tokens?: number;
  }): Promise<CkdGpuBackend> {
    const student = await GpuModel.load(o.student, { trainable: !o.frozen, limits: o.limits });
    const teacher = o.teacher && o.ckd.kdRatio > 0
      ? await GpuModel.load(o.teacher, { precision: "checkpoint", limits: o.limits })
      : undefined;
    if (teacher && teacher.config.vocab_size !== student.config.vocab_size) {
      throw new RangeError(
        `The teacher's vocabulary (${teacher.config.vocab_size}) differs from the student's (${student.config.vocab_size})`,
      );
    }
    if (o.tokens) {
      student.reserve(o.frozen ? { infer: o.tokens } : { train: o.tokens });
      teacher?.reserve({ infer: o.tokens });
    }
    const adam = o.frozen
      ? undefined
      : await GpuAdamW.create(student.gpu, student.parameters(), o.adam, {
        stateFile: o.optimizerFile,
      });
    return new CkdGpuBackend(student, teacher, o.ckd, adam);
  }

  /** The CKD objective for N rows, grown geometrically. */
  #objective(N: number): CkdObjective {
    if (this.#obj && this.#obj.cap >= N) return this.#obj;
    const old = this.#obj;
    const next = new CkdObjective(this.student.gpu, Math.max(N, 2 * (old?.cap ?? 0), 64), this.ckd);
    if (old) {
      // carry the step's accumulated parts over
      const rec = new Recorder(this.student.gpu, "ckd.grow");
      rec.copy(old.acc, next.acc);
      rec.submit();
      old.release();
    }
    return this.#obj = next;
  }

  /** Records the micro-batch (student forward, loss, and with `train` its backward). */
  #record(
    rec: Recorder,
    batch: CkdBatchSample[],
    o: { train: boolean; weight: number; topm: boolean },
  ) {
    const seqs = batch.map((s) => s.ids);
    const { spans, targets } = targetSpans(batch);
    const obj = this.#objective(targets.length);
    obj.begin({ targets, weight: o.weight, topm: o.topm });
    const k = this.ckd.kdRatio > 0 ? this.ckd.topk : 0;
    const released: (() => void)[] = [];
    if (k > 0 && batch.every((s) => s.teacher)) {
      const N = targets.length;
      writeTensor(obj.gpu, obj.teacherIds.rows(0, N), concat(batch, "ids", N * k, Uint32Array));
      writeTensor(
        obj.gpu,
        obj.teacherLogprobs.rows(0, N),
        concat(batch, "logprobs", N * k, Float32Array),
      );
    } else if (k > 0) {
      if (!this.teacher) throw new Error("kd_ratio > 0 needs a teacher or a top-k cache");
      const tf = this.teacher.forward(rec, seqs);
      const top = new TopK(obj.gpu, obj.cap, k, { vals: obj.teacherLogprobs, ids: obj.teacherIds });
      tf.vocab([top], spans);
      released.push(() => tf.release());
    }
    const f = this.student.forward(rec, seqs, { train: o.train });
    released.push(() => f.release());
    const pass = f.vocab([obj], spans);
    if (o.train) f.backward(pass, obj);
    return { obj, rows: targets.length, release: () => released.forEach((r) => r()) };
  }

  microStep(batch: CkdBatchSample[], opts: { microBatches: number }): Promise<void> {
    const rec = new Recorder(this.student.gpu, "ckd.micro");
    const N = targetSpans(batch).targets.length;
    if (this.#fresh) this.#objective(N).clearAcc(rec);
    this.#fresh = false;
    this.#tokens += batch.reduce((a, s) => a + s.ids.length, 0);
    if (N === 0) {
      rec.submit();
      return Promise.resolve();
    }
    const useTopm = this.ckd.kdRatio > 0 && this.ckd.l1Coef > 0;
    const r = this.#record(rec, batch, {
      train: true,
      weight: 1 / (N * opts.microBatches),
      topm: useTopm,
    });
    rec.submit();
    r.release();
    return Promise.resolve();
  }

  async stepMetrics(): Promise<StepMetrics> {
    const rec = new Recorder(this.student.gpu, "ckd.metrics");
    const obj = this.#objective(1);
    if (this.#fresh) obj.clearAcc(rec);
    this.adam!.recordGradNorm(rec);
    const [acc, clip] = await readMany(rec, [obj.acc, this.adam!.clip]);
    const tokens = this.#tokens;
    this.#tokens = 0;
    this.#fresh = true;
    return { ...partsOf(acc), tokens, gradNorm: clip[0] };
  }

  /**
   * The loss of a batch without any gradient (held-out evaluation), and the number of target
   * rows where the student's top-1 token is the teacher's (`agree`, out of `rows`).
   */
  async evaluate(batch: CkdBatchSample[]): Promise<{ loss: number; agree: number; rows: number }> {
    const N = targetSpans(batch).targets.length;
    if (N === 0) return { loss: 0, agree: 0, rows: 0 };
    const rec = new Recorder(this.student.gpu, "ckd.evaluate");
    this.#objective(N).clearAcc(rec);
    const r = this.#record(rec, batch, { train: false, weight: 1 / N, topm: true });
    const k = Math.max(1, this.ckd.topk), m = this.ckd.topm;
    const [acc, mIds, tIds] = await readMany(rec, [
      r.obj.acc,
      r.obj.topmIds.rows(0, N),
      r.obj.teacherIds.rows(0, N),
    ]);
    r.release();
    this.#fresh = true;
    let agree = 0;
    for (let i = 0; i < N; i++) if (mIds[i * m] === tIds[i * k]) agree++;
    return { loss: partsOf(acc).loss, agree, rows: N };
  }

  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void> {
    const rec = new Recorder(this.student.gpu, "ckd.adamw");
    this.adam!.recordStep(rec, { lr: o.lr, step: o.adamStep });
    rec.submit();
    return Promise.resolve();
  }

  zeroGrads(): Promise<void> {
    const rec = new Recorder(this.student.gpu, "ckd.zero");
    this.adam!.recordZeroGrads(rec);
    rec.submit();
    return Promise.resolve();
  }

  model(): ModelSource {
    return gpuModelSource(this.student);
  }

  optimizer(adamStep: number): OptimizerSource {
    return this.adam!.state(adamStep);
  }

  /** Frees the models, the objective and the optimizer state. */
  release(): void {
    this.#obj?.release();
    this.adam?.release();
    this.student.release();
    this.teacher?.release();
  }
}

/** A GPU model's weights as an F32 model directory source (checkpoints, final/). */
export function gpuModelSource(m: GpuModel): ModelSource {
  return {
    config: configJson({ ...m.config, torch_dtype: "float32" }),
    specs: weightSpecs(m.config).map((s) => ({ name: s.name, dtype: "F32", shape: s.shape })),
    bytes: async (s) => {
      const x = await m.readWeight(s.name);
      return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    },
  };
}

/** The batch's cached teacher top-k, concatenated in sample order. */
function concat<T extends Uint32Array | Float32Array>(
  batch: CkdBatchSample[],
  field: "ids" | "logprobs",
  n: number,
  Type: { new (n: number): T },
): T {
  const out = new Type(n);
  let off = 0;
  for (const s of batch) {
    const part = s.teacher![field];
    out.set(part as never, off);
    off += part.length;
  }
  if (off !== n) {
    throw new RangeError(`The cached teacher top-k holds ${off} entries, expected ${n}`);
  }
  return out;
}
