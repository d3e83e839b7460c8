/**
 * Cross-entropy against target ids, per token row: loss = lse − x[target]; gradient w.r.t. the
 * logits dx = (softmax(x) − onehot(target))·dLoss. Both run per vocabulary chunk once the lse of
 * the row is known (softmax.ts); a target of IGNORE_INDEX gives loss 0 and a zero gradient.
 * Legend: N token rows, V vocab.
 */
import code from "../../wgsl/cross_entropy.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params, rowColGrid } from "./_util.ts";
import type { VocabChunk } from "./softmax.ts";

export const IGNORE_INDEX = 0xffffffff;

/** Float64 reference: loss per row (N). */
export function crossEntropyForwardRef(
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const loss = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    loss[r] = m + Math.log(s) - x[r * cols + targets[r]];
  }
  return loss;
}

/** Float64 reference gradient of Σ_r dLoss[r]·loss[r] w.r.t. the logits (N, V). */
export function crossEntropyBackwardRef(
  dLoss: ArrayLike<number>,
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  { rows, cols }: { rows: number; cols: number },
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) {
      const p = Math.exp(x[r * cols + c] - m) / s;
      dx[r * cols + c] = (p - (c === targets[r] ? 1 : 0)) * dLoss[r];
    }
  }
  return dx;
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const ceKernel = family("wgsl/cross_entropy.wgsl", code, {
  forward: ["params:uniform", "x:read", "stats:read", "targets:read", "loss:storage"],
  logprob: ["params:uniform", "neg:read", "stats:read", "targets:read", "loss:storage"],
  backward: ["params:uniform", "x:read", "stats:read", "targets:read", "dLoss:read", "dx:storage"],
});

interface CeChunk extends VocabChunk {
  x: Tensor; // (N, ld) logits of vocabulary ids colStart..colStart+cols
  colStart: number;
  stats: Tensor; // (N, 2) complete online lse state (lseChunk over all chunks)
  targets: Tensor; // u32 (N), IGNORE_INDEX for rows without a target
}

function ceParams(rec: Recorder, o: CeChunk): GPUBufferBinding {
  need(o.x, "Cross-entropy logits chunk", (o.rows - 1) * (o.ld ?? o.cols) + o.cols);
  need(o.stats, "Cross-entropy stats", 2 * o.rows);
  need(o.targets, "Cross-entropy targets", o.rows, "u32");
  return params(rec, { rows: o.rows, cols: o.cols, ld: o.ld ?? o.cols, colStart: o.colStart });
}

/** loss (N) = lse − x[target]; call once per chunk (each row is written by one chunk). */
export function crossEntropyForward(rec: Recorder, o: CeChunk & { loss: Tensor }): void {
  const p = ceParams(rec, o);
  need(o.loss, "Cross-entropy loss", o.rows);
  rec.dispatch(
    ceKernel(rec, "forward", { WG }),
    { params: p, x: o.x, stats: o.stats, targets: o.targets, loss: o.loss },
    grid(o.rows, WG),
  );
}

/**
 * lp (N) = log p(target) = −neg − lse, once `stats` is complete, from `neg` (N) written by
 * crossEntropyForward with stats of lse 0 (so its loss is −x[target]); 0 for ignored rows.
 */
export function crossEntropyLogprob(
  rec: Recorder,
  o: { stats: Tensor; targets: Tensor; neg: Tensor; lp: Tensor; rows: number },
): void {
  need(o.stats, "Log-prob stats", 2 * o.rows);
  need(o.targets, "Log-prob targets", o.rows, "u32");
  need(o.neg, "Log-prob target logits", o.rows);
  need(o.lp, "Log-probs", o.rows);
  rec.dispatch(
    ceKernel(rec, "logprob", { WG }),
    {
      params: params(rec, { rows: o.rows, cols: 0, ld: 0, colStart: 0 }),
      neg: o.neg,
      stats: o.stats,
      targets: o.targets,
      loss: o.lp,
    },
    grid(o.rows, WG),
  );
}

/** dx (chunk) = (softmax − onehot)·dLoss[row], overwritten; zero for ignored rows. */
export function crossEntropyBackward(
  rec: Recorder,
  o: CeChunk & { dLoss: Tensor; dx: Tensor },
): void {
  const p = ceParams(rec, o);
  need(o.dLoss, "Cross-entropy dLoss", o.rows);
  need(o.dx, "Cross-entropy dx chunk", (o.rows - 1) * (o.ld ?? o.cols) + o.cols);
  rec.dispatch(
    ceKernel(rec, "backward", { WG }),
    { params: p, x: o.x, stats: o.stats, targets: o.targets, dLoss: o.dLoss, dx: o.dx },
    rowColGrid(o.rows, o.cols, WG),
  );
}
