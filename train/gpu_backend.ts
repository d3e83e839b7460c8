/**
 * The CKD backend of the training loop on the engine. Per micro-batch, one recording and one
 * submit: the frozen teacher's forward (its linear weights kept in the checkpoint's dtype, BF16
 * stays BF16) to its final hidden states, the rows that predict a `targets` token gathered
 * into a compact (N, D) block, its top-k log-probs over the full vocabulary (LM head chunk by
 * chunk: online log-sum-exp and running top-k); the student's forward, the same gather, the
 * CKD loss over vocabulary chunks (engine/ops/kd_loss.ts: stats and the student's top-m per
 * chunk, finish, then each chunk's logits recomputed and turned into dlogits in place, which
 * feed dXf and the LM head's gradient), the scatter of dXf back to the packed rows and the
 * student's backward. The step's loss parts are accumulated on the GPU and read back once per
 * micro-batch (8 floats); the gradient norm once per step; AdamW with the on-GPU clip factor.
 * Only target rows go through the LM head (a tool-calling prompt is most of a sample).
 * Offline mode: the teacher's top-k comes with the batch (train/topk_cache.ts) and is uploaded.
 * Simplifications: f32 master weights, gradients and moments throughout (no mixed precision);
 * activations for the whole micro-batch are kept (no recomputation).
 * Legend: T packed tokens, N target rows, D hidden_size, V vocab_size, C vocabulary chunk
 * columns, k teacher top-k, m student top-m.
 */
