/**
 * The CKD loss on the GPU (STAR's constrained KD: top-k divergence + student tail + CE mix) and
 * its gradient w.r.t. the student's logits, fed one vocabulary chunk at a time:
 *   for each chunk: kdLossStats      (online max / sum-exp, gathers at teacher ids and target)
 *   once:           kdLossFinish     (lse, loss parts (N, 8), sparse gradient, G = Σ g)
 *   for each chunk: kdLossBackward   (dlogits = w·(g − p·G), dense part then sparse scatter)
 *   optionally:     kdLossReduce     (acc (8) += Σ_rows w·parts: the step's means, no readback)
 * The float64 reference with the formulas and their source is train/ckd_loss_ref.ts (kept in
 * train/, which tests compare against; engine/ does not import train/). The student's top-m ids
 * and raw logits come from the top-k op.
 * Legend: N rows, V vocab, C chunk columns, k teacher top-k, m student top-m.
 */
import code from "../../wgsl/kd_loss.wgsl" with { type: "text" };
import { grid, Recorder } from "../recorder.ts";
import type { Gpu } from "../device.ts";
import { createTensor, readTensor, type Tensor } from "../tensor.ts";
import { family, need, params, relErr } from "./_util.ts";
import { topkChunk } from "./topk.ts";

const FILE = "wgsl/kd_loss.wgsl";
const WG = 256;
/** Largest k and m: the finish kernel gives one invocation to each entry. */
export const KD_TOPK_MAX = 128;
/** Columns of `parts`: loss, kl (the chosen divergence), fkl, rkl, tail, ce, lse, G. */
export const KD_PARTS = ["loss", "kl", "fkl", "rkl", "tail", "ce", "lse", "G"] as const;
const KL_TYPES = { fkl: 0, rkl: 1, akl: 2 } as const;

const kdKernel = family(FILE, code, {
  stats: ["params:uniform", "logits:read", "teacher_ids:read", "row_info:read", "work:storage"],
  finish: [
    "params:uniform",
    "teacher_logprobs:read",
    "teacher_ids:read",
    "row_info:read",
    "work:storage",
    "topm_ids:read",
    "topm_logits:read",
    "parts:storage",
  ],
  backward: [
    "params:uniform",
    "logits:read",
    "teacher_ids:read",
    "row_info:read",
    "work:storage",
    "topm_ids:read",
    "dlogits:storage",
  ],
  scatter: [
    "params:uniform",
    "logits:read",
    "teacher_ids:read",
    "row_info:read",
    "work:storage",
    "topm_ids:read",
    "dlogits:storage",
  ],
  reduce: ["params:uniform", "parts_r:read", "row_info_r:read", "acc:storage"],
  backward_inplace: [
    "params:uniform",
    "logits_rw:storage",
    "teacher_ids:read",
    "row_info:read",
    "work:storage",
    "topm_ids:read",
  ],
  scatter_inplace: [
    "params:uniform",
    "logits_rw:storage",
    "teacher_ids:read",
    "row_info:read",
    "work:storage",
    "topm_ids:read",
  ],
});

/** Sizes shared by every call of one row chunk. */
export interface KdLossShape {
  rows: number; // N
  k: number; // teacher top-k (0 when kd_ratio = 0)
  m: number; // student top-m
}

/** A vocabulary chunk: columns [c0, c0 + cols) at element `base + row·ld + (c − c0)`. */
export interface KdChunk {
  c0: number;
  cols: number;
  /** Row stride in elements (C for a compact chunk, V for a window of full logits). */
  ld: number;
  /** Element offset of (row 0, column c0); default 0. */
  base?: number;
}

/** Floats of the per-row scratch `work` tensor: N × (8 + k + m). */
export function kdWorkSize({ rows, k, m }: KdLossShape): number {
  return rows * (8 + k + m);
}

