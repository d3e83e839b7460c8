/**
 * A model's parameters on the GPU: streamed from a checkpoint (one ~8 MB block at a time) or
 * written from host values, the vocabulary tables in one buffer bound in row shards, f32
 * gradients when trainable, and the records the layer code reads, resolved once by name from
 * the architecture (weightSpecs): per decoder layer its norms, projections, biases, packed copies
 * and gradients; the embedding, the final norm and the LM head.
 * Frozen models keep linear weights in the checkpoint's dtype (bf16 stays bf16) and, on the
 * texture matmul variant, may pack them once into textures (decoding reads every weight per
 * token). Norms and biases are always f32.
 * Legend: D hidden_size, H heads, K kv heads, E head_dim, F intermediate_size, V vocab_size.
 */
import type { Gpu } from "../engine/device.ts";
import { checkErrors, getGpu } from "../engine/device.ts";
import { readMany } from "../engine/readback.ts";
import { Recorder } from "../engine/recorder.ts";
import {
  createTensor,
  type DType,
  DTYPE_BYTES,
  encodeData,
  releaseTensor,
  type Tensor,
} from "../engine/tensor.ts";
import { matmulVariant, type PackedWeight, packMatmulWeight } from "../engine/ops/matmul.ts";
import { type Arch, archOf, type ModelConfig } from "./config.ts";
import { LmHead } from "./lm_head.ts";
import { Checkpoint } from "./safetensors.ts";
import { checkCheckpoint, type WeightSpec, weightSpecs } from "./weights.ts";

/** How weights are kept: f32 (trained model), or the checkpoint's dtype for linear layers. */
export type WeightPrecision = "f32" | "checkpoint";

/** A Linear layer: y = x·Wᵀ (+ b). */
export interface Linear {
  name: string;
  w: Tensor; // (out, in)
  bias?: Tensor; // (out) f32
  packed?: PackedWeight;
  dW?: Tensor;
  dBias?: Tensor;
}

/** An RMSNorm weight. */
export interface NormWeight {
  name: string;
  w: Tensor; // (dim) f32
  dW?: Tensor;
}

/** Everything one decoder layer reads, by role. */
export interface LayerParams {
  inputNorm: NormWeight; // (D)
  q: Linear; // (H*E, D)
  k: Linear; // (K*E, D)
  v: Linear; // (K*E, D)
  qNorm?: NormWeight; // (E), Qwen3
  kNorm?: NormWeight; // (E), Qwen3
  o: Linear; // (D, H*E)
  postNorm: NormWeight; // (D)
  gate: Linear; // (F, D)
  up: Linear; // (F, D)
  down: Linear; // (D, F)
}

const ST_TO_DTYPE: Record<string, DType> = { F32: "f32", F16: "f16", BF16: "bf16" };

export class GpuWeights {
  readonly tensors = new Map<string, Tensor>();
  readonly grads?: Map<string, Tensor>;
  readonly arch: Arch;
  layers: LayerParams[] = [];
  embed!: NormWeight; // (V, D): an embedding table is resolved like a norm (weight + grad)
  finalNorm!: NormWeight; // (D)
  head!: LmHead;
  #packed = new Map<string, PackedWeight>();

  private constructor(readonly gpu: Gpu, readonly config: ModelConfig, trainable: boolean) {
    this.arch = archOf(config);
    if (trainable) this.grads = new Map();
  }

  /** Loads the checkpoint of `dir` for `config`, streaming one tensor block at a time. */
  static async load(
    dir: string,
    config: ModelConfig,
    opts: { precision?: WeightPrecision; trainable?: boolean } = {},
  ): Promise<GpuWeights> {
    const gpu = await getGpu();
    const ckpt = await Checkpoint.open(dir);
    try {
      checkCheckpoint(ckpt, config);
      const m = new GpuWeights(gpu, config, opts.trainable ?? false);
      const precision = opts.trainable ? "f32" : opts.precision ?? "f32";
      for (const spec of weightSpecs(config)) {
        const stored = ST_TO_DTYPE[ckpt.info(spec.name).dtype];
        const small = spec.kind === "norm" || spec.kind === "bias";
        const t = m.#alloc(spec, small || precision === "f32" ? "f32" : stored);
        await uploadFromCheckpoint(gpu, t, spec, ckpt, stored);
      }
      m.#resolve();
      return m;
    } finally {
      ckpt.close();
    }
  }

  /** Weights from host values (tests; random models), f32 or `dtype` for the large tensors. */
  static async fromValues(
    config: ModelConfig,
    values: (spec: WeightSpec) => ArrayLike<number>,
    opts: { trainable?: boolean; dtype?: DType } = {},
  ): Promise<GpuWeights> {
    const gpu = await getGpu();
    const m = new GpuWeights(gpu, config, opts.trainable ?? false);
    for (const spec of weightSpecs(config)) {
      const small = spec.kind === "norm" || spec.kind === "bias";
      const dtype = small || opts.trainable ? "f32" : opts.dtype ?? "f32";
      const t = m.#alloc(spec, dtype);
      const data = values(spec);
      if (data.length !== t.numel) {
        throw new RangeError(
          `Values of "${spec.name}" have ${data.length} elements, need ${t.numel}`,
        );
      }
      const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
      gpu.device.queue.writeBuffer(
        t.buffer,
        t.byteOffset,
        encodeData(dtype, f32, t.numel) as Uint8Array<ArrayBuffer>,
      );
    }
    m.#resolve();
    return m;
  }

