/**
 * The GPU Qwen3 against the independent torch float64 Qwen3 (fixtures of tests/reference/
 * qwen_torch.py): log-probs, top-k, loss, every gradient by name and greedy decoding, loaded
 * from the committed checkpoints (a tied f32 model in three shards; an untied bf16 model, kept
 * in bf16 for inference and widened to f32 for training), from a freshly written `tiny` preset,
 * and from the exact Qwen3-0.6B shape (about 30 s and 4 GB here).
 */
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { presetConfig } from "../model/config.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { generate } from "../model/generate.ts";
import { lossAndGrad } from "./_model.ts";
import { initModel } from "../cli/init_model.ts";
import { assertEquals } from "./assert.ts";

const ignore = !(await hasGpu());
const TESTDATA = new URL("./testdata/", import.meta.url).pathname;
const DIR = join(TESTDATA, "qwen3");
/** Fixtures by architecture: Qwen3, and Qwen2 (q/k/v biases, no q/k norm). */
const FIXTURES = [
  ["qwen3", "toy_tied"],
  ["qwen3", "toy_untied_bf16"],
  ["qwen2", "toy_tied"],
  ["qwen2", "toy_untied_bf16"],
] as const;

interface TorchFixture {
  seqs: number[][];
  labels: number[][];
  results: { logprobs: number[]; topk_ids: number[][]; topk_logprobs: number[][] }[];
  loss: number;
  count: number;
  grads?: Record<string, number[]>;
  greedy: { ids: number[]; logprobs: number[] }[];
}

const fixture = async (path: string): Promise<TorchFixture> =>
  JSON.parse(await Deno.readTextFile(`${path}.torch.json`));

function within(got: number[], want: number[], tol: number, what: string) {
  assertEquals(got.length, want.length, `${what}: length`);
  let worst = 0;
  got.forEach((x, i) => worst = Math.max(worst, Math.abs(x - want[i])));
  if (!(worst <= tol)) throw new Error(`${what}: max error ${worst} > ${tol}`);
}

/** Log-probs, top-k and greedy decoding (KV cache) of a loaded model against the fixture. */
async function checkInference(m: GpuModel, fx: TorchFixture, tol: number) {
  const K = fx.results[0].topk_ids[0].length;
  const got = await m.logprobs(fx.seqs, { topK: K });
  fx.seqs.forEach((_, s) => {
    within(got[s].logprobs, fx.results[s].logprobs, tol, `seq ${s} log-probs`);
    assertEquals(got[s].topkIds, fx.results[s].topk_ids, `seq ${s} top-k ids`);
    within(got[s].topkLogprobs!.flat(), fx.results[s].topk_logprobs.flat(), tol, `seq ${s} top-k`);
  });
  const gen = await generate(
    m,
    fx.seqs.map((p) => ({ prompt: p })),
    { maxNewTokens: Math.max(...fx.greedy.map((g) => g.ids.length)), temperature: 0, stopIds: [] },
  );
  fx.greedy.forEach((want, s) => {
    assertEquals(gen[s].ids.slice(0, want.ids.length), want.ids, `seq ${s} greedy ids`);
    within(gen[s].logprobs.slice(0, want.ids.length), want.logprobs, tol, `seq ${s} greedy`);
  });
}

for (const [family, file] of FIXTURES) {
  const path = join(TESTDATA, family, file), name = `${family} ${file}`;
  Deno.test({
    name: `GpuModel.load() of ${name} (kept in its dtype) matches torch log-probs, top-k, greedy`,
    ignore,
    fn: async () => {
      const m = await GpuModel.load(path, { precision: "checkpoint" });
      try {
        await checkInference(m, await fixture(path), 2e-4);
      } finally {
        m.release();
      }
    },
  });

  Deno.test({
    name: `GpuModel forward/vocab/backward on ${name} match torch autograd loss and every gradient`,
    ignore,
    fn: async () => {
      const fx = await fixture(path);
      const m = await GpuModel.load(path, { trainable: true });
      try {
        const r = await lossAndGrad(m, fx.seqs, { labels: fx.labels });
        assertEquals(r.count, fx.count);
        within([r.loss], [fx.loss], 2e-5 * Math.max(1, fx.loss), "loss");
        assertEquals(
          m.parameters().map((p) => p.name).toSorted(),
          Object.keys(fx.grads!).toSorted(),
        );
        for (const [n, want] of Object.entries(fx.grads!)) {
          const g = await m.readGrad(n);
          const scale = Math.max(1e-12, ...want.map(Math.abs));
          within(Array.from(g, (x) => x / scale), want.map((x) => x / scale), 2e-4, n);
        }
      } finally {
        m.release();
      }
    },
  });
}

Deno.test({
  name: "GpuModel on a freshly written tiny preset (seed 0) matches torch float64",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await initModel({ config: presetConfig("tiny"), output: dir, seed: 0 });
      const m = await GpuModel.load(dir, { precision: "checkpoint" });
      try {
        await checkInference(m, await fixture(join(DIR, "tiny_seed0")), 2e-4);
      } finally {
        m.release();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "GpuModel on the qwen3-0.6b preset (seed 0, bf16 kept, packed) matches torch to 2e-3",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await initModel({ config: presetConfig("qwen3-0.6b"), output: dir, seed: 0 });
      const m = await GpuModel.load(dir, { precision: "checkpoint" });
      try {
        await m.packWeights();
        await checkInference(m, await fixture(join(DIR, "qwen3-0.6b_seed0_bf16")), 2e-3);
      } finally {
        m.release();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "GpuModel.save() writes back the loaded tensors bit for bit (f32 shards, bf16 kept)",
  ignore,
  fn: async () => {
    const { Checkpoint } = await import("../model/safetensors.ts");
    for (
      const [name, opts] of [
        ["qwen3/toy_tied", { trainable: true }],
        ["qwen3/toy_untied_bf16", {}],
        ["qwen2/toy_untied_bf16", {}],
      ] as const
    ) {
      const src = join(TESTDATA, name);
      const m = await GpuModel.load(src, { precision: "checkpoint", ...opts });
      const out = await Deno.makeTempDir();
      try {
        await m.save(out, { dtype: name === "qwen3/toy_tied" ? "f32" : "bf16" });
        const a = await Checkpoint.open(src), b = await Checkpoint.open(out);
        try {
          assertEquals([...b.tensors.keys()].toSorted(), [...a.tensors.keys()].toSorted());
          for (const n of a.tensors.keys()) {
            assertEquals(b.info(n).dtype, a.info(n).dtype, n);
            assertEquals(await b.readBytes(n), await a.readBytes(n), n);
          }
        } finally {
          a.close();
          b.close();
        }
      } finally {
        m.release();
        await Deno.remove(out, { recursive: true });
      }
    }
  },
});
