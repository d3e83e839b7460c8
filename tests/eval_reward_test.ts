/**
 * `star eval --bench reward`: the summary's figures against hand-computed ones; on a tiny model
 * with a cut vocabulary, every greedy completion against a float64 CPU generation, every
 * sample's reward, exact flag and kind recomputed from reward/, bad rows reported by line and
 * skipped, and a killed sampled run resumed to the uninterrupted run's results.
 */
import { assertClose, assertEquals, assertMatch, assertOk } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { generateRef } from "../model/ref.ts";
import { exactCalls, labelKind } from "../reward/exact.ts";
import { simRlReward } from "../reward/sim_rl.ts";
import { type RewardResult, rewardTable, summarize } from "../train/eval_reward.ts";
import { smallModel } from "./_small_model.ts";
import { star } from "./_star.ts";

const ignore = !(await hasGpu());

const TOOLS = `{"name": "add", "parameters": {"a": "number", "b": "number"}}`;
const prompt = (ask: string) =>
  `<|im_start|>system\n<tools>\n${TOOLS}\n</tools><|im_end|>\n<|im_start|>user\n${ask}<|im_end|>\n<|im_start|>assistant\n<think>`;
const call = (a: number, b: number) =>
  `<tool_call>\n{"name": "add", "arguments": {"a": ${a}, "b": ${b}}}\n</tool_call>`;
const ROWS = [
  { id: "single", inputs: prompt("add 2 and 3"), targets: `</think>${call(2, 3)}<|im_end|>` },
  {
    id: "parallel",
    inputs: prompt("add 1 and 4, and 5 and 6"),
    targets: `</think>${call(1, 4)}\n${call(5, 6)}<|im_end|>`,
  },
  { id: "reply", inputs: prompt("hello"), targets: "</think>Hello! How can I help?<|im_end|>" },
  { id: "no-targets", inputs: prompt("add 7 and 8") },
  { id: "bad-label", inputs: prompt("add 9 and 1"), targets: "no think tag" },
];

