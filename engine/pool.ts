/**
 * A pool of GPU buffers keyed by (usage, size rounded up to 256 bytes). Releasing puts a buffer
 * back; acquiring reuses one of the same key before allocating. A training step allocates
 * the same sizes every time, so after the first step nothing new is allocated.
 */

const ALIGN = 256;

export class BufferPool {
  #free = new Map<string, GPUBuffer[]>();
  /** Bytes currently held by the pool or handed out, and allocations made. */
  allocatedBytes = 0;
  allocations = 0;
  reused = 0;

  constructor(readonly device: GPUDevice) {}

  static roundSize(size: number): number {
    return Math.max(ALIGN, Math.ceil(size / ALIGN) * ALIGN);
  }

  acquire(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const rounded = BufferPool.roundSize(size);
    const list = this.#free.get(`${usage}:${rounded}`);
    const hit = list?.pop();
    if (hit) {
      this.reused++;
      hit.label = label;
      return hit;
    }
    this.allocations++;
    this.allocatedBytes += rounded;
    return this.device.createBuffer({ size: rounded, usage, label });
  }

  release(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.#free.get(key);
    if (list) list.push(buffer);
    else this.#free.set(key, [buffer]);
  }

  /** Destroys every buffer waiting in the pool (handed-out ones are untouched). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }
}
