/**
 * Linear layers: Y = X · Wᵀ with W stored (N, K) like PyTorch, and its backward
 * dX = dY · W (overwrites, or accumulates across vocabulary chunks) and dW += dYᵀ · X.
 * W may be f32, f16 or bf16 (two per u32); X, Y and all gradients are f32; accumulation is f32.
 * Legend: M rows (tokens), K in_features (inDim), N out_features (outDim).
 *
 * Two variants behind one interface, chosen per adapter (STAR_MATMUL=tiled|texture overrides):
 * - "tiled" (real GPUs): wgsl/matmul.wgsl, 64x64 shared-memory tiles, operands read in place.
 * - "texture" (software adapters): operands copied into rgba32float textures (a buffer copy
 *   when rows are 256-byte aligned f32, else matmul.wgsl's `pack`), then wgsl/matmul_tex.wgsl's
 *   unrolled 16x16 register tiles; on llvmpipe texture loads are ~5x cheaper than buffer loads. Texture sides are capped (16384 texels), so the
 *   product is cut into blocks of rows, columns and contraction, accumulating over the latter.
 * An optional bias (N) is added after the product (`bias_add`) and its gradient accumulated
 * as the column sums of dY (`bias_backward`), both in matmul.wgsl; biases are f32.
 * A weight larger than one binding (the 151936 x 1024 LM head) is used by its row chunks
 * (tensor.ts rowChunks): one matmulForward per chunk into that chunk's logits, and
 * matmulBackward with accumulateDx over the chunks.
 */
import type { Gpu } from "../device.ts";
import { kernel } from "../kernel.ts";
import { grid, Recorder } from "../recorder.ts";
import { createTensor, type DType, readTensor, type Tensor } from "../tensor.ts";
import { relErr } from "./_util.ts";
import MATMUL_WGSL from "../../wgsl/matmul.wgsl" with { type: "text" };
import MATMUL_TEX_WGSL from "../../wgsl/matmul_tex.wgsl" with { type: "text" };

export type MatmulVariant = "tiled" | "texture";
export const MATMUL_VARIANTS: readonly MatmulVariant[] = ["tiled", "texture"];

export interface MatmulShape {
  rows: number; // M
  inDim: number; // K
  outDim: number; // N
}

/** The variant for this adapter: textures on software adapters, shared-memory tiles on GPUs. */
export function matmulVariant(gpu: Gpu): MatmulVariant {
  let forced: string | undefined;
  try {
    forced = Deno.env.get("STAR_MATMUL");
  } catch { /* no env permission: choose by adapter */ }
  if (forced) {
    if (!(MATMUL_VARIANTS as readonly string[]).includes(forced)) {
      throw new RangeError(
        `STAR_MATMUL must be one of ${MATMUL_VARIANTS.join(", ")}, got "${forced}"`,
      );
    }
    return forced as MatmulVariant;
  }
  return gpu.isFallback ? "texture" : "tiled";
}

// ---- float64 references --------------------------------------------------------------------

/** y (M, N) = x (M, K) · wᵀ (+ bias (N)), w (N, K). */
export function matmulForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  { rows, inDim, outDim }: MatmulShape,
  bias?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < outDim; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < inDim; k++) s += x[m * inDim + k] * w[n * inDim + k];
      y[m * outDim + n] = s;
    }
  }
  return y;
}

/**
 * dx (M, K) = dy (M, N) · w, dw (N, K) = dyᵀ · x and dBias (N) = Σ_m dy (the products alone;
 * the kernels add dw and dBias to what is there).
 */
export function matmulBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  { rows, inDim, outDim }: MatmulShape,
): { dx: Float64Array; dw: Float64Array; dBias: Float64Array } {
  const dx = new Float64Array(rows * inDim);
  const dw = new Float64Array(outDim * inDim);
  const dBias = new Float64Array(outDim);
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < outDim; n++) {
      const g = dy[m * outDim + n];
      dBias[n] += g;
      for (let k = 0; k < inDim; k++) {
        dx[m * inDim + k] += g * w[n * inDim + k];
        dw[n * inDim + k] += g * x[m * inDim + k];
      }
    }
  }
  return { dx, dw, dBias };
}

// ---- GPU wrappers --------------------------------------------------------------------------

