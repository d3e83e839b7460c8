/**
 * Choosing the next token of each row on the device, chunk by chunk over the vocabulary (the LM
 * head writes one (B, C) chunk at a time): greedy (argmax, lowest id on ties), temperature
 * (Gumbel-max over the whole vocabulary), top-k and top-p (Gumbel-max among the running top-k
 * candidates of topk.ts). The noise of token `id` in a row is a counter-based hash of (seed,
 * stream, step, id), so a row's token depends on neither its batch nor the chunking. Only
 * (id, logprob, exact) per row is read back; logprob is under the plain softmax (temperature 1).
 * Top-p without top-k is exact when the candidates hold the nucleus; `exact` = 0 says they did
 * not (the caller falls back). Legend: B rows, V vocab, C chunk columns, k candidates.
 */
import code from "../../wgsl/sample.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params, rowColGrid } from "./_util.ts";
import type { VocabChunk } from "./softmax.ts";
import { TOPK_MAX, topkChunk } from "./topk.ts";

/** What to draw; the same for every row of a call. */
export interface SampleOptions {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 (or >= V) = off; at most SAMPLE_MAX_CANDIDATES on the device. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** u32 mixed into every row's noise. */
  seed?: number;
}

/** The most candidates the device keeps per row (top-k, and the top-p candidate list). */
export const SAMPLE_MAX_CANDIDATES = TOPK_MAX;

export type SampleMode = "greedy" | "temperature" | "candidates";

/**
 * How options are served: the mode and the candidates per row (the `k` of the `cand` tensors;
 * 0 unless mode is "candidates"). Throws a RangeError for a top-k above SAMPLE_MAX_CANDIDATES.
 */
export function samplePlan(
  o: SampleOptions,
  vocab: number,
): { mode: SampleMode; candidates: number; topK: number; topP: number } {
  const topK = o.topK && o.topK < vocab ? o.topK : 0;
  const topP = o.topP ?? 1;
  if (!Number.isInteger(topK) || topK < 0) {
    throw new RangeError(`Top-k must be a whole number >= 0, got ${o.topK}`);
  }
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`Top-p must be in (0, 1], got ${o.topP}`);
  if (!(o.temperature > 0)) return { mode: "greedy", candidates: 0, topK, topP };
  if (topK > SAMPLE_MAX_CANDIDATES) {
    throw new RangeError(
      `Device sampling keeps at most ${SAMPLE_MAX_CANDIDATES} top-k candidates, got top-k ${topK}`,
    );
  }
  if (topK === 0 && topP === 1) return { mode: "temperature", candidates: 0, topK, topP };
  return {
    mode: "candidates",
    candidates: topK || Math.min(SAMPLE_MAX_CANDIDATES, vocab),
    topK,
    topP,
  };
}

// ---- the random numbers, shared with the reference ------------------------------------------

/** The 32-bit hash of the kernels (xorshift-multiply, two rounds). */
function mix32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 24 random bits of token `id` in the row (stream, step) under `seed`. */
export function sampleBits(seed: number, stream: number, step: number, id: number): number {
  const k1 = mix32(mix32(mix32((seed ^ 0x243f6a88) >>> 0) ^ stream) ^ step);
  const k2 = mix32(k1 ^ 0x9e3779b9);
  return mix32((mix32(id ^ k1) + k2) >>> 0) >>> 8;
}

/** The Gumbel noise -log(-log(u)) of 24 random bits, u = (bits + 0.5) / 2^24, in float64. */
export function gumbelOf(bits: number): number {
  const w = (0xffffff - bits + 0.5) / 2 ** 24; // 1 - u, exactly
  return -Math.log(-Math.log1p(-w));
}

// ---- float64 reference ----------------------------------------------------------------------

/**
 * Float64 reference over whole rows (B, V): the chosen ids, their log-probs at temperature 1,
 * and whether a device keeping `candidates` per row (default samplePlan's) is exact. Each row
 * draws with noise sampleBits(seed, rowInfo[2r], rowInfo[2r + 1], id). Semantics: temperature,
 * then top-k (ties by lower id), then the smallest most-likely set with mass >= top-p of what is
 * left (tokens tied with the last one kept too), then argmax of x / T + gumbel (lower id on ties).
 */
