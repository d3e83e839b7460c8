/**
 * A Recorder collects many dispatches into one command encoder and one open compute pass, and
 * submits them at once: a training step is one submit (a wait costs ~11 ms on the software
 * adapter, a dispatch inside a pass ~40 us). Small uniforms (shapes, offsets, eps) come from a
 * per-recorder arena written once at submit time. The recorder can be reused after submit().
 */
import { debugLevel, debugLog } from "./_debug.ts";
import { checkErrors, type Gpu } from "./device.ts";
import type { Kernel } from "./kernel.ts";
import { Tensor } from "./tensor.ts";

export type Resource = GPUBindingResource | Tensor | GPUTexture;

const ARENA_BYTES = 256 * 1024;
const MAX_CACHED_GROUPS = 4096; // per kernel; the cache is simply emptied when full

const bindGroups = new WeakMap<Kernel, Map<string, GPUBindGroup>>();
const views = new WeakMap<GPUTexture, GPUTextureView>();
const ids = new WeakMap<object, number>();
let nextId = 1;

function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, id = nextId++);
  return id;
}

/** Identity of a bound resource: the object, plus offset and size for buffer windows. */
function resourceKey(r: GPUBindingResource): string {
  if ("buffer" in r) {
    const b = r as GPUBufferBinding;
    return `${idOf(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1}`;
  }
  return `${idOf(r as object)}`;
}

interface ArenaBlock {
  buffer: GPUBuffer;
  mirror: Uint8Array<ArrayBuffer>;
  used: number;
}

export class Recorder {
  #encoder?: GPUCommandEncoder;
  #pass?: GPUComputePassEncoder;
  #arena: ArenaBlock[] = [];
  #block = 0;
  /** Dispatches recorded since the last submit, and in total. */
  dispatches = 0;
  totalDispatches = 0;
  /** Bind groups this recorder had to create (a replayed step creates none). */
  bindGroupsCreated = 0;

  constructor(readonly gpu: Gpu, readonly label = "star") {}

