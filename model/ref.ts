/**
 * A float64 CPU decoder (Qwen3, Qwen2/Qwen2.5 through the architecture record of config.ts),
 * written as plain loops (llm.c train_gpt2.c style): the whole-model oracle the GPU model is
 * tested against. Forward over a batch of variable-length sequences (packed:
 * positions restart at 0 and attention is causal within each sequence), log-probs, masked
 * cross-entropy, the backward pass to every parameter (the tied embedding gets both the LM-head
 * and the embedding gradient), and greedy generation with or without a KV cache.
 * Deliberately slow and simple: O(T^2) attention per head, the full (N, V) logits, no batching
 * tricks; meant for tiny configs (and a few tokens of the 0.6B shape).
 * RoPE angles are exact float64 (transformers computes them in f32: a ~1e-7 difference).
 * Legend: N tokens in the batch, T tokens of one sequence, D hidden_size, H heads, K kv heads,
 * E head_dim, F intermediate_size, V vocab_size, L layers.
 */
import { archOf, type ModelConfig, readModelConfig } from "./config.ts";
import { drawToken, type SamplingParams, topK } from "./sampling.ts";
import { Checkpoint } from "./safetensors.ts";
import { loadWeights, randomWeightF32, weightSpecs } from "./weights.ts";

/** Parameters by their transformers name, as float64 (row-major like the checkpoint). */
export type RefParams = Record<string, Float64Array>;

export interface RefModel {
  config: ModelConfig;
  params: RefParams;
}

// ---------------------------------------------------------------------------------------------
// building blocks (forward and backward side by side)

/** out (N, O) = x (N, I) @ w (O, I)^T */
function matmul(
  out: Float64Array,
  x: Float64Array,
  w: Float64Array,
  N: number,
  I: number,
  O: number,
) {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let i = 0; i < I; i++) s += x[n * I + i] * w[o * I + i];
      out[n * O + o] = s;
    }
  }
}

/** dx (N, I) += dout @ w; dw (O, I) += dout^T @ x */
function matmulBackward(
  dx: Float64Array,
  dw: Float64Array,
  dout: Float64Array,
  x: Float64Array,
  w: Float64Array,
  N: number,
  I: number,
  O: number,
) {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = dout[n * O + o];
      if (g === 0) continue;
      for (let i = 0; i < I; i++) {
        dx[n * I + i] += g * w[o * I + i];
        dw[o * I + i] += g * x[n * I + i];
      }
    }
  }
}

/** y = x / sqrt(mean(x^2) + eps) * w over rows of length dim; returns rstd per row. */
function rmsNorm(
  y: Float64Array,
  rstd: Float64Array,
  x: Float64Array,
  w: Float64Array,
  rows: number,
  dim: number,
  eps: number,
) {
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * s * w[i];
  }
}

/** dx += r*(dy*w) - r^3/dim * x * sum(dy*w*x); dw += sum_rows dy*x*r */
function rmsNormBackward(
  dx: Float64Array,
  dw: Float64Array,
  dy: Float64Array,
  x: Float64Array,
  w: Float64Array,
  rstd: Float64Array,
  rows: number,
  dim: number,
) {
  for (let r = 0; r < rows; r++) {
    const s = rstd[r];
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += dy[r * dim + i] * w[i] * x[r * dim + i];
    const c = (s * s * s * dot) / dim;
    for (let i = 0; i < dim; i++) {
      const j = r * dim + i;
      dx[j] += s * dy[j] * w[i] - c * x[j];
      dw[i] += dy[j] * x[j] * s;
    }
  }
}

/** cos/sin (E/2) of position `pos`: inv_freq[i] = theta^(-2i/E). */
function ropeAngles(pos: number, E: number, theta: number): [Float64Array, Float64Array] {
  const half = E / 2;
  const c = new Float64Array(half), s = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const a = pos * Math.pow(theta, -(2 * i) / E);
    c[i] = Math.cos(a);
    s[i] = Math.sin(a);
  }
  return [c, s];
}

/** Rotate-half RoPE in place on one head vector at `off`: (a, b) -> (a c - b s, b c + a s). */
function rope(x: Float64Array, off: number, c: Float64Array, s: Float64Array, inverse: boolean) {
  const half = c.length;
  const sg = inverse ? -1 : 1;
  for (let i = 0; i < half; i++) {
    const a = x[off + i], b = x[off + half + i];
    x[off + i] = a * c[i] - sg * b * s[i];
    x[off + half + i] = b * c[i] + sg * a * s[i];
  }
}

