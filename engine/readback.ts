/**
 * Reading results back: what a Recorder holds is submitted together with copies of some tensors
 * into one staging buffer, then one wait. A step's scalars (loss parts, the gradient norm) and a
 * decode step's chosen tokens come back this way, so a step costs one round trip.
 * f32 comes back as Float32Array, u32 as Uint32Array, i32 as Int32Array, f16/bf16 as f32.
 */
import { checkErrors } from "./device.ts";
import type { Recorder } from "./recorder.ts";
import { decodeData, type Tensor } from "./tensor.ts";

export type HostData = Float32Array | Uint32Array | Int32Array;

export async function readMany(rec: Recorder, tensors: Tensor[]): Promise<HostData[]> {
  const gpu = rec.gpu;
  const offsets: number[] = [];
  let size = 0;
  for (const t of tensors) {
    offsets.push(size);
    size += Math.ceil(t.byteSize / 8) * 8;
  }
  const staging = gpu.device.createBuffer({
    size: Math.max(size, 8),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: "readMany",
  });
  const enc = rec.encoder();
  tensors.forEach((t, i) =>
    enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, offsets[i], t.byteSize)
  );
  rec.submit();
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange();
  const out = tensors.map((t, i) => {
    const bytes = raw.slice(offsets[i], offsets[i] + t.byteSize);
    return decodeData(t.dtype, bytes, t.numel);
  });
  staging.unmap();
  staging.destroy();
  await checkErrors(gpu);
  return out;
}
