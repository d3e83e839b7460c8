/**
 * The standard objectives of the vocabulary pass (model/lm_head.ts): the log-prob of a given
 * token per row (scoring, cross-entropy, the Sim-RL log-ratio: its backward takes the per-row
 * weight dLoss = −∂L/∂log p), the top-k ids and log-probs per row (star logprobs --top-k, the
 * CKD teacher), the next token drawn on the device (generation), and the raw logits of every
 * chunk copied out (a host-side draw where the device's would not be exact). Each owns its tensors for up to `cap` rows; `release()` frees them.
 * Legend: N rows, C chunk columns, k top-k.
 */
import type { Gpu } from "../engine/device.ts";
import type { Recorder } from "../engine/recorder.ts";
import { createTensor, releaseTensor, type Tensor, writeTensor } from "../engine/tensor.ts";
import {
  crossEntropyBackward,
  crossEntropyForward,
  crossEntropyLogprob,
  IGNORE_INDEX,
} from "../engine/ops/cross_entropy.ts";
import { topkChunk, topkFinish } from "../engine/ops/topk.ts";
import {
  sampleChunk,
  sampleFinish,
  type SampleOptions,
  samplePlan,
  sampleScratchSize,
} from "../engine/ops/sample.ts";
import type { VocabChunk, VocabObjective } from "./lm_head.ts";

export { IGNORE_INDEX };

/** log p(target) per row, and with `dLoss` its backward (dlogits = (softmax − onehot)·dLoss). */
export class TokenLogprobs implements VocabObjective {
  readonly needsLse = true;
  readonly targets: Tensor; // u32 (cap) target id, IGNORE_INDEX where none
  readonly logprobs: Tensor; // (cap) log p(target), 0 where none (after finish)
  readonly dLoss: Tensor; // (cap) weight of each row's −log p in the loss
  readonly #neg: Tensor; // (cap) −x[target], written by the chunk holding the target
  readonly #zeroLse: Tensor; // (cap, 2) all (0, 1): an lse of 0, so cross-entropy gives −x[t]

