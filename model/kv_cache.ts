/**
 * The KV cache of generation: per layer one (S·maxLen, K·E) tensor of keys (after k_norm and
 * RoPE) and one of values, slot s owning rows [s·maxLen, (s+1)·maxLen), and the number of tokens
 * each slot holds. A cached forward (model/gpu_model.ts forwardCached) appends a step's keys and
 * values to its slot and attends over the slot's rows. Samples of one prompt share its prefill
 * by copying the prompt's rows into their slots (copySlots).
 * Legend: S slots, K kv heads, E head_dim, L layers.
 */
import type { Gpu } from "../engine/device.ts";
import { Recorder } from "../engine/recorder.ts";
import { createTensor, releaseTensor, type Tensor } from "../engine/tensor.ts";

export class KvCache {
  readonly k: Tensor[]; // per layer (S·maxLen, K·E)
  readonly v: Tensor[]; // per layer (S·maxLen, K·E)
  /** Tokens cached per slot. */
  readonly lengths: number[];

  constructor(
    readonly gpu: Gpu,
    o: { layers: number; width: number; slots: number; maxLen: number },
  ) {
    const mk = (label: string) =>
      createTensor(gpu, { shape: [o.slots * o.maxLen, o.width], dtype: "f32", label });
    this.k = Array.from({ length: o.layers }, (_, l) => mk(`L${l}.kcache`));
    this.v = Array.from({ length: o.layers }, (_, l) => mk(`L${l}.vcache`));
    this.lengths = new Array(o.slots).fill(0);
    this.slots = o.slots;
    this.maxLen = o.maxLen;
  }

  readonly slots: number;
  readonly maxLen: number;

  /** First row of a slot in every layer's tensors. */
  rowOf(slot: number): number {
    return slot * this.maxLen;
  }

  /** Copies the cached rows of slot `from` into slot `to` (every layer); one submit. */
  copySlots(pairs: { from: number; to: number }[]): void {
    const most = Math.max(0, ...pairs.map((p) => this.lengths[p.from]));
    if (most === 0) return;
    const rec = new Recorder(this.gpu, "kvcache.copy");
    // a buffer cannot be copied onto itself: go through a scratch tensor
    const tmp = createTensor(this.gpu, {
      shape: [most, this.k[0].shape[1]],
      dtype: "f32",
      label: "kvcache.copy",
    });
    for (const { from, to } of pairs) {
      const n = this.lengths[from];
      if (n === 0) continue;
      for (let l = 0; l < this.k.length; l++) {
        for (const t of [this.k[l], this.v[l]]) {
          rec.copy(t.rows(this.rowOf(from), n), tmp.rows(0, n));
          rec.copy(tmp.rows(0, n), t.rows(this.rowOf(to), n));
        }
      }
      this.lengths[to] = n;
    }
    rec.submit();
    releaseTensor(this.gpu, tmp); // pooled: reused only by work submitted after this
  }

  release(): void {
    for (const t of [...this.k, ...this.v]) releaseTensor(this.gpu, t);
  }
}