/** `row_info` (N, 2) u32: the target id and the row's gradient weight (f32 bits; 0 = no loss). */
export function kdRowInfo(targets: ArrayLike<number>, weights: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(targets.length * 2);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let r = 0; r < targets.length; r++) {
    f[0] = weights[r];
    out[2 * r] = targets[r];
    out[2 * r + 1] = u[0];
  }
  return out;
}

function checkShape({ rows, k, m }: KdLossShape): void {
  if (k > KD_TOPK_MAX || m > KD_TOPK_MAX) {
    throw new RangeError(`KD top-k (${k}) and top-m (${m}) must be at most ${KD_TOPK_MAX}`);
  }
  if (rows < 0) throw new RangeError(`KD rows must be >= 0, got ${rows}`);
}

function kdParams(
  rec: Recorder,
  s: KdLossShape & Partial<KdChunk> & {
    first?: boolean;
    klType?: keyof typeof KL_TYPES;
    l1Coef?: number;
    kdRatio?: number;
  },
): GPUBufferBinding {
  return params(rec, {
    rows: s.rows,
    cols: s.cols ?? 0,
    c0: s.c0 ?? 0,
    ld: s.ld ?? 0,
    base: s.base ?? 0,
    k: s.k,
    m: s.m,
    first: s.first ? 1 : 0,
    kl_type: KL_TYPES[s.klType ?? "fkl"],
    l1_coef: s.l1Coef ?? 0,
    kd_ratio: s.kdRatio ?? 1,
    pad: 0,
  }, ["l1_coef", "kd_ratio"]);
}

/**
 * Merges one chunk into each row's running (max, sum exp) and gathers the logits at the
 * teacher's ids and the target that fall in it. `first` starts the running state.
 */
export function kdLossStats(
  rec: Recorder,
  o: KdLossShape & KdChunk & {
    logits: Tensor;
    teacherIds: Tensor;
    rowInfo: Tensor;
    work: Tensor;
    first: boolean;
  },
): void {
  checkShape(o);
  need(o.logits, "KD logits chunk", (o.base ?? 0) + Math.max(0, o.rows - 1) * o.ld + o.cols);
  need(o.teacherIds, "KD teacher ids", o.rows * o.k, "u32");
  need(o.rowInfo, "KD row info", o.rows * 2, "u32");
  need(o.work, "KD work", kdWorkSize(o));
  if (o.rows === 0) return;
  rec.dispatch(
    kdKernel(rec, "stats", { WG }),
    {
      params: kdParams(rec, o),
      logits: o.logits,
      teacher_ids: o.teacherIds,
      row_info: o.rowInfo,
      work: o.work,
    },
    grid(o.rows, 1),
  );
}

/** After the last chunk's stats: per-row loss parts (N, 8) and the sparse gradient in `work`. */
export function kdLossFinish(
  rec: Recorder,
  o: KdLossShape & {
    teacherIds: Tensor;
    teacherLogprobs: Tensor;
    topmIds: Tensor;
    topmLogits: Tensor;
    rowInfo: Tensor;
    work: Tensor;
    parts: Tensor;
    klType: "fkl" | "rkl" | "akl";
    l1Coef: number;
    kdRatio: number;
  },
): void {
  checkShape(o);
  need(o.teacherIds, "KD teacher ids", o.rows * o.k, "u32");
  need(o.teacherLogprobs, "KD teacher log-probs", o.rows * o.k);
  need(o.topmIds, "KD student top-m ids", o.rows * o.m, "u32");
  need(o.topmLogits, "KD student top-m logits", o.rows * o.m);
  need(o.rowInfo, "KD row info", o.rows * 2, "u32");
  need(o.work, "KD work", kdWorkSize(o));
  need(o.parts, "KD parts", o.rows * KD_PARTS.length);
  if (o.rows === 0) return;
  rec.dispatch(
    kdKernel(rec, "finish"),
    {
      params: kdParams(rec, o),
      teacher_logprobs: o.teacherLogprobs,
      teacher_ids: o.teacherIds,
      row_info: o.rowInfo,
      work: o.work,
      topm_ids: o.topmIds,
      topm_logits: o.topmLogits,
      parts: o.parts,
    },
    grid(o.rows, 1),
  );
}

