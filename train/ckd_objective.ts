/**
 * The CKD loss as a vocabulary objective of the student's LM-head pass (model/lm_head.ts) over
 * its N target rows: per chunk the loss statistics (engine/ops/kd_loss.ts kdLossStats) and, when
 * the tail term or an evaluation needs it, the student's running top-m; after the last chunk the
 * per-row loss parts, the sparse gradient, and their weighted sum into a step accumulator (no
 * readback per micro-batch); in the backward each chunk's dlogits written over its logits.
 * The teacher's top-k (ids, log-probs) comes in `teacherIds` / `teacherLogprobs`, filled by the
 * teacher's own pass (a TopK objective) or uploaded from the offline cache.
 * Legend: N target rows, C chunk columns, k teacher top-k, m student top-m.
 */
import type { Gpu } from "../engine/device.ts";
import type { Recorder } from "../engine/recorder.ts";
import { createTensor, releaseTensor, type Tensor, writeTensor } from "../engine/tensor.ts";
import {
  KD_PARTS,
  kdLossBackward,
  kdLossFinish,
  kdLossReduce,
  kdLossStats,
  kdRowInfo,
} from "../engine/ops/kd_loss.ts";
import { topkChunk } from "../engine/ops/topk.ts";
import type { VocabChunk, VocabObjective } from "../model/lm_head.ts";
import type { CkdOptions } from "./ckd_batch.ts";

export { KD_PARTS };

export class CkdObjective implements VocabObjective {
  readonly inPlace = true;
  readonly teacherIds: Tensor; // u32 (cap, k)
  readonly teacherLogprobs: Tensor; // (cap, k)
  readonly topmIds: Tensor; // u32 (cap, m)
  readonly #topmLogits: Tensor; // (cap, m)
  readonly #rowInfo: Tensor; // u32 (cap, 2): target id, row weight
  readonly #work: Tensor; // (cap, 8 + k + m)
  readonly #parts: Tensor; // (cap, 8)
  /** (8) Σ over the step's rows of weight × parts: the step's means (KD_PARTS order). */
  readonly acc: Tensor;
  #rows = 0;
  #withTopm = false;

  constructor(readonly gpu: Gpu, readonly cap: number, readonly ckd: CkdOptions) {
    const k = Math.max(1, ckd.kdRatio > 0 ? ckd.topk : 0), m = ckd.topm;
    const mk = (label: string, shape: number[], dtype: "f32" | "u32" = "f32") =>
      createTensor(gpu, { shape, dtype, label: `ckd.${label}` });
    this.teacherIds = mk("teacherIds", [cap, k], "u32");
    this.teacherLogprobs = mk("teacherLogprobs", [cap, k]);
    this.topmIds = mk("topmIds", [cap, m], "u32");
    this.#topmLogits = mk("topmLogits", [cap, m]);
    this.#rowInfo = mk("rowInfo", [cap, 2], "u32");
    this.#work = mk("work", [cap, 8 + k + m]);
    this.#parts = mk("parts", [cap, KD_PARTS.length]);
    this.acc = mk("acc", [KD_PARTS.length]);
  }

  get #shape() {
    return { rows: this.#rows, k: this.ckd.kdRatio > 0 ? this.ckd.topk : 0, m: this.ckd.topm };
  }

  /**
   * Prepares a pass over `targets.length` rows, each weighing `weight` in the accumulator and
   * the gradient; `topm` keeps the student's top-m (tail term, agreement).
   */
  begin(o: { targets: number[]; weight: number; topm: boolean }): void {
    const N = o.targets.length;
    if (N > this.cap) {
      throw new RangeError(`${N} target rows exceed the CKD objective's ${this.cap}`);
    }
    this.#rows = N;
    this.#withTopm = o.topm;
    writeTensor(
      this.gpu,
      this.#rowInfo.rows(0, N),
      kdRowInfo(o.targets, new Array(N).fill(o.weight)),
    );
  }

  /** Zeroes the accumulator (start of an optimizer step or an evaluation). */
  clearAcc(rec: Recorder): void {
    rec.clear(this.acc);
  }

  #io() {
    return {
      teacherIds: this.teacherIds,
      teacherLogprobs: this.teacherLogprobs,
      topmIds: this.topmIds,
      topmLogits: this.#topmLogits,
      rowInfo: this.#rowInfo,
      work: this.#work,
      parts: this.#parts,
    };
  }

  forward(c: VocabChunk): void {
    const chunk = { c0: c.start, cols: c.cols, ld: c.cols };
    kdLossStats(c.rec, {
      ...this.#shape,
      ...chunk,
      ...this.#io(),
      logits: c.logits,
      first: c.index === 0,
    });
    if (!this.#withTopm) return;
    topkChunk(c.rec, {
      vals: this.#topmLogits,
      ids: this.topmIds,
      x: c.logits,
      colStart: c.start,
      k: this.ckd.topm,
      first: c.index === 0,
      rows: c.rows,
      cols: c.cols,
    });
  }

  finish(rec: Recorder): void {
    if (!this.#withTopm) {
      rec.clear(this.topmIds);
      rec.clear(this.#topmLogits);
    }
    const { klType, l1Coef, kdRatio } = this.ckd;
    kdLossFinish(rec, { ...this.#shape, ...this.#io(), klType, l1Coef, kdRatio });
    kdLossReduce(rec, {
      parts: this.#parts,
      rowInfo: this.#rowInfo,
      acc: this.acc,
      rows: this.#rows,
    });
  }

  backward(c: VocabChunk & { dlogits: Tensor }): void {
    const chunk = { c0: c.start, cols: c.cols, ld: c.cols };
    kdLossBackward(c.rec, { ...this.#shape, ...chunk, ...this.#io(), logits: c.logits });
  }

  release(): void {
    for (
      const t of [
        this.teacherIds,
        this.teacherLogprobs,
        this.topmIds,
        this.#topmLogits,
        this.#rowInfo,
        this.#work,
        this.#parts,
        this.acc,
      ]
    ) releaseTensor(this.gpu, t);
  }
}
