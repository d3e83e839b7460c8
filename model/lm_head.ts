/**
 * The LM head and the one vocabulary pass every consumer of logits goes through (log-probs,
 * top-k, the CKD loss, the Sim-RL log-ratio, generation). The (V, D) table is walked in row
 * chunks of C vocabulary ids (WebGPT's sharded head: C is set by the binding limit); for each
 * chunk the logits of the N rows are computed once into a scratch (N, C) block, the online
 * log-sum-exp is merged when an objective needs it, and every objective sees the chunk. After
 * the last chunk each objective's `finish` runs (the lse is complete then). The backward
 * recomputes each chunk's logits (unless there is one chunk, still in the scratch), lets the
 * objective write dL/dlogits, and accumulates dX (over chunks) and dW (+=) with one matmul
 * backward per chunk (llm.c's fused classifier: the full (N, V) logits never exist).
 * Rows are whatever the caller gathered (model/gpu_model.ts compacts chosen row spans).
 * Legend: N rows, D hidden_size, V vocab_size, C chunk columns.
 */
import type { Gpu } from "../engine/device.ts";
import type { Recorder } from "../engine/recorder.ts";
import { DTYPE_BYTES, rowChunks, type Tensor } from "../engine/tensor.ts";
import {
  matmulBackward,
  matmulForward,
  type PackedWeight,
  packMatmulWeight,
} from "../engine/ops/matmul.ts";
import { lseChunk } from "../engine/ops/softmax.ts";

/** A vocabulary chunk of the head: rows [start, start + rows) of the (V, D) table. */
export interface HeadChunk {
  start: number;
  rows: number;
  w: Tensor; // (C, D)
  dW?: Tensor; // (C, D) f32
  /** The texture variant's packed copy (frozen models after packing). */
  packed?: PackedWeight;
}

/** One chunk of logits as an objective sees it. */
export interface VocabChunk {
  rec: Recorder;
  logits: Tensor; // (N, cols) logits of vocabulary ids start..start+cols
  start: number;
  cols: number;
  rows: number; // N
  index: number; // chunk number, 0 first
  last: boolean;
  /** Online (max, sum-exp) per row (N, 2): complete once the last chunk's forward ran. */
  stats: Tensor;
}

/**
 * Something computed over the vocabulary: `forward` sees every chunk's logits once, `finish`
 * runs after the last chunk, and `backward` writes dL/dlogits of each (recomputed) chunk into
 * `dlogits`, which is the logits tensor itself when the objective works `inPlace`.
 */
export interface VocabObjective {
  /** The pass must keep the online log-sum-exp in `stats` for this objective. */
  readonly needsLse?: boolean;
  /** backward() overwrites the logits with their gradient (no second buffer). */
  readonly inPlace?: boolean;
  forward?(c: VocabChunk): void;
  finish?(rec: Recorder, rows: number, stats: Tensor): void;
  backward?(c: VocabChunk & { dlogits: Tensor }): void;
}

/** Scratch of a vocabulary pass over up to `cap` rows, chunks of up to `cols` columns. */
export interface VocabScratch {
  cap: number;
  cols: number; // C
  logits: Tensor; // (cap·C) flat: a chunk's (N, cols) block at the start
  dlogits: Tensor; // (cap·C) flat
  stats: Tensor; // (cap, 2)
}

/** LM-head rows per packed chunk (a packed texture holds at most 4 x 16384 columns). */
const PACKED_HEAD_ROWS = 16384;

export class LmHead {
  #packed?: { rows: number; chunks: HeadChunk[] };

  /** `w` is the (V, D) table (lm_head, or the tied embedding); `dW` its f32 gradient. */
  constructor(readonly gpu: Gpu, readonly w: Tensor, readonly dW?: Tensor) {}

  get vocab(): number {
    return this.w.shape[0];
  }

  /** Chunks of at most `maxRows` rows (each within the binding limit); packed when they fit. */
  chunks(maxRows: number): HeadChunk[] {
    const ph = this.#packed;
    if (ph && ph.rows <= maxRows) return ph.chunks;
    const maxBytes = maxRows * this.w.rowSize * DTYPE_BYTES[this.w.dtype];
    const ws = rowChunks(this.gpu, this.w, maxBytes);
    const ds = this.dW ? rowChunks(this.gpu, this.dW, maxRows * this.w.rowSize * 4) : undefined;
    let start = 0;
    return ws.map((wc, i) => {
      if (ds && ds[i].shape[0] !== wc.shape[0]) {
        throw new Error("LM-head gradient chunks misaligned");
      }
      const ch: HeadChunk = { start, rows: wc.shape[0], w: wc, dW: ds?.[i] };
      start += wc.shape[0];
      return ch;
    });
  }

