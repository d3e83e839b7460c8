/**
 * The Qwen3 decoder on the engine: weights streamed from a checkpoint onto the GPU (vocabulary
 * tables in one buffer bound in row shards), the training forward over a packed batch (saving
 * what the backward needs, one activation plan per token capacity, llm.c style), the LM head
 * and log-softmax run chunk by chunk over the vocabulary (never the whole (T, V) logits), the
 * backward to every parameter, and a KV-cached forward for generation. A step is recorded into
 * one Recorder and submitted once; its results come back in one readback.
 * Entry points: logprobs() (scoring), lossAndGrad() (next-token CE), runObjective() and
 * recordHidden() (a trainer's own loss over the vocabulary or the hidden states),
 * forwardCached() (prefill/decode, model/generate.ts), packWeights() (frozen models on the
 * texture matmul), save().
 * Not done here: mixed precision for trained weights (the trained model is f32 throughout),
 * fused kernels beyond the engine's families, sampling on the GPU (generation reads back the
 * last row's logits and samples on the CPU, model/sampling.ts).
 * Legend: T tokens (packed), D hidden_size, H heads, K kv heads, E head_dim, F
 * intermediate_size, V vocab_size, L layers, C vocabulary chunk rows, S cache slots x max length.
 */
import type { Gpu } from "../engine/device.ts";
import { getGpu } from "../engine/device.ts";
import { Recorder } from "../engine/recorder.ts";
import {
  createTensor,
  decodeData,
  type DType,
  DTYPE_BYTES,
  encodeData,
  releaseTensor,
  rowChunks,
  Tensor,
} from "../engine/tensor.ts";
import {
  attentionForward,
  attentionRangeTable,
  type AttentionSeq,
} from "../engine/ops/attention.ts";
import { attentionBackward } from "../engine/ops/attention.ts";
import {
  crossEntropyBackward,
  crossEntropyForward,
  IGNORE_INDEX,
} from "../engine/ops/cross_entropy.ts";
import { embeddingBackward, embeddingForward } from "../engine/ops/embedding.ts";
import {
  matmulBackward,
  matmulForward,
  matmulVariant,
  type PackedWeight,
  packMatmulWeight,
} from "../engine/ops/matmul.ts";
import { residualBackward, residualForward } from "../engine/ops/residual.ts";
import { rmsNormBackward, rmsNormForward } from "../engine/ops/rms_norm.ts";
import { ropeBackward, ropeForward, ropeTable } from "../engine/ops/rope.ts";
import { lseChunk } from "../engine/ops/softmax.ts";
import { swigluBackward, swigluForward } from "../engine/ops/swiglu.ts";
import { topkChunk, topkFinish } from "../engine/ops/topk.ts";
import { type Qwen3Config, readQwen3Config } from "./config.ts";
import { Checkpoint } from "./safetensors.ts";
import { saveQwen3 } from "./save.ts";
import { checkCheckpoint, qwen3WeightSpecs, type WeightSpec } from "./weights.ts";

/** How weights are kept: f32 (trained model), or the checkpoint's dtype for linear layers. */
export type WeightPrecision = "f32" | "checkpoint";

export interface Qwen3GpuOptions {
  /** "f32" (default when trainable) or "checkpoint" (bf16/f16 stay so; frozen models). */
  precision?: WeightPrecision;
  /** Allocate f32 gradients for every parameter. */
  trainable?: boolean;
}

const ST_TO_DTYPE: Record<string, DType> = { F32: "f32", F16: "f16", BF16: "bf16" };

/** Activations of one layer, saved by the training forward. Every tensor has T rows. */
interface LayerActs {
  x: Tensor; // (T, D) residual stream into the layer
  rstd1: Tensor; // (T)
  xn1: Tensor; // (T, D) input_layernorm(x)
  q: Tensor; // (T, H*E) before q_norm
  k: Tensor; // (T, K*E) before k_norm
  v: Tensor; // (T, K*E)
  rstdQ: Tensor; // (T, H)
  rstdK: Tensor; // (T, K)
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
interface GradScratch {
  dRes: Tensor; // (T, D) gradient of the residual stream
  dTmp: Tensor; // (T, D)
  dXn: Tensor; // (T, D)
  dXf: Tensor; // (T, D)
  dO: Tensor; // (T, H*E)
  dQr: Tensor; // (T, H*E)
  dKr: Tensor; // (T, K*E)
  dV: Tensor; // (T, K*E)
  dQ: Tensor; // (T, H*E)
  dK: Tensor; // (T, K*E)
  dH: Tensor; // (T, F)
  dG: Tensor; // (T, F)
  dU: Tensor; // (T, F)
  dLogits: Tensor; // (T, C)
  links: Tensor; // u32 (T) embedding-backward scratch
}

/** Everything a forward/backward over up to `cap` tokens needs, allocated once. */
interface Plan {
  cap: number;
  train: boolean;
  layers: LayerActs[]; // L entries (training) or one shared entry (inference)
  xL: Tensor; // (T, D) residual after the last layer (inference: layers[0].x)
  rstdF: Tensor; // (T)
  xf: Tensor; // (T, D) model.norm(xL)
  tmpD: Tensor; // (T, D) projection output before a residual add
  ids: Tensor; // u32 (T)
  positions: Tensor; // u32 (T)
  targets: Tensor; // u32 (T) next-token targets, IGNORE_INDEX where not scored
  dLoss: Tensor; // (T) weight of each row in the loss
  negTarget: Tensor; // (T) -logit of the target (written by the chunk holding it)
  stats: Tensor; // (T, 2) online log-sum-exp state (max, sum)
  fakeStats: Tensor; // (T, 2) all (0, 1): lse 0, so cross-entropy gives -x[target]
  logits: Tensor; // (T, C) one vocabulary chunk of logits
  chunkRows: number; // C
  grads?: GradScratch;
  owned: Tensor[];
}

/** A vocabulary chunk of the LM head: rows [start, start + rows) of the (V, D) table. */
interface HeadChunk {
  start: number;
  rows: number;
  w: Tensor;
  dW?: Tensor;
  /** The texture variant's packed copy (frozen models after packWeights()). */
  packed?: PackedWeight;
}

/** LM-head rows per packed chunk (a packed texture holds at most 4 x 16384 columns). */
const PACKED_HEAD_ROWS = 16384;

/** One vocabulary chunk of logits handed to a VocabObjective (rows = packed tokens). */
export interface VocabChunkArgs {
  rec: Recorder;
  logits: Tensor; // (T, cols) logits of vocabulary ids start..start+cols
  start: number;
  cols: number;
  rows: number; // T
  index: number; // chunk number, 0 first
  last: boolean;
  /** Online (max, sum-exp) per row (T, 2): complete once the last chunk's forward ran. */
  stats: Tensor;
}

/**
 * A loss over the vocabulary supplied by a trainer (e.g. the CKD loss of engine/ops/kd_loss.ts):
 * `forward` sees every chunk's logits once, `finish` runs after the last, and `backward` writes
 * the loss gradient of each recomputed chunk into `dlogits` (overwritten).
 */
export interface VocabObjective {
  forward(a: VocabChunkArgs): void;
  finish?(rec: Recorder, rows: number): void;
  backward?(a: VocabChunkArgs & { dlogits: Tensor }): void;
}

/** Per-slot keys and values of past tokens, all layers: slot s owns rows s*maxLen... */
export interface GpuKvCache {
  slots: number;
  maxLen: number;
  k: Tensor[]; // per layer (S, K*E)
  v: Tensor[]; // per layer (S, K*E)
  lengths: number[]; // tokens cached per slot
}

/** One sequence's new tokens in a cached forward. */
export interface CachedStep {
  slot: number;
  ids: number[];
}

export class Qwen3Gpu {
  readonly weights = new Map<string, Tensor>();
  grads?: Map<string, Tensor>;
  #plans = new Map<string, Plan>();
  #rope?: { positions: number; table: Tensor };
  #packed = new Map<string, PackedWeight>();
  #packedHead?: { rows: number; chunks: HeadChunk[] };
  /** Caps the rows of a vocabulary chunk (else sized from the binding limit); tests set it low
   * to run the LM head, log-softmax, top-k and their gradients over several chunks. */
  maxChunkRows = Infinity;
  /** Caps maxTokens() (tests: long prompts prefilled in pieces). */
  maxTokensCap = Infinity;