  constructor(readonly gpu: Gpu, readonly cap: number) {
    const mk = (label: string, n: number, dtype: "f32" | "u32" = "f32") =>
      createTensor(gpu, { shape: [n], dtype, label: `logprobs.${label}` });
    this.targets = mk("targets", cap, "u32");
    this.logprobs = mk("logprobs", cap);
    this.dLoss = mk("dLoss", cap);
    this.#neg = mk("neg", cap);
    this.#zeroLse = mk("zeroLse", 2 * cap);
    const z = new Float32Array(2 * cap);
    for (let i = 0; i < cap; i++) z[2 * i + 1] = 1;
    writeTensor(gpu, this.#zeroLse, z);
  }

  /** Sets the targets of the first rows (and their loss weights for a backward). */
  write(targets: ArrayLike<number>, dLoss?: ArrayLike<number>): void {
    if (targets.length > this.cap) {
      throw new RangeError(`${targets.length} target rows exceed the objective's ${this.cap}`);
    }
    writeTensor(this.gpu, this.targets.rows(0, targets.length), Uint32Array.from(targets));
    if (dLoss) writeTensor(this.gpu, this.dLoss.rows(0, dLoss.length), Float32Array.from(dLoss));
  }

  forward(c: VocabChunk): void {
    crossEntropyForward(c.rec, {
      x: c.logits,
      colStart: c.start,
      stats: this.#zeroLse,
      targets: this.targets,
      loss: this.#neg,
      rows: c.rows,
      cols: c.cols,
    });
  }

  finish(rec: Recorder, rows: number, stats: Tensor): void {
    crossEntropyLogprob(rec, {
      neg: this.#neg,
      stats,
      targets: this.targets,
      lp: this.logprobs,
      rows,
    });
  }

  backward(c: VocabChunk & { dlogits: Tensor }): void {
    crossEntropyBackward(c.rec, {
      x: c.logits,
      colStart: c.start,
      stats: c.stats,
      targets: this.targets,
      dLoss: this.dLoss,
      dx: c.dlogits,
      rows: c.rows,
      cols: c.cols,
    });
  }

  release(): void {
    for (const t of [this.targets, this.logprobs, this.dLoss, this.#neg, this.#zeroLse]) {
      releaseTensor(this.gpu, t);
    }
  }
}

/**
 * The k most likely ids per row, descending, and their log-probs (after finish), into tensors
 * of its own or the caller's (`into`: e.g. the CKD loss's teacher inputs).
 */
export class TopK implements VocabObjective {
  readonly needsLse = true;
  readonly vals: Tensor; // (cap, k) log-probs after finish
  readonly ids: Tensor; // u32 (cap, k)
  readonly #owned: boolean;

  constructor(
    readonly gpu: Gpu,
    readonly cap: number,
    readonly k: number,
    into?: { vals: Tensor; ids: Tensor },
  ) {
    this.#owned = !into;
    this.vals = into?.vals ??
      createTensor(gpu, { shape: [cap, k], dtype: "f32", label: "topk.vals" });
    this.ids = into?.ids ?? createTensor(gpu, { shape: [cap, k], dtype: "u32", label: "topk.ids" });
  }

  forward(c: VocabChunk): void {
    topkChunk(c.rec, {
      vals: this.vals,
      ids: this.ids,
      x: c.logits,
      colStart: c.start,
      k: this.k,
      first: c.index === 0,
      rows: c.rows,
      cols: c.cols,
    });
  }

  finish(rec: Recorder, rows: number, stats: Tensor): void {
    topkFinish(rec, { vals: this.vals, stats, rows, k: this.k });
  }

  release(): void {
    if (!this.#owned) return;
    releaseTensor(this.gpu, this.vals);
    releaseTensor(this.gpu, this.ids);
  }
}

/** Every chunk's logits copied out, to be read back and joined into (N, V) rows. */
export class CollectLogits implements VocabObjective {
  readonly parts: { start: number; cols: number; t: Tensor }[] = [];

  constructor(readonly gpu: Gpu) {}

  forward(c: VocabChunk): void {
    const t = createTensor(this.gpu, {
      shape: [c.rows, c.cols],
      dtype: "f32",
      label: "logits.out",
    });
    c.rec.copy(c.logits, t);
    this.parts.push({ start: c.start, cols: c.cols, t });
  }

  /** The rows from the read-back parts (in the order of `parts`). */
  join(data: ArrayLike<number>[], rows: number, vocab: number): Float32Array[] {
    const out = Array.from({ length: rows }, () => new Float32Array(vocab));
    this.parts.forEach((p, i) => {
      const d = data[i] as Float32Array;
      for (let r = 0; r < rows; r++) out[r].set(d.subarray(r * p.cols, (r + 1) * p.cols), p.start);
    });
    return out;
  }

  release(): void {
    for (const p of this.parts) releaseTensor(this.gpu, p.t);
    this.parts.length = 0;
  }
}

/**
 * The next token of each row drawn on the device (engine/ops/sample.ts): greedy, temperature,
 * top-k and top-p, over every chunk as it passes; only (id, log-prob, exact) per row is read
 * back. The options are fixed for the objective's life; `write()` sets each row's random key
 * (stream, step) before a pass. Top-p without top-k is exact only while the nucleus fits the
 * candidates (`exact` 0 says it did not).
 */
export class SampleTokens implements VocabObjective {
  readonly out: Tensor; // u32 (cap, 3) (id, logprob f32 bits, exact)
  readonly #state: Tensor;
  readonly #rowInfo: Tensor;
  readonly #scratch: Tensor;
  readonly #cand?: { vals: Tensor; ids: Tensor };
  readonly #tensors: Tensor[];

  constructor(
    readonly gpu: Gpu,
    readonly cap: number,
    readonly vocab: number,
    readonly options: SampleOptions,
  ) {
    const mk = (label: string, n: number, dtype: "f32" | "u32" = "u32") =>
      createTensor(gpu, { shape: [n], dtype, label: `sample.${label}` });
    const { candidates } = samplePlan(options, vocab);
    this.out = mk("out", 3 * cap);
    this.#state = mk("state", 8 * cap);
    this.#rowInfo = mk("rowInfo", 2 * cap);
    this.#scratch = mk("scratch", sampleScratchSize({ rows: cap, cols: vocab }));
    this.#tensors = [this.out, this.#state, this.#rowInfo, this.#scratch];
    if (candidates > 0) {
      this.#cand = {
        vals: mk("candVals", cap * candidates, "f32"),
        ids: mk("candIds", cap * candidates),
      };
      this.#tensors.push(this.#cand.vals, this.#cand.ids);
    }
  }

  /** Each row's noise key: (stream, step) pairs, row by row. */
  write(rowInfo: Uint32Array): void {
    if (rowInfo.length > 2 * this.cap) {
      throw new RangeError(`${rowInfo.length / 2} sampled rows exceed the objective's ${this.cap}`);
    }
    writeTensor(this.gpu, this.#rowInfo.rows(0, rowInfo.length), rowInfo);
  }

  forward(c: VocabChunk): void {
    sampleChunk(c.rec, {
      ...this.options,
      state: this.#state,
      rowInfo: this.#rowInfo,
      cand: this.#cand,
      x: c.logits,
      scratch: this.#scratch,
      colStart: c.start,
      first: c.index === 0,
      rows: c.rows,
      cols: c.cols,
      vocab: this.vocab,
    });
  }

  finish(rec: Recorder, rows: number): void {
    sampleFinish(rec, {
      ...this.options,
      state: this.#state,
      rowInfo: this.#rowInfo,
      cand: this.#cand,
      out: this.out,
      rows,
      vocab: this.vocab,
    });
  }

  release(): void {
    for (const t of this.#tensors) releaseTensor(this.gpu, t);
  }
}