/** y (N, O) += b (O) on every row. */
function addBias(y: Float64Array, b: Float64Array, N: number, O: number) {
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] += b[o];
}

/** db (O) += column sums of dy (N, O). */
function biasBackward(db: Float64Array, dy: Float64Array, N: number, O: number) {
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) db[o] += dy[n * O + o];
}

const silu = (g: number) => g / (1 + Math.exp(-g));

// ---------------------------------------------------------------------------------------------
// forward

interface LayerActs {
  x: Float64Array; // (N, D) residual stream into the layer
  rstd1: Float64Array; // (N)
  xn1: Float64Array; // (N, D)
  q: Float64Array; // (N, H*E) before q_norm
  k: Float64Array; // (N, K*E) before k_norm
  v: Float64Array; // (N, K*E)
  rstdQ: Float64Array; // (N, H) (Qwen3)
  rstdK: Float64Array; // (N, K) (Qwen3)
  qr: Float64Array; // (N, H*E) after q_norm (Qwen3) and RoPE
  kr: Float64Array; // (N, K*E) after k_norm (Qwen3) and RoPE
  att: Float64Array[]; // per sequence: (H, T, P+T) softmax probabilities
  o: Float64Array; // (N, H*E) attention output, before o_proj
  x2: Float64Array; // (N, D) after the attention residual
  rstd2: Float64Array; // (N)
  xn2: Float64Array; // (N, D)
  g: Float64Array; // (N, F) gate_proj
  u: Float64Array; // (N, F) up_proj
  h: Float64Array; // (N, F) silu(g) * u
}

/** Keys (after norm and RoPE) and values of past tokens of one sequence, per layer. */
export interface KvCache {
  length: number; // P tokens cached
  k: number[][]; // per layer, flat (P, K*E)
  v: number[][]; // per layer, flat (P, K*E)
}

export function newKvCache(c: ModelConfig): KvCache {
  return {
    length: 0,
    k: Array.from({ length: c.num_hidden_layers }, () => []),
    v: Array.from({ length: c.num_hidden_layers }, () => []),
  };
}

export interface ForwardRef {
  seqs: number[][];
  offsets: number[]; // start of each sequence in the packed batch
  N: number;
  ids: Int32Array; // (N)
  layers: LayerActs[];
  xL: Float64Array; // (N, D) residual after the last layer
  rstdF: Float64Array; // (N)
  xf: Float64Array; // (N, D) after model.norm
  logits: Float64Array; // (N, V)
}

/**
 * Forward over packed sequences. With `cache` (one sequence only), the tokens continue the
 * cached sequence (positions P.., attending to the P cached tokens) and the cache is extended.
 */
export function forwardRef(
  model: RefModel,
  seqs: number[][],
  opts: { cache?: KvCache } = {},
): ForwardRef {
  const c = model.config, P = model.params, D = c.hidden_size, V = c.vocab_size;
  if (opts.cache && seqs.length !== 1) {
    throw new Error("forwardRef(): a KV cache takes one sequence");
  }
  const b = batchOf(c, seqs, opts.cache);
  const N = b.N;
  let x: Float64Array = new Float64Array(N * D); // the embedding rows
  const emb = P["model.embed_tokens.weight"];
  for (let n = 0; n < N; n++) x.set(emb.subarray(b.ids[n] * D, b.ids[n] * D + D), n * D);
  const layers: LayerActs[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const { acts, out } = layerForwardRef(model, l, x, b);
    layers.push(acts);
    x = out;
  }
  if (opts.cache) opts.cache.length += seqs[0].length;
  const rstdF = new Float64Array(N), xf = new Float64Array(N * D);
  rmsNorm(xf, rstdF, x, P["model.norm.weight"], N, D, c.rms_norm_eps);
  const logits = new Float64Array(N * V);
  matmul(logits, xf, lmHead(model), N, D, V);
  return { seqs, offsets: b.offsets, N, ids: b.ids, layers, xL: x, rstdF, xf, logits };
}

