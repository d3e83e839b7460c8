/**
 * `star demo` end to end on a reduced size: every stage runs, the table has its rows, the
 * artefacts are where it says, and demo.json agrees with the metrics it summarises; its held-out
 * rows ask nothing its training rows ask.
 */
import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { readMetrics } from "../train/metrics.ts";
import { DEMO_SYNTH, demoRows } from "../train/demo.ts";
import { type SynthRow, synthRows } from "../data/synthetic.ts";
import { star } from "./main_test.ts";

const ignore = !(await hasGpu());

Deno.test({
  name: "star demo (reduced) runs every stage and prints the before/after table",
  ignore,
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await star([
      "demo",
      "--output",
      out,
      "--train-rows",
      "8",
      "--heldout-rows",
      "4",
      "--gen-prompts",
      "2",
      "--teacher-steps",
      "2",
      "--student-steps",
      "2",
    ]);
    assertEquals(r.code, 0, r.stderr);
    for (
      const row of ["held-out KD loss", "top-1 agreement", "Sim-RL reward", "format-valid rate"]
    ) {
      assertMatch(r.stdout, new RegExp(row));
    }
    assertMatch(r.stdout, new RegExp(`under "${out.replaceAll("\\", "\\\\")}"`));
    const res = JSON.parse(await Deno.readTextFile(join(out, "demo.json")));
    for (const k of ["kdLoss", "agreement", "reward", "formatRate"]) {
      assertEquals(Number.isFinite(res.before[k]) && Number.isFinite(res.after[k]), true, k);
    }
    assertEquals((await readMetrics(join(out, "teacher-sft", "metrics.jsonl"))).length, 2);
    assertEquals((await readMetrics(join(out, "ckd", "metrics.jsonl"))).length, 2);
    for (
      const f of ["train.jsonl", "heldout.jsonl", "ckd/final/model.safetensors", "examples.txt"]
    ) {
      assertEquals(await Deno.stat(join(out, f)).then(() => true, () => false), true, f);
    }
  },
});

Deno.test("star demo --help names what it shows", async () => {
  const r = await star(["demo", "--help"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /--output DIR/);
  assertMatch(r.stdout, /top-1/);
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
