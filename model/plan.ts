/**
 * The activation plan of the GPU model (llm.c's fill_in_activation_sizes): every tensor a
 * forward and backward over up to `cap` packed tokens needs, allocated once from tables of
 * {name: row width} and reused step after step (a plan is re-made only when a batch needs more
 * rows). A training plan keeps every layer's activations for the backward; an inference plan
 * shares one set across layers. The vocabulary pass's scratch rides along: the compacted rows
 * it runs over, their gradient, one chunk of logits and of dlogits, and the online lse.
 * Legend: T tokens (cap), D hidden_size, H heads, K kv heads, E head_dim, F intermediate_size,
 * V vocab_size, C vocabulary chunk columns.
 */
import type { Gpu } from "../engine/device.ts";
import { createTensor, releaseTensor, type Tensor } from "../engine/tensor.ts";
import type { Arch, ModelConfig } from "./config.ts";
import type { VocabScratch } from "./lm_head.ts";

/** Activations of one layer, saved by the training forward. Every tensor has T rows. */
export interface LayerActs {
  x: Tensor; // (T, D) residual stream into the layer
  rstd1: Tensor; // (T)
  xn1: Tensor; // (T, D) input_layernorm(x)
  q: Tensor; // (T, H*E) before q_norm (Qwen3; absent without a q/k norm)
  k: Tensor; // (T, K*E) before k_norm (Qwen3)
  v: Tensor; // (T, K*E)
  rstdQ: Tensor; // (T, H) (Qwen3)
  rstdK: Tensor; // (T, K) (Qwen3)
  qr: Tensor; // (T, H*E) after q_norm and RoPE
  kr: Tensor; // (T, K*E) after k_norm and RoPE
  att: Tensor; // (T, H, 2) attention lse (forward) and delta (backward)
  o: Tensor; // (T, H*E) attention output, before o_proj
  x2: Tensor; // (T, D) after the attention residual
  rstd2: Tensor; // (T)
  xn2: Tensor; // (T, D) post_attention_layernorm(x2)
  g: Tensor; // (T, F) gate_proj
  u: Tensor; // (T, F) up_proj
  h: Tensor; // (T, F) silu(g)*u
}

/** Backward scratch: activation gradients (overwritten) shared by every layer. */
export interface GradScratch {
  dRes: Tensor; // (T, D) gradient of the residual stream
  dTmp: Tensor; // (T, D)
  dXn: Tensor; // (T, D)
  dXf: Tensor; // (T, D) gradient of model.norm's output
  dO: Tensor; // (T, H*E)
  dQr: Tensor; // (T, H*E)
  dKr: Tensor; // (T, K*E)
  dV: Tensor; // (T, K*E)
  dQ: Tensor; // (T, H*E) (Qwen3)
  dK: Tensor; // (T, K*E) (Qwen3)
  dH: Tensor; // (T, F)
  dG: Tensor; // (T, F)
  dU: Tensor; // (T, F)
  links: Tensor; // u32 (T) embedding-backward scratch
}

export interface Plan {
  cap: number;
  train: boolean;
  layers: LayerActs[]; // L entries (training) or one shared entry (inference)
  xL: Tensor; // (T, D) residual after the last layer (inference: layers[0].x)
  rstdF: Tensor; // (T)
  xf: Tensor; // (T, D) model.norm(xL)
  tmpD: Tensor; // (T, D) projection output before a residual add
  ids: Tensor; // u32 (T)
  positions: Tensor; // u32 (T)
  grads?: GradScratch;
  headX: Tensor; // (T, D) the rows a vocabulary pass runs over, compacted
  dHeadX: Tensor; // (T, D) their gradient
  vocab: VocabScratch; // (T, C) logits and dlogits, (T, 2) stats
  owned: Tensor[];
}

