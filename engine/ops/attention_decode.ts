/**
 * Decode attention split over keys (flash-decoding): when a few query rows attend to long cached
 * key ranges, one invocation per (row, head) would walk thousands of keys alone. Here each
 * row's range is cut into P parts processed in parallel, each giving a partial (max, sum, o),
 * and a second pass combines them; the result equals attentionForward's (o and lse in stats).
 * Inputs are attention.ts's: q (Tq, H, E), k/v (Tk, K, E) (a KV cache), the key ranges of
 * attentionRangeTable (only the first Tq rows are read). No backward (decoding needs none).
 * Legend: Tq query rows, Tk key rows, H heads, K kv heads, E head_dim, P splits.
 */
import code from "../../wgsl/attention_decode.wgsl" with { type: "text" };
import type { Gpu } from "../device.ts";
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, LOOP_BUDGET, loopCost, need, params } from "./_util.ts";
import { ATTENTION_MAX_HEAD_DIM, type AttentionShape } from "./attention.ts";

/**
 * "lanes": one invocation per (split, row, head) (the software adapter's choice: no barriers);
 * "tiled": one workgroup per (split, row, kv-group tile of heads) with shared queries and
 * coalesced value reads (GPUs). head_dim not a multiple of 4 always runs "lanes" with scalar loads.
 */
export type AttentionDecodeVariant = "lanes" | "tiled";

export interface AttentionDecodeDims extends AttentionShape {
  queryRows: number;
  keyRows: number;
  /**
   * An upper bound of every query row's key count (default keyRows): sizes the split count. A
   * smaller value than the truth loses keys on the software adapter (see LOOP_BUDGET).
   */
  maxKeys?: number;
  /** Splits per row (default: attentionDecodePlan's; raised to the loop budget's minimum). */
  splits?: number;
  /** Default: "lanes" on a software adapter, "tiled" elsewhere. */
  variant?: AttentionDecodeVariant;
}

export interface AttentionDecodePlan {
  splits: number;
  entryPoint: "partial" | "partial4" | "partial_tiled";
  /** partial_tiled: query heads per workgroup. */
  headsPerGroup: number;
}

const WG = 64, TW = 64, MAX_SPLITS = 256;
/** The fewest keys a split is given (below this the combine costs more than it saves). */
const MIN_KEYS = { lanes: 32, tiled: 64 };

/**
 * The most keys one split may take under LOOP_BUDGET, by loopCost() of the kernel's loops: per key
 * (partial, partial4) scores, rescale (at worst every key) and values; per step of TW keys
 * (partial_tiled) zeroing, scores, per-head max and weights, then p·V for 4 pairs.
 */
function budgetKeys(entryPoint: AttentionDecodePlan["entryPoint"], E: number, hpw: number) {
  if (entryPoint !== "partial_tiled") {
    const n = loopCost(entryPoint === "partial" ? E : E / 4);
    return Math.floor((LOOP_BUDGET - 2 * n - 2) / (3 * n + 1));
  }
  const E4 = E / 4, g = loopCost(hpw), jj = loopCost(TW);
  const step = 2 * g + (E4 * (g + 1) + 2) + 2 * jj + loopCost(4) + 4 * jj + 1;
  return Math.floor((LOOP_BUDGET - 2 * E4 * hpw - 16) / step) * TW;
}

/** Query heads a tiled workgroup takes: the largest divisor of H / K with hpw <= 8, hpw·E <= 1024. */
function headsPerGroup(d: AttentionShape): number {
  const group = d.heads / d.kvHeads;
  let best = 1;
  for (let h = 1; h <= Math.min(8, group); h++) {
    if (group % h === 0 && h * d.headDim <= 1024) best = h;
  }
  return best;
}

/**
 * The kernel and split count for these dims on this adapter: enough splits that the parallel
 * units (invocations for "lanes", workgroups for "tiled") fill the machine, but no split shorter
 * than 32 (lanes) or 64 (tiled) keys, and never fewer splits than keep each within LOOP_BUDGET
 * (this raises a given `splits` too).
 */
export function attentionDecodePlan(gpu: Gpu, d: AttentionDecodeDims): AttentionDecodePlan {
  checkShape(d);
  const variant = d.variant ?? (gpu.isFallback ? "lanes" : "tiled");
  const vec4 = d.headDim % 4 === 0;
  const tiled = variant === "tiled" && vec4;
  const hpw = tiled ? headsPerGroup(d) : 1;
  const maxKeys = Math.max(1, d.maxKeys ?? d.keyRows);
  let splits = d.splits;
  if (splits === undefined) {
    // lanes: a few workgroups of WG invocations per core; tiled: a few hundred workgroups
    const units = tiled ? d.queryRows * (d.heads / hpw) : d.queryRows * d.heads;
    const target = tiled ? 512 : WG * 4 * (navigator.hardwareConcurrency || 4);
    const byKeys = Math.ceil(maxKeys / (tiled ? MIN_KEYS.tiled : MIN_KEYS.lanes));
    splits = Math.max(1, Math.min(byKeys, Math.ceil(target / units), MAX_SPLITS));
  }
  if (!Number.isInteger(splits) || splits < 1) {
    throw new RangeError(`Decode attention splits must be a whole number >= 1, got ${splits}`);
  }
  const entryPoint = tiled ? "partial_tiled" : vec4 ? "partial4" : "partial";
  splits = Math.max(splits, Math.ceil(maxKeys / budgetKeys(entryPoint, d.headDim, hpw)));
  return { splits, entryPoint, headsPerGroup: hpw };
}