/**
 * dlogits of one chunk (same layout as its logits): w·(g − p·G), overwritten. Without
 * `dlogits` the gradient is written over the logits themselves (saves the second buffer).
 */
export function kdLossBackward(
  rec: Recorder,
  o: KdLossShape & KdChunk & {
    logits: Tensor;
    dlogits?: Tensor;
    teacherIds: Tensor;
    topmIds: Tensor;
    rowInfo: Tensor;
    work: Tensor;
  },
): void {
  checkShape(o);
  const span = (o.base ?? 0) + Math.max(0, o.rows - 1) * o.ld + o.cols;
  need(o.logits, "KD logits chunk", span);
  if (o.dlogits) need(o.dlogits, "KD dlogits chunk", span);
  need(o.teacherIds, "KD teacher ids", o.rows * o.k, "u32");
  need(o.topmIds, "KD student top-m ids", o.rows * o.m, "u32");
  need(o.rowInfo, "KD row info", o.rows * 2, "u32");
  need(o.work, "KD work", kdWorkSize(o));
  if (o.rows === 0 || o.cols === 0) return;
  const shared = {
    params: kdParams(rec, o),
    teacher_ids: o.teacherIds,
    row_info: o.rowInfo,
    work: o.work,
    topm_ids: o.topmIds,
  };
  const [back, scatter, res] = o.dlogits
    ? ["backward", "scatter", { ...shared, logits: o.logits, dlogits: o.dlogits }]
    : ["backward_inplace", "scatter_inplace", { ...shared, logits_rw: o.logits }];
  rec.dispatch(kdKernel(rec, back, { WG }), res, grid(o.rows * o.cols, WG));
  rec.dispatch(kdKernel(rec, scatter, { WG }), res, grid(o.rows * (o.k + o.m + 1), WG));
}

/**
 * acc (8) += Σ_rows w·parts[row] (w from rowInfo). With w = 1/(target tokens × micro-batches)
 * and acc cleared at the start of a step, acc holds the step's mean loss and parts at its end.
 */
export function kdLossReduce(
  rec: Recorder,
  o: { parts: Tensor; rowInfo: Tensor; acc: Tensor; rows: number },
): void {
  need(o.parts, "KD parts", o.rows * KD_PARTS.length);
  need(o.rowInfo, "KD row info", o.rows * 2, "u32");
  need(o.acc, "KD accumulator", KD_PARTS.length);
  if (o.rows === 0) return;
  rec.dispatch(
    kdKernel(rec, "reduce", { WG }),
    {
      params: kdParams(rec, { rows: o.rows, k: 0, m: 0 }),
      parts_r: o.parts,
      row_info_r: o.rowInfo,
      acc: o.acc,
    },
    [1],
  );
}

/**
 * `star info` self-test: fkl + tail + CE mix (kd_ratio 0.75) over a vocabulary of 37 in two
 * chunks, with the student's top-m from the top-k op, against a float64 evaluation written out
 * here (engine/ does not import the train/ reference): loss and dlogits.
 */