  #alloc(spec: WeightSpec, dtype: DType): Tensor {
    const t = createTensor(this.gpu, { shape: spec.shape, dtype, label: spec.name, chunked: true });
    this.tensors.set(spec.name, t);
    if (this.grads) {
      if (dtype !== "f32") throw new TypeError(`Trainable weight "${spec.name}" must be f32`);
      const g = createTensor(this.gpu, {
        shape: spec.shape,
        dtype: "f32",
        label: `d.${spec.name}`,
        chunked: true,
      });
      this.grads.set(spec.name, g);
    }
    return t;
  }

  /** A weight by name. */
  w(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`The model has no weight "${name}"`);
    return t;
  }

  /** The name of the LM head's table (the embedding when tied). */
  get headName(): string {
    return this.arch.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /** Builds the records the layer code reads (after loading, and after packing). */
  #resolve(): void {
    const norm = (name: string): NormWeight => ({
      name,
      w: this.w(name),
      dW: this.grads?.get(name),
    });
    const lin = (name: string, bias = false): Linear => ({
      name,
      w: this.w(`${name}.weight`),
      bias: bias ? this.w(`${name}.bias`) : undefined,
      packed: this.#packed.get(`${name}.weight`),
      dW: this.grads?.get(`${name}.weight`),
      dBias: bias ? this.grads?.get(`${name}.bias`) : undefined,
    });
    const b = this.arch.qkvBias;
    this.layers = Array.from({ length: this.config.num_hidden_layers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        inputNorm: norm(`${p}input_layernorm.weight`),
        q: lin(`${p}self_attn.q_proj`, b),
        k: lin(`${p}self_attn.k_proj`, b),
        v: lin(`${p}self_attn.v_proj`, b),
        qNorm: this.arch.qkNorm ? norm(`${p}self_attn.q_norm.weight`) : undefined,
        kNorm: this.arch.qkNorm ? norm(`${p}self_attn.k_norm.weight`) : undefined,
        o: lin(`${p}self_attn.o_proj`),
        postNorm: norm(`${p}post_attention_layernorm.weight`),
        gate: lin(`${p}mlp.gate_proj`),
        up: lin(`${p}mlp.up_proj`),
        down: lin(`${p}mlp.down_proj`),
      };
    });
    this.embed = norm("model.embed_tokens.weight");
    this.finalNorm = norm("model.norm.weight");
    this.head ??= new LmHead(this.gpu, this.w(this.headName), this.grads?.get(this.headName));
  }

  /** Trained tensors with their gradients, in weightSpecs order. */
  parameters(): { name: string; w: Tensor; g: Tensor }[] {
    if (!this.grads) return [];
    return [...this.tensors].map(([name, w]) => ({ name, w, g: this.grads!.get(name)! }));
  }

  /** Zeroes every gradient (they accumulate across micro-batches). */
  zeroGrads(rec: Recorder): void {
    for (const g of this.grads?.values() ?? []) rec.clear(g);
  }

  /**
   * For a frozen model on the texture matmul variant (software adapters): packs every linear
   * weight once into the texture layout the matmul reads, instead of before every product
   * (which dominates decoding). Costs 4 bytes per parameter. Returns false when not applicable
   * (a trainable model, the tiled variant) or when host memory is short.
   */
  async pack(): Promise<boolean> {
    if (this.grads || matmulVariant(this.gpu) !== "texture") return false;
    const specs = weightSpecs(this.config).filter((s) =>
      s.kind === "linear" || s.name === this.headName
    );
    const params = specs.reduce((a, s) => a + s.shape[0] * s.shape[1], 0);
    try {
      // the software adapter's textures live in host memory: leave a quarter of it free
      const mem = Deno.systemMemoryInfo();
      if (4 * params > mem.available - mem.total / 4) return false;
    } catch { /* no --allow-sys: pack anyway */ }
    const rec = new Recorder(this.gpu, "weights.pack");
    for (const spec of specs) {
      if (spec.name === this.headName) continue;
      const w = this.w(spec.name);
      this.#packed.set(
        spec.name,
        packMatmulWeight(rec, { w, inDim: w.shape[1], outDim: w.shape[0] }),
      );
      if (this.#packed.size % 16 === 0) rec.submit();
    }
    this.head.pack(rec);
    rec.submit();
    await checkErrors(this.gpu);
    this.#resolve();
    return true;
  }

  /** A weight as f32 on the host. */
  async read(name: string): Promise<Float32Array> {
    return (await readMany(new Recorder(this.gpu), [this.w(name)]))[0] as Float32Array;
  }

  /** A parameter gradient on the host. */
  async readGrad(name: string): Promise<Float32Array> {
    const g = this.grads?.get(name);
    if (!g) throw new Error(`No gradient "${name}"`);
    return (await readMany(new Recorder(this.gpu), [g]))[0] as Float32Array;
  }

  /** Frees every buffer and texture. */
  release(): void {
    for (const pw of this.#packed.values()) pw.texture.destroy();
    this.#packed.clear();
    this.head.release();
    for (const t of this.tensors.values()) releaseTensor(this.gpu, t);
    for (const t of this.grads?.values() ?? []) releaseTensor(this.gpu, t);
    this.tensors.clear();
    this.grads?.clear();
  }
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