  /** Packs the table once into the texture layout (frozen models on the texture variant). */
  pack(rec: Recorder): void {
    const chunks = this.chunks(PACKED_HEAD_ROWS);
    for (const ch of chunks) {
      ch.packed = packMatmulWeight(rec, { w: ch.w, inDim: this.w.shape[1], outDim: ch.rows });
      rec.submit();
    }
    this.#packed = { rows: Math.max(...chunks.map((c) => c.rows)), chunks };
  }

  release(): void {
    for (const ch of this.#packed?.chunks ?? []) ch.packed?.texture.destroy();
    this.#packed = undefined;
  }
}

/** The first N·cols elements of a flat scratch tensor as an (N, cols) block. */
function block(t: Tensor, rows: number, cols: number): Tensor {
  return t.rows(0, rows * cols).reshape([rows, cols]);
}

/**
 * Records the forward of the vocabulary pass over x (N, D): per chunk the logits, the online
 * lse when an objective needs it, and every objective's forward; then their finish. Returns the
 * chunks (the backward walks the same ones).
 */
export function vocabForward(
  rec: Recorder,
  head: LmHead,
  o: { x: Tensor; rows: number; scratch: VocabScratch; objectives: VocabObjective[] },
): HeadChunk[] {
  const N = o.rows, D = head.w.shape[1], s = o.scratch;
  if (N > s.cap) {
    throw new RangeError(`A vocabulary pass of ${N} rows exceeds its scratch (${s.cap})`);
  }
  const chunks = head.chunks(s.cols);
  const lse = o.objectives.some((ob) => ob.needsLse);
  chunks.forEach((ch, i) => {
    const logits = block(s.logits, N, ch.rows);
    matmulForward(rec, {
      y: logits,
      x: o.x,
      w: ch.w,
      rows: N,
      inDim: D,
      outDim: ch.rows,
      packed: ch.packed,
    });
    if (lse) lseChunk(rec, { stats: s.stats, x: logits, first: i === 0, rows: N, cols: ch.rows });
    const c = {
      rec,
      logits,
      start: ch.start,
      cols: ch.rows,
      rows: N,
      index: i,
      last: i === chunks.length - 1,
      stats: s.stats,
    };
    for (const ob of o.objectives) ob.forward?.(c);
  });
  for (const ob of o.objectives) ob.finish?.(rec, N, s.stats);
  return chunks;
}

/**
 * Records the backward of the pass under `objective`: dx (N, D) = Σ_chunks dlogits · W_chunk
 * (overwritten) and dW_chunk += dlogitsᵀ · x for a trainable head.
 */
export function vocabBackward(
  rec: Recorder,
  head: LmHead,
  o: {
    x: Tensor;
    dx: Tensor;
    rows: number;
    scratch: VocabScratch;
    objective: VocabObjective;
    chunks: HeadChunk[];
  },
): void {
  const N = o.rows, D = head.w.shape[1], s = o.scratch, ob = o.objective;
  if (!ob.backward) throw new Error("The vocabulary objective has no backward");
  o.chunks.forEach((ch, i) => {
    const logits = block(s.logits, N, ch.rows);
    // one chunk still holds its logits; more chunks share the buffer and are recomputed
    if (o.chunks.length > 1) {
      matmulForward(rec, { y: logits, x: o.x, w: ch.w, rows: N, inDim: D, outDim: ch.rows });
    }
    const dlogits = ob.inPlace ? logits : block(s.dlogits, N, ch.rows);
    ob.backward!({
      rec,
      logits,
      dlogits,
      start: ch.start,
      cols: ch.rows,
      rows: N,
      index: i,
      last: i === o.chunks.length - 1,
      stats: s.stats,
    });
    matmulBackward(rec, {
      dy: dlogits,
      x: o.x,
      w: ch.w,
      dx: o.dx,
      dw: ch.dW,
      accumulateDx: i > 0,
      rows: N,
      inDim: D,
      outDim: ch.rows,
    });
  });
}
