/**
 * Causal grouped-query attention over a packed batch, flash-attention style: per query row and
 * head an online softmax over that row's key range, no (T × T) matrix. Which keys a query row sees
 * is given per row as a half-open range of key rows [keyStart, keyEnd), built by
 * `attentionRanges` from per-sequence descriptions; this covers packing (one causal mask per
 * sequence), padding rows (empty range) and KV-cache decoding (queries at positions
 * past..past+n attend to cached keys). Scale 1/sqrt(E); query head h reads kv head h / (H / K).
 * Each kernel is dispatched in as many passes over consecutive parts of the ranges as keep every
 * invocation within the software adapter's loop budget (one pass takes ~870 keys at E = 128 on
 * the texture variant, ~230 on the scalar buffer variant); other adapters run the same passes,
 * where they only add dispatches.
 * Legend: Tq query rows, Tk key rows, H heads, K kv heads, E head_dim.
 */
import code from "../../wgsl/attention.wgsl" with { type: "text" };
import { grid, type Recorder, type Resource } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, LOOP_BUDGET, loopCost, need, params } from "./_util.ts";

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** One sequence of the batch: its query rows and where its keys live. */
export interface AttentionSeq {
  /** First query row of the sequence in the packed Q (and O). */
  qStart: number;
  /** Number of query rows (new tokens). */
  qLen: number;
  /** First key row of the sequence in K/V (its position 0). */
  kStart: number;
  /** Tokens already cached before the first query (0 in training). */
  past?: number;
}

/**
 * Per query row [keyStart, keyEnd) (Tq, 2) and per key row the query rows that may see it
 * [queryStart, queryEnd) (Tk, 2), as u32. Rows outside every sequence get empty ranges.
 */
export function attentionRanges(
  seqs: AttentionSeq[],
  { queryRows, keyRows }: { queryRows: number; keyRows: number },
): { keyRanges: Uint32Array; queryRanges: Uint32Array } {
  const keyRanges = new Uint32Array(queryRows * 2);
  const queryRanges = new Uint32Array(keyRows * 2);
  for (const { qStart, qLen, kStart, past = 0 } of seqs) {
    if (qStart + qLen > queryRows || kStart + past + qLen > keyRows) {
      throw new RangeError(
        `Attention sequence at query row ${qStart} (length ${qLen}, past ${past}) does not fit ${queryRows} query rows and ${keyRows} key rows`,
      );
    }
    for (let i = 0; i < qLen; i++) {
      keyRanges[(qStart + i) * 2] = kStart;
      keyRanges[(qStart + i) * 2 + 1] = kStart + past + i + 1;
    }
    for (let j = 0; j < past + qLen; j++) {
      // Key position j is seen by the queries at positions >= j, i.e. rows from max(0, j - past).
      queryRanges[(kStart + j) * 2] = qStart + Math.max(0, j - past);
      queryRanges[(kStart + j) * 2 + 1] = qStart + qLen;
    }
  }
  return { keyRanges, queryRanges };
}

/** Float64 reference forward: o (Tq, H, E) and the log-sum-exp of the scaled scores (Tq, H). */
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyRanges: ArrayLike<number>,
  { heads, kvHeads, headDim }: AttentionShape,
): { o: Float64Array; lse: Float64Array } {
  const rows = keyRanges.length / 2, E = headDim, group = heads / kvHeads;
  const scale = 1 / Math.sqrt(E);
  const o = new Float64Array(rows * heads * E);
  const lse = new Float64Array(rows * heads).fill(-Infinity);
  for (let i = 0; i < rows; i++) {
    const k0 = keyRanges[2 * i], k1 = keyRanges[2 * i + 1];
    if (k1 <= k0) continue;
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const s = new Float64Array(k1 - k0);
      for (let j = k0; j < k1; j++) {
        let d = 0;
        for (let e = 0; e < E; e++) d += q[(i * heads + h) * E + e] * k[(j * kvHeads + kh) * E + e];
        s[j - k0] = d * scale;
      }
      const m = Math.max(...s);
      let sum = 0;
      for (const x of s) sum += Math.exp(x - m);
      lse[i * heads + h] = m + Math.log(sum);
      for (let j = k0; j < k1; j++) {
        const p = Math.exp(s[j - k0] - lse[i * heads + h]);
        for (let e = 0; e < E; e++) {
          o[(i * heads + h) * E + e] += p * v[(j * kvHeads + kh) * E + e];
        }
      }
    }
  }
  return { o, lse };
}

