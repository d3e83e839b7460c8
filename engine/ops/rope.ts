/**
 * Rotary position embedding, rotate-half convention (HF Qwen3): for i < E/2 with angle
 * a = pos·θ^(−2i/E), out[i] = x[i]·cos a − x[i+E/2]·sin a and out[i+E/2] = x[i+E/2]·cos a +
 * x[i]·sin a. The angle is rounded to f32 as HF computes it; cos/sin come from a table built
 * once per (θ, E) so the kernel needs no transcendental and no range reduction.
 * Legend: T tokens, H heads (q or kv heads), E head_dim, P table positions.
 */
import code from "../../wgsl/rope.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

export interface RopeShape {
  tokens: number;
  heads: number;
  headDim: number;
  /** Added to every position id (the KV-cache offset when positions are 0-based per chunk). */
  posOffset?: number;
}

/** inv_freq[i] = 1 / θ^(2i/E), in f32 as HF computes it. */
export function ropeInvFreq(theta: number, headDim: number): Float32Array {
  const half = headDim >> 1;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    out[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim)));
  }
  return out;
}

/** Angle of pair i at position p, rounded to f32 like HF's f32 outer product. */
function angle(invFreq: Float32Array, p: number, i: number): number {
  return Math.fround(Math.fround(p) * invFreq[i]);
}

/** cos/sin table (P, E/2, 2) as f32: entry [p, i] = (cos a, sin a). */
export function ropeTable(
  { theta, headDim, positions }: { theta: number; headDim: number; positions: number },
): Float32Array {
  const half = headDim >> 1;
  const inv = ropeInvFreq(theta, headDim);
  const out = new Float32Array(positions * half * 2);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = angle(inv, p, i);
      out[(p * half + i) * 2] = Math.cos(a);
      out[(p * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return out;
}

function rotate(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  theta: number,
  { tokens, heads, headDim, posOffset = 0 }: RopeShape,
  sign: number,
): Float64Array {
  const half = headDim >> 1;
  const inv = ropeInvFreq(theta, headDim);
  const out = new Float64Array(tokens * heads * headDim);
  for (let t = 0; t < tokens; t++) {
    const p = positions[t] + posOffset;
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = angle(inv, p, i);
        const c = Math.cos(a), s = sign * Math.sin(a);
        const x1 = x[base + i], x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

/** Float64 reference forward over x (T, H, E) with position ids (T). */
export function ropeForwardRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  theta: number,
  shape: RopeShape,
): Float64Array {
  return rotate(x, positions, theta, shape, 1);
}

/** Float64 reference backward: the rotation is orthogonal, so dx is dy rotated by −angle. */
export function ropeBackwardRef(
  dy: ArrayLike<number>,
  positions: ArrayLike<number>,
  theta: number,
  shape: RopeShape,
): Float64Array {
  return rotate(dy, positions, theta, shape, -1);
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 64;
const ropeKernel = family("wgsl/rope.wgsl", code, {
  forward: ["params:uniform", "x:storage", "positions:read", "table:read"],
  backward: ["params:uniform", "x:storage", "positions:read", "table:read"],
});

function ropeDispatch(
  rec: Recorder,
  entry: string,
  o: { x: Tensor; positions: Tensor; table: Tensor } & RopeShape,
): void {
  const half = o.headDim >> 1;
  if (o.headDim !== 2 * half) {
    throw new RangeError(`Rotary head_dim must be even, got ${o.headDim}`);
  }
  need(o.x, "Rotary input", o.tokens * o.heads * o.headDim);
  need(o.positions, "Rotary position ids", o.tokens, "u32");
  if (o.table.numel % (2 * half) !== 0) {
    throw new RangeError(`Rotary table "${o.table.label}" is not (P, ${half}, 2)`);
  }
  const n = o.tokens * o.heads * half;
  rec.dispatch(
    ropeKernel(rec, entry, { WG }),
    {
      params: params(rec, {
        tokens: o.tokens,
        heads: o.heads,
        half,
        posOffset: o.posOffset ?? 0,
      }),
      x: o.x,
      positions: o.positions,
      table: o.table,
    },
    grid(n, WG),
  );
}

/**
 * Rotates x (T, H, E) in place by the angles of positions[t] + posOffset; `table` is
 * ropeTable() uploaded as f32 (P, E/2, 2) and must cover every position used.
 */
export function ropeForward(
  rec: Recorder,
  o: { x: Tensor; positions: Tensor; table: Tensor } & RopeShape,
): void {
  ropeDispatch(rec, "forward", o);
}

/** dx = rotation of dy by −angle, in place on `dx` (which holds dy on entry), (T, H, E). */
export function ropeBackward(
  rec: Recorder,
  o: { dx: Tensor; positions: Tensor; table: Tensor } & RopeShape,
): void {
  ropeDispatch(rec, "backward", { ...o, x: o.dx });
}
