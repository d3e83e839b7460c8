/**
 * `star logprobs` and `star generate` end to end on models written by `star init-model`,
 * checked against the float64 CPU model loaded from the same directory: log-probs and top-k of
 * id and text rows, greedy completions token for token, error rows naming file and line while
 * the other rows go on, seeded sampling reproducible and distinct per sample, usage errors.
 */
import { hasGpu } from "../engine/device.ts";
import { greedyGenerateRef, loadRefModel, logProbsRef } from "../model/ref.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { assertEquals, assertMatch } from "./assert.ts";
import { star } from "./_star.ts";

const ignore = !(await hasGpu());

const TOY_CONFIG = {
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 256,
  tie_word_embeddings: false,
  initializer_range: 0.4,
  torch_dtype: "float32",
};

async function model(kind: "tiny" | "toy"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `star_${kind}_` });
  const args = kind === "tiny"
    ? ["init-model", "--preset", "tiny", "--output", dir, "--seed", "5"]
    : ["init-model", "--config", `${dir}/in.json`, "--output", `${dir}/m`, "--seed", "6"];
  if (kind === "toy") await Deno.writeTextFile(`${dir}/in.json`, JSON.stringify(TOY_CONFIG));
  const r = await star(args);
  assertEquals(r.code, 0, r.stderr);
  return kind === "tiny" ? dir : `${dir}/m`;
}

/** Removes what model() made (the toy model sits one level down). */
async function remove(dir: string) {
  await Deno.remove(dir.replace(/\/m$/, ""), { recursive: true });
}