/**
 * Float64 reference backward from dO (Tq, H, E): with P = softmax(S), dV = Pᵀ·dO,
 * dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)), dQ = dS·K·scale, dK = dSᵀ·Q·scale (summed over the query
 * heads of each kv group).
 */
export function attentionBackwardRef(
  dO: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyRanges: ArrayLike<number>,
  shape: AttentionShape,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { heads, kvHeads, headDim: E } = shape;
  const rows = keyRanges.length / 2, group = heads / kvHeads;
  const scale = 1 / Math.sqrt(E);
  const { o, lse } = attentionForwardRef(q, k, v, keyRanges, shape);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let i = 0; i < rows; i++) {
    const k0 = keyRanges[2 * i], k1 = keyRanges[2 * i + 1];
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group), qo = (i * heads + h) * E;
      let D = 0;
      for (let e = 0; e < E; e++) D += dO[qo + e] * o[qo + e];
      for (let j = k0; j < k1; j++) {
        const ko = (j * kvHeads + kh) * E;
        let s = 0, dp = 0;
        for (let e = 0; e < E; e++) {
          s += q[qo + e] * k[ko + e];
          dp += dO[qo + e] * v[ko + e];
        }
        const p = Math.exp(s * scale - lse[i * heads + h]);
        const ds = p * (dp - D);
        for (let e = 0; e < E; e++) {
          dv[ko + e] += p * dO[qo + e];
          dq[qo + e] += ds * k[ko + e] * scale;
          dk[ko + e] += ds * q[qo + e] * scale;
        }
      }
    }
  }
  return { dq, dk, dv };
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 64;
/** The largest head_dim the kernels hold in registers (Qwen3 uses 128). */
export const ATTENTION_MAX_HEAD_DIM = 128;

const attentionKernel = family("wgsl/attention.wgsl", code, {
  forward: [
    "params:uniform",
    "q:read",
    "k:read",
    "v:read",
    "ranges:read",
    "stats:storage",
    "o:storage",
  ],
  forward_tex: [
    "params:uniform",
    "q4:read",
    "kTex:texture",
    "vTex:texture",
    "ranges:read",
    "stats:storage",
    "o4:storage",
  ],
  backward_dq: [
    "params:uniform",
    "q:read",
    "k:read",
    "v:read",
    "ranges:read",
    "stats:storage",
    "dOut:read",
    "oSaved:read",
    "dQ:storage",
  ],
  backward_dq_tex: [
    "params:uniform",
    "q4:read",
    "kTex:texture",
    "vTex:texture",
    "ranges:read",
    "stats:storage",
    "dOut4:read",
    "oSaved4:read",
    "dQ4:storage",
  ],
  backward_dkv_tex: [
    "params:uniform",
    "qTex:texture",
    "k4:read",
    "v4:read",
    "ranges:read",
    "stats:storage",
    "dOutTex:texture",
    "dK4:storage",
    "dV4:storage",
  ],
  backward_dkv: [
    "params:uniform",
    "q:read",
    "k:read",
    "v:read",
    "ranges:read",
    "stats:storage",
    "dOut:read",
    "dK:storage",
    "dV:storage",
  ],
});

/** The `ranges` tensor's contents, u32 (Tq + Tk, 2): attentionRanges() key then query ranges. */
export function attentionRangeTable(
  seqs: AttentionSeq[],
  dims: { queryRows: number; keyRows: number },
): Uint32Array {
  const { keyRanges, queryRanges } = attentionRanges(seqs, dims);
  const out = new Uint32Array(keyRanges.length + queryRanges.length);
  out.set(keyRanges);
  out.set(queryRanges, keyRanges.length);
  return out;
}

/** Shapes of one attention call: Tq query rows, Tk key rows, and the head layout. */
export interface AttentionDims extends AttentionShape {
  queryRows: number;
  keyRows: number;
  /**
   * Kernel variant: "texture" streams operands from textures (the software adapter's choice),
   * "buffer" reads storage buffers only (GPUs); default by adapter. "texture" falls back to
   * "buffer" where the row layout allows no buffer-to-texture copy.
   */
  variant?: AttentionVariant;
  /**
   * The longest sequence (past + qLen) of the ranges, when known: it bounds how many keys a query
   * row sees and how many query rows see a key, which sets the number of passes (default
   * keyRows and queryRows, always safe). A value below the truth leaves keys out.
   */
  maxSeqLen?: number;
}