/** One packed batch: its tokens, their positions and RoPE angles, and the KV cache if any. */
interface Batch {
  c: ModelConfig;
  seqs: number[][];
  offsets: number[]; // start of each sequence
  N: number;
  ids: Int32Array; // (N)
  pos: Int32Array; // (N) position of each token (past + t)
  past: number; // tokens already cached (cache mode)
  cache?: KvCache;
  angles: (pos: number) => [Float64Array, Float64Array];
}

function batchOf(c: ModelConfig, seqs: number[][], cache?: KvCache): Batch {
  const past = cache?.length ?? 0;
  const offsets: number[] = [];
  let N = 0;
  for (const s of seqs) {
    offsets.push(N);
    N += s.length;
  }
  const ids = new Int32Array(N), pos = new Int32Array(N);
  seqs.forEach((s, i) =>
    s.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) {
        throw new RangeError(`Token id ${id} is outside the vocabulary (size ${c.vocab_size})`);
      }
      ids[offsets[i] + t] = id;
      pos[offsets[i] + t] = past + t;
    })
  );
  const memo = new Map<number, [Float64Array, Float64Array]>();
  const angles = (p: number) => {
    let a = memo.get(p);
    if (!a) memo.set(p, a = ropeAngles(p, c.head_dim, c.rope_theta));
    return a;
  };
  return { c, seqs, offsets, N, ids, pos, past, cache, angles };
}

/** One decoder layer over the batch: the activations its backward needs, and its output. */
function layerForwardRef(
  model: RefModel,
  l: number,
  x: Float64Array,
  b: Batch,
): { acts: LayerActs; out: Float64Array } {
  const c = b.c, arch = archOf(c), N = b.N, eps = c.rms_norm_eps;
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, HE = H * E, KE = K * E;
  const w = (n: string) => model.params[`model.layers.${l}.${n}`];
  const z = (n: number) => new Float64Array(n);
  const a: LayerActs = {
    ...{ x, rstd1: z(N), xn1: z(N * D), q: z(N * HE), k: z(N * KE), v: z(N * KE) },
    ...{ rstdQ: z(N * H), rstdK: z(N * K), qr: z(N * HE), kr: z(N * KE), att: [], o: z(N * HE) },
    ...{ x2: z(N * D), rstd2: z(N), xn2: z(N * D), g: z(N * F), u: z(N * F), h: z(N * F) },
  };
  rmsNorm(a.xn1, a.rstd1, x, w("input_layernorm.weight"), N, D, eps);
  for (const [y, name, O] of [[a.q, "q", HE], [a.k, "k", KE], [a.v, "v", KE]] as const) {
    matmul(y, a.xn1, w(`self_attn.${name}_proj.weight`), N, D, O);
    if (arch.qkvBias) addBias(y, w(`self_attn.${name}_proj.bias`), N, O);
  }
  if (arch.qkNorm) { // per-head RMSNorm (rows of E), Qwen3
    rmsNorm(a.qr, a.rstdQ, a.q, w("self_attn.q_norm.weight"), N * H, E, eps);
    rmsNorm(a.kr, a.rstdK, a.k, w("self_attn.k_norm.weight"), N * K, E, eps);
  } else {
    a.qr.set(a.q);
    a.kr.set(a.k);
  }
  for (let n = 0; n < N; n++) { // RoPE at each token's position
    const [cs, sn] = b.angles(b.pos[n]);
    for (let h = 0; h < H; h++) rope(a.qr, n * HE + h * E, cs, sn, false);
    for (let h = 0; h < K; h++) rope(a.kr, n * KE + h * E, cs, sn, false);
  }
  causalAttentionRef(a, l, b);
  const proj = z(N * D);
  matmul(proj, a.o, w("self_attn.o_proj.weight"), N, HE, D);
  for (let i = 0; i < N * D; i++) a.x2[i] = x[i] + proj[i];
  rmsNorm(a.xn2, a.rstd2, a.x2, w("post_attention_layernorm.weight"), N, D, eps);
  matmul(a.g, a.xn2, w("mlp.gate_proj.weight"), N, D, F);
  matmul(a.u, a.xn2, w("mlp.up_proj.weight"), N, D, F);
  for (let i = 0; i < N * F; i++) a.h[i] = silu(a.g[i]) * a.u[i];
  matmul(proj, a.h, w("mlp.down_proj.weight"), N, F, D);
  const out = z(N * D);
  for (let i = 0; i < N * D; i++) out[i] = a.x2[i] + proj[i];
  return { acts: a, out };
}