import type { Gpu } from "../engine/device.ts";
import { Recorder } from "../engine/recorder.ts";
import {
  createTensor,
  DTYPE_BYTES,
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
import {
  KD_PARTS,
  kdLossBackward,
  kdLossFinish,
  kdLossReduce,
  kdLossStats,
  kdRowInfo,
} from "../engine/ops/kd_loss.ts";
import { matmulBackward, matmulForward } from "../engine/ops/matmul.ts";
import { lseChunk } from "../engine/ops/softmax.ts";
import { topkChunk, topkFinish } from "../engine/ops/topk.ts";
import { qwen3ConfigJson } from "../model/config.ts";
import { Qwen3Gpu, readMany } from "../model/qwen3_gpu.ts";
import { qwen3WeightSpecs } from "../model/weights.ts";
import { decaysWeight } from "./adamw_ref.ts";
import { type ModelSource, openOptimizerState, type OptimizerSource } from "./checkpoint.ts";
import type { CkdOptions } from "./ckd_loss_ref.ts";
import type { MicroResult, TrainBackend } from "./loop.ts";

/** One sample of a CKD micro-batch: prompt ++ targets, and optionally its cached teacher top-k. */
export interface CkdBatchSample {
  ids: number[];
  promptLength: number;
  /** The teacher's top-k at the sample's target positions (P, k), offline mode. */
  teacher?: { ids: Uint32Array; logprobs: Float32Array };
}

export interface GpuAdamW {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  maxNorm: number;
}

/** Contiguous target rows of one sample: packed rows [src, src + len) → compact [dst, ...). */
interface Span {
  src: number;
  dst: number;
  len: number;
}

/** The target spans of packed samples, and the target token of each compact row. */
export function targetSpans(samples: readonly { ids: ArrayLike<number>; promptLength: number }[]): {
  spans: Span[];
  targets: number[];
} {
  const spans: Span[] = [], targets: number[] = [];
  let off = 0;
  for (const s of samples) {
    const first = Math.max(0, s.promptLength - 1), len = Math.max(0, s.ids.length - 1 - first);
    if (len > 0) spans.push({ src: off + first, dst: targets.length, len });
    for (let t = first; t + 1 < s.ids.length; t++) targets.push(s.ids[t + 1]);
    off += s.ids.length;
  }
  return { spans, targets };
}

/** Per-capacity scratch of the vocabulary pass (N rows), grown when a batch needs more. */
interface HeadPlan {
  cap: number;
  owned: Tensor[];
  xN: Tensor; // (N, D) student hidden states at target rows
  dxN: Tensor; // (N, D)
  tN?: Tensor; // (N, Dt) teacher hidden states at target rows
  logits: Tensor; // (N, C)
  tLogits?: Tensor; // (N, Ct)
  tStats: Tensor; // (N, 2)
  tIds: Tensor; // u32 (N, k)
  tLp: Tensor; // (N, k)
  mIds: Tensor; // u32 (N, m)
  mLogits: Tensor; // (N, m)
  rowInfo: Tensor; // u32 (N, 2)
  work: Tensor; // (N, 8 + k + m)
  parts: Tensor; // (N, 8)
  cols: number; // C
  tCols: number; // Ct
}

export class CkdGpuBackend implements TrainBackend<CkdBatchSample[]> {
  readonly gpu: Gpu;
  readonly m = new Map<string, Tensor>();
  readonly v = new Map<string, Tensor>();
  #plan?: HeadPlan;
  #acc: Tensor;
  #clip: Tensor;
  #partials: Tensor;
  #partialSlots: number;
  #sideFiles: string[] = [];
  /** Most vocabulary columns per LM-head chunk (default: what one binding holds; tests). */
  chunkCols?: number;

  private constructor(
    readonly student: Qwen3Gpu,
    readonly teacher: Qwen3Gpu | undefined,
    readonly ckd: CkdOptions & { topk: number },
    readonly adam: GpuAdamW,
  ) {
    this.gpu = student.gpu;
    if (teacher && teacher.config.vocab_size !== student.config.vocab_size) {
      throw new RangeError(
        `The teacher's vocabulary (${teacher.config.vocab_size}) differs from the student's (${student.config.vocab_size})`,
      );
    }
    const mk = (shape: number[], label: string, dtype: "f32" | "u32" = "f32") =>
      createTensor(this.gpu, { shape, dtype, label });
    this.#acc = mk([KD_PARTS.length], "ckd.acc");
    this.#clip = mk([2], "ckd.clip");
    let slots = 0;
    for (const g of student.grads!.values()) {
      for (const c of this.#shards(g)) {
        slots += Math.max(1, Math.min(GRAD_NORM_SLOTS, Math.ceil(c.numel / 256)));
      }
    }
    this.#partialSlots = slots;
    this.#partials = mk([slots], "ckd.grad_norm_partials");
    const rec = new Recorder(this.gpu, "ckd.init");
    for (const [name, w] of student.weights) {
      for (const [map, moment] of [[this.m, "exp_avg"], [this.v, "exp_avg_sq"]] as const) {
        const t = createTensor(this.gpu, {
          shape: w.shape,
          dtype: "f32",
          label: `${moment}.${name}`,
          chunked: true,
        });
        rec.clear(t);
        map.set(name, t);
      }
    }
    student.zeroGrads(rec);
    rec.submit();
  }

  /** Loads the student (trainable, f32) and the teacher (frozen, stored dtype) on the GPU. */
  static async load(o: {
    student: string;
    teacher?: string;
    optimizerFile?: string;
    ckd: CkdOptions & { topk: number };
    adam: GpuAdamW;
    sideFiles?: string[];
    chunkCols?: number;
  }): Promise<CkdGpuBackend> {
    const student = await Qwen3Gpu.load(o.student, { trainable: true });
    const teacher = o.teacher && o.ckd.kdRatio > 0
      ? await Qwen3Gpu.load(o.teacher, { precision: "checkpoint" })
      : undefined;
    const b = new CkdGpuBackend(student, teacher, o.ckd, o.adam);
    b.#sideFiles = o.sideFiles ?? [];
    b.chunkCols = o.chunkCols;
    if (o.optimizerFile) {
      const opt = await openOptimizerState(o.optimizerFile);
      try {
        for (const name of student.weights.keys()) {
          writeTensor(b.gpu, b.m.get(name)!, await opt.read(name, "exp_avg"));
          writeTensor(b.gpu, b.v.get(name)!, await opt.read(name, "exp_avg_sq"));
        }
      } finally {
        opt.close();
      }
    }
    return b;
  }

  /** Row shards of a tensor that each fit one binding. */
  #shards(t: Tensor): Tensor[] {
    return t.byteSize > this.gpu.limits.maxStorageBufferBindingSize ? rowChunks(this.gpu, t) : [t];
  }

  #headPlan(N: number): HeadPlan {
    if (this.#plan && this.#plan.cap >= N) return this.#plan;
    for (const t of this.#plan?.owned ?? []) releaseTensor(this.gpu, t);
    const cap = Math.max(N, 2 * (this.#plan?.cap ?? 0), 64);
    const owned: Tensor[] = [];
    const mk = (label: string, cols: number, dtype: "f32" | "u32" = "f32") => {
      const t = createTensor(this.gpu, { shape: [cap, cols], dtype, label: `ckd.${label}` });
      owned.push(t);
      return t;
    };
    const k = Math.max(1, this.ckd.topk), m = this.ckd.topm;
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    const V = this.student.config.vocab_size;
    const cols = Math.min(V, Math.floor(limit / (4 * cap)), this.chunkCols ?? Infinity);
    const D = this.student.config.hidden_size;
    const Dt = this.teacher?.config.hidden_size;
    this.#plan = {
      cap,
      owned,
      xN: mk("xN", D),
      dxN: mk("dxN", D),
      tN: Dt ? mk("tN", Dt) : undefined,
      logits: mk("logits", cols),
      tLogits: Dt ? mk("tLogits", cols) : undefined,
      tStats: mk("tStats", 2),
      tIds: mk("tIds", k, "u32"),
      tLp: mk("tLp", k),
      mIds: mk("mIds", m, "u32"),
      mLogits: mk("mLogits", m),
      rowInfo: mk("rowInfo", 2, "u32"),
      work: mk("work", 8 + k + m),
      parts: mk("parts", KD_PARTS.length),
      cols,
      tCols: cols,
    };
    return this.#plan;
  }

  /** LM-head row chunks of at most `cols` rows (weights, and the gradient alike). */
  #headChunks(model: Qwen3Gpu, cols: number) {
    const name = model.headName;
    const w = model.w(name), dW = model.grads?.get(name);
    const ws = rowChunks(this.gpu, w, cols * w.rowSize * DTYPE_BYTES[w.dtype]);
    const ds = dW ? rowChunks(this.gpu, dW, cols * w.rowSize * 4) : undefined;
    let start = 0;
    return ws.map((wc, i) => {
      const ch = { start, rows: wc.shape[0], w: wc, dW: ds?.[i] };
      if (ds && ds[i].shape[0] !== wc.shape[0]) {
        throw new Error("LM-head gradient chunks misaligned");
      }
      start += wc.shape[0];
      return ch;
    });
  }

  microStep(batch: CkdBatchSample[], opts: { microBatches: number }): Promise<MicroResult> {
    return this.#run(batch, { microBatches: opts.microBatches, train: true });
  }

  /**
   * The loss of a batch without any gradient (held-out evaluation), and the number of target
   * rows where the student's top-1 token is the teacher's (`agree`, out of `rows`).
   */
  async evaluate(batch: CkdBatchSample[]): Promise<MicroResult & { agree: number; rows: number }> {
    const r = await this.#run(batch, { microBatches: 1, train: false });
    return { ...r, agree: r.agree ?? 0, rows: r.rows ?? 0 };
  }

  async #run(
    batch: CkdBatchSample[],
    opts: { microBatches: number; train: boolean },
  ): Promise<MicroResult & { agree?: number; rows?: number }> {
    const seqs = batch.map((s) => s.ids);
    const tokens = seqs.reduce((a, s) => a + s.length, 0);
    const { spans, targets } = targetSpans(batch);
    const N = targets.length;
    if (N === 0) {
      return { loss: 0, parts: { kd_fkl: 0, kd_tail: 0, kd_ce: 0 }, tokens, agree: 0, rows: 0 };
    }
    const { kdRatio, klType, l1Coef, topm: m } = this.ckd;
    const useKd = kdRatio > 0;
    const k = useKd ? this.ckd.topk : 0;
    const P = this.#headPlan(N);
    const rows = (t: Tensor, n = N) => t.rows(0, n);
    const rec = new Recorder(this.gpu, "ckd.micro");
    const gather = (src: Tensor, dst: Tensor) => {
      for (const s of spans) rec.copy(src.rows(s.src, s.len), dst.rows(s.dst, s.len));
    };
    // the teacher's top-k at the target rows: online, or uploaded from the cache
    let teacherHidden: { release: () => void } | undefined;
    if (useKd) {
      if (batch.every((s) => s.teacher)) {
        const ids = new Uint32Array(N * k), lp = new Float32Array(N * k);
        let off = 0;
        for (const s of batch) {
          ids.set(s.teacher!.ids, off);
          lp.set(s.teacher!.logprobs, off);
          off += s.teacher!.ids.length;
        }
        if (off !== N * k) {
          throw new RangeError(`The cached teacher top-k holds ${off} entries, expected ${N}×${k}`);
        }
        writeTensor(this.gpu, rows(P.tIds, N), ids);
        writeTensor(this.gpu, rows(P.tLp, N), lp);
      } else {
        if (!this.teacher) throw new Error("kd_ratio > 0 needs a teacher or a top-k cache");
        const h = this.teacher.recordHidden(rec, seqs);
        teacherHidden = h;
        const Dt = this.teacher.config.hidden_size;
        gather(h.xf, P.tN!);
        this.#headChunks(this.teacher, P.tCols).forEach((ch, i) => {
          const L = P.tLogits!.reshape([P.cap * P.tCols]).rows(0, N * ch.rows).reshape([
            N,
            ch.rows,
          ]);
          matmulForward(rec, {
            y: L,
            x: rows(P.tN!),
            w: ch.w,
            rows: N,
            inDim: Dt,
            outDim: ch.rows,
          });
          lseChunk(rec, { stats: P.tStats, x: L, first: i === 0, rows: N, cols: ch.rows });
          topkChunk(rec, {
            vals: P.tLp,
            ids: P.tIds,
            x: L,
            colStart: ch.start,
            k,
            first: i === 0,
            rows: N,
            cols: ch.rows,
          });
        });
        topkFinish(rec, { vals: P.tLp, stats: P.tStats, rows: N, k });
      }
    }
    // the student: forward to xf, gather the target rows
    const h = this.student.recordHidden(rec, seqs, { train: opts.train });
    const D = this.student.config.hidden_size;
    gather(h.xf, P.xN);
    const weight = 1 / (N * opts.microBatches);
    writeTensor(this.gpu, rows(P.rowInfo), kdRowInfo(targets, new Array(N).fill(weight)));
    const shape = { rows: N, k, m };
    const io = {
      teacherIds: P.tIds,
      teacherLogprobs: P.tLp,
      topmIds: P.mIds,
      topmLogits: P.mLogits,
      rowInfo: P.rowInfo,
      work: P.work,
      parts: P.parts,
    };
    const chunks = this.#headChunks(this.student, P.cols);
    // the student's top-m serves the tail term and the agreement of evaluate()
    const needTopm = useKd && (l1Coef > 0 || !opts.train);
    if (!needTopm) {
      rec.clear(P.mIds);
      rec.clear(P.mLogits);
    }
    const logitsOf = (cols: number) =>
      P.logits.reshape([P.cap * P.cols]).rows(0, N * cols).reshape([N, cols]);
    chunks.forEach((ch, i) => {
      const L = logitsOf(ch.rows);
      matmulForward(rec, { y: L, x: rows(P.xN), w: ch.w, rows: N, inDim: D, outDim: ch.rows });
      const c = { c0: ch.start, cols: ch.rows, ld: ch.rows };
      kdLossStats(rec, { ...shape, ...c, ...io, logits: L, first: i === 0 });
      if (!needTopm) return;
      topkChunk(rec, {
        vals: P.mLogits,
        ids: P.mIds,
        x: L,
        colStart: ch.start,
        k: m,
        first: i === 0,
        rows: N,
        cols: ch.rows,
      });
    });
    kdLossFinish(rec, { ...shape, ...io, klType, l1Coef, kdRatio });
    rec.clear(this.#acc);
    kdLossReduce(rec, { parts: P.parts, rowInfo: P.rowInfo, acc: this.#acc, rows: N });
    if (!opts.train) {
      const [acc, mIds, tIds] = await readMany(rec, [this.#acc, rows(P.mIds), rows(P.tIds)]);
      h.release();
      teacherHidden?.release();
      let agree = 0;
      for (let r = 0; r < N && k > 0; r++) if (mIds[r * m] === tIds[r * k]) agree++;
      const a = (name: (typeof KD_PARTS)[number]) => acc[KD_PARTS.indexOf(name)];
      return {
        loss: a("loss"),
        parts: { kd_fkl: a("fkl"), kd_tail: a("tail"), kd_ce: a("ce") },
        tokens,
        agree,
        rows: N,
      };
    }
    chunks.forEach((ch, i) => {
      const L = logitsOf(ch.rows);
      // one chunk still holds its logits; more chunks share the buffer and are recomputed
      if (chunks.length > 1) {
        matmulForward(rec, { y: L, x: rows(P.xN), w: ch.w, rows: N, inDim: D, outDim: ch.rows });
      }
      kdLossBackward(rec, { ...shape, c0: ch.start, cols: ch.rows, ld: ch.rows, ...io, logits: L });
      matmulBackward(rec, {
        dy: L,
        x: rows(P.xN),
        w: ch.w,
        dx: rows(P.dxN),
        dw: ch.dW,
        accumulateDx: i > 0,
        rows: N,
        inDim: D,
        outDim: ch.rows,
      });
    });
    rec.clear(h.dXf!);
    for (const s of spans) rec.copy(P.dxN.rows(s.dst, s.len), h.dXf!.rows(s.src, s.len));
    h.backward();
    const [acc] = await readMany(rec, [this.#acc]);
    h.release();
    teacherHidden?.release();
    const M = opts.microBatches;
    const a = (name: (typeof KD_PARTS)[number]) => acc[KD_PARTS.indexOf(name)] * M;
    return {
      loss: a("loss"),
      parts: { kd_fkl: a("fkl"), kd_tail: a("tail"), kd_ce: a("ce") },
      tokens,
    };
  }

  async gradNorm(): Promise<number> {
    const rec = new Recorder(this.gpu, "ckd.grad_norm");
    let slot = 0;
    for (const g of this.student.grads!.values()) {
      slot = gradNormPartial(rec, { x: this.#shards(g), partials: this.#partials, slot });
    }
    if (slot !== this.#partialSlots) throw new Error("Gradient-norm slots miscounted");
    gradNormFinish(rec, {
      clip: this.#clip,
      partials: this.#partials,
      count: slot,
      maxNorm: this.adam.maxNorm,
    });
    const [clip] = await readMany(rec, [this.#clip]);
    return clip[0];
  }

  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }): Promise<void> {
    const rec = new Recorder(this.gpu, "ckd.adamw");
    for (const [name, p] of this.student.weights) {
      adamwStep(rec, {
        param: this.#shards(p),
        grad: this.#shards(this.student.grads!.get(name)!),
        m: this.#shards(this.m.get(name)!),
        v: this.#shards(this.v.get(name)!),
        clip: this.#clip,
        lr: o.lr,
        beta1: this.adam.betas[0],
        beta2: this.adam.betas[1],
        eps: this.adam.eps,
        weightDecay: decaysWeight(name) ? this.adam.weightDecay : 0,
        step: o.adamStep,
      });
    }
    this.student.zeroGrads(rec);
    rec.submit();
    return Promise.resolve();
  }

  zeroGrads(): Promise<void> {
    const rec = new Recorder(this.gpu, "ckd.zero");
    this.student.zeroGrads(rec);
    rec.submit();
    return Promise.resolve();
  }

  model(): ModelSource {
    const c = this.student.config;
    return {
      config: qwen3ConfigJson({ ...c, torch_dtype: "float32" }),
      specs: qwen3WeightSpecs(c).map((s) => ({ name: s.name, dtype: "F32", shape: s.shape })),
      bytes: async (s) => {
        const x = await this.student.readWeight(s.name);
        return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      },
      sideFiles: this.#sideFiles,
    };
  }

  optimizer(adamStep: number): OptimizerSource {
    return {
      step: adamStep,
      tensors: qwen3WeightSpecs(this.student.config).map((s) => ({ name: s.name, shape: s.shape })),
      read: async (name, moment) =>
        (await readMany(new Recorder(this.gpu), [
          (moment === "exp_avg" ? this.m : this.v).get(name)!,
        ]))[0] as Float32Array,
    };
  }

  /** Frees the models and the optimizer state. */
  release(): void {
    for (const t of [...this.m.values(), ...this.v.values(), ...(this.#plan?.owned ?? [])]) {
      releaseTensor(this.gpu, t);
    }
    for (const t of [this.#acc, this.#clip, this.#partials]) releaseTensor(this.gpu, t);
    this.student.release();
    this.teacher?.release();
  }
}