/** Row widths (elements per token) of one layer's activations; Qwen3-only ones flagged. */
function layerWidths(c: ModelConfig, arch: Arch): Record<keyof LayerActs, number> {
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, n = arch.qkNorm ? 1 : 0;
  return {
    x: D,
    rstd1: 1,
    xn1: D,
    q: n * H * E,
    k: n * K * E,
    v: K * E,
    rstdQ: n * H,
    rstdK: n * K,
    qr: H * E,
    kr: K * E,
    att: 2 * H,
    o: H * E,
    x2: D,
    rstd2: 1,
    xn2: D,
    g: F,
    u: F,
    h: F,
  };
}

function gradWidths(c: ModelConfig, arch: Arch): Record<keyof GradScratch, number> {
  const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const E = c.head_dim, F = c.intermediate_size, n = arch.qkNorm ? 1 : 0;
  return {
    dRes: D,
    dTmp: D,
    dXn: D,
    dXf: D,
    dO: H * E,
    dQr: H * E,
    dKr: K * E,
    dV: K * E,
    dQ: n * H * E,
    dK: n * K * E,
    dH: F,
    dG: F,
    dU: F,
    links: 1,
  };
}

/**
 * Allocates a plan for `T` tokens. `maxChunkRows` caps the vocabulary chunk (else it is what
 * one binding holds for T rows).
 */
export function makePlan(
  gpu: Gpu,
  o: { config: ModelConfig; arch: Arch; T: number; train: boolean; maxChunkRows: number },
): Plan {
  const { config: c, T } = o;
  const owned: Tensor[] = [];
  const f32 = (label: string, width: number, dtype: "f32" | "u32" = "f32") => {
    const t = createTensor(gpu, { shape: [T, Math.max(1, width)], dtype, label });
    owned.push(t);
    return t;
  };
  const table = <K extends string>(prefix: string, widths: Record<K, number>, skip?: K) =>
    Object.fromEntries(
      (Object.keys(widths) as K[]).filter((k) => k !== skip).map((k) => [
        k,
        f32(`${prefix}${k}`, widths[k], k === "links" ? "u32" : "f32"),
      ]),
    ) as Record<K, Tensor>;
  const widths = layerWidths(c, o.arch);
  const layerAt = (l: number, x: Tensor) => ({ ...table(`L${l}.`, widths, "x"), x }) as LayerActs;
  const layers: LayerActs[] = [];
  let xL: Tensor;
  if (o.train) {
    for (let l = 0; l < c.num_hidden_layers; l++) {
      layers.push(layerAt(l, f32(`L${l}.x`, c.hidden_size)));
    }
    xL = f32("xL", c.hidden_size);
  } else {
    layers.push(layerAt(0, f32("x", c.hidden_size)));
    xL = layers[0].x;
  }
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const cols = Math.min(c.vocab_size, Math.floor(limit / (4 * T)), o.maxChunkRows);
  if (cols < 1) throw new RangeError(`${T} tokens do not fit one logits chunk`);
  const flat = (label: string, n: number) => {
    const t = createTensor(gpu, { shape: [n], dtype: "f32", label });
    owned.push(t);
    return t;
  };
  return {
    cap: T,
    train: o.train,
    layers,
    xL,
    rstdF: f32("rstdF", 1),
    xf: f32("xf", c.hidden_size),
    tmpD: f32("tmpD", c.hidden_size),
    ids: f32("ids", 1, "u32"),
    positions: f32("positions", 1, "u32"),
    grads: o.train ? table("", gradWidths(c, o.arch)) : undefined,
    headX: f32("headX", c.hidden_size),
    dHeadX: f32("dHeadX", c.hidden_size),
    vocab: {
      cap: T,
      cols,
      logits: flat("logits", T * cols),
      dlogits: flat("dlogits", o.train ? T * cols : 1),
      stats: f32("stats", 2),
    },
    owned,
  };
}

export function releasePlan(gpu: Gpu, p: Plan): void {
  for (const t of p.owned) releaseTensor(gpu, t);
}
