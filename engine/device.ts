/**
 * Adapter and device set-up: one device per process, asking for the adapter's maxima of the
 * limits our kernels depend on and for `shader-f16` / `timestamp-query` when present.
 * Every GPU validation error (also the silent kind: an over-limit dispatch is skipped and
 * leaves stale output) is collected and turned into a thrown error by `checkErrors()`.
 */
import { debugLog } from "./_debug.ts";
import { BufferPool } from "./pool.ts";

/** No adapter or no device: a user-facing error (exit code 1) that says what to install. */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
  readonly exitCode = 1;
}

/** A validation, out-of-memory or internal GPU error, with where it came from when known. */
export class GpuError extends Error {
  override name = "GpuError";
}

export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: GPUAdapterInfo;
  /** The adapter is a software rasteriser (llvmpipe / lavapipe / WARP / SwiftShader). */
  isFallback: boolean;
  features: Set<string>;
  /** The limits the device was created with (the adapter maxima we asked for). */
  limits: GPUSupportedLimits;
  hasF16: boolean;
  hasTimestamps: boolean;
  /** Reused allocations, shared by every tensor and scratch texture of this device. */
  pool: BufferPool;
  /** Errors seen since the last checkErrors(); pending error scopes of pipeline creation. */
  errors: string[];
  pending: Promise<void>[];
}

const INSTALL_HINT = "install a GPU driver with Vulkan, Metal or DirectX 12 support; " +
  "without a GPU, Debian/Ubuntu's software adapter works: apt-get install mesa-vulkan-drivers";

let gpuPromise: Promise<Gpu> | undefined;

/** The process's device, created on first use. Throws GpuUnavailableError without an adapter. */
export function getGpu(): Promise<Gpu> {
  gpuPromise ??= createGpu();
  return gpuPromise;
}

/** True when a device can be created (for test gating); never throws. */
export async function hasGpu(): Promise<boolean> {
  try {
    await getGpu();
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves when no GPU error happened since the last call; otherwise rejects with all of them.
 * Waits for the error scopes of pipelines created so far (their compile errors carry
 * file:line:col) and for the queue, so errors raised by submitted work have arrived.
 */
export async function checkErrors(gpu?: Gpu): Promise<void> {
  const g = gpu ?? await getGpu();
  while (g.pending.length) await Promise.all(g.pending.splice(0));
  await g.device.queue.onSubmittedWorkDone();
  if (g.errors.length) {
    const all = g.errors.splice(0);
    throw new GpuError(
      all.length === 1 ? all[0] : `${all.length} GPU errors:\n${all.join("\n")}`,
    );
  }
}

async function createGpu(): Promise<Gpu> {
  const gpuApi = (globalThis.navigator as { gpu?: GPU }).gpu;
  if (!gpuApi) {
    throw new GpuUnavailableError(`WebGPU is not available in this runtime; ${INSTALL_HINT}`);
  }
  quietMesaRuntimeDirWarning();
  const adapter = await gpuApi.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuUnavailableError(`No GPU adapter was found; ${INSTALL_HINT}`);
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    // Weight matrices and activation chunks are bound whole: 128 MiB on llvmpipe, often
    // 2-4 GiB on GPUs; the default 128 MiB would split tensors needlessly on a GPU.
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    // A vocabulary table (151936 x 1024 f32 = 622 MB) lives in one buffer bound in windows;
    // the default is 256 MiB.
    maxBufferSize: a.maxBufferSize,
    // Fused kernels (attention backward, AdamW) bind more than the default 8 buffers.
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    // Tiled matmul / attention keep tiles in workgroup memory (default 16 KiB).
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    // Reductions over a row use up to 1024 invocations (default 256).
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    // Matmul operands in textures are K/4 x M texels; the default 8192 caps M and K.
    maxTextureDimension2D: a.maxTextureDimension2D,
    // Matmul operands and outputs as storage textures (pack and texture-output kernels).
    maxStorageTexturesPerShaderStage: a.maxStorageTexturesPerShaderStage,
    maxSampledTexturesPerShaderStage: a.maxSampledTexturesPerShaderStage,
    // Row-chunk views must start on this alignment; the smaller the finer the chunks.
    minStorageBufferOffsetAlignment: a.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: a.minUniformBufferOffsetAlignment,
    // Grid size: grid() folds into 2-D, but a bigger x still means fewer folds.
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  const wanted: GPUFeatureName[] = ["shader-f16", "timestamp-query"];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: "star" });
  } catch (err) {
    throw new GpuUnavailableError(
      `The GPU adapter refused a device: ${(err as Error).message}; ${INSTALL_HINT}`,
    );
  }
  const info = adapter.info;
  const isFallback = Boolean(
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  ) || /llvmpipe|lavapipe|swiftshader|warp/i.test(`${info.description} ${info.device}`);
  const gpu: Gpu = {
    adapter,
    device,
    info,
    isFallback,
    features: new Set(device.features),
    limits: device.limits,
    hasF16: device.features.has("shader-f16"),
    hasTimestamps: device.features.has("timestamp-query"),
    pool: new BufferPool(device),
    errors: [],
    pending: [],
  };
  device.addEventListener("uncapturederror", (ev) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    gpu.errors.push(`${e.constructor?.name ?? "GPUError"}: ${e.message.trim()}`);
    debugLog(1, "uncaptured GPU error:", e.message);
  });
  device.lost.then((l) => {
    if (l.reason !== "destroyed") gpu.errors.push(`GPU device lost: ${l.message}`);
  });
  debugLog(1, `adapter: ${info.description || info.device} (${info.vendor})`, {
    fallback: isFallback,
    features: [...gpu.features],
  });
  debugLog(1, "limits:", requiredLimits);
  return gpu;
}

/**
 * Mesa's drivers print "XDG_RUNTIME_DIR is invalid or not set" on every start when the variable
 * is missing (containers, CI, ssh without a session). They only want a private folder, so give
 * them one private 0700 folder per user under TMPDIR before the adapter is enumerated.
 */
function quietMesaRuntimeDirWarning(): void {
  if (Deno.build.os !== "linux") return;
  try {
    const dir = Deno.env.get("XDG_RUNTIME_DIR");
    if (dir && Deno.statSync(dir).isDirectory) return;
    const tmp = Deno.env.get("TMPDIR") || "/tmp";
    const own = `${tmp}/star-runtime-${Deno.uid() ?? 0}`;
    Deno.mkdirSync(own, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", own);
  } catch {
    // Without env or write permission the warning stays; nothing else depends on it.
  }
}
