/**
 * `star info` self-tests of the non-matmul kernel families: one small awkward shape each, run on
 * the adapter and compared with the family's float64 reference (scale-relative max error).
 * Each family is one entry of OPS_SELF_TESTS, which engine/self_test.ts appends to its table.
 */
import type { Gpu } from "../device.ts";
import { Recorder } from "../recorder.ts";
import { createTensor, type DType, readTensor, type Tensor } from "../tensor.ts";
import { adamwRef, adamwStep, gradNormFinish, gradNormPartial, gradNormRef } from "./adamw.ts";
import {
  attentionBackward,
  attentionBackwardRef,
  attentionForward,
  attentionForwardRef,
  attentionRangeTable,
} from "./attention.ts";
import { attentionDecode, attentionDecodeScratchSize } from "./attention_decode.ts";
import { crossEntropyBackward, crossEntropyBackwardRef } from "./cross_entropy.ts";
import {
  embeddingBackward,
  embeddingBackwardRef,
  embeddingForward,
  embeddingForwardRef,
} from "./embedding.ts";
import { residualForward, residualForwardRef } from "./residual.ts";
import {
  rmsNormBackward,
  rmsNormBackwardRef,
  rmsNormForward,
  rmsNormForwardRef,
} from "./rms_norm.ts";
import { ropeForward, ropeForwardRef, ropeTable } from "./rope.ts";
import {
  sampleChunk,
  sampleFinish,
  type SampleOptions,
  samplePlan,
  sampleRef,
  sampleResults,
  sampleScratchSize,
} from "./sample.ts";
import { logSoftmaxForwardRef, lseChunk } from "./softmax.ts";
import { swigluBackward, swigluBackwardRef, swigluForward, swigluForwardRef } from "./swiglu.ts";
import { topkChunk, topkFinish, topkRef } from "./topk.ts";
import { relErr } from "./_util.ts";

interface Result {
  maxRelErr: number;
  tolerance: number;
  detail?: string;
}

/** Deterministic values in [-1, 1), rounded to f32. */
function vals(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);
}

/** Runs `build` (which uploads and records), submits, reads back and compares every pair. */
async function check(
  gpu: Gpu,
  name: string,
  tolerance: number,
  build: (
    t: (data: ArrayLike<number>, dtype?: DType) => Tensor,
    rec: Recorder,
  ) => [Tensor, ArrayLike<number>][],
): Promise<Result> {
  const rec = new Recorder(gpu, `self-test.${name}`);
  const t = (data: ArrayLike<number>, dtype: DType = "f32") =>
    createTensor(gpu, {
      shape: [data.length],
      dtype,
      label: `self-test.${name}`,
      data: dtype === "u32" ? Uint32Array.from(data) : Float32Array.from(data),
    });
  const pairs = build(t, rec);
  rec.submit();
  let worst = 0;
  for (const [tensor, ref] of pairs) {
    worst = Math.max(worst, relErr(await readTensor(gpu, tensor), ref));
  }
  return { maxRelErr: worst, tolerance };
}

const zeros = (n: number) => new Float32Array(n);