  private constructor(readonly gpu: Gpu, readonly config: Qwen3Config) {}

  // ---- weights ------------------------------------------------------------------------------

  /** Loads config.json and the checkpoint of `dir`, streaming one tensor block at a time. */
  static async load(dir: string, opts: Qwen3GpuOptions = {}): Promise<Qwen3Gpu> {
    const config = await readQwen3Config(dir);
    const gpu = await getGpu();
    const ckpt = await Checkpoint.open(dir);
    try {
      checkCheckpoint(ckpt, config);
      const m = new Qwen3Gpu(gpu, config);
      const precision = opts.precision ?? "f32";
      for (const spec of qwen3WeightSpecs(config)) {
        const stored = ST_TO_DTYPE[ckpt.info(spec.name).dtype];
        const dtype: DType = spec.kind === "norm" || precision === "f32" || opts.trainable
          ? "f32"
          : stored;
        const t = m.#alloc(spec, dtype);
        await uploadFromCheckpoint(gpu, t, spec, ckpt, stored);
      }
      if (opts.trainable) m.#allocGrads();
      return m;
    } finally {
      ckpt.close();
    }
  }

  /** A model from host values (tests; `star init-model`-style random models). */
  static async fromValues(
    config: Qwen3Config,
    values: (spec: WeightSpec) => ArrayLike<number>,
    opts: { trainable?: boolean; dtype?: DType } = {},
  ): Promise<Qwen3Gpu> {
    const gpu = await getGpu();
    const m = new Qwen3Gpu(gpu, config);
    for (const spec of qwen3WeightSpecs(config)) {
      const dtype = spec.kind === "norm" ? "f32" : opts.dtype ?? "f32";
      const t = m.#alloc(spec, dtype);
      const data = values(spec);
      const n = t.numel;
      if (data.length !== n) {
        throw new RangeError(`Values of "${spec.name}" have ${data.length} elements, need ${n}`);
      }
      const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
      gpu.device.queue.writeBuffer(
        t.buffer,
        t.byteOffset,
        encodeData(dtype, f32, n) as Uint8Array<ArrayBuffer>,
      );
    }
    if (opts.trainable) m.#allocGrads();
    return m;
  }

  #alloc(spec: WeightSpec, dtype: DType): Tensor {
    const t = createTensor(this.gpu, {
      shape: spec.shape,
      dtype,
      label: spec.name,
      chunked: true,
    });
    this.weights.set(spec.name, t);
    return t;
  }

