/**
 * GPU tensors: a shape, a dtype and a window (byteOffset, byteSize) of a GPU buffer.
 * f16 and bf16 are packed two per u32 (kernels bind them as array<u32> and unpack);
 * they are uploaded from and read back as f32. A tensor larger than the storage-binding
 * limit (a 151936 x 1024 vocabulary table) is one buffer bound in row chunks: `rowChunks()`
 * returns views of whole rows, each within the limit and on the binding alignment.
 */
import type { Gpu } from "./device.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./_half.ts";

export type DType = "f32" | "f16" | "bf16" | "u32" | "i32";

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, u32: 4, i32: 4 };

const TENSOR_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class Tensor {
  readonly numel: number;
  /** Bytes of the data, rounded up to 4 (an odd-length f16 tensor ends with a pad half). */
  readonly byteSize: number;

  constructor(
    readonly shape: number[],
    readonly dtype: DType,
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    readonly label: string,
    /** The view owns its buffer (created by createTensor), so releaseTensor may pool it. */
    readonly owner = false,
  ) {
    this.numel = shape.reduce((a, b) => a * b, 1);
    this.byteSize = Math.ceil((this.numel * DTYPE_BYTES[dtype]) / 4) * 4;
  }

  /** Elements per row: the product of all dims but the first. */
  get rowSize(): number {
    return this.shape.length <= 1 ? 1 : this.numel / this.shape[0];
  }

  /** A view of rows [start, start + count) sharing the buffer. */
  rows(start: number, count: number, label = `${this.label}[${start}:${start + count}]`): Tensor {
    const rowBytes = this.rowSize * DTYPE_BYTES[this.dtype];
    if (start < 0 || count < 0 || start + count > this.shape[0]) {
      throw new RangeError(
        `Rows ${start}..${start + count} are outside "${this.label}" ${this.shape}`,
      );
    }
    if ((start * rowBytes) % 4 !== 0) {
      throw new RangeError(`Row ${start} of "${this.label}" does not start on a 4-byte boundary`);
    }
    return new Tensor(
      [count, ...this.shape.slice(1)],
      this.dtype,
      this.buffer,
      this.byteOffset + start * rowBytes,
      label,
    );
  }

  /** The same bytes under another shape with as many elements. */
  reshape(shape: number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) {
      throw new RangeError(`Cannot reshape "${this.label}" ${this.shape} to ${shape}`);
    }
    return new Tensor(shape, this.dtype, this.buffer, this.byteOffset, this.label);
  }

  /** The binding resource of the whole view. */
  get binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.byteOffset, size: this.byteSize };
  }
}

export interface TensorOptions {
  shape: number[];
  dtype: DType;
  label: string;
  data?: ArrayBufferView | ArrayLike<number>;
  /** Allow more bytes than one storage binding holds; the tensor is then used via rowChunks(). */
  chunked?: boolean;
}

/** A tensor in a (pooled) buffer of its own, optionally filled with `data`. */
export function createTensor(gpu: Gpu, opts: TensorOptions): Tensor {
  const { shape, dtype, label } = opts;
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`Tensor "${label}" has a bad shape [${shape}]`);
  }
  const probe = new Tensor(shape, dtype, undefined as unknown as GPUBuffer, 0, label);
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (probe.byteSize > limit && !opts.chunked) {
    throw new RangeError(
      `Tensor "${label}" [${shape}] ${dtype} is ${probe.byteSize} bytes, over the ${limit}-byte ` +
        `storage binding limit; create it with chunked: true and bind it by rowChunks()`,
    );
  }
  if (probe.byteSize > gpu.limits.maxBufferSize) {
    throw new RangeError(
      `Tensor "${label}" [${shape}] ${dtype} is ${probe.byteSize} bytes, over the ` +
        `${gpu.limits.maxBufferSize}-byte buffer limit of this adapter`,
    );
  }
  const buffer = gpu.pool.acquire(probe.byteSize, TENSOR_USAGE, label);
  const t = new Tensor(shape, dtype, buffer, 0, label, true);
  if (opts.data) writeTensor(gpu, t, opts.data);
  return t;
}

/** Returns the tensor's buffer to the pool; the tensor must not be used afterwards. */
export function releaseTensor(gpu: Gpu, t: Tensor): void {
  if (!t.owner) throw new Error(`"${t.label}" is a view; release the tensor that owns the buffer`);
  gpu.pool.release(t.buffer);
}