/** A weight packed once into the forward B texture (Wᵀ, K rows of N/4 texels) for decode. */
export interface PackedWeight {
  texture: GPUTexture;
  inDim: number;
  outDim: number;
}

export interface MatmulForwardArgs extends MatmulShape {
  y: Tensor; // (M, N) f32
  x: Tensor; // (M, K) f32
  w: Tensor; // (N, K) f32 | f16 | bf16
  accumulate?: boolean; // y += x·wᵀ
  bias?: Tensor; // (N) f32, added to every row
  variant?: MatmulVariant;
  /** texture variant: use this packed copy of w instead of packing w now. */
  packed?: PackedWeight;
}

export function matmulForward(rec: Recorder, a: MatmulForwardArgs): void {
  checkShape("matmulForward", a, {
    y: [a.rows, a.outDim],
    x: [a.rows, a.inDim],
    w: [a.outDim, a.inDim],
  });
  gemm(rec, a.variant ?? matmulVariant(rec.gpu), {
    c: a.y,
    I: a.rows,
    J: a.outDim,
    C: a.inDim,
    accumulate: a.accumulate ?? false,
    a: { t: a.x, trans: false, ld: a.inDim },
    b: { t: a.w, trans: false, ld: a.inDim },
    packedB: a.packed,
  }, "forward");
  if (a.bias) biasOp(rec, "bias_add", { out: a.y, input: a.bias, I: a.rows, J: a.outDim });
}

export interface MatmulBackwardArgs extends MatmulShape {
  dy: Tensor; // (M, N) f32
  x: Tensor; // (M, K) f32, the forward input
  w: Tensor; // (N, K)
  dx?: Tensor; // (M, K) f32: overwritten, or accumulated with accumulateDx
  dw?: Tensor; // (N, K) f32: always accumulated (+=)
  dBias?: Tensor; // (N) f32: always accumulated (+=)
  accumulateDx?: boolean;
  variant?: MatmulVariant;
}

export function matmulBackward(rec: Recorder, a: MatmulBackwardArgs): void {
  const { rows: M, inDim: K, outDim: N } = a;
  checkShape("matmulBackward", a, { dy: [M, N], x: [M, K], w: [N, K] });
  const variant = a.variant ?? matmulVariant(rec.gpu);
  if (a.dx) {
    checkShape("matmulBackward", a, { dx: [M, K] });
    gemm(rec, variant, {
      c: a.dx,
      I: M,
      J: K,
      C: N,
      accumulate: a.accumulateDx ?? false,
      a: { t: a.dy, trans: false, ld: N },
      b: { t: a.w, trans: true, ld: K },
    }, "backwardInput");
  }
  if (a.dw) {
    checkShape("matmulBackward", a, { dw: [N, K] });
    if (a.dw.dtype !== "f32") {
      throw new TypeError(`dW "${a.dw.label}" must be f32, is ${a.dw.dtype}`);
    }
    gemm(rec, variant, {
      c: a.dw,
      I: N,
      J: K,
      C: M,
      accumulate: true,
      a: { t: a.dy, trans: true, ld: N },
      b: { t: a.x, trans: true, ld: K },
    }, "backwardWeight");
  }
  if (a.dBias) biasOp(rec, "bias_backward", { out: a.dBias, input: a.dy, I: M, J: N });
}

const BIAS_BINDINGS = [
  { name: "bOut", kind: "storage" as const },
  { name: "bIn", kind: "read" as const },
  { name: "bp", kind: "uniform" as const },
];

/** bias_add: out (I, J) += input (J) per row; bias_backward: out (J) += Σ_i input (I, J). */
function biasOp(
  rec: Recorder,
  entryPoint: "bias_add" | "bias_backward",
  o: { out: Tensor; input: Tensor; I: number; J: number },
): void {
  const [outN, inN] = entryPoint === "bias_add" ? [o.I * o.J, o.J] : [o.J, o.I * o.J];
  for (const [t, n] of [[o.out, outN], [o.input, inN]] as const) {
    if (t.dtype !== "f32" || t.numel !== n) {
      throw new RangeError(
        `${entryPoint}: "${t.label}" must be ${n} f32 values, is [${t.shape}] ${t.dtype}`,
      );
    }
  }
  if (outN === 0) return;
  const k = kernel(rec.gpu, {
    file: "wgsl/matmul.wgsl",
    code: MATMUL_WGSL,
    entryPoint,
    bindings: BIAS_BINDINGS,
    constants: { WG: 256 },
  });
  rec.dispatch(
    k,
    { bOut: o.out, bIn: o.input, bp: rec.uniform(new Uint32Array([o.I, o.J])) },
    grid(
      entryPoint === "bias_add" ? o.I * o.J : o.J,
      256,
    ),
  );
}

