/**
 * Qwen2/Qwen2.5 through the commands as a user runs them: `star init-model --preset
 * tiny-qwen2`, then on seeded models with non-zero q/k/v biases `star logprobs` and
 * `star generate` against the float64 reference model, and `star ckd` (a Qwen2 teacher
 * distilled into a Qwen2 student) on the engine against the same run on `--device cpu`.
 */
import { assertClose, assertEquals } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { builtinTokenizerTexts } from "../data/builtin_tokenizer.ts";
import { presetConfig } from "../model/config.ts";
import { greedyGenerateRef, logProbsRef, randomRefModel, type RefModel } from "../model/ref.ts";
import { saveModel } from "../model/save.ts";
import { readMetrics } from "../train/metrics.ts";
import { star } from "./_star.ts";

const ignore = !(await hasGpu());
const config = { ...presetConfig("tiny-qwen2"), num_hidden_layers: 1 };

async function write(dir: string, seed: number, std: number): Promise<RefModel> {
  const ref = randomRefModel(config, seed, { std, normJitter: 0.2, biasStd: 0.5 });
  await saveModel(dir, {
    config,
    dtype: "f32",
    tensor: (spec) => Float32Array.from(ref.params[spec.name]),
    tokenizerFiles: await builtinTokenizerTexts(),
  });
  return ref;
}

Deno.test("star init-model --preset tiny-qwen2 writes a Qwen2 checkpoint with biases", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await star(["init-model", "--preset", "tiny-qwen2", "--output", dir, "--seed", "3"]);
    assertEquals(r.code, 0, r.stderr);
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assertEquals([cfg.model_type, cfg.architectures], ["qwen2", ["Qwen2ForCausalLM"]]);
    const index = await Deno.readFile(join(dir, "model.safetensors"));
    const header = new TextDecoder().decode(
      index.subarray(8, 8 + Number(new DataView(index.buffer).getBigUint64(0, true))),
    );
    assertEquals(header.includes("model.layers.1.self_attn.v_proj.bias"), true);
    assertEquals(header.includes("q_norm"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "star logprobs and star generate on a Qwen2 model match the float64 reference",
  ignore,
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      const ref = await write(join(root, "m"), 5, 0.3);
      const seqs = [[151644, 872, 198, 9707, 11, 1879], [151643, 100, 2000, 151645, 7]];
      await Deno.writeTextFile(
        join(root, "in.jsonl"),
        seqs.map((ids, i) => JSON.stringify({ id: i, ids })).join("\n") + "\n",
      );
      const lp = await star([
        "logprobs",
        "--model",
        join(root, "m"),
        "--input",
        join(root, "in.jsonl"),
        "--top-k",
        "3",
      ]);
      assertEquals(lp.code, 0, lp.stderr);
      const rows = lp.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const want = logProbsRef(ref, seqs, { topK: 3 });
      rows.forEach((r, s) => {
        assertClose(r.logprobs, want[s].logprobs, { atol: 2e-4 });
        assertEquals(r.topk_ids, want[s].topkIds);
      });
      const gen = await star([
        "generate",
        "--model",
        join(root, "m"),
        "--input",
        join(root, "in.jsonl"),
        "--temperature",
        "0",
        "--max-new-tokens",
        "5",
      ]);
      assertEquals(gen.code, 0, gen.stderr);
      const outs = gen.stdout.trim().split("\n").map((l) => JSON.parse(l));
      outs.forEach((g, s) => {
        const w = greedyGenerateRef(ref, seqs[s], { maxNewTokens: 5, stopIds: [151645, 151643] });
        assertEquals(g.completion_ids, w.ids);
        assertClose(g.logprobs, w.logprobs, { atol: 2e-4 });
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "star ckd of a Qwen2 student from a Qwen2 teacher: engine steps equal --device cpu steps",
  ignore,
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      await write(join(root, "student"), 7, 0.1);
      await write(join(root, "teacher"), 8, 0.5);
      const rows = Array.from({ length: 8 }, (_, i) =>
        JSON.stringify({
          id: `r${i}`,
          inputs: `<|im_start|>user\nadd ${i} and ${
            i + 3
          }<|im_end|>\n<|im_start|>assistant\n<think>`,
          targets: `</think>the sum is ${2 * i + 3}<|im_end|>\n`,
        }));
      await Deno.writeTextFile(join(root, "train.jsonl"), rows.join("\n") + "\n");
      for (const device of ["gpu", "cpu"]) {
        await Deno.writeTextFile(
          join(root, `${device}.yaml`),
          `student: student\nteacher: teacher\ndata: train.jsonl\noutput_dir: ${device}\n` +
            `train_batch_size: 4\nmicro_train_batch_size: 2\nmax_steps: 2\nlearning_rate: 1e-3\n` +
            `kd_topk: 8\nkd_student_topm: 8\nseed: 1\n`,
        );
        const r = await star(["ckd", "--config", join(root, `${device}.yaml`), "--device", device]);
        assertEquals(r.code, 0, r.stderr);
      }
      const gpu = await readMetrics(join(root, "gpu", "metrics.jsonl"));
      const cpu = await readMetrics(join(root, "cpu", "metrics.jsonl"));
      assertEquals(gpu.length, 2);
      gpu.forEach((row, i) => {
        assertClose(row.loss!, cpu[i].loss!, { rtol: 1e-4 });
        assertClose(row.grad_norm!, cpu[i].grad_norm!, { rtol: 1e-3 });
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