export const OPS_SELF_TESTS = [
  {
    name: "rms_norm",
    run: (gpu: Gpu) =>
      check(gpu, "rms_norm", 1e-5, (t, rec) => {
        const s = { rows: 3, dim: 17, eps: 1e-6 };
        const x = vals(51, 1), w = vals(17, 2), dy = vals(51, 3);
        const tx = t(x), tw = t(w), ty = t(zeros(51)), tr = t(zeros(3));
        const tdx = t(zeros(51)), tdw = t(zeros(17));
        rmsNormForward(rec, { y: ty, rstd: tr, x: tx, weight: tw, ...s });
        rmsNormBackward(rec, {
          dx: tdx,
          dWeight: tdw,
          dy: t(dy),
          x: tx,
          weight: tw,
          rstd: tr,
          ...s,
        });
        const b = rmsNormBackwardRef(dy, x, w, s);
        return [[ty, rmsNormForwardRef(x, w, s).y], [tdx, b.dx], [tdw, b.dWeight]];
      }),
  },
  {
    name: "rope",
    run: (gpu: Gpu) =>
      check(gpu, "rope", 1e-5, (t, rec) => {
        const s = { tokens: 3, heads: 2, headDim: 10, posOffset: 5 };
        const x = vals(60, 4), pos = [0, 7, 30];
        const tx = t(x);
        const table = t(ropeTable({ theta: 1e6, headDim: 10, positions: 40 }));
        ropeForward(rec, { x: tx, positions: t(pos, "u32"), table, ...s });
        return [[tx, ropeForwardRef(x, pos, 1e6, s)]];
      }),
  },
  {
    name: "attention",
    run: (gpu: Gpu) =>
      check(gpu, "attention", 1e-5, (t, rec) => {
        const d = { queryRows: 5, keyRows: 5, heads: 4, kvHeads: 2, headDim: 6 };
        const seqs = [{ qStart: 0, qLen: 2, kStart: 0 }, { qStart: 2, qLen: 3, kStart: 2 }];
        const table = attentionRangeTable(seqs, d);
        const q = vals(120, 5), k = vals(60, 6), v = vals(60, 7), dO = vals(120, 8);
        const io = {
          ...d,
          q: t(q),
          k: t(k),
          v: t(v),
          ranges: t(table, "u32"),
          stats: t(zeros(40)),
          o: t(zeros(120)),
        };
        const dQ = t(zeros(120)), dK = t(zeros(60)), dV = t(zeros(60));
        attentionForward(rec, io);
        attentionBackward(rec, { ...io, dO: t(dO), dQ, dK, dV });
        const kr = table.subarray(0, 10);
        const g = attentionBackwardRef(dO, q, k, v, kr, d);
        return [[io.o, attentionForwardRef(q, k, v, kr, d).o], [dQ, g.dq], [dK, g.dk], [
          dV,
          g.dv,
        ]];
      }),
  },
  {
    name: "attention_decode",
    run: (gpu: Gpu) =>
      check(gpu, "attention_decode", 1e-5, (t, rec) => {
        // two cached rows of 70 and 5 keys in slots of 70, each split in 3
        const d = { queryRows: 2, keyRows: 140, heads: 4, kvHeads: 2, headDim: 8, splits: 3 };
        const seqs = [
          { qStart: 0, qLen: 1, kStart: 0, past: 69 },
          { qStart: 1, qLen: 1, kStart: 70, past: 4 },
        ];
        const table = attentionRangeTable(seqs, d);
        const q = vals(64, 23), k = vals(140 * 16, 24), v = vals(140 * 16, 25);
        const o = t(zeros(64));
        attentionDecode(rec, {
          ...d,
          q: t(q),
          k: t(k),
          v: t(v),
          ranges: t(table, "u32"),
          stats: t(zeros(16)),
          o,
          scratch: t(zeros(attentionDecodeScratchSize(gpu, d))),
        });
        return [[o, attentionForwardRef(q, k, v, table.subarray(0, 4), d).o]];
      }),
  },
  {
    name: "swiglu",
    run: (gpu: Gpu) =>
      check(gpu, "swiglu", 1e-5, (t, rec) => {
        const g = vals(37, 9, 4), u = vals(37, 10), dH = vals(37, 11);
        const tg = t(g), tu = t(u), h = t(zeros(37)), dG = t(zeros(37)), dU = t(zeros(37));
        swigluForward(rec, { h, gate: tg, up: tu, n: 37 });
        swigluBackward(rec, { dGate: dG, dUp: dU, dH: t(dH), gate: tg, up: tu, n: 37 });
        const b = swigluBackwardRef(dH, g, u);
        return [[h, swigluForwardRef(g, u)], [dG, b.dGate], [dU, b.dUp]];
      }),
  },
  {
    name: "embedding",
    run: (gpu: Gpu) =>
      check(gpu, "embedding", 1e-5, (t, rec) => {
        const table = vals(9 * 5, 12), ids = [3, 1, 3, 8, 0, 3], dOut = vals(30, 13);
        const tids = t(ids, "u32"), out = t(zeros(30)), dTable = t(zeros(45));
        embeddingForward(rec, { out, ids: tids, table: t(table), tokens: 6, dim: 5 });
        embeddingBackward(rec, {
          dTable,
          dOut: t(dOut),
          ids: tids,
          links: t(zeros(6), "u32"),
          tokens: 6,
          dim: 5,
        });
        return [[out, embeddingForwardRef(table, ids, { dim: 5 })], [
          dTable,
          embeddingBackwardRef(dOut, ids, { vocab: 9, dim: 5 }),
        ]];
      }),
  },
  {
    name: "residual",
    run: (gpu: Gpu) =>
      check(gpu, "residual", 1e-6, (t, rec) => {
        const a = vals(19, 14), b = vals(19, 15), out = t(zeros(19));
        residualForward(rec, { out, a: t(a), b: t(b), n: 19 });
        return [[out, residualForwardRef(a, b)]];
      }),
  },
  {
    name: "softmax_ce",
    run: (gpu: Gpu) =>
      check(gpu, "softmax", 1e-5, (t, rec) => {
        // Two vocabulary chunks of 13 and 30 columns, 3 rows.
        const rows = 3, x = vals(3 * 43, 16, 6), targets = [2, 40, 13], dLoss = [1, 0.5, -1];
        const parts = [[0, 13], [13, 30]].map(([c0, cols]) => {
          const d = new Float32Array(rows * cols);
          for (let r = 0; r < rows; r++) {
            for (let c = 0; c < cols; c++) d[r * cols + c] = x[r * 43 + c0 + c];
          }
          return { c0, cols, x: t(d), dx: t(zeros(rows * cols)) };
        });
        const stats = t(zeros(6)), tt = t(targets, "u32"), tdl = t(dLoss);
        parts.forEach((p, i) =>
          lseChunk(rec, { stats, x: p.x, first: i === 0, rows, cols: p.cols })
        );
        for (const p of parts) {
          crossEntropyBackward(rec, {
            x: p.x,
            colStart: p.c0,
            stats,
            targets: tt,
            dLoss: tdl,
            dx: p.dx,
            rows,
            cols: p.cols,
          });
        }
        const lse = logSoftmaxForwardRef(x, { rows, cols: 43 }).lse;
        const dx = crossEntropyBackwardRef(dLoss, x, targets, { rows, cols: 43 });
        const slice = (a: ArrayLike<number>, c0: number, cols: number) =>
          Float64Array.from(
            { length: rows * cols },
            (_, i) => a[Math.floor(i / cols) * 43 + c0 + (i % cols)],
          );
        // stats hold (max, sum): compare the sum against exp(lse - max) of the reference
        const sums = new Float64Array(6);
        for (let r = 0; r < rows; r++) {
          let m = -Infinity;
          for (let c = 0; c < 43; c++) m = Math.max(m, x[r * 43 + c]);
          sums[2 * r] = m;
          sums[2 * r + 1] = Math.exp(lse[r] - m);
        }
        return [
          [stats, sums] as [Tensor, Float64Array],
          ...parts.map((p) => [p.dx, slice(dx, p.c0, p.cols)] as [Tensor, Float64Array]),
        ];
      }),
  },
  {
    name: "topk",
    run: async (gpu: Gpu) => {
      const rows = 2, V = 300, k = 20, x = vals(rows * V, 17, 5);
      const rec = new Recorder(gpu, "self-test.topk");
      const mk = (data: ArrayLike<number>, dtype: DType) =>
        createTensor(gpu, {
          shape: [data.length],
          dtype,
          label: "self-test.topk",
          data: dtype === "u32" ? Uint32Array.from(data) : Float32Array.from(data),
        });
      const tx = mk(x, "f32"), stats = mk(zeros(4), "f32");
      const tv = mk(zeros(rows * k), "f32"), ti = mk(zeros(rows * k), "u32");
      lseChunk(rec, { stats, x: tx, first: true, rows, cols: V });
      topkChunk(rec, { vals: tv, ids: ti, x: tx, colStart: 0, k, first: true, rows, cols: V });
      topkFinish(rec, { vals: tv, stats, rows, k });
      rec.submit();
      const ref = topkRef(x, { rows, cols: V, k });
      const ids = await readTensor(gpu, ti);
      const wrongIds = ids.filter((id, i) => id !== ref.ids[i]).length;
      return {
        maxRelErr: wrongIds ? Infinity : relErr(await readTensor(gpu, tv), ref.logprobs),
        tolerance: 1e-5,
        detail: wrongIds ? `${wrongIds} ids differ` : undefined,
      };
    },
  },
  {
    name: "sample",
    run: async (gpu: Gpu) => {
      // 3 rows over a vocabulary of 300 in chunks of 120 and 180, temperature and top-p
      const rows = 3, V = 300, x = vals(rows * V, 26, 4), info = [0, 1, 1, 1, 2, 1];
      let wrong = 0, worst = 0;
      for (const o of [{ temperature: 0.8, seed: 5 }, { temperature: 1, topP: 0.7 }]) {
        const rec = new Recorder(gpu, "self-test.sample");
        const mk = (data: ArrayLike<number>, dtype: DType) =>
          createTensor(gpu, {
            shape: [data.length],
            dtype,
            label: "self-test.sample",
            data: dtype === "u32" ? Uint32Array.from(data) : Float32Array.from(data),
          });
        const k = samplePlan(o, V).candidates;
        const t = {
          ...(o as SampleOptions),
          rows,
          vocab: V,
          state: mk(zeros(8 * rows), "u32"),
          rowInfo: mk(info, "u32"),
          cand: k
            ? { vals: mk(zeros(rows * k), "f32"), ids: mk(zeros(rows * k), "u32") }
            : undefined,
        };
        const scratch = mk(zeros(sampleScratchSize({ rows, cols: 180 })), "u32");
        for (const [c0, cols] of [[0, 120], [120, 180]]) {
          const chunk = Float32Array.from(
            { length: rows * cols },
            (_, i) => x[Math.floor(i / cols) * V + c0 + (i % cols)],
          );
          sampleChunk(rec, {
            ...t,
            x: mk(chunk, "f32"),
            scratch,
            cols,
            colStart: c0,
            first: c0 === 0,
          });
        }
        const out = mk(zeros(3 * rows), "u32");
        sampleFinish(rec, { ...t, out });
        rec.submit();
        const got = sampleResults(await readTensor(gpu, out) as Uint32Array, rows);
        const ref = sampleRef(x, info, { ...o, rows, cols: V });
        wrong += got.ids.filter((id, r) => id !== ref.ids[r]).length;
        worst = Math.max(worst, relErr(got.logprobs, ref.logprobs));
      }
      return {
        maxRelErr: wrong ? Infinity : worst,
        tolerance: 1e-5,
        detail: wrong ? `${wrong} sampled ids differ` : undefined,
      };
    },
  },
  {
    name: "adamw",
    run: (gpu: Gpu) =>
      check(gpu, "adamw", 1e-5, (t, rec) => {
        const n = 300, p = vals(n, 18), g = vals(n, 19, 3), m = vals(n, 20, 0.1);
        const v = Float32Array.from(vals(n, 21), (x) => x * x);
        const h = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 4 };
        const tp = t(p), partials = t(zeros(64)), clip = t(zeros(2)), tg = t(g);
        const count = gradNormPartial(rec, { x: tg, partials, slot: 0 });
        gradNormFinish(rec, { clip, partials, count, maxNorm: 1 });
        adamwStep(rec, { param: tp, grad: tg, m: t(m), v: t(v), clip, ...h });
        const { norm, scale } = gradNormRef([g], 1);
        return [[clip, [norm, scale]], [tp, adamwRef(p, g, m, v, h, scale).param]];
      }),
  },
];
