/**
 * Casts between f32, f16 and bf16. f16 and bf16 are stored packed two per u32 (element 2i in the
 * low half). f32 → f16 and f32 → bf16 round to nearest even; NaN stays NaN, overflow gives ±inf.
 */
import code from "../../wgsl/cast.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, params } from "./_util.ts";

/** Float64 reference: f32 value → f16 bits, round to nearest even. */
export function f32ToF16BitsRef(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const a = Math.abs(f[0]);
  if (a >= 65520) return sign | 0x7c00; // rounds up past the largest finite f16 (65504)
  // Exact arithmetic in float64: scale so the f16 ulp becomes 1, round half to even.
  const e = a === 0 ? -24 : Math.max(Math.floor(Math.log2(a)), -14);
  let ulp = 2 ** (e - 10);
  if (a / ulp >= 2048) ulp *= 2; // log2 rounding at a power of two
  const q = a / ulp;
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  const v = r * ulp;
  if (v === 0) return sign;
  // Encode v (exactly representable in f16 now).
  const e2 = Math.max(Math.floor(Math.log2(v)), -14);
  if (e2 === -14 && v < 2 ** -14) return sign | Math.round(v / 2 ** -24);
  return sign | ((e2 + 15) << 10) | (Math.round(v / 2 ** (e2 - 10)) - 1024);
}

/** Float64 reference: f32 value → bf16 bits, round to nearest even. */
export function f32ToBf16BitsRef(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  const lo = b & 0xffff, hi = b >>> 16;
  const up = lo > 0x8000 || (lo === 0x8000 && (hi & 1) === 1);
  return (hi + (up ? 1 : 0)) & 0xffff;
}

/** f16 bits → value. */
export function f16BitsToF32Ref(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** bf16 bits → value. */
export function bf16BitsToF32Ref(h: number): number {
  return new Float32Array(new Uint32Array([(h & 0xffff) << 16]).buffer)[0];
}

/** Packs 16-bit values two per u32 (element 2i low). */
export function pack16(bits: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(bits.length / 2));
  for (let i = 0; i < bits.length; i++) out[i >> 1] |= (bits[i] & 0xffff) << (16 * (i & 1));
  return out;
}

/** Unpacks n 16-bit values from u32 words. */
export function unpack16(words: Uint32Array, n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (words[i >> 1] >>> (16 * (i & 1))) & 0xffff;
  return out;
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
type Float = "f32" | "f16" | "bf16";
const IO = ["params:uniform", "src:read", "dst:storage"];
const castKernel = family("wgsl/cast.wgsl", code, {
  f32_to_f16: IO,
  f32_to_bf16: IO,
  f16_to_f32: IO,
  bf16_to_f32: IO,
  f16_to_bf16: IO,
  bf16_to_f16: IO,
});

/**
 * dst = src converted to dst's dtype (f32, f16 or bf16; same element count); tensors larger
 * than one binding are processed in windows.
 */
export function castForward(rec: Recorder, o: { dst: Tensor; src: Tensor }): void {
  const from = o.src.dtype as Float, to = o.dst.dtype as Float;
  for (const d of [from, to]) {
    if (d !== "f32" && d !== "f16" && d !== "bf16") {
      throw new TypeError(`Cannot cast ${from} to ${to}: only f32, f16 and bf16`);
    }
  }
  if (o.src.numel !== o.dst.numel) {
    throw new RangeError(
      `Cannot cast "${o.src.label}" [${o.src.shape}] to "${o.dst.label}" [${o.dst.shape}]`,
    );
  }
  if (from === to) {
    rec.copy(o.src, o.dst);
    return;
  }
  // Tensors over the binding limit (a vocabulary table) are cast in aligned element windows.
  const { maxStorageBufferBindingSize: limit, minStorageBufferOffsetAlignment: align } =
    rec.gpu.limits;
  const step = Math.max(2, align / 2);
  const per = Math.floor(limit / 4 / step) * step;
  const n = o.src.numel;
  const src = o.src.reshape([n]), dst = o.dst.reshape([n]);
  for (let start = 0; start < n; start += per) {
    const count = Math.min(per, n - start);
    const whole = count === n;
    rec.dispatch(
      castKernel(rec, `${from}_to_${to}`, { WG }),
      {
        params: params(rec, { n: count }),
        src: whole ? o.src : src.rows(start, count),
        dst: whole ? o.dst : dst.rows(start, count),
      },
      grid(Math.ceil(count / 2), WG),
    );
  }
}

/** The gradient of a cast is the cast back: dSrc = dDst in dSrc's dtype. */
export function castBackward(rec: Recorder, o: { dSrc: Tensor; dDst: Tensor }): void {
  castForward(rec, { dst: o.dSrc, src: o.dDst });
}