  #allocGrads(): void {
    this.grads = new Map();
    for (const [name, w] of this.weights) {
      if (w.dtype !== "f32") throw new TypeError(`Trainable weight "${name}" must be f32`);
      this.grads.set(
        name,
        createTensor(this.gpu, { shape: w.shape, dtype: "f32", label: `d.${name}`, chunked: true }),
      );
    }
  }

  /** Zeroes every parameter gradient (they accumulate across micro-batches). */
  zeroGrads(rec: Recorder): void {
    for (const g of this.grads?.values() ?? []) rec.clear(g);
  }

  w(name: string): Tensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`The model has no weight "${name}"`);
    return t;
  }

  get headName(): string {
    return this.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /**
   * For a frozen model on the texture matmul variant (software adapters): packs every linear
   * weight once into the texture layout the matmul reads, instead of before every product
   * (which dominates decoding). Costs 4 bytes per parameter. Returns false when not applicable
   * (a trainable model, the tiled variant) or when host memory is short.
   */
  async packWeights(): Promise<boolean> {
    if (this.grads || matmulVariant(this.gpu) !== "texture") return false;
    // the software adapter's textures live in host memory: leave a quarter of it free
    let params = 0;
    for (const spec of qwen3WeightSpecs(this.config)) {
      if (spec.kind === "linear" || spec.name === this.headName) {
        params += spec.shape[0] * spec.shape[1];
      }
    }
    try {
      const mem = Deno.systemMemoryInfo();
      if (4 * params > mem.available - mem.total / 4) return false;
    } catch { /* no --allow-sys: pack anyway */ }
    const rec = new Recorder(this.gpu, "qwen3.pack");
    for (const spec of qwen3WeightSpecs(this.config)) {
      if (spec.kind !== "linear" || spec.name === this.headName) continue;
      const w = this.w(spec.name);
      this.#packed.set(
        spec.name,
        packMatmulWeight(rec, { w, inDim: w.shape[1], outDim: w.shape[0] }),
      );
      if (this.#packed.size % 16 === 0) rec.submit();
    }
    const chunks = this.#headChunks(PACKED_HEAD_ROWS);
    for (const ch of chunks) {
      ch.packed = packMatmulWeight(rec, {
        w: ch.w,
        inDim: this.config.hidden_size,
        outDim: ch.rows,
      });
      rec.submit();
    }
    this.#packedHead = { rows: Math.max(...chunks.map((c) => c.rows)), chunks };
    const { checkErrors } = await import("../engine/device.ts");
    rec.submit();
    await checkErrors(this.gpu);
    return true;
  }

  /** LM-head chunks of at most maxRows rows: the packed ones when they fit. */
  #vocabChunks(maxRows: number): HeadChunk[] {
    const ph = this.#packedHead;
    return ph && ph.rows <= maxRows ? ph.chunks : this.#headChunks(maxRows);
  }

  /** Frees every GPU buffer of the model (weights, gradients, plans). */
  release(): void {
    for (const pw of this.#packed.values()) pw.texture.destroy();
    for (const ch of this.#packedHead?.chunks ?? []) ch.packed?.texture.destroy();
    this.#packed.clear();
    this.#packedHead = undefined;
    for (const p of this.#plans.values()) for (const t of p.owned) releaseTensor(this.gpu, t);
    this.#plans.clear();
    for (const t of this.weights.values()) releaseTensor(this.gpu, t);
    for (const t of this.grads?.values() ?? []) releaseTensor(this.gpu, t);
    if (this.#rope) releaseTensor(this.gpu, this.#rope.table);
    this.weights.clear();
    this.grads = undefined;
    this.#rope = undefined;
    this.gpu.pool.trim();
  }

  // ---- plans --------------------------------------------------------------------------------

  #plan(tokens: number, train: boolean): Plan {
    const key = train ? "train" : "infer";
    const old = this.#plans.get(key);
    if (old && old.cap >= tokens) return old;
    if (old) {
      for (const t of old.owned) releaseTensor(this.gpu, t);
      this.#plans.delete(key);
    }
    // grow geometrically so a run of slowly growing batches re-plans only a few times
    const cap = Math.max(tokens, old ? Math.min(2 * old.cap, tokens * 2) : tokens);
    const p = this.#makePlan(cap, train);
    this.#plans.set(key, p);
    return p;
  }

  #makePlan(T: number, train: boolean): Plan {
    const c = this.config, gpu = this.gpu;
    const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
    const E = c.head_dim, F = c.intermediate_size;
    const owned: Tensor[] = [];
    const f32 = (label: string, ...shape: number[]) => {
      const t = createTensor(gpu, { shape: [T, ...shape], dtype: "f32", label });
      owned.push(t);
      return t;
    };
    const u32 = (label: string, ...shape: number[]) => {
      const t = createTensor(gpu, { shape: [T, ...shape], dtype: "u32", label });
      owned.push(t);
      return t;
    };
    const layer = (l: number, x: Tensor): LayerActs => ({
      x,
      rstd1: f32(`L${l}.rstd1`),
      xn1: f32(`L${l}.xn1`, D),
      q: f32(`L${l}.q`, H * E),
      k: f32(`L${l}.k`, K * E),
      v: f32(`L${l}.v`, K * E),
      rstdQ: f32(`L${l}.rstdQ`, H),
      rstdK: f32(`L${l}.rstdK`, K),
      qr: f32(`L${l}.qr`, H * E),
      kr: f32(`L${l}.kr`, K * E),
      att: f32(`L${l}.att`, H, 2),
      o: f32(`L${l}.o`, H * E),
      x2: f32(`L${l}.x2`, D),
      rstd2: f32(`L${l}.rstd2`),
      xn2: f32(`L${l}.xn2`, D),
      g: f32(`L${l}.g`, F),
      u: f32(`L${l}.u`, F),
      h: f32(`L${l}.h`, F),
    });
    const layers: LayerActs[] = [];
    let xL: Tensor;
    if (train) {
      for (let l = 0; l < c.num_hidden_layers; l++) layers.push(layer(l, f32(`L${l}.x`, D)));
      xL = f32("xL", D);
    } else {
      layers.push(layer(0, f32("x", D)));
      xL = layers[0].x;
    }
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const chunkRows = Math.min(c.vocab_size, Math.floor(limit / (4 * T)), this.maxChunkRows);
    if (chunkRows < 1) throw new RangeError(`${T} tokens do not fit one logits chunk`);
    const fakeStats = f32("fakeStats", 2);
    const fake = new Float32Array(2 * T);
    for (let i = 0; i < T; i++) fake[2 * i + 1] = 1;
    gpu.device.queue.writeBuffer(fakeStats.buffer, fakeStats.byteOffset, fake);
    const p: Plan = {
      cap: T,
      train,
      layers,
      xL,
      rstdF: f32("rstdF"),
      xf: f32("xf", D),
      tmpD: f32("tmpD", D),
      ids: u32("ids"),
      positions: u32("positions"),
      targets: u32("targets"),
      dLoss: f32("dLoss"),
      negTarget: f32("negTarget"),
      stats: f32("stats", 2),
      fakeStats,
      logits: f32("logits", chunkRows),
      chunkRows,
      owned,
    };
    if (train) {
      p.grads = {
        dRes: f32("dRes", D),
        dTmp: f32("dTmp", D),
        dXn: f32("dXn", D),
        dXf: f32("dXf", D),
        dO: f32("dO", H * E),
        dQr: f32("dQr", H * E),
        dKr: f32("dKr", K * E),
        dV: f32("dV", K * E),
        dQ: f32("dQ", H * E),
        dK: f32("dK", K * E),
        dH: f32("dH", F),
        dG: f32("dG", F),
        dU: f32("dU", F),
        dLogits: f32("dLogits", chunkRows),
        links: u32("links"),
      };
    }
    return p;
  }

  /** The cos/sin table covering positions [0, n). */
  #ropeTable(n: number): Tensor {
    if (this.#rope && this.#rope.positions >= n) return this.#rope.table;
    if (this.#rope) releaseTensor(this.gpu, this.#rope.table);
    const positions = Math.max(n, 2 * (this.#rope?.positions ?? 0), 256);
    const data = ropeTable({
      theta: this.config.rope_theta,
      headDim: this.config.head_dim,
      positions,
    });
    const table = createTensor(this.gpu, {
      shape: [positions, this.config.head_dim / 2, 2],
      dtype: "f32",
      label: "rope.table",
      data,
    });
    this.#rope = { positions, table };
    return table;
  }

  /** LM-head row chunks of at most `maxRows` rows each (and within the binding limit). */
  #headChunks(maxRows: number): HeadChunk[] {
    const w = this.w(this.headName);
    const dW = this.grads?.get(this.headName);
    const maxBytes = maxRows * w.rowSize * DTYPE_BYTES[w.dtype];
    const ws = rowChunks(this.gpu, w, maxBytes);
    const ds = dW ? rowChunks(this.gpu, dW, maxRows * w.rowSize * 4) : undefined;
    let start = 0;
    return ws.map((wc, i) => {
      const ch: HeadChunk = { start, rows: wc.shape[0], w: wc, dW: ds?.[i] };
      if (ds && ds[i].shape[0] !== wc.shape[0]) throw new Error("Gradient chunks misaligned");
      start += wc.shape[0];
      return ch;
    });
  }

  // ---- forward ------------------------------------------------------------------------------

  /** y (T, out) = x (T, in) · Wᵀ of the named linear weight. */
  #linear(rec: Recorder, y: Tensor, x: Tensor, name: string, T: number) {
    const w = this.w(name);
    matmulForward(rec, {
      y: rows(y, T),
      x: rows(x, T),
      w,
      rows: T,
      inDim: w.shape[1],
      outDim: w.shape[0],
      packed: this.#packed.get(name),
    });
  }

  /**
   * Records the decoder body over T packed tokens (ids and positions already written), up to
   * xf = model.norm(xL). Attention reads `kv(l, a)` for the keys and values (the tokens
   * themselves in training; the cache in generation, after `kv` has stored the new ones).
   */
  #recordBody(
    rec: Recorder,
    p: Plan,
    T: number,
    attn: {
      ranges: Tensor;
      keyRows: number;
      kv: (l: number, a: LayerActs) => { k: Tensor; v: Tensor };
    },
  ): void {
    const c = this.config;
    const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
    const E = c.head_dim, F = c.intermediate_size, eps = c.rms_norm_eps;
    const table = this.#ropeTable(1); // the caller sized it already; this only fetches it
    embeddingForward(rec, {
      out: rows(p.layers[0].x, T),
      ids: p.ids,
      table: rowChunks(this.gpu, this.w("model.embed_tokens.weight")),
      tokens: T,
      dim: D,
    });
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const a = p.train ? p.layers[l] : p.layers[0];
      const out = p.train ? (l + 1 < c.num_hidden_layers ? p.layers[l + 1].x : p.xL) : a.x;
      const pre = `model.layers.${l}.`;
      rmsNormForward(rec, {
        y: a.xn1,
        rstd: a.rstd1,
        x: a.x,
        weight: this.w(`${pre}input_layernorm.weight`),
        rows: T,
        dim: D,
        eps,
      });
      this.#linear(rec, a.q, a.xn1, `${pre}self_attn.q_proj.weight`, T);
      this.#linear(rec, a.k, a.xn1, `${pre}self_attn.k_proj.weight`, T);
      this.#linear(rec, a.v, a.xn1, `${pre}self_attn.v_proj.weight`, T);
      rmsNormForward(rec, {
        y: a.qr,
        rstd: a.rstdQ,
        x: a.q,
        weight: this.w(`${pre}self_attn.q_norm.weight`),
        rows: T * H,
        dim: E,
        eps,
      });
      rmsNormForward(rec, {
        y: a.kr,
        rstd: a.rstdK,
        x: a.k,
        weight: this.w(`${pre}self_attn.k_norm.weight`),
        rows: T * K,
        dim: E,
        eps,
      });
      ropeForward(rec, { x: a.qr, positions: p.positions, table, tokens: T, heads: H, headDim: E });
      ropeForward(rec, { x: a.kr, positions: p.positions, table, tokens: T, heads: K, headDim: E });
      const { k, v } = attn.kv(l, a);
      attentionForward(rec, {
        q: a.qr,
        k,
        v,
        ranges: attn.ranges,
        stats: a.att,
        o: a.o,
        queryRows: T,
        keyRows: attn.keyRows,
        heads: H,
        kvHeads: K,
        headDim: E,
      });
      this.#linear(rec, p.tmpD, a.o, `${pre}self_attn.o_proj.weight`, T);
      residualForward(rec, { out: a.x2, a: a.x, b: p.tmpD, n: T * D });
      rmsNormForward(rec, {
        y: a.xn2,
        rstd: a.rstd2,
        x: a.x2,
        weight: this.w(`${pre}post_attention_layernorm.weight`),
        rows: T,
        dim: D,
        eps,
      });
      this.#linear(rec, a.g, a.xn2, `${pre}mlp.gate_proj.weight`, T);
      this.#linear(rec, a.u, a.xn2, `${pre}mlp.up_proj.weight`, T);
      swigluForward(rec, { h: a.h, gate: a.g, up: a.u, n: T * F });
      this.#linear(rec, p.tmpD, a.h, `${pre}mlp.down_proj.weight`, T);
      residualForward(rec, { out, a: a.x2, b: p.tmpD, n: T * D });
    }
    rmsNormForward(rec, {
      y: p.xf,
      rstd: p.rstdF,
      x: p.xL,
      weight: this.w("model.norm.weight"),
      rows: T,
      dim: D,
      eps,
    });
  }

  /** Writes ids, positions (restarting per sequence) and targets of a packed batch. */
  #writeBatch(p: Plan, seqs: number[][], labels?: (number | null)[][], weights?: number[][]) {
    const V = this.config.vocab_size;
    const T = seqs.reduce((s, q) => s + q.length, 0);
    const ids = new Uint32Array(T), pos = new Uint32Array(T), tgt = new Uint32Array(T);
    const dLoss = new Float32Array(T);
    let off = 0;
    seqs.forEach((s, si) => {
      const lab = labels?.[si];
      s.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new RangeError(`Token id ${id} is outside the vocabulary (size ${V})`);
        }
        ids[off + t] = id;
        pos[off + t] = t;
        const next = lab ? lab[t + 1] : s[t + 1];
        tgt[off + t] = t + 1 < s.length && next !== null && next !== undefined && next >= 0
          ? next
          : IGNORE_INDEX;
        dLoss[off + t] = weights?.[si]?.[t] ?? 0;
      });
      off += s.length;
    });
    const q = this.gpu.device.queue;
    q.writeBuffer(p.ids.buffer, p.ids.byteOffset, ids);
    q.writeBuffer(p.positions.buffer, p.positions.byteOffset, pos);
    q.writeBuffer(p.targets.buffer, p.targets.byteOffset, tgt);
    q.writeBuffer(p.dLoss.buffer, p.dLoss.byteOffset, dLoss);
    return { T, targets: tgt };
  }

  /**
   * Vocabulary pass over xf (T rows): per chunk the logits, the online lse, the target logit
   * (cross-entropy against zero lse gives −x[target]) and optionally the running top-k.
   */
  #recordVocabPass(
    rec: Recorder,
    p: Plan,
    T: number,
    topk?: { k: number; vals: Tensor; ids: Tensor },
    objective?: VocabObjective,
  ) {
    const D = this.config.hidden_size;
    const chunks = this.#vocabChunks(p.chunkRows);
    chunks.forEach((ch, i) => {
      const L = view(p.logits, [T, ch.rows]);
      matmulForward(rec, {
        y: L,
        x: rows(p.xf, T),
        w: ch.w,
        rows: T,
        inDim: D,
        outDim: ch.rows,
        packed: ch.packed,
      });
      lseChunk(rec, { stats: p.stats, x: L, first: i === 0, rows: T, cols: ch.rows });
      crossEntropyForward(rec, {
        x: L,
        colStart: ch.start,
        stats: p.fakeStats,
        targets: p.targets,
        loss: p.negTarget,
        rows: T,
        cols: ch.rows,
      });
      objective?.forward({
        rec,
        logits: L,
        start: ch.start,
        cols: ch.rows,
        rows: T,
        index: i,
        last: i === chunks.length - 1,
        stats: p.stats,
      });
      if (topk) {
        topkChunk(rec, {
          vals: topk.vals,
          ids: topk.ids,
          x: L,
          colStart: ch.start,
          k: topk.k,
          first: i === 0,
          rows: T,
          cols: ch.rows,
        });
      }
    });
    if (topk) topkFinish(rec, { vals: topk.vals, stats: p.stats, rows: T, k: topk.k });
    objective?.finish?.(rec, T);
    return chunks;
  }

  /** log p(target) per row (NaN where there is no target) from the read-back negTarget and stats. */
  static #logprobs(neg: Float32Array, stats: Float32Array, targets: Uint32Array): Float64Array {
    const out = new Float64Array(targets.length);
    for (let r = 0; r < targets.length; r++) {
      out[r] = targets[r] === IGNORE_INDEX
        ? NaN
        : -neg[r] - (stats[2 * r] + Math.log(stats[2 * r + 1]));
    }
    return out;
  }

  /**
   * Per-token log-probs of packed sequences: result[s][t] = log p(seq[t+1] | seq[..t]), plus
   * the top-k (descending) of each scored position when `topK` is given. One submit.
   */
  async logprobs(
    seqs: number[][],
    opts: { topK?: number } = {},
  ): Promise<{ logprobs: number[]; topkIds?: number[][]; topkLogprobs?: number[][] }[]> {
    const T = seqs.reduce((s, q) => s + q.length, 0);
    if (T === 0) return seqs.map(() => ({ logprobs: [] }));
    if (T > this.maxTokens()) {
      throw new RangeError(`${T} tokens exceed the ${this.maxTokens()} one forward can hold here`);
    }
    const p = this.#plan(T, false);
    const { targets } = this.#writeBatch(p, seqs);
    this.#ropeTable(Math.max(...seqs.map((s) => s.length)));
    const rec = new Recorder(this.gpu, "qwen3.logprobs");
    const ranges = this.#rangesTensor(
      seqs.map((s, i) => ({
        qStart: offsetOf(seqs, i),
        qLen: s.length,
        kStart: offsetOf(seqs, i),
      })),
      T,
      T,
    );
    this.#recordBody(rec, p, T, {
      ranges: ranges,
      keyRows: T,
      kv: (_l, a) => ({ k: a.kr, v: a.v }),
    });
    const k = opts.topK ?? 0;
    let topk: { k: number; vals: Tensor; ids: Tensor } | undefined;
    if (k > 0) {
      topk = {
        k,
        vals: createTensor(this.gpu, { shape: [T, k], dtype: "f32", label: "topk.vals" }),
        ids: createTensor(this.gpu, { shape: [T, k], dtype: "u32", label: "topk.ids" }),
      };
    }
    this.#recordVocabPass(rec, p, T, topk);
    const [neg, stats, tv, ti] = await readMany(rec, [
      rows(p.negTarget, T),
      rows(p.stats, T),
      ...(topk ? [topk.vals, topk.ids] : []),
    ]);
    releaseTensor(this.gpu, ranges);
    if (topk) {
      releaseTensor(this.gpu, topk.vals);
      releaseTensor(this.gpu, topk.ids);
    }
    const lp = Qwen3Gpu.#logprobs(neg as Float32Array, stats as Float32Array, targets);
    let off = 0;
    return seqs.map((s) => {
      const n = Math.max(0, s.length - 1);
      const r: { logprobs: number[]; topkIds?: number[][]; topkLogprobs?: number[][] } = {
        logprobs: Array.from(lp.subarray(off, off + n)),
      };
      if (topk) {
        r.topkIds = [];
        r.topkLogprobs = [];
        for (let t = 0; t < n; t++) {
          const b = (off + t) * k;
          r.topkIds.push(Array.from((ti as Uint32Array).subarray(b, b + k)));
          r.topkLogprobs.push(Array.from((tv as Float32Array).subarray(b, b + k)));
        }
      }
      off += s.length;
      return r;
    });
  }

  #rangesTensor(seqs: AttentionSeq[], queryRows: number, keyRows: number): Tensor {
    const data = attentionRangeTable(seqs, { queryRows, keyRows });
    return createTensor(this.gpu, {
      shape: [queryRows + keyRows, 2],
      dtype: "u32",
      label: "attention.ranges",
      data,
    });
  }

  // ---- training step ------------------------------------------------------------------------

  /**
   * Forward and backward of the mean next-token cross-entropy over a packed micro-batch.
   * Position t of a sequence is scored on labels[t+1] (the ids when labels are absent; a null
   * or negative label is not scored). Gradients ACCUMULATE into `grads` (call zeroGrads first);
   * the loss is scaled by `scale` (default 1 / scored tokens). One submit, one readback.
   */
  async lossAndGrad(
    seqs: number[][],
    opts: { labels?: (number | null)[][]; scale?: number; rec?: Recorder } = {},
  ): Promise<{ loss: number; count: number; logprobs: Float64Array }> {
    if (!this.grads) throw new Error("lossAndGrad() needs a model loaded with trainable: true");
    const T = seqs.reduce((s, q) => s + q.length, 0);
    const p = this.#plan(T, true);
    // count scored rows to weight each by 1/count
    let count = 0;
    const weights = seqs.map((s, si) =>
      s.map((_, t) => {
        const next = opts.labels ? opts.labels[si][t + 1] : s[t + 1];
        const scored = t + 1 < s.length && next !== null && next !== undefined && next >= 0;
        if (scored) count++;
        return scored ? 1 : 0;
      })
    );
    const scale = opts.scale ?? (count > 0 ? 1 / count : 0);
    for (const w of weights) for (let i = 0; i < w.length; i++) w[i] *= scale;
    const { targets } = this.#writeBatch(p, seqs, opts.labels, weights);
    this.#ropeTable(Math.max(...seqs.map((s) => s.length)));
    const rec = opts.rec ?? new Recorder(this.gpu, "qwen3.step");
    const ranges = this.#rangesTensor(
      seqs.map((s, i) => ({
        qStart: offsetOf(seqs, i),
        qLen: s.length,
        kStart: offsetOf(seqs, i),
      })),
      T,
      T,
    );
    this.#recordBody(rec, p, T, { ranges, keyRows: T, kv: (_l, a) => ({ k: a.kr, v: a.v }) });
    const chunks = this.#recordVocabPass(rec, p, T);
    this.#recordBackward(rec, p, T, ranges, chunks);
    const [neg, stats] = await readMany(rec, [rows(p.negTarget, T), rows(p.stats, T)]);
    releaseTensor(this.gpu, ranges);
    const lp = Qwen3Gpu.#logprobs(neg as Float32Array, stats as Float32Array, targets);
    let loss = 0;
    for (let r = 0; r < T; r++) if (targets[r] !== IGNORE_INDEX) loss -= lp[r];
    return { loss: count ? loss / count : 0, count, logprobs: lp };
  }

  /**
   * A forward (and with `backward`, the backward into the parameter gradients, which
   * ACCUMULATE) of a packed batch under a caller's vocabulary objective, in one submit; then
   * reads back `read` (the caller's result tensors) in the same wait. The returned log-probs
   * are those of the ids (log p(seq[t+1] | ..), NaN at each sequence's last row).
   */
  async runObjective(
    seqs: number[][],
    objective: VocabObjective,
    opts: { backward?: boolean; read?: Tensor[]; rec?: Recorder } = {},
  ): Promise<{ logprobs: Float64Array; read: (Float32Array | Uint32Array | Int32Array)[] }> {
    const train = opts.backward ?? false;
    if (train && !this.grads) {
      throw new Error("A backward needs a model loaded with trainable: true");
    }
    if (train && !objective.backward) throw new Error("The objective has no backward");
    const T = seqs.reduce((s, q) => s + q.length, 0);
    const p = this.#plan(T, train);
    const { targets } = this.#writeBatch(p, seqs);
    this.#ropeTable(Math.max(...seqs.map((s) => s.length)));
    const rec = opts.rec ?? new Recorder(this.gpu, "qwen3.objective");
    const ranges = this.#rangesTensor(
      seqs.map((s, i) => ({
        qStart: offsetOf(seqs, i),
        qLen: s.length,
        kStart: offsetOf(seqs, i),
      })),
      T,
      T,
    );
    this.#recordBody(rec, p, T, { ranges, keyRows: T, kv: (_l, a) => ({ k: a.kr, v: a.v }) });
    const chunks = this.#recordVocabPass(rec, p, T, undefined, objective);
    if (train) this.#recordBackward(rec, p, T, ranges, chunks, objective);
    const read = opts.read ?? [];
    const [neg, stats, ...rest] = await readMany(rec, [
      rows(p.negTarget, T),
      rows(p.stats, T),
      ...read,
    ]);
    releaseTensor(this.gpu, ranges);
    return {
      logprobs: Qwen3Gpu.#logprobs(neg as Float32Array, stats as Float32Array, targets),
      read: rest,
    };
  }

  #recordBackward(
    rec: Recorder,
    p: Plan,
    T: number,
    ranges: Tensor,
    chunks: HeadChunk[],
    objective?: VocabObjective,
  ): void {
    const g = p.grads!, D = this.config.hidden_size;
    // LM head: recompute each chunk's logits, dlogits = (softmax - onehot)·dLoss, then
    // dXf (+)= dlogits·W_chunk and dW_chunk += dlogitsᵀ·xf
    chunks.forEach((ch, i) => {
      const L = view(p.logits, [T, ch.rows]);
      const dL = view(g.dLogits, [T, ch.rows]);
      matmulForward(rec, { y: L, x: rows(p.xf, T), w: ch.w, rows: T, inDim: D, outDim: ch.rows });
      if (objective) {
        objective.backward!({
          rec,
          logits: L,
          dlogits: dL,
          start: ch.start,
          cols: ch.rows,
          rows: T,
          index: i,
          last: i === chunks.length - 1,
          stats: p.stats,
        });
      } else {
        crossEntropyBackward(rec, {
          x: L,
          colStart: ch.start,
          stats: p.stats,
          targets: p.targets,
          dLoss: p.dLoss,
          dx: dL,
          rows: T,
          cols: ch.rows,
        });
      }
      matmulBackward(rec, {
        dy: dL,
        x: rows(p.xf, T),
        w: ch.w,
        dx: rows(g.dXf, T),
        dw: ch.dW,
        accumulateDx: i > 0,
        rows: T,
        inDim: D,
        outDim: ch.rows,
      });
    });
    this.#recordBodyBackward(rec, p, T, ranges);
  }

  /** The backward from dXf (dL/dxf, T rows) to every parameter gradient (accumulating). */
  #recordBodyBackward(rec: Recorder, p: Plan, T: number, ranges: Tensor): void {
    const c = this.config, g = p.grads!, G = this.grads!;
    const D = c.hidden_size, H = c.num_attention_heads, K = c.num_key_value_heads;
    const E = c.head_dim, F = c.intermediate_size, eps = c.rms_norm_eps;
    const dw = (name: string) => G.get(name)!;
    const table = this.#ropeTable(1);
    rmsNormBackward(rec, {
      dx: g.dRes,
      dWeight: dw("model.norm.weight"),
      dy: g.dXf,
      x: p.xL,
      weight: this.w("model.norm.weight"),
      rstd: p.rstdF,
      rows: T,
      dim: D,
      eps,
    });
    const lin = (dy: Tensor, x: Tensor, name: string, dx: Tensor, accumulateDx: boolean) => {
      const w = this.w(name);
      matmulBackward(rec, {
        dy: rows(dy, T),
        x: rows(x, T),
        w,
        dx: rows(dx, T),
        dw: dw(name),
        accumulateDx,
        rows: T,
        inDim: w.shape[1],
        outDim: w.shape[0],
      });
    };
    for (let l = c.num_hidden_layers - 1; l >= 0; l--) {
      const a = p.layers[l], pre = `model.layers.${l}.`;
      // MLP: out = x2 + down(silu(g)·u); dRes holds dL/dout
      lin(g.dRes, a.h, `${pre}mlp.down_proj.weight`, g.dH, false);
      swigluBackward(rec, { dGate: g.dG, dUp: g.dU, dH: g.dH, gate: a.g, up: a.u, n: T * F });
      lin(g.dG, a.xn2, `${pre}mlp.gate_proj.weight`, g.dXn, false);
      lin(g.dU, a.xn2, `${pre}mlp.up_proj.weight`, g.dXn, true);
      rmsNormBackward(rec, {
        dx: g.dTmp,
        dWeight: dw(`${pre}post_attention_layernorm.weight`),
        dy: g.dXn,
        x: a.x2,
        weight: this.w(`${pre}post_attention_layernorm.weight`),
        rstd: a.rstd2,
        rows: T,
        dim: D,
        eps,
      });
      residualBackward(rec, { dst: g.dRes, src: g.dTmp, n: T * D }); // dRes = dL/dx2
      // attention: x2 = x + o_proj(attn(...))
      lin(g.dRes, a.o, `${pre}self_attn.o_proj.weight`, g.dO, false);
      attentionBackward(rec, {
        q: a.qr,
        k: a.kr,
        v: a.v,
        ranges,
        stats: a.att,
        o: a.o,
        dO: g.dO,
        dQ: g.dQr,
        dK: g.dKr,
        dV: g.dV,
        queryRows: T,
        keyRows: T,
        heads: H,
        kvHeads: K,
        headDim: E,
      });
      ropeBackward(rec, {
        dx: g.dQr,
        positions: p.positions,
        table,
        tokens: T,
        heads: H,
        headDim: E,
      });
      ropeBackward(rec, {
        dx: g.dKr,
        positions: p.positions,
        table,
        tokens: T,
        heads: K,
        headDim: E,
      });
      rmsNormBackward(rec, {
        dx: g.dQ,
        dWeight: dw(`${pre}self_attn.q_norm.weight`),
        dy: g.dQr,
        x: a.q,
        weight: this.w(`${pre}self_attn.q_norm.weight`),
        rstd: a.rstdQ,
        rows: T * H,
        dim: E,
        eps,
      });
      rmsNormBackward(rec, {
        dx: g.dK,
        dWeight: dw(`${pre}self_attn.k_norm.weight`),
        dy: g.dKr,
        x: a.k,
        weight: this.w(`${pre}self_attn.k_norm.weight`),
        rstd: a.rstdK,
        rows: T * K,
        dim: E,
        eps,
      });
      lin(g.dQ, a.xn1, `${pre}self_attn.q_proj.weight`, g.dXn, false);
      lin(g.dK, a.xn1, `${pre}self_attn.k_proj.weight`, g.dXn, true);
      lin(g.dV, a.xn1, `${pre}self_attn.v_proj.weight`, g.dXn, true);
      rmsNormBackward(rec, {
        dx: g.dTmp,
        dWeight: dw(`${pre}input_layernorm.weight`),
        dy: g.dXn,
        x: a.x,
        weight: this.w(`${pre}input_layernorm.weight`),
        rstd: a.rstd1,
        rows: T,
        dim: D,
        eps,
      });
      residualBackward(rec, { dst: g.dRes, src: g.dTmp, n: T * D }); // dRes = dL/dx
    }
    embeddingBackward(rec, {
      dTable: rowChunks(this.gpu, dw("model.embed_tokens.weight")),
      dOut: g.dRes,
      ids: p.ids,
      links: g.links,
      tokens: T,
      dim: D,
    });
  }

  // ---- hooks for trainers with their own loss over the final hidden states (CKD) -------------

  /**
   * Records the forward of packed `seqs` up to xf = model.norm(xL) (T, D) without the LM head.
   * With `train` (a trainable model) the activations are kept: the caller records its loss over
   * `xf`, writes dL/dxf into `dXf` (T, D) and calls `backward()` to record the backward from
   * there to every parameter gradient (accumulating). `release()` after the submit.
   */
  recordHidden(rec: Recorder, seqs: number[][], opts: { train?: boolean } = {}): {
    T: number;
    xf: Tensor;
    dXf?: Tensor;
    backward: () => void;
    release: () => void;
  } {
    const train = opts.train ?? false;
    if (train && !this.grads) throw new Error("recordHidden() to train needs a trainable model");
    const T = seqs.reduce((s, q) => s + q.length, 0);
    const p = this.#plan(T, train);
    this.#writeBatch(p, seqs);
    this.#ropeTable(Math.max(...seqs.map((s) => s.length)));
    const ranges = this.#rangesTensor(
      seqs.map((s, i) => ({
        qStart: offsetOf(seqs, i),
        qLen: s.length,
        kStart: offsetOf(seqs, i),
      })),
      T,
      T,
    );
    this.#recordBody(rec, p, T, { ranges, keyRows: T, kv: (_l, a) => ({ k: a.kr, v: a.v }) });
    return {
      T,
      xf: rows(p.xf, T),
      dXf: train ? rows(p.grads!.dXf, T) : undefined,
      backward: () => {
        if (!train) throw new Error("backward() needs recordHidden(..., { train: true })");
        this.#recordBodyBackward(rec, p, T, ranges);
      },
      release: () => releaseTensor(this.gpu, ranges),
    };
  }

  // ---- generation ---------------------------------------------------------------------------

  /** A KV cache of `slots` sequences of up to `maxLen` tokens each. */
  newCache(slots: number, maxLen: number): GpuKvCache {
    const c = this.config, KE = c.num_key_value_heads * c.head_dim;
    const mk = (label: string) =>
      createTensor(this.gpu, { shape: [slots * maxLen, KE], dtype: "f32", label });
    return {
      slots,
      maxLen,
      k: Array.from({ length: c.num_hidden_layers }, (_, l) => mk(`L${l}.kcache`)),
      v: Array.from({ length: c.num_hidden_layers }, (_, l) => mk(`L${l}.vcache`)),
      lengths: new Array(slots).fill(0),
    };
  }

  releaseCache(cache: GpuKvCache): void {
    for (const t of [...cache.k, ...cache.v]) releaseTensor(this.gpu, t);
  }

  /** Copies the cached keys/values of slot `from` into slot `to` (every layer); one submit. */
  copySlots(cache: GpuKvCache, pairs: { from: number; to: number }[]): void {
    const rec = new Recorder(this.gpu, "qwen3.copySlots");
    // a buffer cannot be copied onto itself: go through a scratch tensor
    const most = Math.max(...pairs.map((p) => cache.lengths[p.from]));
    if (most === 0) return;
    const tmp = createTensor(this.gpu, {
      shape: [most, cache.k[0].shape[1]],
      dtype: "f32",
      label: "kvcache.copy",
    });
    for (const { from, to } of pairs) {
      const n = cache.lengths[from];
      if (n === 0) continue;
      for (let l = 0; l < cache.k.length; l++) {
        for (const t of [cache.k[l], cache.v[l]]) {
          rec.copy(t.rows(from * cache.maxLen, n), tmp.rows(0, n));
          rec.copy(tmp.rows(0, n), t.rows(to * cache.maxLen, n));
        }
      }
      cache.lengths[to] = n;
    }
    rec.submit();
    releaseTensor(this.gpu, tmp); // pooled: reused only by work submitted after this
  }

  /**
   * The most tokens one forward may hold: every activation tensor (T rows of up to F floats)
   * must fit one storage binding. Longer inputs are split by the caller (generate() prefills a
   * long prompt in pieces).
   */
  maxTokens(): number {
    const c = this.config;
    const width = Math.max(
      c.hidden_size,
      c.intermediate_size,
      c.num_attention_heads * c.head_dim,
      c.num_attention_heads * 2,
    );
    const fit = Math.floor(this.gpu.limits.maxStorageBufferBindingSize / (4 * width));
    return Math.min(fit, this.maxTokensCap);
  }

  /** The most slots of `maxLen` tokens one cache tensor (a single binding) can hold. */
  maxCacheSlots(maxLen: number): number {
    const KE = this.config.num_key_value_heads * this.config.head_dim;
    return Math.floor(this.gpu.limits.maxStorageBufferBindingSize / (maxLen * KE * 4));
  }

  /**
   * Runs the new tokens of some cached sequences (a prefill: whole prompts; a decode step: one
   * token each), stores their keys/values in the cache and returns the full-vocabulary logits
   * of each step's last token (float32, length V). One submit and one readback.
   */
  async forwardCached(cache: GpuKvCache, steps: CachedStep[]): Promise<Float32Array[]> {
    const c = this.config, D = c.hidden_size, V = c.vocab_size;
    const T = steps.reduce((s, q) => s + q.ids.length, 0);
    const p = this.#plan(T, false);
    const ids = new Uint32Array(T), pos = new Uint32Array(T);
    const seqs: AttentionSeq[] = [];
    let off = 0, maxPos = 0;
    for (const st of steps) {
      const past = cache.lengths[st.slot];
      if (st.ids.length === 0) throw new RangeError("A cached step needs at least one token");
      if (past + st.ids.length > cache.maxLen) {
        throw new RangeError(
          `Slot ${st.slot} would hold ${past + st.ids.length} tokens, the cache ${cache.maxLen}`,
        );
      }
      st.ids.forEach((id, i) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new RangeError(`Token id ${id} is outside the vocabulary (size ${V})`);
        }
        ids[off + i] = id;
        pos[off + i] = past + i;
      });
      seqs.push({ qStart: off, qLen: st.ids.length, kStart: st.slot * cache.maxLen, past });
      maxPos = Math.max(maxPos, past + st.ids.length);
      off += st.ids.length;
    }
    const q = this.gpu.device.queue;
    q.writeBuffer(p.ids.buffer, p.ids.byteOffset, ids);
    q.writeBuffer(p.positions.buffer, p.positions.byteOffset, pos);
    this.#ropeTable(maxPos);
    const keyRows = cache.slots * cache.maxLen;
    const ranges = this.#rangesTensor(seqs, T, keyRows);
    const rec = new Recorder(this.gpu, "qwen3.cached");
    this.#recordBody(rec, p, T, {
      ranges,
      keyRows,
      kv: (l, a) => {
        for (const s of seqs) {
          const dst = s.kStart + (s.past ?? 0);
          rec.copy(a.kr.rows(s.qStart, s.qLen), cache.k[l].rows(dst, s.qLen));
          rec.copy(a.v.rows(s.qStart, s.qLen), cache.v[l].rows(dst, s.qLen));
        }
        return { k: cache.k[l], v: cache.v[l] };
      },
    });
    // the last row of each step, then the LM head over the vocabulary in chunks
    const B = steps.length;
    const last = createTensor(this.gpu, { shape: [B, D], dtype: "f32", label: "lastRows" });
    seqs.forEach((s, i) => rec.copy(p.xf.rows(s.qStart + s.qLen - 1, 1), last.rows(i, 1)));
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    const chunks = this.#vocabChunks(Math.min(V, Math.floor(limit / (4 * B)), this.maxChunkRows));
    const outs = chunks.map((ch) => {
      const y = createTensor(this.gpu, { shape: [B, ch.rows], dtype: "f32", label: "logits" });
      matmulForward(rec, {
        y,
        x: last,
        w: ch.w,
        rows: B,
        inDim: D,
        outDim: ch.rows,
        packed: ch.packed,
      });
      return y;
    });
    const parts = await readMany(rec, outs);
    for (const s of seqs) cache.lengths[steps[seqs.indexOf(s)].slot] += s.qLen;
    releaseTensor(this.gpu, ranges);
    releaseTensor(this.gpu, last);
    for (const y of outs) releaseTensor(this.gpu, y);
    const result = steps.map(() => new Float32Array(V));
    chunks.forEach((ch, ci) => {
      const part = parts[ci] as Float32Array;
      for (let b = 0; b < B; b++) {
        result[b].set(part.subarray(b * ch.rows, (b + 1) * ch.rows), ch.start);
      }
    });
    return result;
  }

  // ---- host copies (tests, checkpoints) -----------------------------------------------------

  /** A weight as f32 on the host. */
  async readWeight(name: string): Promise<Float32Array> {
    return (await readMany(new Recorder(this.gpu), [this.w(name)]))[0] as Float32Array;
  }

  /**
   * Writes the weights as a model directory (config.json, safetensors, tokenizer files) in
   * `dtype` (default: f32 for a trainable model, else the config's torch_dtype). Reads one
   * tensor at a time back from the GPU.
   */
  async save(
    dir: string,
    opts: { dtype?: string; tokenizerFrom?: string; maxShardBytes?: number } = {},
  ): Promise<string[]> {
    const dtype = opts.dtype ?? (this.grads ? "f32" : this.config.torch_dtype);
    const { files } = await saveQwen3(dir, {
      config: this.config,
      dtype,
      tensor: (spec) => this.readWeight(spec.name),
      maxShardBytes: opts.maxShardBytes,
      tokenizerFrom: opts.tokenizerFrom,
    });
    return files;
  }

  /** A parameter gradient on the host. */
  async readGrad(name: string): Promise<Float32Array> {
    const g = this.grads?.get(name);
    if (!g) throw new Error(`No gradient "${name}"`);
    return (await readMany(new Recorder(this.gpu), [g]))[0] as Float32Array;
  }
}

