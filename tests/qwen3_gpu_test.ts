/**
 * The Qwen3 decoder on the engine against the float64 CPU model (model/ref.ts), llm.c
 * style: log-probs, top-k, the loss and EVERY parameter gradient checked by name, on seeded
 * random models (a toy vocabulary, and the `tiny` preset with the real vocabulary); KV-cached
 * greedy decoding against recomputing the whole sequence and against the CPU model.
 */
import { hasGpu } from "../engine/device.ts";
import { type ModelConfig, parseModelConfig, presetConfig } from "../model/config.ts";
import { GpuModel } from "../model/gpu_model.ts";
import {
  greedyGenerateRef,
  logProbsRef,
  lossAndGradRef,
  randomRefModel,
  type RefModel,
} from "../model/ref.ts";
import { generate } from "../model/generate.ts";
import { sampleSeed } from "../model/sampling.ts";
import { generateRecompute, lossAndGrad } from "./_model.ts";
import { generateRef, loadRefModel } from "../model/ref.ts";
import { initModel } from "../cli/init_model.ts";
import { assertEquals } from "./assert.ts";

const ignore = !(await hasGpu());

const TOY: ModelConfig = parseModelConfig({
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  vocab_size: 50,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 128,
  tie_word_embeddings: true,
  initializer_range: 0.5,
  torch_dtype: "float32",
});

/** The reference model's values on the GPU; `chunkRows` caps the vocabulary chunks. */
function onGpu(ref: RefModel, trainable = false, chunkRows?: number): Promise<GpuModel> {
  return GpuModel.fromValues(ref.config, (s) => ref.params[s.name], {
    trainable,
    limits: { maxChunkRows: chunkRows },
  });
}

