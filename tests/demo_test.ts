/**
 * `star demo` end to end on a reduced size: every stage runs, the table has its rows, the
 * artefacts are where it says, and demo.json agrees with the table it prints; its held-out rows
 * ask nothing its training rows ask, and its prompts keep the tools block the reward reads.
 */
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { readMetrics } from "../train/metrics.ts";
import { compactPrompt, DEMO_SYNTH, demoRows, demoTable } from "../train/demo.ts";
import { type SynthRow, synthRows } from "../data/synthetic.ts";
import { promptTools } from "../reward/tools.ts";
import { simRlReward } from "../reward/mod.ts";
import { prepareFile } from "../data/prepare.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { star } from "./_star.ts";

const ignore = !(await hasGpu());

Deno.test({
  name: "star demo (reduced) runs every stage and prints the held-out table",
  ignore,
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await star([
      "demo",
      "--output",
      out,
      "--train-rows",
      "16",
      "--heldout-rows",
      "3",
      "--teacher-steps",
      "2",
      "--student-steps",
      "2",
      "--simrl-steps",
      "1",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const res = JSON.parse(await Deno.readTextFile(join(out, "demo.json")));
    assertEquals(Object.keys(res.rows), ["teacher", "sft", "ckd", "ckd_simrl"]);
    for (const [name, s] of Object.entries(res.rows) as [string, Record<string, number>][]) {
      for (const k of ["reward", "format_rate", "exact_rate"]) {
        assertOk(Number.isFinite(s[k]) && s[k] >= (k === "reward" ? -1 : 0) && s[k] <= 1, name);
      }
      // rates over 3 rows are multiples of 1/3
      assertOk(Math.abs(s.format_rate * 3 - Math.round(s.format_rate * 3)) < 1e-9, name);
    }
    // the printed table is demo.json's
    assertOk(r.stdout.includes(demoTable(res)), r.stdout);
    assertMatch(r.stdout, new RegExp(`under "${out.replaceAll("\\", "\\\\")}"`));
    assertEquals((await readMetrics(join(out, "teacher-sft", "metrics.jsonl"))).length, 2);
    assertEquals((await readMetrics(join(out, "sft", "metrics.jsonl"))).length, 2);
    assertEquals((await readMetrics(join(out, "ckd", "metrics.jsonl"))).length, 2);
    // students this short-trained rarely pass the filter: at most one step, and one pass over
    // the 16 prompts (4 generation batches of 4 prompts × 8 samples) when none does
    const steps = await readMetrics(join(out, "simrl", "metrics.jsonl"));
    assertOk(steps.length <= 1, `${steps.length} Sim-RL steps`);
    const rollouts = (await Deno.readTextFile(join(out, "simrl", "rollouts.jsonl"))).trim();
    const logged = rollouts === "" ? 0 : rollouts.split("\n").length;
    assertOk(
      logged % 32 === 0 && logged <= 128 && (logged > 0) === (steps.length > 0),
      `${logged}`,
    );
    // a pass that kept too few groups says so
    if (steps.length === 0) assertMatch(r.stderr, /simrl: episode 1 ran out of prompts/);
    assertOk(res.vocabSize < 4096 && res.vocabSize % 64 === 0, String(res.vocabSize));
    for (
      const f of [
        "train.jsonl",
        "heldout.jsonl",
        "tokenizer/tokenizer.json",
        "ckd/final/model.safetensors",
        "simrl/final/model.safetensors",
        "simrl/rollouts.jsonl",
        "examples.txt",
      ]
    ) {
      assertEquals(await Deno.stat(join(out, f)).then(() => true, () => false), true, f);
    }
  },
});

Deno.test("star demo --help names what it shows", async () => {
  const r = await star(["demo", "--help"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /--output DIR/);
  assertMatch(r.stdout, /--simrl-steps/);
  assertMatch(r.stdout, /exact-call rate/);
});

Deno.test("star demo refuses a count below 1, and fewer training rows than a batch", async () => {
  const r = await star(["demo", "--student-steps", "0"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /--student-steps.*at least 1/);
  const t = await star(["demo", "--train-rows", "8"]);
  assertEquals(t.code, 2);
  assertMatch(t.stderr, /--train-rows.*at least 16/);
});

Deno.test("demoRows() held-out rows (seed 1) share no turns with the training rows (seed 0)", () => {
  for (const [trainRows, heldoutRows] of [[96, 16], [2000, 400]]) {
    const { train, heldout } = demoRows({ trainRows, heldoutRows });
    assertEquals(train, [...synthRows(trainRows, 0, DEMO_SYNTH)]);
    assertEquals(heldout.length, heldoutRows);
    // what a row asks, read off its user turn (the answer follows from it)
    const ask = (r: SynthRow) => r.messages.find((m) => m.role === "user")!.content;
    const asked = new Set(train.map(ask));
    for (const r of heldout) {
      assertOk(r.id.startsWith("synth-1-"), r.id);
      assertOk(!asked.has(ask(r)), `${r.id} asks "${ask(r)}" as a training row does`);
    }
    // most held-out rows are seed 1's first rows: the seeds are independent, only chance repeats
    const last = Number(heldout.at(-1)!.id.split("-").at(-1));
    assertOk(last < 2 * heldoutRows, `held-out rows run to index ${last}`);
  }
});

Deno.test("compactPrompt() keeps the tools and argument names the reward reads, and the turns", async () => {
  const tool = {
    name: "f",
    description: "Does f.",
    parameters: {
      type: "object",
      properties: { a: { type: "string", description: "an a" }, b: { type: "object" } },
      required: ["a"],
    },
  };
  const full =
    `<|im_start|>system\nTools are in <tools></tools> tags:\n<tools>\n${
      JSON.stringify(tool)
    }\n</tools>\n\nReturn calls as ...<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n` +
    `<|im_start|>assistant\n<think>`;
  assertEquals(
    compactPrompt(full),
    `<|im_start|>system\n<tools>\n{"name": "f", "parameters": {"a": "string", "b": "object"}}\n` +
      `</tools><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>`,
  );
  // a prompt without a tools block is left alone
  const bare = "<|im_start|>user\nhi<|im_end|>\n";
  assertEquals(compactPrompt(bare), bare);
  // on prepared synthetic rows the reward sees the same tools, and scores a call the same
  const dir = await Deno.makeTempDir();
  const rows = [...synthRows(40, 3)];
  await Deno.writeTextFile(join(dir, "m.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
  await prepareFile(join(dir, "m.jsonl"), join(dir, "p.jsonl"), {
    tokenizer: await Tokenizer.load(),
  });
  const prepared = (await Deno.readTextFile(join(dir, "p.jsonl"))).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(prepared.length, 40);
  for (const r of prepared) {
    const c = compactPrompt(r.inputs);
    assertOk(c.length < r.inputs.length, r.id);
    assertEquals(promptTools(c), promptTools(r.inputs), r.id);
    assertEquals(simRlReward(c, r.targets, r.targets), simRlReward(r.inputs, r.targets, r.targets));
  }
});
