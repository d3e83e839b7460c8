/**
 * One decoder layer on the engine, forward and backward side by side (llm.c style), over T
 * packed tokens, reading a resolved LayerParams record (model/gpu_weights.ts) so Qwen3 and
 * Qwen2 share the code: x2 = x + o_proj(attn(rope(norm_qk(q_proj(n1))), ...)),
 * out = x2 + down(silu(gate(n2))·up(n2)) with n1 = input_layernorm(x), n2 =
 * post_attention_layernorm(x2); q/k biases and q/k norms only where the architecture has them.
 * Attention reads its keys and values from `kv(a)`: the tokens themselves in training, the KV
 * cache (after storing the new ones) in generation. The backward follows the gradient rule of
 * STYLE.md: parameter grads accumulate (+=), activation grads overwrite, and dRes carries the
 * residual stream (in: dL/d(layer output); out: dL/d(layer input)).
 * Legend: T tokens, D hidden_size, H heads, K kv heads, E head_dim, F intermediate_size.
 */
import type { Recorder } from "../engine/recorder.ts";
import type { Tensor } from "../engine/tensor.ts";
import { attentionBackward, attentionForward } from "../engine/ops/attention.ts";
import { attentionDecode } from "../engine/ops/attention_decode.ts";
import { matmulBackward, matmulForward } from "../engine/ops/matmul.ts";
import { residualBackward, residualForward } from "../engine/ops/residual.ts";
import { rmsNormBackward, rmsNormForward } from "../engine/ops/rms_norm.ts";
import { ropeBackward, ropeForward } from "../engine/ops/rope.ts";
import { swigluBackward, swigluForward } from "../engine/ops/swiglu.ts";
import type { LayerParams, Linear, NormWeight } from "./gpu_weights.ts";
import type { GradScratch, LayerActs } from "./plan.ts";

/** Sizes every layer call needs. */
export interface Dims {
  D: number;
  H: number;
  K: number;
  E: number;
  F: number;
  eps: number;
}

/** What one layer step runs over: its weights and activations, T tokens, RoPE and ranges. */
export interface LayerStep {
  p: LayerParams;
  a: LayerActs;
  T: number;
  d: Dims;
  rope: { positions: Tensor; table: Tensor };
  /** Attention's per-query key ranges and the rows of the key/value tensors. */
  ranges: Tensor;
  keyRows: number;
  /** The longest sequence of the ranges (past + new tokens): sizes attention's passes. */
  maxSeqLen: number;
  /**
   * A decode step (one new token per sequence): attention splits each row's cached keys over
   * parallel parts (engine/ops/attention_decode.ts) in this scratch. Forward only.
   */
  decodeScratch?: Tensor;
}

/** The first T rows of a plan tensor (plans are allocated for a capacity). */
export function rows(t: Tensor, T: number): Tensor {
  return t.shape[0] === T ? t : t.rows(0, T);
}

/** y (T, out) = x (T, in) · Wᵀ (+ b). */
export function linear(rec: Recorder, o: { l: Linear; y: Tensor; x: Tensor; T: number }): void {
  const { l, y, x, T } = o, [outDim, inDim] = l.w.shape;
  matmulForward(rec, {
    y: rows(y, T),
    x: rows(x, T),
    w: l.w,
    bias: l.bias,
    packed: l.packed,
    rows: T,
    inDim,
    outDim,
  });
}

/** dx (=, or += with `acc`) = dy · W; dW += dyᵀ · x; dBias += Σ dy. */
function linearBack(
  rec: Recorder,
  o: { l: Linear; dy: Tensor; x: Tensor; dx: Tensor; T: number; acc?: boolean },
): void {
  const { l, dy, x, dx, T } = o, [outDim, inDim] = l.w.shape;
  matmulBackward(rec, {
    dy: rows(dy, T),
    x: rows(x, T),
    w: l.w,
    dx: rows(dx, T),
    dw: l.dW,
    dBias: l.dBias,
    accumulateDx: o.acc ?? false,
    rows: T,
    inDim,
    outDim,
  });
}

interface NormArgs {
  w: NormWeight;
  x: Tensor; // (rows, dim)
  rstd: Tensor; // (rows)
  rows: number;
  dim: number;
  eps: number;
}

/** y = x / rms(x) · w over rows of `dim`; each row's 1/rms kept in rstd. */
export function norm(rec: Recorder, o: NormArgs & { y: Tensor }): void {
  rmsNormForward(rec, { ...o, weight: o.w.w });
}

/** dx = the norm's input gradient (=); dW += its weight gradient. */
export function normBack(rec: Recorder, o: NormArgs & { dx: Tensor; dy: Tensor }): void {
  rmsNormBackward(rec, { ...o, weight: o.w.w, dWeight: o.w.dW! });
}

