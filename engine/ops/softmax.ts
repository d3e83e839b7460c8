/**
 * The online log-sum-exp of a vocabulary processed in column chunks (blocks of vocabulary rows
 * of the LM head): a running state `stats` (N, 2) = (max, sum of exp(x − max)) per token row is
 * updated chunk by chunk; every consumer (cross-entropy, top-k, the CKD loss) reads
 * lse = max + log(sum) from it. The float64 log-softmax is the reference.
 * Legend: N token rows, V vocab, C chunk columns.
 */
import code from "../../wgsl/softmax.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

/** Float64 reference: log-probs (N, V) and lse (N). */
export function logSoftmaxForwardRef(
  x: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): { y: Float64Array; lse: Float64Array } {
  const y = new Float64Array(rows * cols), lse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    lse[r] = m + Math.log(s);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - lse[r];
  }
  return { y, lse };
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const softmaxKernel = family("wgsl/softmax.wgsl", code, {
  lse_chunk: ["params:uniform", "x:read", "stats:storage"],
});

/** One vocabulary chunk: `rows` token rows of `cols` columns, row stride `ld` (default cols). */
export interface VocabChunk {
  rows: number;
  cols: number;
  ld?: number;
}

function chunkParams(rec: Recorder, c: VocabChunk, first: boolean): GPUBufferBinding {
  return params(rec, { rows: c.rows, cols: c.cols, ld: c.ld ?? c.cols, first: first ? 1 : 0 });
}

function chunkNumel(c: VocabChunk): number {
  return (c.rows - 1) * (c.ld ?? c.cols) + c.cols;
}

/**
 * Merges the logits chunk x into the online log-sum-exp state `stats` (N, 2) = (max, sum);
 * `first` starts a new pass. After the last chunk, lse = max + log(sum).
 */
export function lseChunk(
  rec: Recorder,
  o: { stats: Tensor; x: Tensor; first: boolean } & VocabChunk,
): void {
  need(o.x, "Log-sum-exp logits chunk", chunkNumel(o));
  need(o.stats, "Log-sum-exp stats", 2 * o.rows);
  rec.dispatch(
    softmaxKernel(rec, "lse_chunk", { WG }),
    { params: chunkParams(rec, o, o.first), x: o.x, stats: o.stats },
    grid(o.rows, 1),
  );
}