/**
 * Views of whole rows covering `t`, each at most `maxBytes` (default: the binding limit) and
 * starting on the storage-offset alignment, so each can be bound on its own.
 */
export function rowChunks(gpu: Gpu, t: Tensor, maxBytes?: number): Tensor[] {
  const limit = Math.min(maxBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize);
  const rowBytes = t.rowSize * DTYPE_BYTES[t.dtype];
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  let rowsPer = Math.floor(limit / rowBytes);
  // a chunk's byte length must keep the next chunk's start aligned
  const step = align / gcd(align, rowBytes);
  rowsPer = Math.floor(rowsPer / step) * step;
  if (rowsPer < 1) {
    throw new RangeError(
      `One row of "${t.label}" (${rowBytes} bytes) does not fit a binding of ${limit}`,
    );
  }
  if (t.byteOffset % align !== 0) {
    throw new RangeError(
      `"${t.label}" starts at ${t.byteOffset}, not on the ${align}-byte alignment`,
    );
  }
  const out: Tensor[] = [];
  for (let r = 0; r < t.shape[0]; r += rowsPer) {
    out.push(t.rows(r, Math.min(rowsPer, t.shape[0] - r)));
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Host data to the tensor's bytes: numbers are converted for f16/bf16, raw views copied as is. */
export function encodeData(
  dtype: DType,
  data: ArrayBufferView | ArrayLike<number>,
  numel: number,
): Uint8Array {
  const isFloatView = data instanceof Float32Array || data instanceof Float64Array ||
    Array.isArray(data);
  let bytes: Uint8Array;
  if ((dtype === "f16" || dtype === "bf16") && isFloatView) {
    const src = data as ArrayLike<number>;
    const h = new Uint16Array(src.length + (src.length & 1));
    const conv = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < src.length; i++) h[i] = conv(src[i]);
    bytes = new Uint8Array(h.buffer);
  } else if (ArrayBuffer.isView(data)) {
    bytes = dtype === "f32" && data instanceof Float64Array
      ? new Uint8Array(Float32Array.from(data).buffer)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    const arr = dtype === "u32"
      ? Uint32Array.from(data)
      : dtype === "i32"
      ? Int32Array.from(data)
      : Float32Array.from(data);
    bytes = new Uint8Array(arr.buffer);
  }
  const want = Math.ceil((numel * DTYPE_BYTES[dtype]) / 4) * 4;
  if (Math.ceil(bytes.byteLength / 4) * 4 !== want) {
    throw new RangeError(
      `Expected ${numel} ${dtype} values (${want} bytes), got ${bytes.byteLength} bytes`,
    );
  }
  if (bytes.byteLength !== want) {
    const padded = new Uint8Array(want);
    padded.set(bytes);
    bytes = padded;
  }
  return bytes;
}

export function writeTensor(gpu: Gpu, t: Tensor, data: ArrayBufferView | ArrayLike<number>): void {
  const bytes = encodeData(t.dtype, data, t.numel);
  gpu.device.queue.writeBuffer(t.buffer, t.byteOffset, bytes as Uint8Array<ArrayBuffer>);
}

/** Copies the tensor to the host (one submit and one wait). f16/bf16 come back as f32. */
export async function readTensor(
  gpu: Gpu,
  t: Tensor,
): Promise<Float32Array | Uint32Array | Int32Array> {
  const staging = gpu.device.createBuffer({
    size: t.byteSize,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: `${t.label}.readback`,
  });
  const enc = gpu.device.createCommandEncoder({ label: `read ${t.label}` });
  enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, 0, t.byteSize);
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return decodeData(t.dtype, raw, t.numel);
}

export function decodeData(
  dtype: DType,
  raw: ArrayBuffer,
  numel: number,
): Float32Array | Uint32Array | Int32Array {
  if (dtype === "f32") return new Float32Array(raw, 0, numel);
  if (dtype === "u32") return new Uint32Array(raw, 0, numel);
  if (dtype === "i32") return new Int32Array(raw, 0, numel);
  const h = new Uint16Array(raw, 0, numel);
  const out = new Float32Array(numel);
  const conv = dtype === "f16" ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < numel; i++) out[i] = conv(h[i]);
  return out;
}
