/**
 * Helpers shared by the kernel tests (tests/ops_*_test.ts): a seeded generator, central finite
 * differences of a scalar function, and a per-dtype closeness check that reports the max abs
 * error, the NMSE and the first bad index (ggml test-backend-ops style).
 */
import { AssertionError } from "node:assert/strict";
import { getGpu, type Gpu, hasGpu } from "../engine/device.ts";
import { Recorder } from "../engine/recorder.ts";
import { createTensor, type DType, readTensor, type Tensor } from "../engine/tensor.ts";

/** Deterministic uniform [-scale, scale) values from a 32-bit seed (mulberry32). */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (2 * u - 1) * scale;
  }
  return out;
}

/** Values rounded to f32, so GPU inputs and float64 reference inputs are the same numbers. */
export function f32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}

/** Random u32 ids in [0, n). */
export function randIds(count: number, n: number, seed: number): Uint32Array {
  const r = randn(count, seed);
  return Uint32Array.from(r, (x) => Math.min(n - 1, Math.floor((x + 1) / 2 * n)));
}

/** Central finite differences of f at x (x is restored afterwards). */
export function finiteDiff(
  f: (x: Float64Array) => number,
  x: Float64Array,
  h = 1e-5,
): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + h;
    const fp = f(x);
    x[i] = old - h;
    const fm = f(x);
    x[i] = old;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Σ a·b, the scalar loss whose gradient w.r.t. a's producer is b. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Tolerances per storage dtype (issue 4: rel 1e-5 for f32, 1e-2 for f16/bf16). */
export const TOL = {
  f32: { atol: 1e-5, rtol: 1e-5 },
  f16: { atol: 1e-2, rtol: 1e-2 },
  bf16: { atol: 1e-2, rtol: 1e-2 },
  fd: { atol: 1e-6, rtol: 1e-5 },
} as const;

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| element-wise; on failure the message gives
 * the first bad index, the max abs error and the NMSE.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  what = "",
): { maxAbs: number; nmse: number } {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length} != ${expected.length}`,
    });
  }
  let maxAbs = 0, num = 0, den = 0, firstBad = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const err = Math.abs(a - e);
    const ok = err <= tol.atol + tol.rtol * Math.abs(e) || (Number.isNaN(a) && Number.isNaN(e)) ||
      (a === e);
    if (!ok && firstBad < 0) firstBad = i;
    if (!(err <= maxAbs)) maxAbs = err;
    if (Number.isFinite(e)) {
      num += (a - e) ** 2;
      den += e * e;
    }
  }
  const nmse = den > 0 ? num / den : num;
  if (firstBad >= 0) {
    throw new AssertionError({
      message: `${what}: first bad index ${firstBad} (${actual[firstBad]} vs ${
        expected[firstBad]
      }), max abs error ${maxAbs}, NMSE ${nmse}`,
    });
  }
  return { maxAbs, nmse };
}

// ---- GPU side --------------------------------------------------------------------------------

/** Whether this machine has a WebGPU adapter; GPU tests are ignored without one. */
export const NO_GPU = !(await hasGpu());

/** Uploads host values as a tensor (f16/bf16 are rounded by the upload). */
export async function upload(
  label: string,
  data: ArrayLike<number>,
  dtype: DType = "f32",
  shape: number[] = [data.length],
): Promise<Tensor> {
  const gpu = await getGpu();
  const arr = dtype === "u32" ? Uint32Array.from(data) : Float32Array.from(data);
  return createTensor(gpu, { shape, dtype, label, data: arr });
}

/** A zero-filled tensor. */
export function zeros(label: string, numel: number, dtype: DType = "f32"): Promise<Tensor> {
  return upload(label, new Float32Array(numel), dtype);
}

/** Records with a fresh recorder, submits, waits and fails on any GPU error. */
export async function runGpu(fn: (rec: Recorder, gpu: Gpu) => void): Promise<void> {
  const gpu = await getGpu();
  const rec = new Recorder(gpu, "test");
  fn(rec, gpu);
  await rec.flush();
}

/** Reads a tensor back as float64 values (u32 stays integral). */
export async function download(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await readTensor(await getGpu(), t));
}

/** One uploaded vocabulary chunk of a (rows, V) host matrix. */
export interface UploadedChunk {
  t: Tensor;
  colStart: number;
  cols: number;
  ld: number;
}

/**
 * Splits a (rows, V) matrix into column chunks of the given widths and uploads each as its own
 * (rows, ld) tensor, ld = width + pad (pad columns hold garbage the kernels must skip).
 */
export function uploadChunks(
  x: ArrayLike<number>,
  rows: number,
  widths: number[],
  pad = 0,
): Promise<UploadedChunk[]> {
  const V = widths.reduce((a, b) => a + b, 0);
  const starts = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
  return Promise.all(widths.map(async (cols, i) => {
    const ld = cols + pad, colStart = starts[i];
    const data = new Float32Array(rows * ld).fill(1e30);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) data[r * ld + c] = x[r * V + colStart + c];
    }
    return { t: await upload(`chunk@${colStart}`, data), colStart, cols, ld };
  }));
}

/** Reassembles chunk tensors read back into a (rows, V) matrix. */
export async function downloadChunks(
  chunks: UploadedChunk[],
  rows: number,
): Promise<Float64Array> {
  const V = chunks.reduce((a, c) => a + c.cols, 0);
  const out = new Float64Array(rows * V);
  for (const c of chunks) {
    const d = await download(c.t);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < c.cols; j++) out[r * V + c.colStart + j] = d[r * c.ld + j];
    }
  }
  return out;
}

/**
 * Central differences of an async (GPU-evaluated) scalar loss at the given indices of x, with a
 * step suited to f32 (the loss is accumulated on the host in float64).
 */
export async function gpuFiniteDiff(
  loss: (x: Float64Array) => Promise<number>,
  x: Float64Array,
  indices: number[],
  h = 1e-2,
): Promise<Float64Array> {
  const out = new Float64Array(indices.length);
  for (const [n, i] of indices.entries()) {
    const old = x[i];
    x[i] = old + h;
    const fp = await loss(x);
    x[i] = old - h;
    const fm = await loss(x);
    x[i] = old;
    out[n] = (fp - fm) / (2 * h);
  }
  return out;
}
