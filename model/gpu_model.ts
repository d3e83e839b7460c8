/**
 * The decoder on the engine, behind a small surface trainers and commands use:
 *   forward(rec, seqs, { train })   the packed forward to the final hidden states xf (T, D),
 *   forwardCached(rec, cache, steps) the same over new tokens of KV-cached sequences,
 *   f.vocab(objectives, spans)      the vocabulary pass (model/lm_head.ts) over chosen rows,
 *   f.backward(pass, objective)     the backward from that pass to every parameter gradient.
 * Packed batches lay sequences end to end (positions restart per sequence, one causal mask
 * each). A forward is recorded into the caller's Recorder; nothing is submitted or read back
 * here except by the conveniences logprobs() and lastLogits(). One plan (model/plan.ts) per
 * mode is reused, so a model runs one forward per submit.
 * Legend: T packed tokens, N rows of a vocabulary pass, D hidden_size, V vocab_size.
 */
import { checkErrors, type Gpu } from "../engine/device.ts";
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import { createTensor, releaseTensor, rowChunks, type Tensor } from "../engine/tensor.ts";
import { attentionRangeTable, type AttentionSeq } from "../engine/ops/attention.ts";
import { attentionDecodeScratchSize } from "../engine/ops/attention_decode.ts";
import { embeddingBackward, embeddingForward } from "../engine/ops/embedding.ts";
import { ropeTable } from "../engine/ops/rope.ts";
import { type Arch, type ModelConfig, readModelConfig } from "./config.ts";
import { GpuWeights, type WeightPrecision } from "./gpu_weights.ts";
import { KvCache } from "./kv_cache.ts";
import { type Dims, layerBackward, layerForward, norm, normBack, rows } from "./layer.ts";
import {
  type HeadChunk,
  type LmHead,
  vocabBackward,
  vocabForward,
  type VocabObjective,
} from "./lm_head.ts";
import { CollectLogits, IGNORE_INDEX, SampleTokens, TokenLogprobs, TopK } from "./objectives.ts";
import { type SampleOptions, sampleResults } from "../engine/ops/sample.ts";
import { makePlan, type Plan, releasePlan } from "./plan.ts";
import { saveModel } from "./save.ts";
import type { WeightSpec } from "./weights.ts";

/** Limit overrides (tests run several vocabulary chunks and prefill pieces on tiny models). */
export interface ModelLimits {
  /** Most vocabulary ids per LM-head chunk (default: what one binding holds). */
  maxChunkRows?: number;
  /** Most tokens one forward holds (default: what one binding holds per activation). */
  maxTokens?: number;
}

export interface GpuModelOptions {
  /** "f32" (default; always when trainable) or "checkpoint" (bf16/f16 stay so; frozen). */
  precision?: WeightPrecision;
  /** Allocate f32 gradients for every parameter. */
  trainable?: boolean;
  limits?: ModelLimits;
}

/** Rows [start, start + len) of a packed batch, taken in order into a vocabulary pass. */
export interface RowSpan {
  start: number;
  len: number;
}

/** A recorded vocabulary pass: its N compacted rows and the chunks it walked. */
export interface HeadPass {
  rows: number;
  x: Tensor; // (N, D)
  spans: RowSpan[] | null; // null: all T rows in order (no copy)
  chunks: HeadChunk[];
}

/** The plans of a model: training forwards, inference forwards, KV-cached forwards. */
export type PlanKind = "train" | "infer" | "cached";

/** One sequence's new tokens in a cached forward. */
export interface CachedStep {
  slot: number;
  ids: number[];
}

export class GpuModel {
  readonly arch: Arch;
  #plans = new Map<PlanKind, Plan>();
  #rope?: { positions: number; table: Tensor };

  private constructor(readonly weights: GpuWeights, readonly limits: ModelLimits) {
    this.arch = weights.arch;
  }

  get gpu(): Gpu {
    return this.weights.gpu;
  }

  get config(): ModelConfig {
    return this.weights.config;
  }

  /** Loads config.json and the checkpoint of `dir`. */
  static async load(dir: string, opts: GpuModelOptions = {}): Promise<GpuModel> {
    const config = await readModelConfig(dir);
    const w = await GpuWeights.load(dir, config, opts);
    return new GpuModel(w, opts.limits ?? {});
  }