/**
 * Causal attention within each sequence (and over its cached keys): a.o from a.qr, a.kr, a.v;
 * the softmax probabilities are kept per sequence in a.att. Query head h reads kv head
 * floor(h / group).
 */
function causalAttentionRef(a: LayerActs, l: number, b: Batch): void {
  const c = b.c, H = c.num_attention_heads, K = c.num_key_value_heads, E = c.head_dim;
  const HE = H * E, KE = K * E, group = H / K, scale = 1 / Math.sqrt(E), past = b.past;
  for (let si = 0; si < b.seqs.length; si++) {
    const T = b.seqs[si].length, off = b.offsets[si];
    let keys = a.kr.subarray(off * KE, (off + T) * KE);
    let vals = a.v.subarray(off * KE, (off + T) * KE);
    if (b.cache) {
      b.cache.k[l].push(...keys);
      b.cache.v[l].push(...vals);
      keys = Float64Array.from(b.cache.k[l]);
      vals = Float64Array.from(b.cache.v[l]);
    }
    const S = past + T; // keys visible to the last query
    const att = new Float64Array(H * T * S);
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = (off + t) * HE + h * E, row = (h * T + t) * S;
        let max = -Infinity;
        for (let u = 0; u <= past + t; u++) {
          let s = 0;
          for (let e = 0; e < E; e++) s += a.qr[qo + e] * keys[u * KE + kh * E + e];
          att[row + u] = s * scale;
          if (s * scale > max) max = s * scale;
        }
        let sum = 0;
        for (let u = 0; u <= past + t; u++) sum += att[row + u] = Math.exp(att[row + u] - max);
        for (let u = 0; u <= past + t; u++) att[row + u] /= sum;
        for (let e = 0; e < E; e++) {
          let o = 0;
          for (let u = 0; u <= past + t; u++) o += att[row + u] * vals[u * KE + kh * E + e];
          a.o[qo + e] = o;
        }
      }
    }
    a.att.push(att);
  }
}

function lmHead(model: RefModel): Float64Array {
  return model.config.tie_word_embeddings
    ? model.params["model.embed_tokens.weight"]
    : model.params["lm_head.weight"];
}

/** log-softmax of one row of logits. */
export function logSoftmaxRow(logits: Float64Array, row: number, V: number): Float64Array {
  const x = logits.subarray(row * V, row * V + V);
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(x[i] - max);
  const lse = max + Math.log(sum);
  return x.map((v) => v - lse);
}

/**
 * `star logprobs` semantics: logprobs[t] = log p(ids[t+1] | ids[0..t]) for each sequence
 * (length T-1), plus the top-k (descending) of each position when `topK` is given.
 */
export function logProbsRef(
  model: RefModel,
  seqs: number[][],
  opts: { topK?: number } = {},
): { logprobs: number[]; topkIds?: number[][]; topkLogprobs?: number[][] }[] {
  const f = forwardRef(model, seqs);
  const V = model.config.vocab_size;
  return seqs.map((s, si) => {
    const logprobs: number[] = [];
    const topkIds: number[][] = [], topkLogprobs: number[][] = [];
    for (let t = 0; t + 1 < s.length; t++) {
      const lp = logSoftmaxRow(f.logits, f.offsets[si] + t, V);
      logprobs.push(lp[s[t + 1]]);
      if (opts.topK) {
        const order = topK(lp, opts.topK);
        topkIds.push(order);
        topkLogprobs.push(order.map((i) => lp[i]));
      }
    }
    return opts.topK ? { logprobs, topkIds, topkLogprobs } : { logprobs };
  });
}

// ---------------------------------------------------------------------------------------------
// loss and backward

/** Ignored label, as in transformers. */
export const IGNORE_INDEX = -100;

/**
 * Mean cross-entropy of next-token prediction over the counted positions, transformers-style
 * labels: position t is scored on labels[t+1] unless it is -100 (labels default to the ids).
 * Returns the loss, the number of counted tokens and dLoss/dlogits (N, V).
 */
