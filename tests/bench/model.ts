/**
 * Whole-model paths, where RL and serving spend their time, at the tiny preset and the Qwen3
 * 0.6B shape (random weights in the checkpoint dtype, written once to
 * $STAR_BENCH_MODELS or /tmp/star-bench-models):
 *   decode B C    one decode step of B sequences with C cached tokens each, tokens drawn on
 *                 the device (GpuModel.sampleNext); rate: model FLOPs vs the matmul baseline,
 *                 and for B = 1 also "decode_bw": weight bytes read per step vs the GEMV's
 *                 (f32 on the software adapter, whose decode reads packed f32 textures);
 *   prefill 512   one 512-token prompt into the KV cache (logits of its last token);
 *   train_ckd 512 one CKD optimizer step on a 512-token row (256 target tokens, the teacher's
 *                 top-100 given, as from the cache): forward, backward, AdamW.
 * Model FLOPs count the linear layers (2 per weight per token, 6 when training), the LM head on
 * the rows that need it, and attention (QKᵀ and PV; causal halves the prefill's). items = tokens.
 * Shape: [layers, hidden, B, C] (decode) or [layers, hidden, T].
 */
import { join } from "node:path";
import { getGpu, type Gpu } from "../../engine/mod.ts";
import { type ModelConfig, presetConfig } from "../../model/config.ts";
import { GpuModel } from "../../model/gpu_model.ts";
import { initModel } from "../../cli/init_model.ts";
import { CkdGpuBackend } from "../../train/ckd_gpu.ts";
import type { BenchCase } from "./_types.ts";

const ROOT = Deno.env.get("STAR_BENCH_MODELS") ?? "/tmp/star-bench-models";
const CONTEXT = 128;

/** The preset's random checkpoint, written on first use. */
async function checkpoint(preset: string): Promise<string> {
  const dir = join(ROOT, preset);
  try {
    await Deno.stat(join(dir, "config.json"));
  } catch {
    await initModel({ config: presetConfig(preset), output: dir, seed: 0 });
  }
  return dir;
}

/** Weights of the linear layers (attention and MLP), without embeddings and LM head. */
function linearParams(c: ModelConfig): number {
  const D = c.hidden_size, E = c.head_dim;
  const attn = 2 * D * c.num_attention_heads * E + 2 * D * c.num_key_value_heads * E;
  return c.num_hidden_layers * (attn + 3 * D * c.intermediate_size);
}

/** FLOPs of the attention scores and weighted sums of `queries` rows over `keys` keys each. */
function attentionFlops(c: ModelConfig, queries: number, keys: number): number {
  return 4 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * queries * keys;
}

/**
 * Bytes a decode step reads per weight: the software adapter decodes from f32 weights packed
 * once into textures; elsewhere the checkpoint's dtype stays on the device.
 */
const SOFTWARE = (await getGpu()).isFallback;
const bytesPer = (c: ModelConfig) =>
  !SOFTWARE && /^(bfloat16|float16|bf16|f16)$/i.test(c.torch_dtype) ? 2 : 4;

function decodeCase(preset: string, B: number, bandwidth = false, context = CONTEXT): BenchCase {
  const c = presetConfig(preset);
  const lm = 2 * c.vocab_size * c.hidden_size;
  const flops = B * (2 * linearParams(c) + lm) + attentionFlops(c, B, context + 1);
  const weightBytes = bytesPer(c) * (linearParams(c) + c.vocab_size * c.hidden_size);
  return {
    name: bandwidth ? `decode_bw_${preset}` : `decode_${preset}`,
    shape: [c.num_hidden_layers, c.hidden_size, B, context],
    ...(bandwidth ? { bytes: weightBytes, relativeTo: "gemv" as const } : {
      flops,
      relativeTo: "matmul" as const,
    }),
    async setup(_gpu: Gpu) {
      const model = await GpuModel.load(await checkpoint(preset), { precision: "checkpoint" });
      await model.packWeights();
      const cache = model.newCache(B, context + 8);
      const sampler = model.sampler(B, { temperature: 1 });
      const steps = Array.from({ length: B }, (_, slot) => ({ slot, ids: [slot + 1] }));
      const info = new Uint32Array(2 * B).map((_, i) => i);
      return {
        perSubmit: 1,
        async record() {
          cache.lengths.fill(context); // the keys' values do not change the work
          await model.sampleNext(cache, steps, sampler, info);
        },
        dispose() {
          sampler.release();
          cache.release();
          model.release();
        },
      };
    },
  };
}

function prefillCase(preset: string, T: number): BenchCase {
  const c = presetConfig(preset);
  const flops = T * 2 * linearParams(c) + 2 * c.vocab_size * c.hidden_size +
    attentionFlops(c, T, T) / 2;
  return {
    name: `prefill_${preset}`,
    shape: [c.num_hidden_layers, c.hidden_size, T],
    flops,
    relativeTo: "matmul",
    async setup() {
      const model = await GpuModel.load(await checkpoint(preset), { precision: "checkpoint" });
      await model.packWeights();
      const cache = model.newCache(1, T + 8);
      const ids = Array.from({ length: T }, (_, i) => (i * 7919) % c.vocab_size);
      return {
        perSubmit: 1,
        async record() {
          cache.lengths[0] = 0;
          await model.lastLogits(cache, [{ slot: 0, ids }]);
        },
        dispose() {
          cache.release();
          model.release();
        },
      };
    },
  };
}

function trainCase(preset: string, T: number): BenchCase {
  const c = presetConfig(preset);
  const P = T / 2, k = 100;
  const flops = 3 * (T * 2 * linearParams(c) + P * 2 * c.vocab_size * c.hidden_size +
    attentionFlops(c, T, T) / 2);
  return {
    name: `train_ckd_${preset}`,
    shape: [c.num_hidden_layers, c.hidden_size, T],
    flops,
    relativeTo: "matmul",
    async setup() {
      const backend = await CkdGpuBackend.load({
        student: await checkpoint(preset),
        ckd: { klType: "fkl", l1Coef: 10, topm: 100, kdRatio: 1, topk: k },
        adam: { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxNorm: 1 },
        tokens: T,
      });
      const ids = Array.from({ length: T }, (_, i) => (i * 7919) % c.vocab_size);
      const teacher = {
        ids: Uint32Array.from({ length: P * k }, (_, i) => (i * 104729) % c.vocab_size),
        logprobs: Float32Array.from({ length: P * k }, (_, i) => -1 - (i % k) * 0.1),
      };
      let step = 0;
      return {
        perSubmit: 1,
        async record() {
          await backend.microStep([{ ids, promptLength: T - P, teacher }], { microBatches: 1 });
          await backend.stepMetrics();
          await backend.applyUpdate({ lr: 1e-6, clipScale: 1, adamStep: ++step });
        },
        dispose() {
          backend.release();
        },
      };
    },
  };
}

export const cases: BenchCase[] = [
  ...[1, 8, 64].map((B) => decodeCase("tiny", B)),
  decodeCase("tiny", 8, false, 4096),
  prefillCase("tiny", 512),
  trainCase("tiny", 512),
  decodeCase("qwen3-0.6b", 1, true),
  ...[1, 8, 64].map((B) => decodeCase("qwen3-0.6b", B)),
  decodeCase("qwen3-0.6b", 8, false, 2048),
  prefillCase("qwen3-0.6b", 512),
  trainCase("qwen3-0.6b", 512),
];
