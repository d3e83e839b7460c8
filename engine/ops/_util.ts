/**
 * Small helpers shared by the kernel wrappers: a Params uniform from named fields, shape checks
 * that name the tensor, and the loop budget of the software adapter. Kept private to engine/ops.
 */
import { type BindingKind, type BindingSpec, type Kernel, kernel } from "../kernel.ts";
import { grid, type Recorder } from "../recorder.ts";
import type { DType, Tensor } from "../tensor.ts";

/**
 * A uniform holding the fields in order as 4-byte words (u32 unless named in `floats`, i32 when
 * named in `ints`), padded to 16 bytes: mirrors a WGSL `struct Params` of u32/f32 members.
 */
export function params(
  rec: Recorder,
  fields: Record<string, number>,
  floats: readonly string[] = [],
  ints: readonly string[] = [],
): GPUBufferBinding {
  const keys = Object.keys(fields);
  const buf = new ArrayBuffer(Math.max(16, Math.ceil(keys.length / 4) * 16));
  const view = new DataView(buf);
  keys.forEach((k, i) => {
    const v = fields[k];
    if (floats.includes(k)) view.setFloat32(i * 4, v, true);
    else if (ints.includes(k)) view.setInt32(i * 4, v, true);
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new RangeError(`Kernel parameter "${k}" must be a u32, got ${v}`);
      }
      view.setUint32(i * 4, v, true);
    }
  });
  return rec.uniform(new Uint8Array(buf));
}

/**
 * Mesa's software adapter (llvmpipe) silently ends an invocation's loops after 65535 iterations
 * in all (its guard against endless loops; every iteration of every loop, nested ones included,
 * counts once for the invocation), so a kernel whose invocations loop over data-sized ranges cuts
 * them into parts that keep every invocation's count, at worst and by loopCost(), below this.
 */
export const LOOP_BUDGET = 60000;

/**
 * What one run of an n-iteration loop costs against the guard: the final test that leaves the
 * loop counts as an iteration too, and a loop nested two deep was measured at about one more.
 */
export function loopCost(n: number): number {
  return n + 2;
}

/** Throws unless the tensor has at least `numel` elements of the given dtype. */
export function need(t: Tensor, what: string, numel: number, dtype: DType = "f32"): void {
  if (t.dtype !== dtype) {
    throw new TypeError(`${what} "${t.label}" must be ${dtype}, got ${t.dtype}`);
  }
  if (t.numel < numel) {
    throw new RangeError(
      `${what} "${t.label}" [${t.shape}] has ${t.numel} elements, needs ${numel}`,
    );
  }
}

/** Binding specs from "name:kind" strings, in @binding order. */
export function bindings(...specs: string[]): BindingSpec[] {
  return specs.map((s) => {
    const [name, kind] = s.split(":");
    return { name, kind: kind as BindingKind };
  });
}

/** A kernel of one WGSL family with its entry points' binding lists. */
export function family(
  file: string,
  code: string,
  entries: Record<string, string[]>,
): (rec: Recorder, entryPoint: string, constants?: Record<string, number>) => Kernel {
  return (rec, entryPoint, constants) => {
    const list = entries[entryPoint];
    if (!list) throw new Error(`${file} has no entry point "${entryPoint}"`);
    return kernel(rec.gpu, { file, code, entryPoint, constants, bindings: bindings(...list) });
  };
}

/** Grid for (rows, cols) element kernels: x over column blocks of wg, rows folded into y and z. */
export function rowColGrid(rows: number, cols: number, wg: number): [number, number, number] {
  return [Math.ceil(cols / wg), ...grid(rows, 1)];
}

/** max |a − ref| / max |ref| (scale-relative, as matmul and reduction rounding are); NaN counts as infinitely wrong. */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let err = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale > 0 ? err / scale : err;
}