export function crossEntropyRef(
  f: ForwardRef,
  V: number,
  labels?: number[][],
): { loss: number; count: number; dlogits: Float64Array } {
  const dlogits = new Float64Array(f.N * V);
  const rows: [number, number][] = [];
  f.seqs.forEach((s, si) => {
    const lab = labels?.[si] ?? s;
    if (lab.length !== s.length) {
      throw new RangeError(`Labels of sequence ${si} have length ${lab.length}, ids ${s.length}`);
    }
    for (let t = 0; t + 1 < s.length; t++) {
      if (lab[t + 1] !== IGNORE_INDEX) rows.push([f.offsets[si] + t, lab[t + 1]]);
    }
  });
  let loss = 0;
  for (const [row, target] of rows) {
    const lp = logSoftmaxRow(f.logits, row, V);
    loss -= lp[target];
    for (let i = 0; i < V; i++) dlogits[row * V + i] = Math.exp(lp[i]) / rows.length;
    dlogits[row * V + target] -= 1 / rows.length;
  }
  return { loss: rows.length ? loss / rows.length : 0, count: rows.length, dlogits };
}

/** Zero gradients shaped like the parameters. */
export function zeroGrads(model: RefModel): RefParams {
  return Object.fromEntries(
    Object.entries(model.params).map(([k, v]) => [k, new Float64Array(v.length)]),
  );
}

/**
 * Backward from dlogits (N, V) to every parameter, walking the layers in reverse. Parameter
 * gradients accumulate into `grads` (+=); the tied embedding receives both its gradients.
 */
export function backwardRef(
  model: RefModel,
  f: ForwardRef,
  dlogits: Float64Array,
  grads: RefParams = zeroGrads(model),
): RefParams {
  const c = model.config, P = model.params, N = f.N, D = c.hidden_size, V = c.vocab_size;
  const headName = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const dxf = new Float64Array(N * D);
  matmulBackward(dxf, grads[headName], dlogits, f.xf, lmHead(model), N, D, V);
  let dres: Float64Array = new Float64Array(N * D); // d residual stream
  const normW = P["model.norm.weight"], dNormW = grads["model.norm.weight"];
  rmsNormBackward(dres, dNormW, dxf, f.xL, normW, f.rstdF, N, D);
  for (let l = c.num_hidden_layers - 1; l >= 0; l--) {
    dres = layerBackwardRef(model, f, l, dres, grads);
  }
  // embedding: a scatter-add of the rows' gradients
  const dEmb = grads["model.embed_tokens.weight"];
  for (let n = 0; n < N; n++) {
    const r = f.ids[n] * D;
    for (let i = 0; i < D; i++) dEmb[r + i] += dres[n * D + i];
  }
  return grads;
}

/** One layer's backward: from dL/d(its output) (overwritten) to dL/d(its input), grads +=. */
function layerBackwardRef(
  model: RefModel,
  f: ForwardRef,
  l: number,
  dres: Float64Array,
  grads: RefParams,
): Float64Array {
  const c = model.config, arch = archOf(c), a = f.layers[l], N = f.N;
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, HE = H * E, KE = K * E;
  const pre = `model.layers.${l}.`, P = model.params;
  /** dx += dy · W, dW += dyᵀ · x for the linear layer `name` (I in, O out). */
  const lin = (name: string, dy: Float64Array, x: Float64Array, dx: Float64Array, I: number) =>
    matmulBackward(dx, grads[pre + name], dy, x, P[pre + name], N, I, dy.length / N);
  const normB = (
    name: string,
    dx: Float64Array,
    dy: Float64Array,
    x: Float64Array,
    r: Float64Array,
    rows: number,
    dim: number,
  ) => rmsNormBackward(dx, grads[pre + name], dy, x, P[pre + name], r, rows, dim);
  // MLP: out = x2 + down(silu(g) * u); dres holds dL/dout
  const dh = new Float64Array(N * F), dxn2 = new Float64Array(N * D);
  lin("mlp.down_proj.weight", dres, a.h, dh, F);
  const dg = new Float64Array(N * F), du = new Float64Array(N * F);
  for (let i = 0; i < N * F; i++) {
    const sg = 1 / (1 + Math.exp(-a.g[i]));
    du[i] = dh[i] * a.g[i] * sg;
    dg[i] = dh[i] * a.u[i] * sg * (1 + a.g[i] * (1 - sg));
  }
  lin("mlp.gate_proj.weight", dg, a.xn2, dxn2, D);
  lin("mlp.up_proj.weight", du, a.xn2, dxn2, D);
  const dx2 = dres; // residual: dL/dx2 = dres + the norm's backward
  normB("post_attention_layernorm.weight", dx2, dxn2, a.x2, a.rstd2, N, D);
  // attention: x2 = x + o_proj(attn)
  const dO = new Float64Array(N * HE), dxn1 = new Float64Array(N * D);
  lin("self_attn.o_proj.weight", dx2, a.o, dO, HE);
  const { dqr, dkr, dv } = causalAttentionBackRef(c, f, a, dO);
  let dq = dqr, dk = dkr;
  if (arch.qkNorm) {
    dq = new Float64Array(N * HE);
    dk = new Float64Array(N * KE);
    normB("self_attn.q_norm.weight", dq, dqr, a.q, a.rstdQ, N * H, E);
    normB("self_attn.k_norm.weight", dk, dkr, a.k, a.rstdK, N * K, E);
  }
  if (arch.qkvBias) {
    biasBackward(grads[`${pre}self_attn.q_proj.bias`], dq, N, HE);
    biasBackward(grads[`${pre}self_attn.k_proj.bias`], dk, N, KE);
    biasBackward(grads[`${pre}self_attn.v_proj.bias`], dv, N, KE);
  }
  lin("self_attn.q_proj.weight", dq, a.xn1, dxn1, D);
  lin("self_attn.k_proj.weight", dk, a.xn1, dxn1, D);
  lin("self_attn.v_proj.weight", dv, a.xn1, dxn1, D);
  normB("input_layernorm.weight", dx2, dxn1, a.x, a.rstd1, N, D);
  return dx2; // d of the layer input (the residual passes through unchanged)
}

