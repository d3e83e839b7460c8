/**
 * The WebGPU engine: device set-up, GPU tensors, cached kernels and the dispatch recorder.
 * Kernel families live in engine/ops/<family>.ts with their WGSL in wgsl/<family>.wgsl.
 */
export { checkErrors, getGpu, type Gpu, GpuError, GpuUnavailableError, hasGpu } from "./device.ts";
export {
  createTensor,
  type DType,
  DTYPE_BYTES,
  readTensor,
  releaseTensor,
  rowChunks,
  Tensor,
  type TensorOptions,
  writeTensor,
} from "./tensor.ts";
export {
  type BindingKind,
  type BindingSpec,
  type Kernel,
  kernel,
  type KernelSpec,
} from "./kernel.ts";
export { grid, Recorder, type Resource } from "./recorder.ts";
export { type HostData, readMany } from "./readback.ts";
export { BufferPool } from "./pool.ts";
export { debugLevel, debugLog } from "./_debug.ts";