/** Packs w (N, K) into a texture for matmulForward's `packed` (texture variant, decode). */
export function packMatmulWeight(
  rec: Recorder,
  { w, inDim, outDim, into }: { w: Tensor; inDim: number; outDim: number; into?: PackedWeight },
): PackedWeight {
  checkShape("packMatmulWeight", { w }, { w: [outDim, inDim] });
  const T = rec.gpu.limits.maxTextureDimension2D;
  if (inDim > T || outDim > 4 * T) {
    throw new RangeError(
      `packMatmulWeight: "${w.label}" (${outDim}, ${inDim}) exceeds one texture; use row chunks`,
    );
  }
  const size = [Math.ceil(outDim / 4), 4 * Math.ceil(inDim / 4)];
  const texture = into?.texture ?? rec.gpu.device.createTexture({
    size,
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING,
    label: `${w.label}.packed`,
  });
  pack(rec, texture, w, { X: outDim, Y: inDim, sx: inDim, sy: 1, off: 0 });
  return { texture, inDim, outDim };
}

// ---- the generic product C[i, j] (+)= Σ_c A(i, c)·B(j, c) --------------------------------

interface Operand {
  t: Tensor;
  /** A stored (C, I) instead of (I, C); B stored (C, J) instead of (J, C). */
  trans: boolean;
  ld: number; // row stride as stored (elements)
}

interface Gemm {
  c: Tensor;
  I: number;
  J: number;
  C: number;
  accumulate: boolean;
  a: Operand;
  b: Operand;
  packedB?: PackedWeight;
}

const DTYPE_CODE: Partial<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2 };

function dtypeCode(t: Tensor): number {
  const code = DTYPE_CODE[t.dtype];
  if (code === undefined) throw new TypeError(`Matmul operand "${t.label}" has dtype ${t.dtype}`);
  return code;
}

type Entry = "forward" | "backwardInput" | "backwardWeight";

const TILED_BINDINGS = [
  { name: "c", kind: "storage" as const },
  { name: "a", kind: "read" as const },
  { name: "b", kind: "read" as const },
  { name: "p", kind: "uniform" as const },
];
const TEX_BINDINGS = [
  { name: "c", kind: "storage" as const },
  { name: "ta", kind: "texture" as const },
  { name: "tb", kind: "texture" as const },
  { name: "p", kind: "uniform" as const },
];
const PACK_BINDINGS = [
  { name: "dst", kind: "storage-texture" as const, format: "rgba32float" as const },
  { name: "src", kind: "read" as const },
  { name: "pp", kind: "uniform" as const },
];

function gemm(rec: Recorder, variant: MatmulVariant, g: Gemm, entry: Entry): void {
  if (g.a.t.dtype !== "f32" || g.c.dtype !== "f32") {
    throw new TypeError(`Matmul "${g.c.label}" needs f32 activations and output`);
  }
  if (g.I === 0 || g.J === 0) return;
  if (variant === "tiled") {
    if (g.packedB) throw new Error("A packed weight needs the texture variant");
    const k = kernel(rec.gpu, {
      file: "wgsl/matmul.wgsl",
      code: MATMUL_WGSL,
      entryPoint: entry,
      bindings: TILED_BINDINGS,
      constants: { B_DTYPE: dtypeCode(g.b.t) },
    });
    const p = new Uint32Array([g.I, g.J, g.C, g.accumulate ? 1 : 0, g.J, 0, 0, 0, g.a.ld, g.b.ld]);
    rec.dispatch(k, { c: g.c, a: g.a.t, b: g.b.t, p: rec.uniform(p) }, [
      Math.ceil(g.J / 64),
      Math.ceil(g.I / 64),
    ]);
    return;
  }
  textureGemm(rec, g);
}

