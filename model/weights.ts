/**
 * The parameter table (names exactly as transformers' Qwen3ForCausalLM / Qwen2ForCausalLM,
 * shapes from a config, which tensors exist from its architecture record), the checkpoint check
 * (every missing, unexpected or misshapen tensor named), a loader that yields one tensor at a
 * time as f32 (so a caller can stream it to the GPU and drop it), and seeded random init for
 * `star init-model` (normal(0, initializer_range) for projections and embeddings, ones for
 * norms, zeros for biases, as transformers' `_init_weights`).
 * Legend: D hidden_size, H heads, K kv heads, E head_dim, F intermediate_size, V vocab, L layers.
 */
import { archOf, type ModelConfig } from "./config.ts";
import {
  type Checkpoint,
  CheckpointError,
  f32ToBytes,
  numelOf,
  type StDtype,
} from "./safetensors.ts";

export type WeightKind = "embedding" | "linear" | "norm" | "bias";

export interface WeightSpec {
  name: string;
  shape: number[];
  kind: WeightKind;
}

/** Every parameter of a model, in transformers' module (state-dict) order. */
export function weightSpecs(c: ModelConfig): WeightSpec[] {
  const D = c.hidden_size, E = c.head_dim, F = c.intermediate_size;
  const HE = c.num_attention_heads * E, KE = c.num_key_value_heads * E;
  const arch = archOf(c);
  const out: WeightSpec[] = [
    { name: "model.embed_tokens.weight", shape: [c.vocab_size, D], kind: "embedding" }, // (V, D)
  ];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const proj = (name: string, out: number): WeightSpec[] => [
      { name: `${p}self_attn.${name}.weight`, shape: [out, D], kind: "linear" }, // (out, D)
      ...(arch.qkvBias
        ? [{ name: `${p}self_attn.${name}.bias`, shape: [out], kind: "bias" as const }] // (out)
        : []),
    ];
    out.push(
      ...proj("q_proj", HE), // (H*E, D)
      ...proj("k_proj", KE), // (K*E, D)
      ...proj("v_proj", KE), // (K*E, D)
      { name: `${p}self_attn.o_proj.weight`, shape: [D, HE], kind: "linear" }, // (D, H*E)
    );
    if (arch.qkNorm) {
      out.push(
        { name: `${p}self_attn.q_norm.weight`, shape: [E], kind: "norm" }, // (E)
        { name: `${p}self_attn.k_norm.weight`, shape: [E], kind: "norm" }, // (E)
      );
    }
    out.push(
      { name: `${p}mlp.gate_proj.weight`, shape: [F, D], kind: "linear" }, // (F, D)
      { name: `${p}mlp.up_proj.weight`, shape: [F, D], kind: "linear" }, // (F, D)
      { name: `${p}mlp.down_proj.weight`, shape: [D, F], kind: "linear" }, // (D, F)
      { name: `${p}input_layernorm.weight`, shape: [D], kind: "norm" }, // (D)
      { name: `${p}post_attention_layernorm.weight`, shape: [D], kind: "norm" }, // (D)
    );
  }
  out.push({ name: "model.norm.weight", shape: [D], kind: "norm" }); // (D)
  if (!c.tie_word_embeddings) {
    out.push({ name: "lm_head.weight", shape: [c.vocab_size, D], kind: "linear" }); // (V, D)
  }
  return out;
}

/** Tensors a checkpoint may carry that star does not use (transformers ignores them too). */
function ignorable(name: string, c: ModelConfig): boolean {
  return (c.tie_word_embeddings && name === "lm_head.weight") ||
    name.endsWith(".rotary_emb.inv_freq");
}

/**
 * Checks that `ckpt` holds exactly the tensors of `c` with the right shapes, in a dtype star
 * reads. The error names each problem tensor (up to 8 of each kind, then a count).
 */