/**
 * f32 elements of the `scratch` tensor attentionDecode needs: (P, Tq, H, E + 4) for the largest
 * need of any call with at most `queryRows` rows and `maxKeys` keys, so one allocation serves a
 * whole generation (allocate with the cache's capacity as maxKeys).
 */
export function attentionDecodeScratchSize(gpu: Gpu, d: AttentionDecodeDims): number {
  const per = d.heads * (d.headDim + 4);
  let most = 0;
  for (let rows = 1; rows <= d.queryRows; rows++) {
    most = Math.max(most, attentionDecodePlan(gpu, { ...d, queryRows: rows }).splits * rows);
  }
  return most * per;
}

function checkShape(d: AttentionShape): void {
  if (d.headDim > ATTENTION_MAX_HEAD_DIM || d.headDim < 1) {
    throw new RangeError(
      `Attention head_dim must be 1..${ATTENTION_MAX_HEAD_DIM}, got ${d.headDim}`,
    );
  }
  if (d.heads % d.kvHeads !== 0) {
    throw new RangeError(
      `Attention heads (${d.heads}) must be a multiple of kv heads (${d.kvHeads})`,
    );
  }
}

const decodeKernel = family("wgsl/attention_decode.wgsl", code, {
  partial: ["params:uniform", "q:read", "k:read", "v:read", "ranges:read", "part:storage"],
  partial4: ["params:uniform", "q4:read", "k4:read", "v4:read", "ranges:read", "part4:storage"],
  partial_tiled: [
    "params:uniform",
    "q4:read",
    "k4:read",
    "v4:read",
    "ranges:read",
    "part4:storage",
  ],
  combine: ["params:uniform", "partIn:read", "stats:storage", "o:storage"],
});

/**
 * o (Tq, H, E) and stats (Tq, H, 2) = (lse, 0) of causal GQA decoding, as attentionForward
 * computes them, with each row's keys split over P parts. `scratch` holds
 * attentionDecodeScratchSize() floats.
 */
export function attentionDecode(
  rec: Recorder,
  o: AttentionDecodeDims & {
    q: Tensor; // (Tq, H, E)
    k: Tensor; // (Tk, K, E)
    v: Tensor; // (Tk, K, E)
    ranges: Tensor; // u32 (Tq, 2) or more: attentionRangeTable()'s key ranges first
    stats: Tensor; // (Tq, H, 2)
    o: Tensor; // (Tq, H, E)
    scratch: Tensor; // (P, Tq, H, E + 4)
  },
): void {
  const plan = attentionDecodePlan(rec.gpu, o);
  const { queryRows: Tq, heads: H, headDim: E } = o;
  const qn = Tq * H * E, kn = o.keyRows * o.kvHeads * E;
  need(o.q, "Decode attention q", qn);
  need(o.k, "Decode attention k", kn);
  need(o.v, "Decode attention v", kn);
  need(o.ranges, "Decode attention ranges", 2 * Tq, "u32");
  need(o.stats, "Decode attention stats", 2 * Tq * H);
  need(o.o, "Decode attention output", qn);
  need(o.scratch, "Decode attention scratch", plan.splits * Tq * H * (E + 4));
  const p = params(rec, {
    queryRows: Tq,
    heads: H,
    kvHeads: o.kvHeads,
    headDim: E,
    splits: plan.splits,
    hpw: plan.headsPerGroup,
    scale: 1 / Math.sqrt(E),
    pad0: 0,
  }, ["scale"]);
  const io = { params: p, ranges: o.ranges };
  if (plan.entryPoint === "partial") {
    rec.dispatch(
      decodeKernel(rec, "partial", { WG }),
      { ...io, q: o.q, k: o.k, v: o.v, part: o.scratch },
      grid(plan.splits * Tq * H, WG),
    );
  } else if (plan.entryPoint === "partial4") {
    rec.dispatch(
      decodeKernel(rec, "partial4", { WG }),
      { ...io, q4: o.q, k4: o.k, v4: o.v, part4: o.scratch },
      grid(plan.splits * Tq * H, WG),
    );
  } else {
    rec.dispatch(
      decodeKernel(rec, "partial_tiled", { WG }),
      { ...io, q4: o.q, k4: o.k, v4: o.v, part4: o.scratch },
      grid(plan.splits * Tq * (H / plan.headsPerGroup), 1),
    );
  }
  rec.dispatch(
    decodeKernel(rec, "combine", { WG }),
    { params: p, partIn: o.scratch, stats: o.stats, o: o.o },
    grid(Tq * H * E, WG),
  );
}
