/**
 * A float64 CPU Qwen3, written as plain loops (llm.c train_gpt2.c style): the whole-model oracle
 * the GPU model is tested against. Forward over a batch of variable-length sequences (packed:
 * positions restart at 0 and attention is causal within each sequence), log-probs, masked
 * cross-entropy, the backward pass to every parameter (the tied embedding gets both the LM-head
 * and the embedding gradient), and greedy generation with or without a KV cache.
 * Deliberately slow and simple: O(T^2) attention per head, the full (N, V) logits, no batching
 * tricks; meant for tiny configs (and a few tokens of the 0.6B shape).
 * RoPE angles are exact float64 (transformers computes them in f32: a ~1e-7 difference).
 * Legend: N tokens in the batch, T tokens of one sequence, D hidden_size, H heads, K kv heads,
 * E head_dim, F intermediate_size, V vocab_size, L layers.
 */
import type { Qwen3Config } from "./config.ts";
import { readQwen3Config } from "./config.ts";
import { Checkpoint } from "./safetensors.ts";
import { loadWeights, qwen3WeightSpecs, randomWeightF32 } from "./weights.ts";

/** Parameters by their transformers name, as float64 (row-major like the checkpoint). */
export type RefParams = Record<string, Float64Array>;

export interface Qwen3Ref {
  config: Qwen3Config;
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
  rstdQ: Float64Array; // (N, H)
  rstdK: Float64Array; // (N, K)
  qr: Float64Array; // (N, H*E) after q_norm and RoPE
  kr: Float64Array; // (N, K*E) after k_norm and RoPE
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

export function newKvCache(c: Qwen3Config): KvCache {
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
export function qwen3ForwardRef(
  model: Qwen3Ref,
  seqs: number[][],
  opts: { cache?: KvCache } = {},
): ForwardRef {
  const c = model.config, P = model.params;
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, V = c.vocab_size, eps = c.rms_norm_eps;
  const HE = H * E, KE = K * E, group = H / K, scale = 1 / Math.sqrt(E);
  const cache = opts.cache;
  if (cache && seqs.length !== 1) {
    throw new Error("qwen3ForwardRef(): a KV cache takes one sequence");
  }
  const past = cache?.length ?? 0;
  const offsets: number[] = [];
  let N = 0;
  for (const s of seqs) {
    offsets.push(N);
    N += s.length;
  }
  const ids = new Int32Array(N);
  const pos = new Int32Array(N);
  seqs.forEach((s, i) =>
    s.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new RangeError(`Token id ${id} is outside the vocabulary (size ${V})`);
      }
      ids[offsets[i] + t] = id;
      pos[offsets[i] + t] = past + t;
    })
  );
  const angles = new Map<number, [Float64Array, Float64Array]>();
  const anglesAt = (p: number) => {
    let a = angles.get(p);
    if (!a) angles.set(p, a = ropeAngles(p, E, c.rope_theta));
    return a;
  };

  // embedding
  let x = new Float64Array(N * D);
  const emb = P["model.embed_tokens.weight"];
  for (let n = 0; n < N; n++) x.set(emb.subarray(ids[n] * D, ids[n] * D + D), n * D);

  const layers: LayerActs[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const pre = `model.layers.${l}.`;
    const w = (n: string) => P[pre + n];
    const a: LayerActs = {
      x,
      rstd1: new Float64Array(N),
      xn1: new Float64Array(N * D),
      q: new Float64Array(N * HE),
      k: new Float64Array(N * KE),
      v: new Float64Array(N * KE),
      rstdQ: new Float64Array(N * H),
      rstdK: new Float64Array(N * K),
      qr: new Float64Array(N * HE),
      kr: new Float64Array(N * KE),
      att: [],
      o: new Float64Array(N * HE),
      x2: new Float64Array(N * D),
      rstd2: new Float64Array(N),
      xn2: new Float64Array(N * D),
      g: new Float64Array(N * F),
      u: new Float64Array(N * F),
      h: new Float64Array(N * F),
    };
    rmsNorm(a.xn1, a.rstd1, x, w("input_layernorm.weight"), N, D, eps);
    matmul(a.q, a.xn1, w("self_attn.q_proj.weight"), N, D, HE);
    matmul(a.k, a.xn1, w("self_attn.k_proj.weight"), N, D, KE);
    matmul(a.v, a.xn1, w("self_attn.v_proj.weight"), N, D, KE);
    // per-head RMSNorm (rows of E), then RoPE at each token's position
    rmsNorm(a.qr, a.rstdQ, a.q, w("self_attn.q_norm.weight"), N * H, E, eps);
    rmsNorm(a.kr, a.rstdK, a.k, w("self_attn.k_norm.weight"), N * K, E, eps);
    for (let n = 0; n < N; n++) {
      const [cs, sn] = anglesAt(pos[n]);
      for (let h = 0; h < H; h++) rope(a.qr, n * HE + h * E, cs, sn, false);
      for (let h = 0; h < K; h++) rope(a.kr, n * KE + h * E, cs, sn, false);
    }
    // causal attention within each sequence; query head h reads kv head floor(h / group)
    for (let si = 0; si < seqs.length; si++) {
      const T = seqs[si].length, off = offsets[si];
      let keys = a.kr.subarray(off * KE, (off + T) * KE);
      let vals = a.v.subarray(off * KE, (off + T) * KE);
      if (cache) {
        cache.k[l].push(...keys);
        cache.v[l].push(...vals);
        keys = Float64Array.from(cache.k[l]);
        vals = Float64Array.from(cache.v[l]);
      }
      const S = past + T; // keys visible to the last query
      const att = new Float64Array(H * T * S);
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group);
        for (let t = 0; t < T; t++) {
          const qo = (off + t) * HE + h * E;
          const row = (h * T + t) * S;
          let max = -Infinity;
          for (let u = 0; u <= past + t; u++) {
            let s = 0;
            for (let e = 0; e < E; e++) s += a.qr[qo + e] * keys[u * KE + kh * E + e];
            s *= scale;
            att[row + u] = s;
            if (s > max) max = s;
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
    const attnOut = new Float64Array(N * D);
    matmul(attnOut, a.o, w("self_attn.o_proj.weight"), N, HE, D);
    for (let i = 0; i < N * D; i++) a.x2[i] = x[i] + attnOut[i];
    rmsNorm(a.xn2, a.rstd2, a.x2, w("post_attention_layernorm.weight"), N, D, eps);
    matmul(a.g, a.xn2, w("mlp.gate_proj.weight"), N, D, F);
    matmul(a.u, a.xn2, w("mlp.up_proj.weight"), N, D, F);
    for (let i = 0; i < N * F; i++) a.h[i] = silu(a.g[i]) * a.u[i];
    const mlpOut = new Float64Array(N * D);
    matmul(mlpOut, a.h, w("mlp.down_proj.weight"), N, F, D);
    const next = new Float64Array(N * D);
    for (let i = 0; i < N * D; i++) next[i] = a.x2[i] + mlpOut[i];
    layers.push(a);
    x = next;
  }
  if (cache) cache.length += seqs[0].length;
  const rstdF = new Float64Array(N), xf = new Float64Array(N * D);
  rmsNorm(xf, rstdF, x, P["model.norm.weight"], N, D, eps);
  const logits = new Float64Array(N * V);
  matmul(logits, xf, lmHead(model), N, D, V);
  return { seqs, offsets, N, ids, layers, xL: x, rstdF, xf, logits };
}

function lmHead(model: Qwen3Ref): Float64Array {
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
  model: Qwen3Ref,
  seqs: number[][],
  opts: { topK?: number } = {},
): { logprobs: number[]; topkIds?: number[][]; topkLogprobs?: number[][] }[] {
  const f = qwen3ForwardRef(model, seqs);
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

/** Indices of the k largest values, descending (lower index first on ties). */
export function topK(x: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (best.length === k && !(x[i] > x[best[k - 1]])) continue;
    let j = best.length; // insert before the first strictly smaller value
    while (j > 0 && x[best[j - 1]] < x[i]) j--;
    best.splice(j, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
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
export function zeroGrads(model: Qwen3Ref): RefParams {
  return Object.fromEntries(
    Object.entries(model.params).map(([k, v]) => [k, new Float64Array(v.length)]),
  );
}

/**
 * Backward from dlogits (N, V) to every parameter, walking the layers in reverse. Parameter
 * gradients accumulate into `grads` (+=); the tied embedding receives both its gradients.
 */
export function qwen3BackwardRef(
  model: Qwen3Ref,
  f: ForwardRef,
  dlogits: Float64Array,
  grads: RefParams = zeroGrads(model),
): RefParams {
  const c = model.config, P = model.params;
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, V = c.vocab_size;
  const HE = H * E, KE = K * E, group = H / K, scale = 1 / Math.sqrt(E);
  const N = f.N;
  const headName = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";

  const dxf = new Float64Array(N * D);
  matmulBackward(dxf, grads[headName], dlogits, f.xf, lmHead(model), N, D, V);
  let dres = new Float64Array(N * D); // d residual stream
  rmsNormBackward(
    dres,
    grads["model.norm.weight"],
    dxf,
    f.xL,
    P["model.norm.weight"],
    f.rstdF,
    N,
    D,
  );

  for (let l = c.num_hidden_layers - 1; l >= 0; l--) {
    const a = f.layers[l];
    const pre = `model.layers.${l}.`;
    const w = (n: string) => P[pre + n];
    const dw = (n: string) => grads[pre + n];
    // MLP: x3 = x2 + down(silu(g) * u)
    const dh = new Float64Array(N * F);
    const dxn2 = new Float64Array(N * D);
    matmulBackward(dh, dw("mlp.down_proj.weight"), dres, a.h, w("mlp.down_proj.weight"), N, F, D);
    const dg = new Float64Array(N * F), du = new Float64Array(N * F);
    for (let i = 0; i < N * F; i++) {
      const sg = 1 / (1 + Math.exp(-a.g[i]));
      du[i] = dh[i] * a.g[i] * sg;
      dg[i] = dh[i] * a.u[i] * sg * (1 + a.g[i] * (1 - sg));
    }
    matmulBackward(dxn2, dw("mlp.gate_proj.weight"), dg, a.xn2, w("mlp.gate_proj.weight"), N, D, F);
    matmulBackward(dxn2, dw("mlp.up_proj.weight"), du, a.xn2, w("mlp.up_proj.weight"), N, D, F);
    const dx2 = dres; // residual: dL/dx2 = dres + norm backward
    rmsNormBackward(
      dx2,
      dw("post_attention_layernorm.weight"),
      dxn2,
      a.x2,
      w("post_attention_layernorm.weight"),
      a.rstd2,
      N,
      D,
    );

    // attention: x2 = x + o_proj(attn)
    const dO = new Float64Array(N * HE);
    const dxn1 = new Float64Array(N * D);
    matmulBackward(
      dO,
      dw("self_attn.o_proj.weight"),
      dx2,
      a.o,
      w("self_attn.o_proj.weight"),
      N,
      HE,
      D,
    );
    const dqr = new Float64Array(N * HE),
      dkr = new Float64Array(N * KE),
      dv = new Float64Array(N * KE);
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
    // undo RoPE (the transpose of a rotation is the inverse rotation), then per-head norms
    for (let n = 0; n < N; n++) {
      const t = n - f.offsets[seqIndex(f.offsets, n)];
      const [cs, sn] = ropeAngles(t, E, c.rope_theta);
      for (let h = 0; h < H; h++) rope(dqr, n * HE + h * E, cs, sn, true);
      for (let h = 0; h < K; h++) rope(dkr, n * KE + h * E, cs, sn, true);
    }
    const dq = new Float64Array(N * HE), dk = new Float64Array(N * KE);
    rmsNormBackward(
      dq,
      dw("self_attn.q_norm.weight"),
      dqr,
      a.q,
      w("self_attn.q_norm.weight"),
      a.rstdQ,
      N * H,
      E,
    );
    rmsNormBackward(
      dk,
      dw("self_attn.k_norm.weight"),
      dkr,
      a.k,
      w("self_attn.k_norm.weight"),
      a.rstdK,
      N * K,
      E,
    );
    matmulBackward(
      dxn1,
      dw("self_attn.q_proj.weight"),
      dq,
      a.xn1,
      w("self_attn.q_proj.weight"),
      N,
      D,
      HE,
    );
    matmulBackward(
      dxn1,
      dw("self_attn.k_proj.weight"),
      dk,
      a.xn1,
      w("self_attn.k_proj.weight"),
      N,
      D,
      KE,
    );
    matmulBackward(
      dxn1,
      dw("self_attn.v_proj.weight"),
      dv,
      a.xn1,
      w("self_attn.v_proj.weight"),
      N,
      D,
      KE,
    );
    rmsNormBackward(
      dx2,
      dw("input_layernorm.weight"),
      dxn1,
      a.x,
      w("input_layernorm.weight"),
      a.rstd1,
      N,
      D,
    );
    dres = dx2; // d of the layer input (the residual passes through unchanged)
  }
  // embedding: a scatter-add of the rows' gradients
  const dEmb = grads["model.embed_tokens.weight"];
  for (let n = 0; n < N; n++) {
    const r = f.ids[n] * D;
    for (let i = 0; i < D; i++) dEmb[r + i] += dres[n * D + i];
  }
  return grads;
}

function seqIndex(offsets: number[], n: number): number {
  let i = 0;
  while (i + 1 < offsets.length && offsets[i + 1] <= n) i++;
  return i;
}

/** Loss and gradients of every parameter for one micro-batch. */
export function qwen3LossAndGradRef(
  model: Qwen3Ref,
  seqs: number[][],
  labels?: number[][],
): { loss: number; count: number; grads: RefParams } {
  const f = qwen3ForwardRef(model, seqs);
  const { loss, count, dlogits } = crossEntropyRef(f, model.config.vocab_size, labels);
  return { loss, count, grads: qwen3BackwardRef(model, f, dlogits) };
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
  model: Qwen3Ref,
  prompt: number[],
  opts: { maxNewTokens: number; stopIds?: number[]; useCache?: boolean },
): { ids: number[]; logprobs: number[]; finishReason: "stop" | "length" } {
  const V = model.config.vocab_size;
  const stop = new Set(opts.stopIds ?? []);
  const ids: number[] = [], logprobs: number[] = [];
  const cache = opts.useCache ? newKvCache(model.config) : undefined;
  let pending = prompt;
  while (ids.length < opts.maxNewTokens) {
    const f = cache
      ? qwen3ForwardRef(model, [pending], { cache })
      : qwen3ForwardRef(model, [[...prompt, ...ids]]);
    const lp = logSoftmaxRow(f.logits, f.N - 1, V);
    let best = 0;
    for (let i = 1; i < V; i++) if (lp[i] > lp[best]) best = i;
    ids.push(best);
    logprobs.push(lp[best]);
    if (stop.has(best)) return { ids, logprobs, finishReason: "stop" };
    pending = [best];
  }
  return { ids, logprobs, finishReason: "length" };
}

// ---------------------------------------------------------------------------------------------
// construction

/** Loads a model directory (config.json + safetensors) into float64. */
export async function loadQwen3Ref(dir: string): Promise<Qwen3Ref> {
  const config = await readQwen3Config(dir);
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
 * finite-difference tests more sensitive); norms get normal(0, normJitter) noise around 1.
 */
export function randomQwen3Ref(
  config: Qwen3Config,
  seed: number,
  opts: { std?: number; normJitter?: number } = {},
): Qwen3Ref {
  const params: RefParams = {};
  for (const spec of qwen3WeightSpecs(config)) {
    const p = Float64Array.from(
      randomWeightF32(spec, { seed, std: opts.std ?? config.initializer_range }),
    );
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