/**
 * Attention's backward within each sequence from dO (N, H*E): the gradients of q and k before
 * RoPE (the transpose of a rotation is the inverse rotation) and of v.
 */
function causalAttentionBackRef(
  c: ModelConfig,
  f: ForwardRef,
  a: LayerActs,
  dO: Float64Array,
): { dqr: Float64Array; dkr: Float64Array; dv: Float64Array } {
  const H = c.num_attention_heads, K = c.num_key_value_heads, E = c.head_dim, N = f.N;
  const HE = H * E, KE = K * E, group = H / K, scale = 1 / Math.sqrt(E);
  const dqr = new Float64Array(N * HE), dkr = new Float64Array(N * KE);
  const dv = new Float64Array(N * KE);
  f.seqs.forEach((s, si) => {
    const T = s.length, off = f.offsets[si], att = a.att[si];
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = (off + t) * HE + h * E, row = (h * T + t) * T;
        // dp[u] = dO[t] . v[u]; dv[u] += p[u] dO[t]
        const dp = new Float64Array(t + 1);
        let dot = 0;
        for (let u = 0; u <= t; u++) {
          const vo = (off + u) * KE + kh * E;
          let sdp = 0;
          for (let e = 0; e < E; e++) {
            sdp += dO[qo + e] * a.v[vo + e];
            dv[vo + e] += att[row + u] * dO[qo + e];
          }
          dp[u] = sdp;
          dot += att[row + u] * sdp;
        }
        for (let u = 0; u <= t; u++) {
          const ds = att[row + u] * (dp[u] - dot) * scale;
          const ko = (off + u) * KE + kh * E;
          for (let e = 0; e < E; e++) {
            dqr[qo + e] += ds * a.kr[ko + e];
            dkr[ko + e] += ds * a.qr[qo + e];
          }
        }
      }
    }
  });
  for (let n = 0; n < N; n++) {
    const t = n - f.offsets[seqIndex(f.offsets, n)];
    const [cs, sn] = ropeAngles(t, E, c.rope_theta);
    for (let h = 0; h < H; h++) rope(dqr, n * HE + h * E, cs, sn, true);
    for (let h = 0; h < K; h++) rope(dkr, n * KE + h * E, cs, sn, true);
  }
  return { dqr, dkr, dv };
}

function seqIndex(offsets: number[], n: number): number {
  let i = 0;
  while (i + 1 < offsets.length && offsets[i + 1] <= n) i++;
  return i;
}

/** Loss and gradients of every parameter for one micro-batch. */
export function lossAndGradRef(
  model: RefModel,
  seqs: number[][],
  labels?: number[][],
): { loss: number; count: number; grads: RefParams } {
  const f = forwardRef(model, seqs);
  const { loss, count, dlogits } = crossEntropyRef(f, model.config.vocab_size, labels);
  return { loss, count, grads: backwardRef(model, f, dlogits) };
}