/** max |a - b| over max(|b|) (scale-relative), and the first index beyond `tol`. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0, s = 1e-12;
  for (let i = 0; i < b.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return m / s;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const SEQS = [[3, 17, 42, 8, 8, 1, 0, 49, 23], [5], [7, 7, 30, 2, 11, 44], [12, 9]];

Deno.test({
  name: "GpuModel.logprobs() matches the float64 model on packed sequences with top-5 (toy vocab)",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 1, { normJitter: 0.2 });
    const m = await onGpu(ref);
    try {
      const got = await m.logprobs(SEQS, { topK: 5 });
      const want = logProbsRef(ref, SEQS, { topK: 5 });
      for (let s = 0; s < SEQS.length; s++) {
        assertEquals(got[s].logprobs.length, want[s].logprobs.length);
        const err = maxAbs(got[s].logprobs, want[s].logprobs);
        if (err > 2e-4) throw new Error(`sequence ${s}: log-prob error ${err}`);
        assertEquals(got[s].topkIds, want[s].topkIds);
        const terr = maxAbs(got[s].topkLogprobs!.flat(), want[s].topkLogprobs!.flat());
        if (terr > 2e-4) throw new Error(`sequence ${s}: top-k log-prob error ${terr}`);
      }
    } finally {
      m.release();
    }
  },
});

async function checkGrads(
  ref: RefModel,
  seqs: number[][],
  labels?: number[][],
  chunkRows?: number,
  onlyScoredRows = false,
) {
  const m = await onGpu(ref, true, chunkRows);
  try {
    const want = lossAndGradRef(ref, seqs, labels);
    const got = await lossAndGrad(m, seqs, { labels, onlyScoredRows });
    assertEquals(got.count, want.count);
    if (Math.abs(got.loss - want.loss) > 2e-5 * Math.max(1, Math.abs(want.loss))) {
      throw new Error(`loss ${got.loss} vs ${want.loss}`);
    }
    const bad: string[] = [];
    for (const name of Object.keys(ref.params)) {
      const g = await m.readGrad(name);
      const e = relErr(g, want.grads[name]);
      if (!(e < 2e-4)) bad.push(`${name}: relative error ${e}`);
    }
    if (bad.length) throw new Error(`gradients differ:\n${bad.join("\n")}`);
    assertEquals(m.parameters().length, Object.keys(ref.params).length);
  } finally {
    m.release();
  }
}

Deno.test({
  name: "GpuModel forward/vocab/backward give the float64 loss and every gradient (toy, tied)",
  ignore,
  fn: async () => {
    await checkGrads(randomRefModel(TOY, 2, { normJitter: 0.3 }), SEQS);
  },
});

Deno.test({
  name: "GpuModel with masked labels and an untied LM head matches every gradient by name",
  ignore,
  fn: async () => {
    const cfg = { ...TOY, tie_word_embeddings: false, num_hidden_layers: 3 };
    const labels = SEQS.map((s) => s.map((id, t) => (t < 2 ? -100 : id)));
    await checkGrads(randomRefModel(cfg, 3, { normJitter: 0.3 }), SEQS, labels);
    // the vocabulary pass over the scored rows only (compacted spans) gives the same
    await checkGrads(randomRefModel(cfg, 3, { normJitter: 0.3 }), SEQS, labels, 12, true);
  },
});

Deno.test({
  name: "GpuModel.logprobs() matches the float64 model on the tiny preset (real vocabulary)",
  ignore,
  fn: async () => {
    const ref = randomRefModel(presetConfig("tiny"), 0);
    const m = await onGpu(ref);
    try {
      const seqs = [[151644, 872, 198, 9707, 11, 1879], [151643, 100, 2000, 151645]];
      const got = await m.logprobs(seqs, { topK: 3 });
      const want = logProbsRef(ref, seqs, { topK: 3 });
      for (let s = 0; s < seqs.length; s++) {
        const err = maxAbs(got[s].logprobs, want[s].logprobs);
        if (err > 2e-4) throw new Error(`sequence ${s}: log-prob error ${err}`);
        assertEquals(got[s].topkIds, want[s].topkIds);
      }
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name: "generate() greedy with the KV cache equals recomputation and the float64 model",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 4, { normJitter: 0.2 });
    const m = await onGpu(ref);
    try {
      const prompts = [[3, 17, 42], [5], [7, 7, 30, 2, 11, 44, 9]];
      const opts = { maxNewTokens: 6, temperature: 0, stopIds: [0] };
      const cached = await generate(m, prompts.map((p, i) => ({ prompt: p, example: i })), opts);
      const recomputed = await generateRecompute(
        m,
        prompts.map((p, i) => ({ prompt: p, example: i })),
        opts,
      );
      for (let i = 0; i < prompts.length; i++) {
        assertEquals(cached[i].ids, recomputed[i].ids);
        const err = maxAbs(cached[i].logprobs, recomputed[i].logprobs);
        if (err > 1e-4) throw new Error(`prompt ${i}: cache vs recompute log-prob error ${err}`);
        const want = greedyGenerateRef(ref, prompts[i], {
          maxNewTokens: 6,
          stopIds: [0],
          useCache: true,
        });
        assertEquals(cached[i].ids, want.ids);
        assertEquals(cached[i].finishReason, want.finishReason);
        const e2 = maxAbs(cached[i].logprobs, want.logprobs);
        if (e2 > 2e-4) throw new Error(`prompt ${i}: log-prob error vs float64 ${e2}`);
      }
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name: "GpuModel.packWeights() leaves log-probs, top-k and greedy tokens unchanged",
  ignore,
  fn: async () => {
    const ref = randomRefModel({ ...TOY, tie_word_embeddings: false }, 5, { normJitter: 0.2 });
    const m = await onGpu(ref);
    try {
      const before = await m.logprobs(SEQS, { topK: 3 });
      const reqs = [{ prompt: [1, 2, 3], example: 0 }, { prompt: [9], example: 1 }];
      const genBefore = await generate(m, reqs, { maxNewTokens: 5, temperature: 0 });
      const packed = await m.packWeights();
      const after = await m.logprobs(SEQS, { topK: 3 });
      const genAfter = await generate(m, reqs, { maxNewTokens: 5, temperature: 0 });
      for (let s = 0; s < SEQS.length; s++) {
        const err = maxAbs(after[s].logprobs, before[s].logprobs);
        if (err > 1e-5) throw new Error(`packed=${packed}: sequence ${s} error ${err}`);
        assertEquals(after[s].topkIds, before[s].topkIds);
      }
      assertEquals(genAfter.map((g) => g.ids), genBefore.map((g) => g.ids));
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name:
    "GpuModel.load() keeps f16 and bf16 checkpoints in their dtype and scores like the f32 model",
  ignore,
  fn: async () => {
    for (const dtype of ["f16", "bf16"]) {
      const dir = await Deno.makeTempDir();
      try {
        // sharded on purpose: a small shard size spreads the tensors over several files
        await initModel({ config: TOY, output: dir, seed: 8, dtype, maxShardBytes: 4000 });
        const ref = await loadRefModel(dir); // the stored values, widened to float64
        const m = await GpuModel.load(dir, { precision: "checkpoint" });
        try {
          assertEquals(m.weights.w("model.layers.1.mlp.down_proj.weight").dtype, dtype);
          assertEquals(m.weights.w("model.embed_tokens.weight").dtype, dtype);
          assertEquals(m.weights.w("model.norm.weight").dtype, "f32");
          const got = await m.logprobs(SEQS);
          const want = logProbsRef(ref, SEQS);
          for (let s = 0; s < SEQS.length; s++) {
            const err = maxAbs(got[s].logprobs, want[s].logprobs);
            if (err > 2e-4) throw new Error(`${dtype} sequence ${s}: error ${err}`);
          }
        } finally {
          m.release();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
});

Deno.test({
  name: "GpuModel.load() names the tensor of a mismatched checkpoint",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await initModel({ config: TOY, output: dir, seed: 1, dtype: "f32" });
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      cfg.intermediate_size = 40;
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
      let msg = "";
      try {
        await GpuModel.load(dir);
      } catch (e) {
        msg = (e as Error).message;
      }
      if (!/"model\.layers\.0\.mlp\.gate_proj\.weight" is \[32,16\]/.test(msg)) {
        throw new Error(`unexpected message: ${msg}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "GpuModel over several vocabulary chunks: log-probs, top-k, loss and every gradient",
  ignore,
  fn: async () => {
    // 50 ids in chunks of at most 12 rows: the online lse, top-k merge, dX accumulation and the
    // per-chunk LM-head gradients all cross chunk boundaries
    const ref = randomRefModel({ ...TOY, tie_word_embeddings: false }, 6, { normJitter: 0.3 });
    const m = await onGpu(ref, false, 12);
    try {
      const got = await m.logprobs(SEQS, { topK: 20 });
      const want = logProbsRef(ref, SEQS, { topK: 20 });
      for (let s = 0; s < SEQS.length; s++) {
        const err = maxAbs(got[s].logprobs, want[s].logprobs);
        if (err > 2e-4) throw new Error(`sequence ${s}: log-prob error ${err}`);
        assertEquals(got[s].topkIds, want[s].topkIds);
      }
      const gen = await generate(m, [{ prompt: [4, 4, 9] }], { maxNewTokens: 5, temperature: 0 });
      const wantGen = greedyGenerateRef(ref, [4, 4, 9], { maxNewTokens: 5, useCache: true });
      assertEquals(gen[0].ids, wantGen.ids);
    } finally {
      m.release();
    }
    await checkGrads(randomRefModel(TOY, 7, { normJitter: 0.3 }), SEQS, undefined, 12);
  },
});

Deno.test({
  name:
    "generate() samples of one prompt share its prefill and equal recomputation and the float64 CPU sampler (seeded)",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 9, { normJitter: 0.2 });
    const m = await onGpu(ref);
    try {
      const a = [3, 17, 42, 8], b = [5, 6];
      const reqs = [
        { prompt: a, example: 0, sample: 0 },
        { prompt: a, example: 0, sample: 1 },
        { prompt: b, example: 1, sample: 0 },
        { prompt: [...a], example: 0, sample: 2 },
        { prompt: b, example: 1, sample: 1 },
      ];
      // the device draws (temperature alone, top-k, top-k with top-p) and the host's (top-p alone)
      for (
        const o of [
          { temperature: 0.9, topK: 30 },
          { temperature: 1.3 },
          { temperature: 0.8, topP: 0.9 },
          { temperature: 1, topK: 40, topP: 0.8 },
        ]
      ) {
        const opts = { maxNewTokens: 7, seed: 4, stopIds: [], ...o };
        const shared = await generate(m, reqs, opts);
        const recomputed = await generateRecompute(m, reqs, opts);
        const alone = [];
        for (const r of reqs) alone.push((await generate(m, [r], opts))[0]);
        const sampling = { temperature: o.temperature, topK: o.topK ?? 0, topP: o.topP ?? 1 };
        for (let i = 0; i < reqs.length; i++) {
          const what = `${JSON.stringify(o)} request ${i}`;
          assertEquals(shared[i].ids, recomputed[i].ids, what);
          assertEquals(shared[i].ids, alone[i].ids, what);
          const err = maxAbs(shared[i].logprobs, recomputed[i].logprobs);
          if (err > 1e-4) throw new Error(`${what}: log-prob error ${err}`);
          // the float64 CPU sampler draws the same tokens from its own logits
          const cpu = generateRef(ref, reqs[i].prompt, {
            maxNewTokens: 7,
            sampling,
            stream: sampleSeed(4, reqs[i].example, reqs[i].sample),
          });
          assertEquals(shared[i].ids, cpu.ids, `${what} (float64 CPU)`);
        }
        // the samples of one prompt are different draws
        assertEquals(new Set([0, 1, 3].map((i) => shared[i].ids.join())).size, 3);
      }
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name:
    "generate() batches continuously: freed slots take waiting requests, results as alone, onDone in order",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 11, { normJitter: 0.2 });
    const m = await onGpu(ref);
    try {
      // different prompt lengths; a frequent stop id ends sequences at different steps
      const reqs = Array.from({ length: 9 }, (_, i) => ({
        prompt: Array.from({ length: 2 + (i % 4) }, (_, t) => (7 * i + 3 * t) % 50),
        example: i,
      }));
      const opts = { maxNewTokens: 9, temperature: 1, seed: 2, stopIds: [1, 2, 3, 4, 5, 6] };
      const rows: number[] = [];
      const sampleNext = m.sampleNext.bind(m);
      m.sampleNext = (cache, steps, sampler, info) => {
        rows.push(steps.length);
        return sampleNext(cache, steps, sampler, info);
      };
      const order: number[] = [];
      const got = await generate(m, reqs, { ...opts, maxBatch: 3 }, (i) => {
        order.push(i);
      });
      m.sampleNext = sampleNext;
      assertEquals(order, reqs.map((_, i) => i));
      const lengths = got.map((g) => g.ids.length);
      if (new Set(lengths).size < 3) throw new Error(`lengths ${lengths}: too alike to test`);
      for (const [i, r] of reqs.entries()) {
        const alone = (await generate(m, [r], opts))[0];
        assertEquals(got[i], alone, `request ${i}`);
      }
      // 3 rows a step while requests wait (a freed slot is refilled before the next step),
      // then fewer and fewer: batches run one after the other would shrink and grow again
      assertEquals(rows[0], 3);
      for (let i = 1; i < rows.length; i++) {
        if (rows[i] > rows[i - 1]) throw new Error(`rows per decode step ${rows}`);
      }
      const decodeSteps = lengths.reduce((a, n) => a + n - 1, 0);
      assertEquals(rows.reduce((a, n) => a + n, 0), decodeSteps);
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name: "Forward.vocab() with top-k and log-prob objectives together over chunks, then backward",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 10, { normJitter: 0.3 });
    const m = await onGpu(ref, true, 12);
    try {
      const { Recorder } = await import("../engine/recorder.ts");
      const { readMany } = await import("../engine/readback.ts");
      const { IGNORE_INDEX, TokenLogprobs, TopK } = await import("../model/objectives.ts");
      const T = SEQS.flat().length, K = 3;
      const tg = SEQS.flatMap((s) => s.map((_, t) => (t + 1 < s.length ? s[t + 1] : IGNORE_INDEX)));
      const count = tg.filter((x) => x !== IGNORE_INDEX).length;
      const lp = new TokenLogprobs(m.gpu, T), top = new TopK(m.gpu, T, K);
      lp.write(tg, tg.map((x) => (x === IGNORE_INDEX ? 0 : 1 / count)));
      const rec = new Recorder(m.gpu);
      const f = m.forward(rec, SEQS, { train: true });
      f.backward(f.vocab([top, lp]), lp);
      const [gv, gi, gl] = await readMany(rec, [top.vals, top.ids, lp.logprobs]);
      f.release();
      const want = lossAndGradRef(ref, SEQS);
      const lps = logProbsRef(ref, SEQS, { topK: K });
      let row = 0, lossSum = 0;
      SEQS.forEach((s, si) => {
        for (let t = 0; t + 1 < s.length; t++) {
          assertEquals(
            Array.from(gi.subarray((row + t) * K, (row + t + 1) * K)),
            lps[si].topkIds![t],
          );
          const e = maxAbs(gv.subarray((row + t) * K, (row + t + 1) * K), lps[si].topkLogprobs![t]);
          if (e > 2e-4) throw new Error(`top-k error ${e}`);
          if (Math.abs(gl[row + t] - lps[si].logprobs[t]) > 2e-4) throw new Error("log-prob");
          lossSum -= gl[row + t];
        }
        row += s.length;
      });
      if (Math.abs(lossSum / count - want.loss) > 2e-5) throw new Error(`loss ${lossSum / count}`);
      for (const name of Object.keys(ref.params)) {
        const e = relErr(await m.readGrad(name), want.grads[name]);
        if (!(e < 2e-4)) throw new Error(`${name}: relative error ${e}`);
      }
      lp.release();
      top.release();
    } finally {
      m.release();
    }
  },
});

Deno.test({
  name: "generate() prefills prompts longer than maxTokens() in pieces, with the same tokens",
  ignore,
  fn: async () => {
    const ref = randomRefModel(TOY, 11, { normJitter: 0.2 });
    const m = await GpuModel.fromValues(ref.config, (s) => ref.params[s.name], {
      limits: { maxTokens: 5 },
    });
    try {
      const prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [16, 17], [
        18,
        19,
        20,
        21,
      ]];
      const got = await generate(m, prompts.map((p) => ({ prompt: p })), {
        maxNewTokens: 4,
        temperature: 0,
        stopIds: [],
      });
      prompts.forEach((p, i) => {
        const want = greedyGenerateRef(ref, p, { maxNewTokens: 4, useCache: true });
        assertEquals(got[i].ids, want.ids);
        const e = maxAbs(got[i].logprobs, want.logprobs);
        if (e > 2e-4) throw new Error(`prompt ${i}: log-prob error ${e}`);
      });
    } finally {
      m.release();
    }
  },
});