/** Records the layer's forward from a.x into `out` (T, D); `tmp` (T, D) is scratch. */
export function layerForward(
  rec: Recorder,
  s: LayerStep & { out: Tensor; tmp: Tensor; kv: (a: LayerActs) => { k: Tensor; v: Tensor } },
): void {
  const { p, a, T, d } = s, { positions, table } = s.rope;
  const tok = { rows: T, dim: d.D, eps: d.eps };
  const qh = { rows: T * d.H, dim: d.E, eps: d.eps }, kh = { ...qh, rows: T * d.K };
  norm(rec, { w: p.inputNorm, y: a.xn1, rstd: a.rstd1, x: a.x, ...tok });
  linear(rec, { l: p.q, y: p.qNorm ? a.q : a.qr, x: a.xn1, T });
  linear(rec, { l: p.k, y: p.kNorm ? a.k : a.kr, x: a.xn1, T });
  linear(rec, { l: p.v, y: a.v, x: a.xn1, T });
  if (p.qNorm) norm(rec, { w: p.qNorm, y: a.qr, rstd: a.rstdQ, x: a.q, ...qh });
  if (p.kNorm) norm(rec, { w: p.kNorm, y: a.kr, rstd: a.rstdK, x: a.k, ...kh });
  ropeForward(rec, { x: a.qr, positions, table, tokens: T, heads: d.H, headDim: d.E });
  ropeForward(rec, { x: a.kr, positions, table, tokens: T, heads: d.K, headDim: d.E });
  const { k, v } = s.kv(a);
  const shape = {
    queryRows: T,
    keyRows: s.keyRows,
    maxSeqLen: s.maxSeqLen,
    heads: d.H,
    kvHeads: d.K,
    headDim: d.E,
  };
  if (s.decodeScratch) {
    attentionDecode(rec, {
      q: a.qr,
      k,
      v,
      ranges: s.ranges,
      stats: a.att,
      o: a.o,
      scratch: s.decodeScratch,
      maxKeys: s.maxSeqLen,
      ...shape,
    });
  } else {
    attentionForward(rec, { q: a.qr, k, v, ranges: s.ranges, stats: a.att, o: a.o, ...shape });
  }
  linear(rec, { l: p.o, y: s.tmp, x: a.o, T });
  residualForward(rec, { out: a.x2, a: a.x, b: s.tmp, n: T * d.D });
  norm(rec, { w: p.postNorm, y: a.xn2, rstd: a.rstd2, x: a.x2, ...tok });
  linear(rec, { l: p.gate, y: a.g, x: a.xn2, T });
  linear(rec, { l: p.up, y: a.u, x: a.xn2, T });
  swigluForward(rec, { h: a.h, gate: a.g, up: a.u, n: T * d.F });
  linear(rec, { l: p.down, y: s.tmp, x: a.h, T });
  residualForward(rec, { out: s.out, a: a.x2, b: s.tmp, n: T * d.D });
}

/** Records the layer's backward: g.dRes from dL/d(out) to dL/d(a.x); weight grads += . */
export function layerBackward(rec: Recorder, s: LayerStep & { g: GradScratch }): void {
  const { p, a, T, d, g } = s, n = T * d.D;
  const tok = { rows: T, dim: d.D, eps: d.eps };
  linearBack(rec, { l: p.down, dy: g.dRes, x: a.h, dx: g.dH, T });
  swigluBackward(rec, { dGate: g.dG, dUp: g.dU, dH: g.dH, gate: a.g, up: a.u, n: T * d.F });
  linearBack(rec, { l: p.gate, dy: g.dG, x: a.xn2, dx: g.dXn, T });
  linearBack(rec, { l: p.up, dy: g.dU, x: a.xn2, dx: g.dXn, T, acc: true });
  normBack(rec, { w: p.postNorm, dx: g.dTmp, dy: g.dXn, x: a.x2, rstd: a.rstd2, ...tok });
  residualBackward(rec, { dst: g.dRes, src: g.dTmp, n }); // dRes = dL/dx2
  linearBack(rec, { l: p.o, dy: g.dRes, x: a.o, dx: g.dO, T });
  attentionBack(rec, s); // dO -> dQr, dKr, dV (after RoPE), then through RoPE
  const qh = { rows: T * d.H, dim: d.E, eps: d.eps }, kh = { ...qh, rows: T * d.K };
  if (p.qNorm) normBack(rec, { w: p.qNorm, dx: g.dQ, dy: g.dQr, x: a.q, rstd: a.rstdQ, ...qh });
  if (p.kNorm) normBack(rec, { w: p.kNorm, dx: g.dK, dy: g.dKr, x: a.k, rstd: a.rstdK, ...kh });
  linearBack(rec, { l: p.q, dy: p.qNorm ? g.dQ : g.dQr, x: a.xn1, dx: g.dXn, T });
  linearBack(rec, { l: p.k, dy: p.kNorm ? g.dK : g.dKr, x: a.xn1, dx: g.dXn, T, acc: true });
  linearBack(rec, { l: p.v, dy: g.dV, x: a.xn1, dx: g.dXn, T, acc: true });
  normBack(rec, { w: p.inputNorm, dx: g.dTmp, dy: g.dXn, x: a.x, rstd: a.rstd1, ...tok });
  residualBackward(rec, { dst: g.dRes, src: g.dTmp, n }); // dRes = dL/dx
}

/** Attention's backward from g.dO to the gradients of q and k before RoPE, and of v. */
function attentionBack(rec: Recorder, s: LayerStep & { g: GradScratch }): void {
  const { a, T, d, g } = s, { positions, table } = s.rope;
  attentionBackward(rec, {
    queryRows: T,
    keyRows: s.keyRows,
    maxSeqLen: s.maxSeqLen,
    heads: d.H,
    kvHeads: d.K,
    headDim: d.E,
    ...{ q: a.qr, k: a.kr, v: a.v, ranges: s.ranges, stats: a.att, o: a.o },
    ...{ dO: g.dO, dQ: g.dQr, dK: g.dKr, dV: g.dV },
  });
  ropeBackward(rec, { dx: g.dQr, positions, table, tokens: T, heads: d.H, headDim: d.E });
  ropeBackward(rec, { dx: g.dKr, positions, table, tokens: T, heads: d.K, headDim: d.E });
}
