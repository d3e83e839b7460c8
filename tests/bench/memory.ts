/**
 * The memory-bound kernels at Qwen3-0.6B sizes (T 512 tokens, D 1024, F 3072, H 16, E 128,
 * a vocabulary chunk C = 151936/8 = 18992). Rate: the bytes each kernel must read and write
 * once (f32 = 4 B), whatever it re-reads. Shapes are the element counts named in each case.
 */
import { createTensor, type Gpu, type Tensor } from "../../engine/mod.ts";
import { adamwStep, gradNormFinish, gradNormPartial } from "../../engine/ops/adamw.ts";
import { crossEntropyBackward } from "../../engine/ops/cross_entropy.ts";
import { embeddingBackward, embeddingForward } from "../../engine/ops/embedding.ts";
import { residualForward } from "../../engine/ops/residual.ts";
import { rmsNormBackward, rmsNormForward } from "../../engine/ops/rms_norm.ts";
import { ropeForward, ropeTable } from "../../engine/ops/rope.ts";
import { lseChunk } from "../../engine/ops/softmax.ts";
import { swigluBackward, swigluForward } from "../../engine/ops/swiglu.ts";
import { topkChunk } from "../../engine/ops/topk.ts";
import type { Recorder } from "../../engine/recorder.ts";
import type { BenchCase } from "./_types.ts";

const T = 512, D = 1024, F = 3072, H = 16, E = 128, C = 18992, V = 151936;

function filled(gpu: Gpu, label: string, n: number, dtype: "f32" | "u32" = "f32"): Tensor {
  const data = dtype === "u32"
    ? Uint32Array.from({ length: n }, (_, i) => (i * 7919) % V)
    : Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  return createTensor(gpu, { shape: [n], dtype, label, data });
}

function memCase(
  name: string,
  shape: number[],
  bytes: number,
  make: (gpu: Gpu) => (rec: Recorder) => void,
): BenchCase {
  return { name, shape, bytes, setup: (gpu) => ({ record: make(gpu) }) };
}