export function sampleRef(
  logits: ArrayLike<number>,
  rowInfo: ArrayLike<number>,
  o: SampleOptions & { rows: number; cols: number; candidates?: number },
): { ids: Uint32Array; logprobs: Float64Array; exact: Uint8Array } {
  const { rows, cols: V } = o;
  const plan = samplePlan(o, V);
  const kc = o.candidates ?? plan.candidates;
  const ids = new Uint32Array(rows), logprobs = new Float64Array(rows);
  const exact = new Uint8Array(rows).fill(1);
  for (let r = 0; r < rows; r++) {
    const x = (i: number) => logits[r * V + i];
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, x(i));
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(x(i) - m);
    const lse = m + Math.log(s);
    let pick = 0;
    if (plan.mode === "greedy") {
      for (let i = 1; i < V; i++) if (x(i) > x(pick)) pick = i;
    } else {
      const T = o.temperature;
      // temperature alone draws over the whole vocabulary: no order needed
      let kept: number[] = [];
      if (plan.mode === "temperature") { for (let i = 0; i < V; i++) kept.push(i); }
      else {
        const order = Array.from({ length: V }, (_, i) => i);
        order.sort((a, b) => x(b) - x(a) || a - b);
        kept = plan.topK ? order.slice(0, plan.topK) : order;
      }
      if (plan.topP < 1) {
        let total = 0;
        for (const i of kept) total += Math.exp((x(i) - m) / T);
        let cum = 0, cut = kept.length - 1;
        for (let j = 0; j < kept.length; j++) {
          cum += Math.exp((x(kept[j]) - m) / T);
          if (cum >= plan.topP * total) {
            cut = j;
            break;
          }
        }
        const vcut = x(kept[cut]);
        kept = kept.filter((i) => x(i) >= vcut);
        if (!plan.topK && kept.length >= kc && kc < V) exact[r] = 0;
      }
      let best = -Infinity;
      const [stream, step] = [rowInfo[2 * r], rowInfo[2 * r + 1]];
      for (const i of kept) {
        const score = x(i) / T + gumbelOf(sampleBits(o.seed ?? 0, stream, step, i));
        if (score > best || (score === best && i < pick)) [best, pick] = [score, i];
      }
    }
    ids[r] = pick;
    logprobs[r] = x(pick) - lse;
  }
  return { ids, logprobs, exact };
}

/** The read-back `out` words (B, 3) as ids, log-probs and exact flags. */
export function sampleResults(
  words: Uint32Array,
  rows: number,
): { ids: Uint32Array; logprobs: Float32Array; exact: Uint8Array } {
  const f = new Float32Array(words.buffer, words.byteOffset, words.length);
  const ids = new Uint32Array(rows), logprobs = new Float32Array(rows);
  const exact = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    ids[r] = words[3 * r];
    logprobs[r] = f[3 * r + 1];
    exact[r] = words[3 * r + 2];
  }
  return { ids, logprobs, exact };
}

// ---- GPU kernels ----------------------------------------------------------------------------

/**
 * Chunk workgroups: WG invocations over a span of WG·PER columns. On the software adapter a
 * workgroup's barriers cost more than its loads, so few long spans (measured 0.85 GB/s at
 * 64·256 against 0.43 at 128·16, B = 64); GPUs get many short ones.
 */
const SPANS = { long: { WG: 64, PER: 256 }, short: { WG: 128, PER: 8 } };
/** The shorter span, which sizes the scratch. */
const MIN_SPAN = 1024;

/** "long": spans of 16384 columns (the software adapter's default), "short": 1024 (GPUs). */
export type SampleVariant = keyof typeof SPANS;
const sampleKernel = family("wgsl/sample.wgsl", code, {
  chunk: ["params:uniform", "x:read", "rowInfo:read", "part:storage"],
  merge: ["params:uniform", "partIn:read", "state:storage"],
  finish: ["params:uniform", "stateIn:read", "out:storage"],
  finish_candidates: [
    "params:uniform",
    "stateIn:read",
    "out:storage",
    "rowInfoC:read",
    "vals:read",
    "ids:read",
  ],
});

/**
 * u32 words of the `scratch` tensor sampleChunk needs for chunks of up to `cols` columns: per
 * row and span of columns one partial state of 8 words.
 */
export function sampleScratchSize({ rows, cols }: { rows: number; cols: number }): number {
  return rows * Math.max(1, Math.ceil(cols / MIN_SPAN)) * 8;
}

/** The tensors of one sampling pass (allocate once per batch size, reuse every step). */
export interface SampleTensors {
  /**
   * u32 (B, 8) words: the running state, the f32 bits of (max, sum, tempered sum, best score,
   * its logit) and the best id.
   */
  state: Tensor;
  /** u32 (B, 2): per row (stream, step), the key of its noise. */
  rowInfo: Tensor;
  /** Candidates (mode "candidates" only): f32 / u32 (B, k), k from samplePlan. */
  cand?: { vals: Tensor; ids: Tensor };
}