/**
 * Texture variant: each operand becomes a texture of 4 consecutive contraction values per texel
 * (A always; B too in the forward, "nt") or 4 consecutive columns (B of the backward products,
 * "nn"). Only A read transposed (dY in the weight gradient) needs a transposing pack.
 * Texture sides are capped at T texels, so the product runs in blocks; contraction blocks after
 * the first accumulate.
 */
function textureGemm(rec: Recorder, g: Gemm): void {
  const gpu = rec.gpu;
  const T = gpu.limits.maxTextureDimension2D;
  const bAlongJ = g.b.trans || g.packedB !== undefined; // B stored (C, J): texels along j
  const layout = bAlongJ ? "nn" : "nt";
  const IB = Math.floor(T / 16) * 16;
  const JB = bAlongJ ? 4 * T : Math.floor(T / 16) * 16;
  const CB = bAlongJ ? Math.floor(T / 4) * 4 : 4 * T;
  if (g.packedB && (g.J > JB || g.C > CB)) throw new RangeError("Packed weight exceeds one block");
  if (g.C === 0) {
    if (!g.accumulate) rec.clear(g.c);
    return;
  }
  for (let ib = 0; ib < g.I; ib += IB) {
    const Ib = Math.min(IB, g.I - ib);
    for (let jb = 0; jb < g.J; jb += JB) {
      const Jb = Math.min(JB, g.J - jb);
      for (let cb = 0; cb < g.C; cb += CB) {
        const Cb = Math.min(CB, g.C - cb);
        const C4 = Math.ceil(Cb / 4);
        const A = g.a;
        let ta: GPUTexture;
        if (A.trans) {
          ta = scratch(gpu, "a", C4, Ib);
          pack(rec, ta, A.t, { X: Cb, Y: Ib, sx: A.ld, sy: 1, off: cb * A.ld + ib });
        } else {
          ta = operand(rec, "a", A.t, { X: Cb, Y: Ib, off: ib * A.ld + cb, ld: A.ld, height: Ib });
        }
        const B = g.b;
        const tb = g.packedB
          ? g.packedB.texture
          : bAlongJ
          ? operand(rec, "b", B.t, { X: Jb, Y: Cb, off: cb * B.ld + jb, ld: B.ld, height: 4 * C4 })
          : operand(rec, "b", B.t, { X: Cb, Y: Jb, off: jb * B.ld + cb, ld: B.ld, height: Jb });
        const tm = Ib >= 16 ? 16 : Ib >= 4 ? 4 : 1;
        const k = kernel(gpu, {
          file: "wgsl/matmul_tex.wgsl",
          code: MATMUL_TEX_WGSL,
          entryPoint: `${layout}${tm}`,
          bindings: TEX_BINDINGS,
        });
        const acc = g.accumulate || cb > 0 ? 1 : 0;
        const p = new Uint32Array([Ib, Jb, Cb, C4, acc, g.J, ib * g.J + jb]);
        rec.dispatch(k, { c: g.c, ta, tb, p: rec.uniform(p) }, [
          Math.ceil(Ib / tm),
          Math.ceil(Jb / 256),
        ]);
      }
    }
  }
}

/**
 * A scratch texture holding rows [off + y·ld, +X) of `src` for y < Y, 4 values per texel, zero
 * past X and in rows Y..height. A plain buffer-to-texture copy (~10 GB/s on llvmpipe) when the
 * layout allows it, else the pack kernel.
 */
function operand(
  rec: Recorder,
  role: string,
  src: Tensor,
  o: { X: number; Y: number; off: number; ld: number; height: number },
): GPUTexture {
  const tex = scratch(rec.gpu, role, Math.ceil(o.X / 4), o.height);
  const byteOffset = src.byteOffset + o.off * 4;
  if (
    src.dtype === "f32" && o.X % 4 === 0 && (o.ld * 4) % 256 === 0 && byteOffset % 16 === 0 &&
    o.height === o.Y
  ) {
    rec.encoder().copyBufferToTexture(
      { buffer: src.buffer, offset: byteOffset, bytesPerRow: o.ld * 4, rowsPerImage: o.Y },
      { texture: tex },
      [o.X / 4, o.Y],
    );
  } else {
    pack(rec, tex, src, { X: o.X, Y: o.Y, sx: 1, sy: o.ld, off: o.off });
  }
  return tex;
}