  /** The command encoder, with the compute pass ended: for copies and other commands. */
  encoder(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = undefined;
    }
    this.#encoder ??= this.gpu.device.createCommandEncoder({ label: this.label });
    return this.#encoder;
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) this.#pass = this.encoder().beginComputePass({ label: this.label });
    return this.#pass;
  }

  /** Records one dispatch; every binding of the kernel must be given by name. */
  dispatch(
    k: Kernel,
    resources: Record<string, Resource>,
    workgroups: [number, number?, number?],
  ): void {
    const lim = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    const [x, y = 1, z = 1] = workgroups;
    if (x > lim || y > lim || z > lim) {
      throw new RangeError(
        `Dispatch of "${k.label}" with grid [${x}, ${y}, ${z}] exceeds ${lim} workgroups per dimension; fold it with grid()`,
      );
    }
    for (const name of Object.keys(resources)) {
      if (!k.bindings.some((b) => b.name === name)) {
        throw new Error(`Kernel "${k.label}" has no binding named "${name}"`);
      }
    }
    const resolved = k.bindings.map((b) => {
      const r = resources[b.name];
      if (r === undefined) throw new Error(`Kernel "${k.label}" needs binding "${b.name}"`);
      return this.#resource(k, b.name, r);
    });
    // a step replays the same bindings every time: reuse the bind group made the first time
    const key = resolved.map(resourceKey).join("|");
    let groups = bindGroups.get(k);
    if (!groups) bindGroups.set(k, groups = new Map());
    let bindGroup = groups.get(key);
    if (!bindGroup) {
      if (groups.size >= MAX_CACHED_GROUPS) groups.clear();
      bindGroup = this.gpu.device.createBindGroup({
        layout: k.layout,
        entries: resolved.map((resource, binding) => ({ binding, resource })),
        label: k.label,
      });
      groups.set(key, bindGroup);
      this.bindGroupsCreated++;
    }
    const pass = this.#computePass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bindGroup);
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    this.totalDispatches++;
    if (debugLevel() >= 2) debugLog(2, `dispatch ${k.label} [${x}, ${y}, ${z}]`);
  }

  #resource(k: Kernel, name: string, r: Resource): GPUBindingResource {
    if (r instanceof Tensor) {
      const limit = this.gpu.limits.maxStorageBufferBindingSize;
      if (r.byteSize > limit) {
        throw new RangeError(
          `Tensor "${r.label}" (${r.byteSize} bytes) is bound whole to "${k.label}.${name}" but exceeds ` +
            `the ${limit}-byte binding limit; bind it by rowChunks()`,
        );
      }
      return r.binding;
    }
    if (r instanceof GPUTexture) {
      let view = views.get(r);
      if (!view) views.set(r, view = r.createView());
      return view;
    }
    return r;
  }

  /** A uniform binding holding `data` (at most 64 KiB), valid for this recording. */
  uniform(data: ArrayBufferView): GPUBufferBinding {
    const align = this.gpu.limits.minUniformBufferOffsetAlignment;
    const size = Math.ceil(data.byteLength / 16) * 16;
    if (size > this.gpu.limits.maxUniformBufferBindingSize) {
      throw new RangeError(`Uniform of ${data.byteLength} bytes exceeds the uniform binding limit`);
    }
    let block = this.#arena[this.#block];
    let offset = block ? Math.ceil(block.used / align) * align : 0;
    if (!block || offset + size > ARENA_BYTES) {
      if (block) this.#block++;
      block = this.#arena[this.#block];
      if (!block) {
        block = {
          buffer: this.gpu.device.createBuffer({
            size: ARENA_BYTES,
            usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
            label: `${this.label}.uniforms`,
          }),
          mirror: new Uint8Array(ARENA_BYTES),
          used: 0,
        };
        this.#arena.push(block);
      }
      offset = 0;
    }
    block.mirror.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    block.used = offset + size;
    return { buffer: block.buffer, offset, size };
  }

  /** Copies src's bytes into dst (same byte size). */
  copy(src: Tensor, dst: Tensor): void {
    if (src.byteSize !== dst.byteSize) {
      throw new RangeError(
        `Cannot copy "${src.label}" (${src.byteSize} B) to "${dst.label}" (${dst.byteSize} B)`,
      );
    }
    this.encoder().copyBufferToBuffer(
      src.buffer,
      src.byteOffset,
      dst.buffer,
      dst.byteOffset,
      src.byteSize,
    );
  }

  /** Sets the tensor's bytes to zero. */
  clear(t: Tensor): void {
    this.encoder().clearBuffer(t.buffer, t.byteOffset, t.byteSize);
  }

  /** Writes the uniforms, submits everything recorded; the recorder is then empty again. */
  submit(): void {
    for (let i = 0; i <= this.#block && i < this.#arena.length; i++) {
      const b = this.#arena[i];
      if (b.used) {
        this.gpu.device.queue.writeBuffer(b.buffer, 0, b.mirror, 0, Math.ceil(b.used / 4) * 4);
      }
      b.used = 0;
    }
    this.#block = 0;
    if (!this.#encoder && !this.#pass) return;
    const enc = this.encoder();
    this.gpu.device.queue.submit([enc.finish()]);
    debugLog(1, `submit ${this.label}: ${this.dispatches} dispatches`);
    this.#encoder = undefined;
    this.dispatches = 0;
  }

  /** Submits and waits for the GPU, then reports any GPU error (for tests and tools). */
  async flush(): Promise<void> {
    this.submit();
    await checkErrors(this.gpu);
  }
}

/**
 * Folds a 1-D grid of ceil(n / wg) workgroups into [x, y], each at most 65535. Kernels rebuild
 * the flat index as (wid.y * nwg.x + wid.x) * wg + lid.x and skip indices >= n.
 */
export function grid(n: number, wg: number, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}