function sampleParams(
  rec: Recorder,
  o: SampleOptions & { rows: number; vocab: number },
  extra: { cols?: number; ld?: number; colStart?: number; parts?: number; first?: boolean },
): GPUBufferBinding {
  const plan = samplePlan(o, o.vocab);
  const mode = { greedy: 0, temperature: 1, candidates: 2 }[plan.mode];
  return params(rec, {
    rows: o.rows,
    cols: extra.cols ?? 0,
    ld: extra.ld ?? extra.cols ?? 0,
    colStart: extra.colStart ?? 0,
    mode,
    tempered: plan.mode === "candidates" && !plan.topK && plan.topP < 1 ? 1 : 0,
    parts: extra.parts ?? 0,
    first: extra.first ? 1 : 0,
    invT: plan.mode === "greedy" ? 0 : 1 / o.temperature,
    seed: (o.seed ?? 0) >>> 0,
    topK: plan.topK,
    topP: plan.topP,
    k: plan.candidates,
    vocab: o.vocab,
    pad0: 0,
    pad1: 0,
  }, ["invT", "topP"]);
}

function needCandidates(o: SampleTensors & { rows: number }, k: number): void {
  if (k === 0) return;
  if (!o.cand) throw new Error(`Sampling with top-k/top-p needs cand tensors (B, ${k})`);
  need(o.cand.vals, "Sampling candidate logits", o.rows * k);
  need(o.cand.ids, "Sampling candidate ids", o.rows * k, "u32");
}

/**
 * Merges one logits chunk (vocabulary ids colStart..colStart+cols) into the rows' sampling
 * state; call for every chunk in vocabulary order, `first` on the first. Also runs topkChunk
 * into `cand` when the options need candidates. `scratch` holds sampleScratchSize() words.
 */
export function sampleChunk(
  rec: Recorder,
  o:
    & SampleOptions
    & SampleTensors
    & VocabChunk
    & { x: Tensor; scratch: Tensor; colStart: number; first: boolean; vocab: number }
    & { variant?: SampleVariant },
): void {
  const ld = o.ld ?? o.cols;
  const span = SPANS[o.variant ?? (rec.gpu.isFallback ? "long" : "short")];
  const parts = Math.max(1, Math.ceil(o.cols / (span.WG * span.PER)));
  need(o.x, "Sampling logits chunk", (o.rows - 1) * ld + o.cols);
  need(o.scratch, "Sampling scratch", o.rows * parts * 8, "u32");
  need(o.state, "Sampling state", o.rows * 8, "u32");
  need(o.rowInfo, "Sampling row info", o.rows * 2, "u32");
  const plan = samplePlan(o, o.vocab);
  needCandidates(o, plan.candidates);
  const p = sampleParams(rec, o, { ...o, ld, parts });
  rec.dispatch(
    sampleKernel(rec, "chunk", span),
    { params: p, x: o.x, rowInfo: o.rowInfo, part: o.scratch },
    rowColGrid(o.rows, o.cols, span.WG * span.PER),
  );
  rec.dispatch(
    sampleKernel(rec, "merge"),
    { params: p, partIn: o.scratch, state: o.state },
    grid(o.rows, 64),
  );
  if (plan.candidates > 0) {
    topkChunk(rec, {
      vals: o.cand!.vals,
      ids: o.cand!.ids,
      x: o.x,
      colStart: o.colStart,
      k: plan.candidates,
      first: o.first,
      rows: o.rows,
      cols: o.cols,
      ld,
    });
  }
}

/** Writes out u32 (B, 3) = (id, logprob as f32 bits, exact) per row after the last chunk. */
export function sampleFinish(
  rec: Recorder,
  o: SampleOptions & SampleTensors & { out: Tensor; rows: number; vocab: number },
): void {
  need(o.out, "Sampling output", o.rows * 3, "u32");
  need(o.state, "Sampling state", o.rows * 8, "u32");
  const plan = samplePlan(o, o.vocab);
  needCandidates(o, plan.candidates);
  const p = sampleParams(rec, o, {});
  if (plan.candidates === 0) {
    rec.dispatch(
      sampleKernel(rec, "finish"),
      { params: p, stateIn: o.state, out: o.out },
      grid(o.rows, 64),
    );
    return;
  }
  need(o.rowInfo, "Sampling row info", o.rows * 2, "u32");
  rec.dispatch(
    sampleKernel(rec, "finish_candidates"),
    {
      params: p,
      stateIn: o.state,
      out: o.out,
      rowInfoC: o.rowInfo,
      vals: o.cand!.vals,
      ids: o.cand!.ids,
    },
    grid(o.rows, 64),
  );
}