function parseRows(text: string): Record<string, unknown>[] {
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

function close(a: number[], b: number[], tol: number, what: string) {
  assertEquals(a.length, b.length, `${what}: lengths`);
  a.forEach((x, i) => {
    if (!(Math.abs(x - b[i]) <= tol)) throw new Error(`${what}[${i}]: ${x} vs ${b[i]}`);
  });
}

Deno.test({
  name: "star logprobs matches the float64 model on ids and text rows, with --top-k",
  ignore,
  fn: async () => {
    const dir = await model("tiny");
    try {
      const tok = await Tokenizer.load(dir);
      const text = "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>";
      const input = [
        JSON.stringify({ id: "t", text }),
        JSON.stringify({ ids: [151644, 77091, 198, 40, 1079] }),
        JSON.stringify({ id: 3, ids: [42] }),
      ].join("\n") + "\n";
      await Deno.writeTextFile(`${dir}/in.jsonl`, input);
      const r = await star([
        "logprobs",
        "--model",
        dir,
        "--input",
        `${dir}/in.jsonl`,
        "--top-k",
        "4",
        "--batch-tokens",
        "8",
      ]);
      assertEquals(r.code, 0, r.stderr);
      const rows = parseRows(r.stdout);
      assertEquals(rows.length, 3);
      const ref = await loadRefModel(dir);
      const seqs = [tok.encode(text), [151644, 77091, 198, 40, 1079], [42]];
      const want = logProbsRef(ref, seqs, { topK: 4 });
      assertEquals(rows[0].id, "t");
      assertEquals(Object.hasOwn(rows[1], "id"), false);
      assertEquals(rows[2].id, 3);
      rows.forEach((row, i) => {
        assertEquals(row.ids, seqs[i]);
        close(row.logprobs as number[], want[i].logprobs, 2e-4, `row ${i} logprobs`);
        assertEquals(row.topk_ids, want[i].topkIds);
        close(
          (row.topk_logprobs as number[][]).flat(),
          want[i].topkLogprobs!.flat(),
          2e-4,
          `row ${i} topk`,
        );
      });
    } finally {
      await remove(dir);
    }
  },
});

Deno.test({
  name: "star logprobs writes an error row naming file and line for bad rows and scores the rest",
  ignore,
  fn: async () => {
    const dir = await model("toy");
    try {
      const input =
        '{"ids":[1,2,3]}\n{"id":"x","ids":[1,64]}\n{oops\n\n{"id":"y"}\n{"ids":[5,6]}\n';
      await Deno.writeTextFile(`${dir}/in.jsonl`, input);
      const r = await star(["logprobs", "--model", dir, "--input", `${dir}/in.jsonl`]);
      assertEquals(r.code, 1);
      const rows = parseRows(r.stdout);
      assertEquals(rows.length, 5);
      assertEquals(rows[1].id, "x");
      assertEquals(rows[1].line, 2);
      assertMatch(rows[1].error as string, /in\.jsonl" line 2: field "ids" has token id 64/);
      assertEquals(rows[2].line, 3);
      assertMatch(rows[2].error as string, /line 3: invalid JSON/);
      assertMatch(rows[3].error as string, /line 5: field "ids" or "text" is missing/);
      assertMatch(r.stderr, /line 2: field "ids"/);
      const ref = await loadRefModel(dir);
      const want = logProbsRef(ref, [[1, 2, 3], [5, 6]]);
      close(rows[0].logprobs as number[], want[0].logprobs, 2e-4, "row 1");
      close(rows[4].logprobs as number[], want[1].logprobs, 2e-4, "row 6");
    } finally {
      await remove(dir);
    }
  },
});

Deno.test({
  name: "star generate --temperature 0 gives the float64 model's greedy tokens and log-probs",
  ignore,
  fn: async () => {
    const dir = await model("tiny");
    try {
      const tok = await Tokenizer.load(dir);
      const prompts = ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "Once upon"];
      const input = [
        JSON.stringify({ id: "a", prompt: prompts[0] }),
        JSON.stringify({ id: "b", ids: tok.encode(prompts[1]) }),
      ].join("\n") + "\n";
      await Deno.writeTextFile(`${dir}/in.jsonl`, input);
      const r = await star([
        "generate",
        "--model",
        dir,
        "--input",
        `${dir}/in.jsonl`,
        "--temperature",
        "0",
        "--max-new-tokens",
        "4",
      ]);
      assertEquals(r.code, 0, r.stderr);
      const rows = parseRows(r.stdout);
      assertEquals(rows.length, 2);
      const ref = await loadRefModel(dir);
      rows.forEach((row, i) => {
        const want = greedyGenerateRef(ref, tok.encode(prompts[i]), {
          maxNewTokens: 4,
          stopIds: [151645, 151643],
          useCache: true,
        });
        assertEquals(row.id, ["a", "b"][i]);
        assertEquals(row.sample, 0);
        assertEquals(row.completion_ids, want.ids);
        assertEquals(row.completion, tok.decode(want.ids, { skipSpecialTokens: true }));
        assertEquals(row.finish_reason, want.finishReason);
        close(row.logprobs as number[], want.logprobs, 2e-4, `row ${i} logprobs`);
      });
    } finally {
      await remove(dir);
    }
  },
});

Deno.test({
  name:
    "star generate --n samples are seeded: reproducible, distinct per sample, same in any batch",
  ignore,
  fn: async () => {
    const dir = await model("toy");
    try {
      await Deno.writeTextFile(`${dir}/in.jsonl`, '{"ids":[1,2]}\n{"ids":[3]}\n{"ids":[4,5,6]}\n');
      const run = (batch: string) =>
        star([
          "generate",
          "--model",
          dir,
          "--input",
          `${dir}/in.jsonl`,
          "--n",
          "3",
          "--seed",
          "9",
          "--max-new-tokens",
          "12",
          "--top-k",
          "20",
          "--top-p",
          "0.95",
          "--batch-size",
          batch,
        ]);
      const a = await run("16"), b = await run("2");
      assertEquals(a.code, 0, a.stderr);
      assertEquals(a.stdout, b.stdout);
      const rows = parseRows(a.stdout);
      assertEquals(rows.length, 9);
      assertEquals(rows.map((r) => r.sample), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
      const ids = rows.map((r) => JSON.stringify(r.completion_ids));
      assertEquals(new Set(ids).size, 9, "samples differ");
      for (const r of rows) {
        assertEquals(r.finish_reason, "length");
        assertEquals((r.completion_ids as number[]).length, 12);
        assertEquals((r.logprobs as number[]).every((x) => x < 0), true);
      }
    } finally {
      await remove(dir);
    }
  },
});

Deno.test("star generate rejects --top-p 0 and --temperature -1 (exit 2)", async () => {
  for (const bad of [["--top-p", "0"], ["--temperature", "-1"]]) {
    const r = await star(["generate", "--model", "/nonexistent", "--input", "-", ...bad]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, new RegExp(bad[0]));
  }
});

Deno.test("star logprobs --help and star generate --help list every flag of the contract", async () => {
  const want: Record<string, string[]> = {
    logprobs: ["--model DIR", "--input FILE", "--output FILE", "--top-k K"],
    generate: [
      "--model DIR",
      "--input FILE",
      "--output FILE",
      "--max-new-tokens N",
      "--temperature T",
      "--top-p P",
      "--top-k K",
      "--n N",
      "--seed S",
    ],
  };
  for (const [cmd, flags] of Object.entries(want)) {
    const r = await star([cmd, "--help"]);
    assertEquals(r.code, 0);
    for (const f of flags) assertMatch(r.stdout, new RegExp(f.replace(/[-]/g, "\\-")));
  }
});
