/**
 * Log-softmax over a vocabulary processed in column chunks (blocks of vocabulary rows of the LM
 * head): a running state `stats` (N, 2) = (max, sum of exp(x − max)) per token row is updated
 * chunk by chunk (online log-sum-exp); every consumer (log-softmax, cross-entropy, top-k) reads
 * lse = max + log(sum) from it, and each chunk's log-probs are x − lse. The backward of
 * y = log_softmax(x) is dx = dy − exp(y)·Σ dy, where Σ dy is also accumulated chunk by chunk.
 * Legend: N token rows, V vocab, C chunk columns.
 */
import code from "../../wgsl/softmax.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params, rowColGrid } from "./_util.ts";

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

/** Float64 reference backward: dx = dy − exp(y)·Σ_row dy. */
export function logSoftmaxBackwardRef(
  dy: ArrayLike<number>,
  y: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[r * cols + c];
    for (let c = 0; c < cols; c++) {
      dx[r * cols + c] = dy[r * cols + c] - Math.exp(y[r * cols + c]) * s;
    }
  }
  return dx;
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const softmaxKernel = family("wgsl/softmax.wgsl", code, {
  lse_chunk: ["params:uniform", "x:read", "stats:storage"],
  forward: ["params:uniform", "x:read", "stats:storage", "y:storage"],
  backward_sum: ["params:uniform", "dy:read", "stats:storage", "rowSum:storage"],
  backward: [
    "params:uniform",
    "dy:read",
    "stats:storage",
    "rowSum:storage",
    "logits:read",
    "dx:storage",
  ],
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

/** y = x − lse for one chunk (after lseChunk over every chunk). */
export function logSoftmaxForward(
  rec: Recorder,
  o: { y: Tensor; x: Tensor; stats: Tensor } & VocabChunk,
): void {
  need(o.x, "Log-softmax logits chunk", chunkNumel(o));
  need(o.y, "Log-softmax output chunk", chunkNumel(o));
  rec.dispatch(
    softmaxKernel(rec, "forward", { WG }),
    { params: chunkParams(rec, o, false), x: o.x, stats: o.stats, y: o.y },
    rowColGrid(o.rows, o.cols, WG),
  );
}

/**
 * Backward of y = log_softmax(x) over chunks, in two passes: call with `pass: "sum"` for every
 * chunk (first: true on the first) to accumulate rowSum (N) = Σ dy, then `pass: "grad"` for every
 * chunk: dx = dy − exp(x − lse)·rowSum (overwritten).
 */
export function logSoftmaxBackward(
  rec: Recorder,
  o:
    & { pass: "sum" | "grad"; first?: boolean; dy: Tensor; stats: Tensor; rowSum: Tensor }
    & { x?: Tensor; dx?: Tensor }
    & VocabChunk,
): void {
  need(o.dy, "Log-softmax dy chunk", chunkNumel(o));
  need(o.rowSum, "Log-softmax row sums", o.rows);
  const common = { dy: o.dy, stats: o.stats, rowSum: o.rowSum };
  if (o.pass === "sum") {
    rec.dispatch(
      softmaxKernel(rec, "backward_sum", { WG }),
      { params: chunkParams(rec, o, o.first ?? false), ...common },
      grid(o.rows, 1),
    );
    return;
  }
  if (!o.x || !o.dx) throw new Error('logSoftmaxBackward pass "grad" needs x and dx');
  need(o.x, "Log-softmax logits chunk", chunkNumel(o));
  need(o.dx, "Log-softmax dx chunk", chunkNumel(o));
  rec.dispatch(
    softmaxKernel(rec, "backward", { WG }),
    { params: chunkParams(rec, o, false), ...common, logits: o.x, dx: o.dx },
    rowColGrid(o.rows, o.cols, WG),
  );
}