// ---------------------------------------------------------------------------------------------
// generation

/**
 * Greedy decoding of one prompt: argmax (lowest id on ties) until a stop id (included in the
 * output) or `maxNewTokens`. With `useCache` the prompt is prefilled once and each new token
 * attends to the cached keys/values; without, the whole sequence is recomputed per token.
 * `logprobs[i]` is the full-softmax log-prob of `ids[i]`.
 */
export function greedyGenerateRef(
  model: RefModel,
  prompt: number[],
  opts: { maxNewTokens: number; stopIds?: number[]; useCache?: boolean },
): { ids: number[]; logprobs: number[]; finishReason: "stop" | "length" } {
  return generateRef(model, prompt, { ...opts, sampling: { temperature: 0, topP: 1, topK: 0 } });
}

/**
 * Decoding of one prompt choosing each token as the engine's generation does
 * (model/sampling.ts drawToken on the row's logits, draw i of random stream `stream`; greedy at
 * temperature 0), until a stop id (kept) or `maxNewTokens`. The `--device cpu` sampler.
 */
export function generateRef(
  model: RefModel,
  prompt: number[],
  opts: {
    maxNewTokens: number;
    stopIds?: number[];
    useCache?: boolean;
    sampling: SamplingParams;
    /** The random stream (sampleSeed(seed, example, sample)); default 0. */
    stream?: number;
  },
): { ids: number[]; logprobs: number[]; finishReason: "stop" | "length" } {
  const V = model.config.vocab_size;
  const stop = new Set(opts.stopIds ?? []);
  const ids: number[] = [], logprobs: number[] = [];
  const cache = opts.useCache ?? true ? newKvCache(model.config) : undefined;
  let pending = prompt;
  while (ids.length < opts.maxNewTokens) {
    const f = cache
      ? forwardRef(model, [pending], { cache })
      : forwardRef(model, [[...prompt, ...ids]]);
    const row = f.logits.subarray((f.N - 1) * V, f.N * V);
    const tok = drawToken(row, opts.sampling, opts.stream ?? 0, ids.length).id;
    ids.push(tok);
    logprobs.push(logSoftmaxRow(f.logits, f.N - 1, V)[tok]);
    if (stop.has(tok)) return { ids, logprobs, finishReason: "stop" };
    pending = [tok];
  }
  return { ids, logprobs, finishReason: "length" };
}

// ---------------------------------------------------------------------------------------------
// construction

/** Loads a model directory (config.json + safetensors) into float64. */
export async function loadRefModel(dir: string): Promise<RefModel> {
  const config = await readModelConfig(dir);
  const ckpt = await Checkpoint.open(dir);
  const params: RefParams = {};
  try {
    for await (const { spec, data } of loadWeights(ckpt, config)) {
      params[spec.name] = Float64Array.from(data);
    }
  } finally {
    ckpt.close();
  }
  return { config, params };
}

/**
 * The model `star init-model` writes for this config and seed, at f32 precision (so it equals
 * an F32 checkpoint exactly). `std` overrides initializer_range (larger weights make
 * finite-difference tests more sensitive); norms get normal(0, normJitter) noise around 1 and
 * biases normal(0, biasStd) instead of transformers' zeros.
 */
export function randomRefModel(
  config: ModelConfig,
  seed: number,
  opts: { std?: number; normJitter?: number; biasStd?: number } = {},
): RefModel {
  const params: RefParams = {};
  for (const spec of weightSpecs(config)) {
    const p = Float64Array.from(
      randomWeightF32(spec, { seed, std: opts.std ?? config.initializer_range }),
    );
    if (spec.kind === "bias" && opts.biasStd) {
      p.set(randomWeightF32({ ...spec, kind: "linear" }, { seed, std: opts.biasStd }));
    }
    if (spec.kind === "norm" && opts.normJitter) {
      const noise = randomWeightF32({ ...spec, name: `${spec.name}#jitter`, kind: "linear" }, {
        seed,
        std: opts.normJitter,
      });
      for (let i = 0; i < p.length; i++) p[i] += noise[i];
    }
    params[spec.name] = p;
  }
  return { config, params };
}