async function setup() {
  const root = await Deno.makeTempDir({ prefix: "star-eval-" });
  const texts = ROWS.flatMap((r) => [r.inputs, r.targets ?? ""]);
  const { ref, tok } = await smallModel(join(root, "model"), texts, {
    shape: { num_hidden_layers: 1 },
    seed: 3,
    std: 0.3,
  });
  await Deno.writeTextFile(
    join(root, "heldout.jsonl"),
    ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  return { root, ref, tok };
}

async function results(path: string): Promise<RewardResult[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("summarize() gives the hand-computed figures overall and per kind", () => {
  const r = (kind: RewardResult["kind"], reward: number, exact: boolean): RewardResult => ({
    id: kind,
    sample: 0,
    completion: "",
    reward,
    format: reward === -1 ? -1 : 1,
    answer: reward === -1 ? 0 : reward,
    exact,
    kind,
  });
  const s = summarize([
    r("single", 1, true),
    r("single", -1, false),
    r("parallel", 0.5, false),
    r("response", 0.25, false),
  ], 4);
  assertEquals(s.rows, 4);
  assertEquals(s.samples, 4);
  assertClose(s.reward, (1 - 1 + 0.5 + 0.25) / 4, { atol: 1e-12 });
  assertClose(s.format_rate, 0.75, { atol: 1e-12 });
  assertClose(s.answer, (1 + 0 + 0.5 + 0.25) / 4, { atol: 1e-12 });
  assertClose(s.exact_rate, 0.25, { atol: 1e-12 });
  assertEquals(s.kinds.single, {
    samples: 2,
    reward: 0,
    format_rate: 0.5,
    answer: 0.5,
    exact_rate: 0.5,
  });
  assertEquals(s.kinds.response?.reward, 0.25);
  const table = rewardTable(s).split("\n");
  assertEquals(table.map((l) => l.split(/\s+/)[0]), ["", "all", "single", "parallel", "response"]);
  assertMatch(table[1], /all\s+4\s+0\.1875\s+0\.7500\s+0\.4375\s+0\.2500/);
});

Deno.test({
  name:
    "star eval --bench reward: greedy completions as a float64 CPU generation, scored as reward/",
  ignore,
  async fn() {
    const { root, ref, tok } = await setup();
    const out = join(root, "out");
    const r = await star([
      "eval",
      "--model",
      join(root, "model"),
      "--data",
      join(root, "heldout.jsonl"),
      "--max-new-tokens",
      "10",
      "--output",
      out,
    ]);
    assertEquals(r.code, 1, r.stderr); // two rows could not be read
    assertMatch(r.stderr, /heldout\.jsonl.*line 4.*targets/);
    assertMatch(r.stderr, /heldout\.jsonl.*line 5/);
    assertMatch(r.stderr, /2 rows could not be read/);
    const got = await results(join(out, "results.jsonl"));
    assertEquals(got.map((g) => g.id), ["single", "parallel", "reply"]);
    const stop = [tok.requireId("<|im_end|>"), tok.requireId("<|endoftext|>")];
    for (const [i, g] of got.entries()) {
      const row = ROWS[i] as { inputs: string; targets: string };
      const want = generateRef(ref, tok.encode(row.inputs), {
        maxNewTokens: 10,
        stopIds: stop,
        sampling: { temperature: 0, topP: 1, topK: 0 },
      });
      assertEquals(g.completion, tok.decode(want.ids), g.id as string);
      const rw = simRlReward(row.inputs, g.completion, row.targets);
      assertEquals([g.reward, g.format, g.answer], [rw.reward, rw.format, rw.answer]);
      assertEquals(g.exact, exactCalls(row.inputs, g.completion, row.targets));
      assertEquals(g.kind, labelKind(row.targets));
    }
    assertEquals(got.map((g) => g.kind), ["single", "parallel", "response"]);
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assertEquals(summary, summarize(got, 3));
    assertOk(r.stdout.includes(rewardTable(summary)), r.stdout);
  },
});

Deno.test({
  name:
    "star eval --bench reward: a killed sampled run, re-run, ends with the uninterrupted results",
  ignore,
  async fn() {
    const { root } = await setup();
    const run = (out: string) =>
      star([
        "eval",
        "--model",
        join(root, "model"),
        "--data",
        join(root, "heldout.jsonl"),
        "--max-new-tokens",
        "8",
        "--n",
        "2",
        "--temperature",
        "1",
        "--seed",
        "4",
        "--output",
        join(root, out),
      ]);
    assertEquals((await run("full")).code, 1);
    const full = await Deno.readTextFile(join(root, "full", "results.jsonl"));
    const lines = full.trim().split("\n");
    assertEquals(lines.length, 6);
    // samples differ (temperature 1), and are keyed by row and sample, not by position in a batch
    assertOk(new Set(lines.map((l) => JSON.parse(l).completion)).size > 1);
    // what a run killed after three samples and half a line leaves
    await Deno.mkdir(join(root, "cut"));
    await Deno.writeTextFile(
      join(root, "cut", "results.jsonl"),
      lines.slice(0, 3).join("\n") + "\n" + lines[3].slice(0, 20),
    );
    assertEquals((await run("cut")).code, 1);
    assertEquals(await Deno.readTextFile(join(root, "cut", "results.jsonl")), full);
    assertEquals(
      await Deno.readTextFile(join(root, "cut", "summary.json")),
      await Deno.readTextFile(join(root, "full", "summary.json")),
    );
  },
});

Deno.test("star eval --bench reward names what it lacks and what is not its own", async () => {
  const a = await star(["eval", "--model", "m"]);
  assertEquals(a.code, 2);
  assertMatch(a.stderr, /needs --model DIR and --data FILE/);
  const b = await star(["eval", "--model", "m", "--data", "d", "--categories", "simple_python"]);
  assertEquals(b.code, 2);
  assertMatch(b.stderr, /--categories.*--bench bfcl/);
  const c = await star(["eval", "--model", "m", "--data", "d", "--n", "0"]);
  assertEquals(c.code, 2);
  assertMatch(c.stderr, /--n.*at least 1/);
});