  /** A model from host values (tests, random models). */
  static async fromValues(
    config: ModelConfig,
    values: (spec: WeightSpec) => ArrayLike<number>,
    opts: { trainable?: boolean; dtype?: "f32" | "f16" | "bf16"; limits?: ModelLimits } = {},
  ): Promise<GpuModel> {
    return new GpuModel(await GpuWeights.fromValues(config, values, opts), opts.limits ?? {});
  }

  #dims(): Dims {
    const c = this.config;
    return {
      D: c.hidden_size,
      H: c.num_attention_heads,
      K: c.num_key_value_heads,
      E: c.head_dim,
      F: c.intermediate_size,
      eps: c.rms_norm_eps,
    };
  }

  /**
   * The most tokens one forward may hold: every activation tensor (T rows of up to F floats)
   * must fit one storage binding. Longer inputs are split by the caller.
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
    return Math.min(fit, this.limits.maxTokens ?? Infinity);
  }

  /** The most slots of `maxLen` tokens one cache tensor (a single binding) can hold. */
  maxCacheSlots(maxLen: number): number {
    const KE = this.config.num_key_value_heads * this.config.head_dim;
    return Math.floor(this.gpu.limits.maxStorageBufferBindingSize / (maxLen * KE * 4));
  }

  /** A KV cache of `slots` sequences of up to `maxLen` tokens each. */
  newCache(slots: number, maxLen: number): KvCache {
    const c = this.config;
    return new KvCache(this.gpu, {
      layers: c.num_hidden_layers,
      width: c.num_key_value_heads * c.head_dim,
      slots,
      maxLen,
    });
  }

  /**
   * Allocates the plans a run will need up front, for at most this many tokens per forward of
   * each kind. Besides saving re-plans, this fixes the vocabulary chunking (its column count
   * follows the plan's capacity), so a run's rounding does not depend on the order its batches
   * came in: a resumed run computes exactly what an uninterrupted one does.
   */
  reserve(tokens: Partial<Record<PlanKind, number>>): void {
    for (const [kind, n] of Object.entries(tokens) as [PlanKind, number][]) {
      if (n > 0) this.#plan(Math.min(n, this.maxTokens()), kind, true);
    }
  }

  #plan(tokens: number, kind: PlanKind, exact = false): Plan {
    const old = this.#plans.get(kind);
    if (old && old.cap >= tokens) return old;
    if (old) releasePlan(this.gpu, old);
    // grow geometrically so a run of slowly growing batches re-plans only a few times
    const T = exact ? tokens : Math.max(tokens, old ? Math.min(2 * old.cap, tokens * 2) : tokens);
    const p = makePlan(this.gpu, {
      config: this.config,
      arch: this.arch,
      T,
      train: kind === "train",
      maxChunkRows: this.limits.maxChunkRows ?? Infinity,
    });
    this.#plans.set(kind, p);
    return p;
  }

  /** The cos/sin table covering positions [0, n). */
  #ropeTable(n: number): Tensor {
    if (this.#rope && this.#rope.positions >= n) return this.#rope.table;
    if (this.#rope) releaseTensor(this.gpu, this.#rope.table);
    const positions = Math.max(n, 2 * (this.#rope?.positions ?? 0), 256);
    const { rope_theta: theta, head_dim: headDim } = this.config;
    const table = createTensor(this.gpu, {
      shape: [positions, headDim / 2, 2],
      dtype: "f32",
      label: "rope.table",
      data: ropeTable({ theta, headDim, positions }),
    });
    this.#rope = { positions, table };
    return table;
  }

  #writeTokens(p: Plan, ids: number[], positions: number[]): void {
    const V = this.config.vocab_size;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new RangeError(`Token id ${id} is outside the vocabulary (size ${V})`);
      }
    }
    const q = this.gpu.device.queue;
    q.writeBuffer(p.ids.buffer, p.ids.byteOffset, Uint32Array.from(ids));
    q.writeBuffer(p.positions.buffer, p.positions.byteOffset, Uint32Array.from(positions));
  }

  /** Records embedding → layers → model.norm over T tokens (ids and positions written). */
  #recordBody(
    rec: Recorder,
    p: Plan,
    a: {
      T: number;
      ranges: Tensor;
      keyRows: number;
      maxSeqLen: number;
      kv: (l: number, acts: Plan["layers"][0]) => { k: Tensor; v: Tensor };
      decodeScratch?: Tensor;
    },
  ): void {
    const { T } = a, d = this.#dims(), w = this.weights, L = this.config.num_hidden_layers;
    const rope = { positions: p.positions, table: this.#ropeTable(1) };
    embeddingForward(rec, {
      out: rows(p.layers[0].x, T),
      ids: p.ids,
      table: rowChunks(this.gpu, w.embed.w),
      tokens: T,
      dim: d.D,
    });
    for (let l = 0; l < L; l++) {
      const acts = p.train ? p.layers[l] : p.layers[0];
      const out = p.train ? (l + 1 < L ? p.layers[l + 1].x : p.xL) : acts.x;
      layerForward(rec, {
        p: w.layers[l],
        a: acts,
        T,
        d,
        rope,
        ranges: a.ranges,
        keyRows: a.keyRows,
        maxSeqLen: a.maxSeqLen,
        decodeScratch: a.decodeScratch,
        out,
        tmp: p.tmpD,
        kv: (x) => a.kv(l, x),
      });
    }
    norm(rec, { w: w.finalNorm, y: p.xf, rstd: p.rstdF, x: p.xL, rows: T, dim: d.D, eps: d.eps });
  }

  #ranges(seqs: AttentionSeq[], queryRows: number, keyRows: number): Tensor {
    return createTensor(this.gpu, {
      shape: [queryRows + keyRows, 2],
      dtype: "u32",
      label: "attention.ranges",
      data: attentionRangeTable(seqs, { queryRows, keyRows }),
    });
  }

  /**
   * Records the forward of packed `seqs` to xf. With `train` (a trainable model) every layer's
   * activations are kept for Forward.backward(). Release the Forward after the submit.
   */
  forward(rec: Recorder, seqs: number[][], opts: { train?: boolean } = {}): Forward {
    const train = opts.train ?? false;
    if (train && !this.weights.grads) throw new Error("A training forward needs a trainable model");
    const T = seqs.reduce((s, q) => s + q.length, 0);
    if (T > this.maxTokens()) {
      throw new RangeError(`${T} tokens exceed the ${this.maxTokens()} one forward can hold here`);
    }
    const p = this.#plan(T, train ? "train" : "infer");
    const starts: number[] = [];
    let off = 0;
    for (const s of seqs) {
      starts.push(off);
      off += s.length;
    }
    this.#writeTokens(p, seqs.flat(), seqs.flatMap((s) => s.map((_, t) => t)));
    this.#ropeTable(Math.max(1, ...seqs.map((s) => s.length)));
    const ranges = this.#ranges(
      seqs.map((s, i) => ({ qStart: starts[i], qLen: s.length, kStart: starts[i] })),
      T,
      T,
    );
    const maxSeqLen = Math.max(...seqs.map((s) => s.length));
    this.#recordBody(rec, p, {
      T,
      ranges,
      keyRows: T,
      maxSeqLen,
      kv: (_l, a) => ({ k: a.kr, v: a.v }),
    });
    return this.#handle(rec, p, T, { ranges, maxSeqLen }, train);
  }

  /**
   * Records the new tokens of some cached sequences (a prefill: whole prompts or pieces; a
   * decode step: one token each): their keys and values go into the cache (its lengths advance
   * now, in recording order) and attention reads each slot's rows. Row i of the Forward is the
   * i-th new token in step order.
   */
  forwardCached(rec: Recorder, cache: KvCache, steps: CachedStep[]): Forward {
    const T = steps.reduce((s, q) => s + q.ids.length, 0);
    const p = this.#plan(T, "cached");
    const ids: number[] = [], pos: number[] = [];
    const seqs: (AttentionSeq & { slot: number })[] = [];
    for (const st of steps) {
      const past = cache.lengths[st.slot];
      if (st.ids.length === 0) throw new RangeError("A cached step needs at least one token");
      if (past + st.ids.length > cache.maxLen) {
        throw new RangeError(
          `Slot ${st.slot} would hold ${past + st.ids.length} tokens, the cache ${cache.maxLen}`,
        );
      }
      seqs.push({
        qStart: ids.length,
        qLen: st.ids.length,
        kStart: cache.rowOf(st.slot),
        past,
        slot: st.slot,
      });
      st.ids.forEach((id, i) => {
        ids.push(id);
        pos.push(past + i);
      });
    }
    this.#writeTokens(p, ids, pos);
    this.#ropeTable(Math.max(...pos) + 1);
    const keyRows = cache.slots * cache.maxLen;
    const ranges = this.#ranges(seqs, T, keyRows);
    const maxSeqLen = Math.max(...seqs.map((s) => s.past! + s.qLen));
    // a decode step (one new token per sequence) splits each row's keys over parallel parts
    const c = this.config;
    const decodeScratch = seqs.every((s) => s.qLen === 1)
      ? createTensor(this.gpu, {
        shape: [
          attentionDecodeScratchSize(this.gpu, {
            queryRows: T,
            keyRows,
            maxKeys: maxSeqLen,
            heads: c.num_attention_heads,
            kvHeads: c.num_key_value_heads,
            headDim: c.head_dim,
          }),
        ],
        dtype: "f32",
        label: "attention.decode_scratch",
      })
      : undefined;
    this.#recordBody(rec, p, {
      T,
      ranges,
      keyRows,
      maxSeqLen,
      decodeScratch,
      kv: (l, a) => {
        for (const s of seqs) {
          const dst = s.kStart + s.past!;
          rec.copy(a.kr.rows(s.qStart, s.qLen), cache.k[l].rows(dst, s.qLen));
          rec.copy(a.v.rows(s.qStart, s.qLen), cache.v[l].rows(dst, s.qLen));
        }
        return { k: cache.k[l], v: cache.v[l] };
      },
    });
    for (const s of seqs) cache.lengths[s.slot] += s.qLen;
    return this.#handle(rec, p, T, { ranges, maxSeqLen, decodeScratch }, false);
  }

  #handle(
    rec: Recorder,
    plan: Plan,
    T: number,
    attn: { ranges: Tensor; maxSeqLen: number; decodeScratch?: Tensor },
    train: boolean,
  ): Forward {
    const { ranges, decodeScratch } = attn;
    return new Forward({
      gpu: this.gpu,
      rec,
      plan,
      T,
      train,
      head: this.weights.head,
      bodyBackward: () => this.#recordBodyBackward(rec, plan, T, attn),
      release: () => {
        releaseTensor(this.gpu, ranges);
        if (decodeScratch) releaseTensor(this.gpu, decodeScratch);
      },
    });
  }

  /** The backward after dL/dxf (T rows) is in p.grads.dXf, to every parameter gradient. */
  #recordBodyBackward(
    rec: Recorder,
    p: Plan,
    T: number,
    attn: { ranges: Tensor; maxSeqLen: number },
  ): void {
    const d = this.#dims(), w = this.weights, g = p.grads!;
    const rope = { positions: p.positions, table: this.#ropeTable(1) };
    normBack(rec, {
      w: w.finalNorm,
      dx: g.dRes,
      dy: g.dXf,
      x: p.xL,
      rstd: p.rstdF,
      rows: T,
      dim: d.D,
      eps: d.eps,
    });
    for (let l = this.config.num_hidden_layers - 1; l >= 0; l--) {
      const a = p.layers[l];
      layerBackward(rec, { p: w.layers[l], a, T, d, rope, ...attn, keyRows: T, g });
    }
    embeddingBackward(rec, {
      dTable: rowChunks(this.gpu, w.embed.dW!),
      dOut: g.dRes,
      ids: p.ids,
      links: g.links,
      tokens: T,
      dim: d.D,
    });
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
    const rec = new Recorder(this.gpu, "model.logprobs");
    const f = this.forward(rec, seqs);
    const lp = new TokenLogprobs(this.gpu, T);
    const k = opts.topK ?? 0;
    const top = k > 0 ? new TopK(this.gpu, T, k) : undefined;
    try {
      lp.write(seqs.flatMap((s) => s.map((_, t) => (t + 1 < s.length ? s[t + 1] : IGNORE_INDEX))));
      f.vocab(top ? [lp, top] : [lp]);
      const [l, tv, ti] = await readMany(rec, [
        lp.logprobs.rows(0, T),
        ...(top ? [top.vals.rows(0, T), top.ids.rows(0, T)] : []),
      ]);
      let off = 0;
      return seqs.map((s) => {
        const n = Math.max(0, s.length - 1);
        const r: { logprobs: number[]; topkIds?: number[][]; topkLogprobs?: number[][] } = {
          logprobs: Array.from(l.subarray(off, off + n)),
        };
        if (top) {
          r.topkIds = [];
          r.topkLogprobs = [];
          for (let t = 0; t < n; t++) {
            const b = (off + t) * k;
            r.topkIds.push(Array.from(ti.subarray(b, b + k)));
            r.topkLogprobs.push(Array.from(tv.subarray(b, b + k)));
          }
        }
        off += s.length;
        return r;
      });
    } finally {
      f.release();
      lp.release();
      top?.release();
    }
  }

  /**
   * Runs cached steps and returns the full-vocabulary logits of each step's last token
   * (float32, length V). One submit and one readback.
   */
  async lastLogits(cache: KvCache, steps: CachedStep[]): Promise<Float32Array[]> {
    const rec = new Recorder(this.gpu, "model.cached");
    const f = this.forwardCached(rec, cache, steps);
    const collect = new CollectLogits(this.gpu);
    try {
      let off = 0;
      const spans = steps.map((s) => ({ start: (off += s.ids.length) - 1, len: 1 }));
      f.vocab([collect], spans);
      const parts = await readMany(rec, collect.parts.map((p) => p.t));
      return collect.join(parts, steps.length, this.config.vocab_size);
    } finally {
      f.release();
      collect.release();
    }
  }

  /** A device sampler for up to `rows` rows a step, drawing with `options` (release() it). */
  sampler(rows: number, options: SampleOptions): SampleTokens {
    return new SampleTokens(this.gpu, rows, this.config.vocab_size, options);
  }

  /**
   * Records the new tokens of cached sequences (as lastLogits does) and draws the token after
   * each step's last one on the device, row i keyed by (rowInfo[2i], rowInfo[2i+1]) = (stream,
   * step); reads back only (id, log-prob, exact) per step. One submit.
   */
  async sampleNext(
    cache: KvCache,
    steps: CachedStep[],
    sampler: SampleTokens,
    rowInfo: Uint32Array,
  ): Promise<{ ids: Uint32Array; logprobs: Float32Array; exact: Uint8Array }> {
    const rec = new Recorder(this.gpu, "model.sample");
    const f = this.forwardCached(rec, cache, steps);
    try {
      sampler.write(rowInfo);
      let off = 0;
      const spans = steps.map((s) => ({ start: (off += s.ids.length) - 1, len: 1 }));
      f.vocab([sampler], spans);
      const [words] = await readMany(rec, [sampler.out.rows(0, 3 * steps.length)]);
      return sampleResults(words as Uint32Array, steps.length);
    } finally {
      f.release();
    }
  }

  /** Trained tensors with their gradients. */
  parameters(): { name: string; w: Tensor; g: Tensor }[] {
    return this.weights.parameters();
  }

  zeroGrads(rec: Recorder): void {
    this.weights.zeroGrads(rec);
  }

  /** Packs frozen linear weights for the texture matmul (see GpuWeights.pack). */
  packWeights(): Promise<boolean> {
    return this.weights.pack();
  }

  readWeight(name: string): Promise<Float32Array> {
    return this.weights.read(name);
  }

  readGrad(name: string): Promise<Float32Array> {
    return this.weights.readGrad(name);
  }

  /**
   * Writes the weights as a model directory (config.json, safetensors, tokenizer files copied
   * from `tokenizerFrom`) in `dtype` (default: f32 for a trainable model, else the config's).
   */
  async save(
    dir: string,
    opts: { dtype?: string; tokenizerFrom?: string; maxShardBytes?: number } = {},
  ): Promise<string[]> {
    const dtype = opts.dtype ?? (this.weights.grads ? "f32" : this.config.torch_dtype);
    const { files } = await saveModel(dir, {
      config: this.config,
      dtype,
      tensor: (spec) => this.readWeight(spec.name),
      maxShardBytes: opts.maxShardBytes,
      tokenizerFrom: opts.tokenizerFrom,
    });
    return files;
  }

  /** Frees every GPU buffer of the model (weights, gradients, plans). */
  release(): void {
    for (const p of this.#plans.values()) releasePlan(this.gpu, p);
    this.#plans.clear();
    if (this.#rope) releaseTensor(this.gpu, this.#rope.table);
    this.#rope = undefined;
    this.weights.release();
    this.gpu.pool.trim();
  }

  /** Waits for the queue and reports GPU errors (after work submitted without a readback). */
  checkErrors(): Promise<void> {
    return checkErrors(this.gpu);
  }
}

/** A recorded forward: its T rows of final hidden states, and what can follow from them. */
export class Forward {
  readonly T: number;
  readonly train: boolean;
  readonly #o: {
    gpu: Gpu;
    rec: Recorder;
    plan: Plan;
    head: LmHead;
    bodyBackward: () => void;
    release: () => void;
  };

  constructor(
    o: {
      gpu: Gpu;
      rec: Recorder;
      plan: Plan;
      T: number;
      train: boolean;
      head: LmHead;
      bodyBackward: () => void;
      release: () => void;
    },
  ) {
    this.T = o.T;
    this.train = o.train;
    this.#o = o;
  }

  /** The final hidden states (T, D). */
  get xf(): Tensor {
    return rows(this.#o.plan.xf, this.T);
  }

  /**
   * Records the vocabulary pass over the rows at `spans` (in order, compacted), or over all T
   * rows: objectives see N = Σ len rows.
   */
  vocab(objectives: VocabObjective[], spans?: RowSpan[]): HeadPass {
    const { rec, plan } = this.#o;
    const all = !spans || (spans.length === 1 && spans[0].start === 0 && spans[0].len === this.T);
    let x: Tensor, N: number;
    if (all) {
      [x, N] = [this.xf, this.T];
    } else {
      N = spans!.reduce((a, s) => a + s.len, 0);
      let dst = 0;
      for (const s of spans!) {
        if (s.len > 0) rec.copy(plan.xf.rows(s.start, s.len), plan.headX.rows(dst, s.len));
        dst += s.len;
      }
      x = rows(plan.headX, N);
    }
    const chunks = N > 0
      ? vocabForward(rec, this.#o.head, { x, rows: N, scratch: plan.vocab, objectives })
      : [];
    return { rows: N, x, spans: all ? null : spans!, chunks };
  }

  /**
   * Records the backward of `pass` under `objective` through the LM head and every layer;
   * parameter gradients ACCUMULATE (zero them before a step).
   */
  backward(pass: HeadPass, objective: VocabObjective): void {
    if (!this.train) throw new Error("backward() needs a forward recorded with { train: true }");
    const { rec, plan: p } = this.#o, g = p.grads!;
    const dXf = rows(g.dXf, this.T);
    if (pass.rows > 0) {
      const dx = pass.spans ? rows(p.dHeadX, pass.rows) : dXf;
      vocabBackward(rec, this.#o.head, {
        x: pass.x,
        dx,
        rows: pass.rows,
        scratch: p.vocab,
        objective,
        chunks: pass.chunks,
      });
      if (pass.spans) {
        rec.clear(dXf);
        let src = 0;
        for (const s of pass.spans) {
          if (s.len > 0) rec.copy(p.dHeadX.rows(src, s.len), g.dXf.rows(s.start, s.len));
          src += s.len;
        }
      }
    } else {
      rec.clear(dXf);
    }
    this.#o.bodyBackward();
  }

  /** Frees what the forward allocated (call after the submit). */
  release(): void {
    this.#o.release();
  }
}