interface PackArgs {
  X: number;
  Y: number;
  sx: number;
  sy: number;
  off: number;
}

function pack(rec: Recorder, dst: GPUTexture, src: Tensor, a: PackArgs): void {
  const k = kernel(rec.gpu, {
    file: "wgsl/matmul.wgsl",
    code: MATMUL_WGSL,
    entryPoint: "pack",
    bindings: PACK_BINDINGS,
    constants: { SRC_DTYPE: dtypeCode(src) },
  });
  const p = new Uint32Array([a.X, a.Y, a.sx, a.sy, a.off, dst.width, dst.height]);
  rec.dispatch(k, { dst, src, pp: rec.uniform(p) }, [Math.ceil(dst.width / 64), dst.height]);
}

const scratchCache = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

/** A reusable operand texture per (role, size); work on one queue is ordered, so sharing is safe. */
function scratch(gpu: Gpu, role: string, width: number, height: number): GPUTexture {
  let m = scratchCache.get(gpu.device);
  if (!m) scratchCache.set(gpu.device, m = new Map());
  const key = `${role}:${width}x${height}`;
  let t = m.get(key);
  if (!t) {
    t = gpu.device.createTexture({
      size: [width, height],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING |
        GPUTextureUsage.COPY_DST,
      label: `matmul.scratch.${key}`,
    });
    m.set(key, t);
  }
  return t;
}

function checkShape(fn: string, args: object, want: Record<string, number[]>): void {
  for (const [name, dims] of Object.entries(want)) {
    const t = (args as Record<string, Tensor | undefined>)[name];
    if (!t) continue;
    const n = dims.reduce((x, y) => x * y, 1);
    if (t.numel !== n) {
      throw new RangeError(
        `${fn}: "${t.label}" (${name}) has shape [${t.shape}], expected [${dims}] (${n} elements)`,
      );
    }
  }
}

// ---- self-test for `star info` --------------------------------------------------------------

/** Forward and both backward products on awkward shapes, f32 and bf16 weights, this adapter's variant. */
export const matmulSelfTest = {
  name: "matmul",
  async run(gpu: Gpu): Promise<{ maxRelErr: number; tolerance: number; detail: string }> {
    const variant = matmulVariant(gpu);
    const rec = new Recorder(gpu, "self-test.matmul");
    let worst = 0;
    for (const [M, K, N, dtype] of [[5, 37, 70, "f32"], [9, 130, 9, "bf16"]] as const) {
      const s = { rows: M, inDim: K, outDim: N };
      const rnd = (n: number, seed: number) =>
        Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.5);
      const x = rnd(M * K, 1), w = rnd(N * K, 2), dy = rnd(M * N, 3);
      const t = (
        shape: number[],
        data: Float32Array | undefined,
        label: string,
        dt: DType = "f32",
      ) =>
        createTensor(gpu, {
          shape,
          dtype: dt,
          label,
          data: data ?? new Float32Array(shape[0] * shape[1]),
        });
      const tx = t([M, K], x, "x"), tw = t([N, K], w, "w", dtype);
      const ty = t([M, N], undefined, "y"),
        tdx = t([M, K], undefined, "dx"),
        tdw = t([N, K], undefined, "dw");
      matmulForward(rec, { y: ty, x: tx, w: tw, ...s, variant });
      matmulBackward(rec, {
        dx: tdx,
        dw: tdw,
        dy: t([M, N], dy, "dy"),
        x: tx,
        w: tw,
        ...s,
        variant,
      });
      rec.submit();
      const wq = await readTensor(gpu, tw); // the weights as stored (bf16-rounded)
      const ref = matmulBackwardRef(dy, x, wq, s);
      worst = Math.max(
        worst,
        relErr(await readTensor(gpu, ty), matmulForwardRef(x, wq, s)),
        relErr(await readTensor(gpu, tdx), ref.dx),
        relErr(await readTensor(gpu, tdw), ref.dw),
      );
    }
    return { maxRelErr: worst, tolerance: 1e-5, detail: `variant ${variant}` };
  },
};