// ---- helpers -----------------------------------------------------------------------------------

/** The first T rows of a plan tensor (plans are allocated for a capacity). */
function rows(t: Tensor, T: number): Tensor {
  return t.shape[0] === T ? t : t.rows(0, T);
}

/** The first elements of `t` seen as a tensor of `shape` (a logits chunk in its buffer). */
function view(t: Tensor, shape: number[]): Tensor {
  return new Tensor(shape, t.dtype, t.buffer, t.byteOffset, t.label);
}

function offsetOf(seqs: number[][], i: number): number {
  let o = 0;
  for (let j = 0; j < i; j++) o += seqs[j].length;
  return o;
}

/**
 * Submits what `rec` holds plus copies of `tensors` into one staging buffer, waits once, and
 * returns their contents (f32 as Float32Array, u32 as Uint32Array; f16/bf16 as f32).
 */
export async function readMany(
  rec: Recorder,
  tensors: Tensor[],
): Promise<(Float32Array | Uint32Array | Int32Array)[]> {
  const gpu = rec.gpu;
  const offsets: number[] = [];
  let size = 0;
  for (const t of tensors) {
    offsets.push(size);
    size += Math.ceil(t.byteSize / 8) * 8;
  }
  const staging = gpu.device.createBuffer({
    size: Math.max(size, 8),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: "readMany",
  });
  const enc = rec.encoder();
  tensors.forEach((t, i) =>
    enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, offsets[i], t.byteSize)
  );
  rec.submit();
  await staging.mapAsync(GPUMapMode.READ);
  const raw = staging.getMappedRange();
  const out = tensors.map((t, i) => {
    const bytes = raw.slice(offsets[i], offsets[i] + t.byteSize);
    return decodeData(t.dtype, bytes, t.numel);
  });
  staging.unmap();
  staging.destroy();
  const { checkErrors } = await import("../engine/device.ts");
  await checkErrors(gpu);
  return out;
}