export function checkCheckpoint(ckpt: Checkpoint, c: ModelConfig): void {
  const specs = weightSpecs(c);
  const want = new Set(specs.map((s) => s.name));
  const problems: string[] = [];
  const listed = (label: string, names: string[]) => {
    if (names.length === 0) return;
    const shown = names.slice(0, 8).join("; ");
    problems.push(`${label} ${shown}${names.length > 8 ? `; and ${names.length - 8} more` : ""}`);
  };
  listed("missing tensor", specs.filter((s) => !ckpt.has(s.name)).map((s) => `"${s.name}"`));
  listed(
    "wrong shape",
    specs.filter((s) => ckpt.has(s.name)).flatMap((s) => {
      const got = ckpt.info(s.name).shape;
      const same = got.length === s.shape.length && got.every((d, i) => d === s.shape[i]);
      return same ? [] : [`"${s.name}" is [${got}], the config needs [${s.shape}]`];
    }),
  );
  listed(
    "unsupported dtype",
    specs.filter((s) => ckpt.has(s.name)).flatMap((s) => {
      const dt = ckpt.info(s.name).dtype;
      return dt === "F32" || dt === "F16" || dt === "BF16" ? [] : [`"${s.name}" is ${dt}`];
    }),
  );
  listed(
    "unexpected tensor",
    [...ckpt.tensors.keys()].filter((n) => !want.has(n) && !ignorable(n, c)).map((n) => `"${n}"`),
  );
  if (problems.length > 0) {
    throw new CheckpointError(
      `The checkpoint in "${ckpt.dir}" does not match its ${c.model_type} config: ${
        problems.join(", ")
      }`,
    );
  }
}

/**
 * Checks the checkpoint, then yields its parameters one at a time, as f32, in table order.
 * Only one tensor's bytes are held at a time (plus whatever the caller keeps).
 */
export async function* loadWeights(
  ckpt: Checkpoint,
  c: ModelConfig,
): AsyncGenerator<{ spec: WeightSpec; data: Float32Array }> {
  checkCheckpoint(ckpt, c);
  for (const spec of weightSpecs(c)) {
    yield { spec, data: await ckpt.readF32(spec.name) };
  }
}

// ---------------------------------------------------------------------------------------------
// seeded random init

/** 32-bit FNV-1a of a string, mixed with a seed: one independent stream per tensor name. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ Math.floor(seed / 2 ** 32), 0x01000193);
  return h >>> 0;
}

/**
 * normal(0, std) draws from sfc32 (a small fast PRNG, four 32-bit words of state) through
 * Marsaglia's polar method (no trigonometry). The values depend only on (seed, name, position),
 * not on chunking or dtype.
 */
class NormalStream {
  private s: Int32Array;
  constructor(seed: number, name: string, private std: number) {
    const h = streamSeed(seed, name);
    this.s = Int32Array.of(0x9e3779b9, h, 0x243f6a88 ^ h, 1);
    const skip = new Float32Array(8);
    this.fill(skip); // warm the state up
  }
  fill(out: Float32Array): void {
    let [a, b, c, d] = this.s;
    const next = () => {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      return t; // a signed 32-bit integer, uniform
    };
    // out.length is even except for the last chunk of a tensor, so pairs never straddle chunks
    for (let i = 0; i < out.length;) {
      const u = next() / 2147483648, v = next() / 2147483648; // [-1, 1)
      const q = u * u + v * v;
      if (q >= 1 || q === 0) continue;
      const m = Math.sqrt((-2 * Math.log(q)) / q) * this.std;
      out[i++] = u * m;
      if (i < out.length) out[i++] = v * m;
    }
    this.s.set([a, b, c, d]);
  }
}

const CHUNK = 1 << 22; // elements per generated chunk (16 MiB in f32): bounds init memory

/** The initial values of one parameter, in chunks of bytes of `dtype` (ones for norms, zeros for biases). */
export function* randomWeightChunks(
  spec: WeightSpec,
  opts: { seed: number; dtype: StDtype; std: number },
): Generator<Uint8Array> {
  const n = numelOf(spec.shape);
  const stream = new NormalStream(opts.seed, spec.name, opts.std);
  for (let off = 0; off < n; off += CHUNK) {
    const part = new Float32Array(Math.min(CHUNK, n - off));
    if (spec.kind === "norm") part.fill(1);
    else if (spec.kind !== "bias") stream.fill(part);
    yield f32ToBytes(part, opts.dtype);
  }
}

/** The initial values of one parameter as f32 (the values `randomWeightChunks` rounds). */
export function randomWeightF32(
  spec: WeightSpec,
  opts: { seed: number; std: number },
): Float32Array {
  const out = new Float32Array(numelOf(spec.shape));
  let off = 0;
  for (const c of randomWeightChunks(spec, { ...opts, dtype: "F32" })) {
    out.set(new Float32Array(c.buffer, c.byteOffset, c.byteLength / 4), off);
    off += c.byteLength / 4;
  }
  return out;
}
