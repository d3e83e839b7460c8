/**
 * Compute pipelines from plain WGSL files. A kernel is cached by (file, entryPoint, constants,
 * header); its bind-group layout is declared explicitly, one entry per @binding in order,
 * never 'auto', so a wrapper and its WGSL must agree. Compile and validation errors are
 * collected by an error scope and reported by checkErrors() as file:line:col.
 */
import { debugLevel, debugLog } from "./_debug.ts";
import type { Gpu } from "./device.ts";

export type BindingKind = "storage" | "read" | "uniform" | "texture" | "storage-texture";

export interface BindingSpec {
  /** The WGSL variable's name, for error messages and for Recorder.dispatch's resources. */
  name: string;
  kind: BindingKind;
  /** storage-texture only: the texel format (default rgba32float). */
  format?: GPUTextureFormat;
}

export interface KernelSpec {
  /** The WGSL file name, used as label and cache key, e.g. "wgsl/matmul.wgsl". */
  file: string;
  code: string;
  entryPoint: string;
  bindings: BindingSpec[];
  constants?: Record<string, number>;
  /** At most one line prepended to the source, e.g. "enable f16;". */
  header?: string;
}

export interface Kernel {
  label: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: BindingSpec[];
}

interface Cache {
  modules: Map<string, GPUShaderModule>;
  kernels: Map<string, Kernel>;
}
const caches = new WeakMap<GPUDevice, Cache>();

/** A (cached) compute pipeline for one entry point of a WGSL file. */
export function kernel(gpu: Gpu, spec: KernelSpec): Kernel {
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, cache = { modules: new Map(), kernels: new Map() });
  const header = spec.header ?? "";
  if (header.includes("\n")) throw new Error(`Kernel header for "${spec.file}" must be one line`);
  const constants = spec.constants ?? {};
  const constKey = Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(",");
  const key = `${spec.file}\0${spec.entryPoint}\0${constKey}\0${header}`;
  const hit = cache.kernels.get(key);
  if (hit) return hit;

  const device = gpu.device;
  const label = `${spec.file.replace(/^.*\//, "").replace(/\.wgsl$/, "")}.${spec.entryPoint}`;
  const modKey = `${spec.file}\0${header}`;
  let module = cache.modules.get(modKey);
  device.pushErrorScope("validation");
  if (!module) {
    const code = header ? `${header}\n${spec.code}` : spec.code;
    if (debugLevel() >= 3) debugLog(3, `WGSL ${spec.file}:\n${code}`);
    module = device.createShaderModule({ code, label: spec.file });
    cache.modules.set(modKey, module);
  }
  const layout = device.createBindGroupLayout({
    label,
    entries: spec.bindings.map((b, i) => layoutEntry(b, i)),
  });
  const pipeline = device.createComputePipeline({
    label,
    layout: device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: spec.entryPoint, constants },
  });
  const scope = device.popErrorScope();
  const mod = module;
  gpu.pending.push(scope.then(async (err) => {
    if (!err) return;
    let where = "";
    try {
      const info = await mod.getCompilationInfo();
      const shift = header ? 1 : 0;
      where = info.messages
        .filter((m) => m.type === "error")
        .map((m) => `\n  ${spec.file}:${m.lineNum - shift}:${m.linePos}: ${firstLine(m.message)}`)
        .join("");
    } catch { /* compilation info unavailable: the scope's message is all we have */ }
    gpu.errors.push(
      `Cannot build kernel "${label}" (${spec.file}, entry point "${spec.entryPoint}"):` +
        (where || ` ${err.message.trim()}`),
    );
  }));
  const k: Kernel = { label, pipeline, layout, bindings: spec.bindings };
  cache.kernels.set(key, k);
  return k;
}

function firstLine(msg: string): string {
  return msg.trim().split("\n")[0];
}

function layoutEntry(b: BindingSpec, binding: number): GPUBindGroupLayoutEntry {
  const visibility = GPUShaderStage.COMPUTE;
  switch (b.kind) {
    case "storage":
      return { binding, visibility, buffer: { type: "storage" } };
    case "read":
      return { binding, visibility, buffer: { type: "read-only-storage" } };
    case "uniform":
      return { binding, visibility, buffer: { type: "uniform" } };
    case "texture":
      return { binding, visibility, texture: { sampleType: "unfilterable-float" } };
    case "storage-texture":
      return {
        binding,
        visibility,
        storageTexture: { access: "write-only", format: b.format ?? "rgba32float" },
      };
  }
}