/** Streams one parameter from the checkpoint into `t` in row blocks of at most ~32 MB. */
async function uploadFromCheckpoint(
  gpu: Gpu,
  t: Tensor,
  spec: WeightSpec,
  ckpt: Checkpoint,
  stored: DType,
): Promise<void> {
  const rowsN = spec.shape.length > 1 ? spec.shape[0] : 1;
  const rowElems = t.numel / rowsN;
  let blockRows = Math.max(1, Math.floor((8 << 20) / rowElems));
  if ((blockRows * rowElems) % 2) blockRows++; // half types: whole u32 words per block
  const width = DTYPE_BYTES[t.dtype];
  const stWidth = DTYPE_BYTES[stored];
  for (let r = 0; r < rowsN; r += blockRows) {
    const n = Math.min(blockRows, rowsN - r) * rowElems;
    let bytes: Uint8Array;
    if (stored === t.dtype) {
      const start = r * rowElems * stWidth;
      bytes = await ckpt.readBytes(spec.name, { start, end: start + n * stWidth });
      if (bytes.byteLength % 4) {
        const padded = new Uint8Array(bytes.byteLength + 2);
        padded.set(bytes);
        bytes = padded;
      }
    } else {
      bytes = encodeData(t.dtype, await ckpt.readF32Range(spec.name, r * rowElems, n), n);
    }
    gpu.device.queue.writeBuffer(
      t.buffer,
      t.byteOffset + r * rowElems * width,
      bytes as Uint8Array<ArrayBuffer>,
    );
  }
}