export type AttentionVariant = "buffer" | "texture";

function checkShape(d: AttentionDims): void {
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

type Pass = "forward" | "dq" | "dkv";

/**
 * The passes of one kernel: each takes `span` keys (forward, dq) or query rows (dkv) of every
 * range, as many as keep the kernel's loop iterations, counted at worst, within LOOP_BUDGET
 * (the inner loops run E, or E/4 on the texture variants), and there are enough passes
 * to cover the longest range.
 */
function passPlan(d: AttentionDims, kind: Pass, vec4: boolean): { span: number; passes: number } {
  const n = loopCost(vec4 ? d.headDim / 4 : d.headDim), group = d.heads / d.kvHeads;
  // the loops outside the range loop (q in, the state in and out) and its exit, then per key
  // (scores, values) or per query row (over the group's heads: scores, gradients)
  const [fixed, per] = kind === "forward"
    ? [3 * n + 2, 2 * n + 1]
    : kind === "dq"
    ? [2 * n + 2, 2 * n + 1]
    : [2 * n + 2, loopCost(group) + group * 2 * n + 1];
  const span = Math.floor((LOOP_BUDGET - fixed) / per);
  if (span < 1) {
    throw new RangeError(
      `Attention with ${group} query heads per kv head of head_dim ${d.headDim} exceeds the loop budget of one invocation`,
    );
  }
  const rows = kind === "dkv" ? d.queryRows : d.keyRows;
  const longest = Math.min(rows, d.maxSeqLen ?? rows);
  return { span, passes: Math.max(1, Math.ceil(longest / span)) };
}

function attentionParams(
  rec: Recorder,
  d: AttentionDims,
  passIndex: number,
  span: number,
): GPUBufferBinding {
  return params(rec, {
    queryRows: d.queryRows,
    keyRows: d.keyRows,
    heads: d.heads,
    kvHeads: d.kvHeads,
    headDim: d.headDim,
    scale: 1 / Math.sqrt(d.headDim),
    passIndex,
    span,
  }, ["scale"]);
}

/** Dispatches `entryPoint` once per pass over n invocations, with `io` plus each pass's params. */
function dispatchPasses(
  rec: Recorder,
  d: AttentionDims,
  kind: Pass,
  entryPoint: string,
  io: Record<string, Resource>,
  n: number,
): void {
  const { span, passes } = passPlan(d, kind, entryPoint.endsWith("_tex"));
  const k = attentionKernel(rec, entryPoint, { WG });
  for (let p = 0; p < passes; p++) {
    rec.dispatch(k, { ...io, params: attentionParams(rec, d, p, span) }, grid(n, WG));
  }
}

interface AttentionInputs extends AttentionDims {
  q: Tensor; // (Tq, H, E)
  k: Tensor; // (Tk, K, E)
  v: Tensor; // (Tk, K, E)
  ranges: Tensor; // u32 (Tq + Tk, 2), attentionRangeTable()
  stats: Tensor; // (Tq, H, 2): lse from the forward, delta from the backward
}

function checkInputs(o: AttentionInputs): void {
  const qn = o.queryRows * o.heads * o.headDim, kn = o.keyRows * o.kvHeads * o.headDim;
  need(o.q, "Attention q", qn);
  need(o.k, "Attention k", kn);
  need(o.v, "Attention v", kn);
  need(o.ranges, "Attention ranges", 2 * (o.queryRows + o.keyRows), "u32");
  need(o.stats, "Attention stats", 2 * o.queryRows * o.heads);
}

/**
 * Scratch rgba32float textures holding k or v as (Tk, K·E/4) texels, reused by every call of
 * the same shape (commands run in order, so layers can share them).
 */
const scratch = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

function asTexture(rec: Recorder, t: Tensor, role: string, width: number, height: number) {
  const device = rec.gpu.device;
  let cache = scratch.get(device);
  if (!cache) scratch.set(device, cache = new Map());
  const key = `${role}:${width}x${height}`;
  let tex = cache.get(key);
  if (!tex) {
    tex = device.createTexture({
      label: `attention.${role}_texture`,
      size: [width, height],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    cache.set(key, tex);
  }
  rec.encoder().copyBufferToTexture(
    { buffer: t.buffer, offset: t.byteOffset, bytesPerRow: width * 16, rowsPerImage: height },
    { texture: tex },
    [width, height],
  );
  return tex;
}

/**
 * Whether k/v go through textures: on the software adapter (texel fetches are ~5x cheaper than
 * storage loads there) when the row layout allows a buffer-to-texture copy.
 */
function useTextures(rec: Recorder, d: AttentionDims, t: Tensor): boolean {
  const width = d.kvHeads * d.headDim / 4, max = rec.gpu.limits.maxTextureDimension2D;
  const wanted = d.variant ? d.variant === "texture" : rec.gpu.isFallback;
  return wanted && d.headDim % 4 === 0 && (width * 16) % 256 === 0 &&
    width <= max && d.keyRows <= max && d.keyRows > 0 && t.byteOffset % 16 === 0;
}

/** o (Tq, H, E) = causal GQA of q over k/v within the ranges; saves lse in stats. */
export function attentionForward(rec: Recorder, o: AttentionInputs & { o: Tensor }): void {
  checkShape(o);
  checkInputs(o);
  need(o.o, "Attention output", o.queryRows * o.heads * o.headDim);
  const io = { ranges: o.ranges, stats: o.stats }, n = o.queryRows * o.heads;
  if (useTextures(rec, o, o.k) && o.v.byteOffset % 16 === 0) {
    const width = o.kvHeads * o.headDim / 4;
    const kTex = asTexture(rec, o.k, "k", width, o.keyRows);
    const vTex = asTexture(rec, o.v, "v", width, o.keyRows);
    dispatchPasses(rec, o, "forward", "forward_tex", { ...io, q4: o.q, kTex, vTex, o4: o.o }, n);
    return;
  }
  dispatchPasses(rec, o, "forward", "forward", { ...io, q: o.q, k: o.k, v: o.v, o: o.o }, n);
}

/** dQ, dK, dV (overwritten) from dO and the forward's o and stats. */
export function attentionBackward(
  rec: Recorder,
  o: AttentionInputs & { o: Tensor; dO: Tensor; dQ: Tensor; dK: Tensor; dV: Tensor },
): void {
  checkShape(o);
  checkInputs(o);
  const qn = o.queryRows * o.heads * o.headDim, kn = o.keyRows * o.kvHeads * o.headDim;
  need(o.o, "Attention output", qn);
  need(o.dO, "Attention dO", qn);
  need(o.dQ, "Attention dQ", qn);
  need(o.dK, "Attention dK", kn);
  need(o.dV, "Attention dV", kn);
  const io = { ranges: o.ranges, stats: o.stats };
  const nq = o.queryRows * o.heads, nk = o.keyRows * o.kvHeads;
  if (useTextures(rec, o, o.k) && o.v.byteOffset % 16 === 0) {
    const width = o.kvHeads * o.headDim / 4;
    const kTex = asTexture(rec, o.k, "k", width, o.keyRows);
    const vTex = asTexture(rec, o.v, "v", width, o.keyRows);
    const dq = { ...io, q4: o.q, kTex, vTex, dOut4: o.dO, oSaved4: o.o, dQ4: o.dQ };
    dispatchPasses(rec, o, "dq", "backward_dq_tex", dq, nq);
  } else {
    const dq = { ...io, q: o.q, k: o.k, v: o.v, dOut: o.dO, oSaved: o.o, dQ: o.dQ };
    dispatchPasses(rec, o, "dq", "backward_dq", dq, nq);
  }
  const qWidth = o.heads * o.headDim / 4;
  if (
    useTextures(rec, o, o.k) && (qWidth * 16) % 256 === 0 &&
    qWidth <= rec.gpu.limits.maxTextureDimension2D &&
    o.queryRows <= rec.gpu.limits.maxTextureDimension2D && o.queryRows > 0 &&
    o.q.byteOffset % 16 === 0 && o.dO.byteOffset % 16 === 0
  ) {
    const qTex = asTexture(rec, o.q, "q", qWidth, o.queryRows);
    const dOutTex = asTexture(rec, o.dO, "dO", qWidth, o.queryRows);
    const dkv = { ...io, qTex, k4: o.k, v4: o.v, dOutTex, dK4: o.dK, dV4: o.dV };
    dispatchPasses(rec, o, "dkv", "backward_dkv_tex", dkv, nk);
    return;
  }
  const dkv = { ...io, q: o.q, k: o.k, v: o.v, dOut: o.dO, dK: o.dK, dV: o.dV };
  dispatchPasses(rec, o, "dkv", "backward_dkv", dkv, nk);
}