export const cases: BenchCase[] = [
  memCase("rms_norm_forward", [T, D], 4 * (2 * T * D + D), (gpu) => {
    const x = filled(gpu, "x", T * D), w = filled(gpu, "w", D);
    const y = filled(gpu, "y", T * D), rstd = filled(gpu, "rstd", T);
    return (rec) => rmsNormForward(rec, { y, rstd, x, weight: w, rows: T, dim: D, eps: 1e-6 });
  }),
  memCase("rms_norm_backward", [T, D], 4 * (3 * T * D + 2 * D), (gpu) => {
    const x = filled(gpu, "x", T * D), w = filled(gpu, "w", D), dy = filled(gpu, "dy", T * D);
    const dx = filled(gpu, "dx", T * D), dW = filled(gpu, "dW", D), rstd = filled(gpu, "rstd", T);
    return (rec) =>
      rmsNormBackward(rec, {
        dx,
        dWeight: dW,
        dy,
        x,
        weight: w,
        rstd,
        rows: T,
        dim: D,
        eps: 1e-6,
      });
  }),
  memCase("rope_forward", [T, H, E], 4 * 2 * T * H * E, (gpu) => {
    const x = filled(gpu, "q", T * H * E);
    const positions = filled(gpu, "pos", T, "u32");
    const pos = Uint32Array.from({ length: T }, (_, i) => i);
    gpu.device.queue.writeBuffer(positions.buffer, positions.byteOffset, pos);
    const table = createTensor(gpu, {
      shape: [T * E],
      dtype: "f32",
      label: "rope.table",
      data: ropeTable({ theta: 1e6, headDim: E, positions: T }),
    });
    return (rec) => ropeForward(rec, { x, positions, table, tokens: T, heads: H, headDim: E });
  }),
  memCase("swiglu_forward", [T, F], 4 * 3 * T * F, (gpu) => {
    const g = filled(gpu, "gate", T * F), u = filled(gpu, "up", T * F);
    const h = filled(gpu, "h", T * F);
    return (rec) => swigluForward(rec, { h, gate: g, up: u, n: T * F });
  }),
  memCase("swiglu_backward", [T, F], 4 * 5 * T * F, (gpu) => {
    const g = filled(gpu, "gate", T * F), u = filled(gpu, "up", T * F);
    const dH = filled(gpu, "dH", T * F), dG = filled(gpu, "dG", T * F);
    const dU = filled(gpu, "dU", T * F);
    return (rec) => swigluBackward(rec, { dGate: dG, dUp: dU, dH, gate: g, up: u, n: T * F });
  }),
  memCase("residual_forward", [T, D], 4 * 3 * T * D, (gpu) => {
    const a = filled(gpu, "a", T * D), b = filled(gpu, "b", T * D), out = filled(gpu, "o", T * D);
    return (rec) => residualForward(rec, { out, a, b, n: T * D });
  }),
  memCase("embedding_forward", [T, D], 4 * 2 * T * D, (gpu) => {
    const vocab = 8192; // one shard's worth is enough: the gather reads T rows
    const table = filled(gpu, "table", vocab * D), ids = filled(gpu, "ids", T, "u32");
    const idv = Uint32Array.from({ length: T }, (_, i) => (i * 7919) % vocab);
    gpu.device.queue.writeBuffer(ids.buffer, ids.byteOffset, idv);
    const out = filled(gpu, "out", T * D);
    return (rec) => embeddingForward(rec, { out, ids, table, tokens: T, dim: D });
  }),
  memCase("embedding_backward", [T, D], 4 * 3 * T * D, (gpu) => {
    const vocab = 8192;
    const dTable = filled(gpu, "dTable", vocab * D), ids = filled(gpu, "ids", T, "u32");
    const idv = Uint32Array.from({ length: T }, (_, i) => (i * 31) % 300); // repeated ids
    gpu.device.queue.writeBuffer(ids.buffer, ids.byteOffset, idv);
    const dOut = filled(gpu, "dOut", T * D), links = filled(gpu, "links", T, "u32");
    return (rec) => embeddingBackward(rec, { dTable, dOut, ids, links, tokens: T, dim: D });
  }),
  memCase("lse_chunk", [T, C], 4 * T * C, (gpu) => {
    const x = filled(gpu, "logits", T * C), stats = filled(gpu, "stats", 2 * T);
    return (rec) => lseChunk(rec, { stats, x, first: true, rows: T, cols: C });
  }),
  memCase("cross_entropy_backward", [T, C], 4 * 2 * T * C, (gpu) => {
    const x = filled(gpu, "logits", T * C), dx = filled(gpu, "dx", T * C);
    const stats = filled(gpu, "stats", 2 * T), targets = filled(gpu, "targets", T, "u32");
    const dLoss = filled(gpu, "dLoss", T);
    return (rec) =>
      crossEntropyBackward(rec, {
        x,
        colStart: 0,
        stats,
        targets,
        dLoss,
        dx,
        rows: T,
        cols: C,
      });
  }),
  memCase("topk_chunk", [T, C, 100], 4 * T * C, (gpu) => {
    const x = filled(gpu, "logits", T * C);
    const vals = filled(gpu, "vals", T * 100), ids = filled(gpu, "ids", T * 100, "u32");
    return (rec) =>
      topkChunk(rec, { vals, ids, x, colStart: 0, k: 100, first: true, rows: T, cols: C });
  }),
  memCase("adamw", [1 << 22], 4 * 7 * (1 << 22), (gpu) => {
    const n = 1 << 22;
    const [p, g, m, v] = ["p", "g", "m", "v"].map((l) => filled(gpu, l, n));
    const partials = filled(gpu, "partials", 64), clip = filled(gpu, "clip", 2);
    const h = { lr: 1e-5, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 };
    return (rec) => {
      const count = gradNormPartial(rec, { x: g, partials, slot: 0 });
      gradNormFinish(rec, { clip, partials, count, maxNorm: 1 });
      adamwStep(rec, { param: p, grad: g, m, v, clip, ...h });
    };
  }),
];
