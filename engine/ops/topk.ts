/**
 * Top-k over the vocabulary (k ≤ 128), chunk by chunk: a running (N, k) list of (logit, id) is
 * merged with each vocabulary chunk; at the end the logits become log-probs by subtracting lse.
 * Order: value descending, ties by smaller id first.
 * Legend: N token rows, V vocab, C chunk columns, k kept entries.
 */
import code from "../../wgsl/topk.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";
import type { VocabChunk } from "./softmax.ts";

export const TOPK_MAX = 128;

/** Float64 reference: ids (N, k) and log-probs (N, k) of the k largest entries of each row. */
export function topkRef(
  x: ArrayLike<number>,
  { rows, cols, k }: { rows: number; cols: number; k: number },
): { ids: Uint32Array; logprobs: Float64Array } {
  const ids = new Uint32Array(rows * k), logprobs = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    const lse = m + Math.log(s);
    const order = Array.from({ length: cols }, (_, c) => c);
    order.sort((a, b) => x[r * cols + b] - x[r * cols + a] || a - b);
    for (let i = 0; i < k; i++) {
      ids[r * k + i] = order[i];
      logprobs[r * k + i] = x[r * cols + order[i]] - lse;
    }
  }
  return { ids, logprobs };
}

// ---- GPU kernels ----------------------------------------------------------------------------

const topkKernel = family("wgsl/topk.wgsl", code, {
  chunk: ["params:uniform", "x:read", "vals:storage", "ids:storage"],
  finish: ["params:uniform", "stats:read", "vals:storage"],
});

/**
 * Merges one logits chunk (vocabulary ids colStart..colStart+cols) into the running top-k
 * vals (N, k) f32 / ids (N, k) u32; `first` starts afresh (call chunks in vocabulary order so
 * ties keep the smaller id).
 */
export function topkChunk(
  rec: Recorder,
  o:
    & { vals: Tensor; ids: Tensor; x: Tensor; colStart: number; k: number; first: boolean }
    & VocabChunk,
): void {
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > TOPK_MAX) {
    throw new RangeError(`Top-k needs 1 <= k <= ${TOPK_MAX}, got ${o.k}`);
  }
  need(o.x, "Top-k logits chunk", (o.rows - 1) * (o.ld ?? o.cols) + o.cols);
  need(o.vals, "Top-k values", o.rows * o.k);
  need(o.ids, "Top-k ids", o.rows * o.k, "u32");
  rec.dispatch(
    topkKernel(rec, "chunk"),
    {
      params: params(rec, {
        rows: o.rows,
        cols: o.cols,
        ld: o.ld ?? o.cols,
        colStart: o.colStart,
        k: o.k,
        first: o.first ? 1 : 0,
        pad0: 0,
        pad1: 0,
      }),
      x: o.x,
      vals: o.vals,
      ids: o.ids,
    },
    grid(o.rows, 1),
  );
}

/** vals −= lse per row: the top-k logits become log-probs (stats from lseChunk). */
export function topkFinish(
  rec: Recorder,
  o: { vals: Tensor; stats: Tensor; rows: number; k: number },
): void {
  need(o.vals, "Top-k values", o.rows * o.k);
  need(o.stats, "Top-k stats", 2 * o.rows);
  rec.dispatch(
    topkKernel(rec, "finish"),
    {
      params: params(rec, {
        rows: o.rows,
        cols: 0,
        ld: 0,
        colStart: 0,
        k: o.k,
        first: 0,
        pad0: 0,
        pad1: 0,
      }),
      stats: o.stats,
      vals: o.vals,
    },
    grid(o.rows * o.k, 256),
  );
}