export const kdLossSelfTest = {
  name: "kd_loss",
  async run(gpu: Gpu): Promise<{ maxRelErr: number; tolerance: number }> {
    const V = 37, N = 2, k = 5, m = 4, ratio = 0.75, lambda = 10, chunks = [[0, 20], [20, 17]];
    const z = Float32Array.from({ length: N * V }, (_, i) => Math.sin(i * 12.9898) * 3);
    const tz = Float64Array.from({ length: N * V }, (_, i) => Math.cos(i * 4.1414) * 4);
    const targets = [3, 30];
    // float64 reference: teacher top-k log-probs, then the loss and dlogits per row
    const lse = (x: ArrayLike<number>) => {
      const mx = Math.max(...Array.from(x));
      return mx + Math.log(Array.from(x).reduce((a, v) => a + Math.exp(v - mx), 0));
    };
    const top = (x: ArrayLike<number>, n: number) =>
      Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b)
        .slice(0, n);
    const tIds: number[] = [], tLp: number[] = [], refLoss: number[] = [];
    const refGrad = new Float64Array(N * V);
    for (let r = 0; r < N; r++) {
      const zr = Array.from(z.subarray(r * V, (r + 1) * V)), tr = tz.subarray(r * V, (r + 1) * V);
      const tl = lse(tr), sl = lse(zr);
      const T = top(tr, k), M = top(zr, m).filter((i) => !T.includes(i));
      const p = zr.map((x) => Math.exp(x - sl));
      let fkl = 0, tail = 0;
      const g = new Map<number, number>();
      for (const j of T) {
        const lpT = Math.fround(tr[j] - tl);
        tIds.push(j);
        tLp.push(lpT);
        fkl += Math.exp(lpT) * (lpT - (zr[j] - sl));
        g.set(j, -ratio * Math.exp(lpT));
      }
      for (const i of M) {
        tail += p[i];
        g.set(i, ratio * lambda * p[i]);
      }
      g.set(targets[r], (g.get(targets[r]) ?? 0) - (1 - ratio));
      refLoss.push(ratio * (fkl + lambda * tail) + (1 - ratio) * (sl - zr[targets[r]]));
      const G = [...g.values()].reduce((a, b) => a + b, 0);
      for (let a = 0; a < V; a++) refGrad[r * V + a] = (g.get(a) ?? 0) - p[a] * G;
    }
    const t = (data: ArrayLike<number>, dtype: "f32" | "u32" = "f32") =>
      createTensor(gpu, {
        shape: [data.length],
        dtype,
        label: "self-test.kd_loss",
        data: dtype === "u32" ? Uint32Array.from(data) : Float32Array.from(data),
      });
    const shape = { rows: N, k, m };
    const logits = chunks.map(([c0, cols]) => {
      const out = new Float32Array(N * cols);
      for (let r = 0; r < N; r++) out.set(z.subarray(r * V + c0, r * V + c0 + cols), r * cols);
      return t(out);
    });
    const io = {
      teacherIds: t(tIds, "u32"),
      teacherLogprobs: t(tLp),
      topmIds: t(new Uint32Array(N * m), "u32"),
      topmLogits: t(new Float32Array(N * m)),
      rowInfo: t(kdRowInfo(targets, [1, 1]), "u32"),
      work: t(new Float32Array(kdWorkSize(shape))),
      parts: t(new Float32Array(N * KD_PARTS.length)),
    };
    const rec = new Recorder(gpu, "self-test.kd_loss");
    chunks.forEach(([c0, cols], i) => {
      const c = { c0, cols, ld: cols };
      kdLossStats(rec, { ...shape, ...c, ...io, logits: logits[i], first: i === 0 });
      topkChunk(rec, {
        vals: io.topmLogits,
        ids: io.topmIds,
        x: logits[i],
        colStart: c0,
        k: m,
        first: i === 0,
        rows: N,
        cols,
      });
    });
    kdLossFinish(rec, { ...shape, ...io, klType: "fkl", l1Coef: lambda, kdRatio: ratio });
    chunks.forEach(([c0, cols], i) =>
      kdLossBackward(rec, { ...shape, c0, cols, ld: cols, ...io, logits: logits[i] })
    );
    rec.submit();
    const parts = await readTensor(gpu, io.parts);
    const loss = Array.from({ length: N }, (_, r) => parts[r * KD_PARTS.length]);
    const grad = new Float64Array(N * V);
    for (let i = 0; i < chunks.length; i++) {
      const [c0, cols] = chunks[i];
      const d = await readTensor(gpu, logits[i]);
      for (let r = 0; r < N; r++) {
        for (let c = 0; c < cols; c++) grad[r * V + c0 + c] = d[r * cols + c];
      }
    }
    return {
      maxRelErr: Math.max(relErr(loss, refLoss), relErr(grad, refGrad)),
      tolerance: 1e-5,
    };
  },
};
