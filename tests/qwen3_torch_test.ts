/**
 * The float64 CPU model against an independent torch float64 Qwen3 / Qwen2 (tests/reference/
 * qwen_torch.py, autograd gradients), on checkpoints written by `star init-model`: a tied
 * f32 Qwen3 stored in three shards and an untied bf16 Qwen3 with 4:1 grouped-query attention;
 * a tied f32 Qwen2 and an untied bf16 Qwen2 (3:1), both with non-zero q/k/v biases.
 */
import { assertClose, assertEquals } from "./assert.ts";
import { join } from "node:path";
import { greedyGenerateRef, loadRefModel, logProbsRef, lossAndGradRef } from "../model/ref.ts";
import { weightSpecs } from "../model/weights.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../cli/init_model.ts";

const TESTDATA = new URL("./testdata/", import.meta.url).pathname;
/** Fixtures by architecture: Qwen3, and Qwen2 (q/k/v biases, no q/k norm). */
const FIXTURES = [
  ["qwen3", "toy_tied"],
  ["qwen3", "toy_untied_bf16"],
  ["qwen2", "toy_tied"],
  ["qwen2", "toy_untied_bf16"],
] as const;
const DIR = join(TESTDATA, "qwen3");

interface TorchFixture {
  seqs: number[][];
  labels: number[][];
  results: { logprobs: number[]; topk_ids: number[][]; topk_logprobs: number[][] }[];
  loss: number;
  count: number;
  grads: Record<string, number[]>;
  greedy: { ids: number[]; logprobs: number[] }[];
}

for (const [family, file] of FIXTURES) {
  const dir = join(TESTDATA, family), name = `${family} ${file}`;
  const fx: TorchFixture = JSON.parse(await Deno.readTextFile(join(dir, `${file}.torch.json`)));
  const model = await loadRefModel(join(dir, file));

  Deno.test(`logProbsRef() matches torch float64 log-probs and top-k on ${name}`, () => {
    const K = fx.results[0].topk_ids[0].length;
    const got = logProbsRef(model, fx.seqs, { topK: K });
    for (let s = 0; s < fx.seqs.length; s++) {
      assertClose(got[s].logprobs, fx.results[s].logprobs, { atol: 1e-10, msg: `seq ${s}` });
      assertEquals(got[s].topkIds, fx.results[s].topk_ids);
      assertClose(got[s].topkLogprobs!.flat(), fx.results[s].topk_logprobs.flat(), { atol: 1e-10 });
    }
  });

  Deno.test(`lossAndGradRef() matches torch autograd loss and every gradient on ${name}`, () => {
    const { loss, count, grads } = lossAndGradRef(model, fx.seqs, fx.labels);
    assertEquals(count, fx.count);
    assertClose(loss, fx.loss, { atol: 1e-10 });
    const names = weightSpecs(model.config).map((s) => s.name);
    assertEquals(names.toSorted(), Object.keys(fx.grads).toSorted());
    for (const n of names) assertClose(grads[n], fx.grads[n], { atol: 1e-10, rtol: 1e-7, msg: n });
  });

  Deno.test(`greedyGenerateRef() with and without a KV cache matches torch greedy decoding on ${name}`, () => {
    for (let s = 0; s < fx.seqs.length; s++) {
      const want = fx.greedy[s];
      for (const useCache of [false, true]) {
        const got = greedyGenerateRef(model, fx.seqs[s], {
          maxNewTokens: want.ids.length,
          useCache,
        });
        assertEquals(got.ids, want.ids, `seq ${s} cache=${useCache}`);
        assertClose(got.logprobs, want.logprobs, { atol: 1e-10 });
      }
    }
  });
}

/**
 * The real-vocabulary `tiny` preset: `star init-model --preset tiny --seed 0` is rebuilt here
 * (about a second) and must give the log-probs torch computed from the checkpoint that command
 * wrote when the fixture was made; this also pins the seeded init.
 */
Deno.test("logProbsRef() on a freshly written tiny preset (seed 0) matches torch float64", async () => {
  const fx: TorchFixture = JSON.parse(await Deno.readTextFile(join(DIR, "tiny_seed0.torch.json")));
  const dir = await Deno.makeTempDir();
  try {
    await initModel({ config: presetConfig("tiny"), output: dir, seed: 0 });
    const model = await loadRefModel(dir);
    const got = logProbsRef(model, fx.seqs, { topK: 5 });
    for (let s = 0; s < fx.seqs.length; s++) {
      assertClose(got[s].logprobs, fx.results[s].logprobs, { atol: 1e-10, msg: `seq ${s}` });
      assertEquals(got[s].topkIds, fx.results[s].topk_ids);
      const gen = greedyGenerateRef(model, fx.seqs[s], {
        maxNewTokens: fx.greedy[s].ids.length,
        useCache: true,
      });
      assertEquals(gen.ids, fx.greedy[s].ids);
      assertClose(gen.logprobs, fx.greedy[s].logprobs, { atol: 1e-10 });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The exact Qwen3-0.6B shape (bf16 random weights, seed 0), 32 tokens. Slow (about a minute and
 * 5 GB of float64 weights); it runs in CI all the same, since the shape is what users load.
 */
Deno.test({
  name: "logProbsRef() on the qwen3-0.6b preset (seed 0, bf16) matches torch float64 on 32 tokens",
  fn: async () => {
    const fx: TorchFixture = JSON.parse(
      await Deno.readTextFile(join(DIR, "qwen3-0.6b_seed0_bf16.torch.json")),
    );
    const dir = await Deno.makeTempDir();
    try {
      await initModel({ config: presetConfig("qwen3-0.6b"), output: dir, seed: 0 });
      const model = await loadRefModel(dir);
      const [got] = logProbsRef(model, fx.seqs, { topK: 5 });
      assertClose(got.logprobs, fx.results[0].logprobs, { atol: 1e-9 });
      assertEquals(got.topkIds, fx.results[0].topk_ids);
      const gen = greedyGenerateRef(model, fx.seqs[0], {
        maxNewTokens: fx.greedy[0].ids.length,
        useCache: true,
      });
      assertEquals(gen.ids, fx.greedy[0].ids);
      assertClose(gen.logprobs, fx.greedy[0].logprobs, { atol: 1e-9 });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
