/**
 * `star eval --bench bfcl` end to end on a few real BFCL entries (tests/testdata/bfcl/data):
 * --dump-prompts against BFCL's own prompts, --generations rows, counts, summary and error
 * rows, the usage errors, and the model path (prompts -> generate -> judge) resuming a killed
 * run with a stand-in generator.
 */
import { assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { star } from "./_star.ts";
import { evalWithModel, type Generate, loadSelection } from "../cli/_eval_bfcl.ts";
import { hasGpu } from "../engine/device.ts";
import { generateRef } from "../model/ref.ts";
import { smallModel } from "./_small_model.ts";

const DATA = new URL("./testdata/bfcl/data", import.meta.url).pathname;
const FIXTURE = new URL("./testdata/bfcl/", import.meta.url).pathname;

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "star_eval_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const readRows = async (path: string) =>
  (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
const block = (c: unknown) => `<tool_call>\n${JSON.stringify(c)}\n</tool_call>`;

const GOOD_80 = "<think>\nThai in Manhattan.\n</think>\n\n" + block({
  name: "find_restaurants",
  arguments: {
    location: "Manhattan, NY",
    food_type: "thai",
    number: 5,
    dietary_requirements: ["Vegan"],
  },
});

Deno.test("star eval --dump-prompts writes BFCL's prompt for each selected entry", async () => {
  await withDir(async (dir) => {
    const r = await star([
      "eval",
      "--bench",
      "bfcl",
      "--bfcl-data",
      DATA,
      "--categories",
      "live_irrelevance,simple_java",
      "--limit",
      "3",
      "--dump-prompts",
      `${dir}/p.jsonl`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const rows = await readRows(`${dir}/p.jsonl`);
    assertEquals(rows.map((x) => x.id.split("_").slice(0, -1).join("_")), [
      "live_irrelevance",
      "live_irrelevance",
      "live_irrelevance",
      "simple_java",
      "simple_java",
      "simple_java",
    ]);
    const file = await Deno.open(`${FIXTURE}prompts.jsonl.gz`);
    const text = await new Response(file.readable.pipeThrough(new DecompressionStream("gzip")))
      .text();
    const bfcl = new Map(
      text.trim().split("\n").map((l) => JSON.parse(l)).map((x) => [x.id, x.prompt]),
    );
    for (const row of rows) assertEquals(row.prompt, bfcl.get(row.id), row.id);
  });
});

Deno.test("star eval --generations judges each row in order, reports bad rows, exits 1", async () => {
  await withDir(async (dir) => {
    const input = jsonl([
      { id: "simple_python_80", completion: GOOD_80 },
      { id: "simple_python_80", completion: GOOD_80.replace('"number":5', '"number":5.0') },
      { id: "no_such_7", completion: "x" },
      { id: "irrelevance_1", completion: "I cannot help with that." },
      { id: "irrelevance_14", completion: block({ name: "f", arguments: {} }) },
      { id: "simple_python_80" },
    ]) + "{broken\n" + jsonl([
      { id: "live_relevance_0-0-0", completion: block({ name: "any", arguments: {} }) },
      { id: "simple_python_999999", completion: "x" },
    ]);
    await Deno.writeTextFile(`${dir}/in.jsonl`, input);
    const r = await star([
      "eval",
      "--bench",
      "bfcl",
      "--bfcl-data",
      DATA,
      "--generations",
      `${dir}/in.jsonl`,
      "--output",
      `${dir}/out.jsonl`,
      "--summary",
      `${dir}/summary.json`,
    ]);
    assertEquals(r.code, 1, r.stderr);
    const rows = await readRows(`${dir}/out.jsonl`);
    assertEquals(rows[0], {
      id: "simple_python_80",
      category: "simple_python",
      valid: true,
      error_type: null,
      error: null,
    });
    assertEquals(rows[1].valid, false);
    assertEquals(rows[1].error_type, "type_error:simple");
    assertEquals(
      rows[1].error,
      "Incorrect type for parameter 'number'. Expected type integer, got float. " +
        "Parameter value: 5.0.",
    );
    assertEquals(rows[2].id, "no_such_7");
    assertEquals(rows[2].line, 3);
    assertMatch(rows[2].error, /in\.jsonl" line 3: unknown BFCL entry id "no_such_7"/);
    assertEquals([rows[3].valid, rows[4].error_type], [true, "irrelevance_error:decoder_success"]);
    assertEquals(rows[5].line, 6);
    assertMatch(rows[5].error, /field "completion"/);
    assertEquals(rows[6].line, 7);
    assertMatch(rows[6].error, /line 7: invalid JSON/);
    assertEquals(rows[7].category, "live_relevance");
    assertEquals(rows[7].valid, true);
    assertMatch(rows[8].error, /line 9: unknown BFCL entry id "simple_python_999999"/);
    assertEquals(rows.length, 9);

    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
    assertEquals(summary.categories, {
      simple_python: { correct: 1, total: 2, accuracy: 0.5 },
      irrelevance: { correct: 1, total: 2, accuracy: 0.5 },
      live_relevance: { correct: 1, total: 1, accuracy: 1 },
    });
    assertEquals(summary.scores["Relevance Detection"], 100);
    assertEquals(summary.scores["Non-Live Simple AST"], null);
    assertEquals(summary.scores["Live Acc"], 0);
    assertMatch(r.stdout, /simple_python\s+1\s+2\s+50\.00%/);
    assertMatch(r.stdout, /Relevance Detection\s+100\.00%/);
    assertMatch(r.stderr, /judged 5 rows in .*, 4 errors/);
    // each bad row is also named on stderr, once
    const named = r.stderr.split("\n").filter((l) => l.startsWith("star: Cannot read"));
    assertEquals(named.map((l) => Number(/ line (\d+):/.exec(l)![1])).sort(), [3, 6, 7, 9]);
  });
});

Deno.test("star eval --generations skips rows outside --categories and --limit", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/in.jsonl`,
      jsonl([
        { id: "simple_python_80", completion: GOOD_80 },
        { id: "simple_python_89", completion: GOOD_80 },
        { id: "irrelevance_1", completion: "none" },
      ]),
    );
    const r = await star([
      "eval",
      "--bench=bfcl",
      `--bfcl-data=${DATA}`,
      `--generations=${dir}/in.jsonl`,
      "--categories=simple_python",
      "--limit=1",
      "--output=-",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(rows.map((x) => [x.id, x.valid]), [["simple_python_80", true]]);
    assertMatch(r.stderr, /skipped 2 of entries not selected/);
    assertMatch(r.stderr, /simple_python\s+1\s+1\s+100\.00%/); // the table goes to stderr
  });
});

Deno.test("star eval rejects bad flag combinations with a usage error", async () => {
  const bfcl = ["eval", "--bench", "bfcl"];
  const cases: [string[], RegExp, number][] = [
    [[...bfcl, "--generations", "x"], /needs --bfcl-data/, 2],
    [[...bfcl, "--bfcl-data", DATA], /exactly one of --dump-prompts, --generations, --model/, 2],
    [[...bfcl, "--bfcl-data", DATA, "--generations", "a", "--dump-prompts", "b"], /exactly one/, 2],
    [
      [...bfcl, "--bfcl-data", DATA, "--dump-prompts", "-", "--categories", "simple_pyton"],
      /did you mean "simple_python"/,
      2,
    ],
    [[...bfcl, "--bfcl-data", DATA, "--dump-prompts", "-", "--limit", "0"], /at least 1/, 2],
    [["eval", "--bench", "bfc"], /Unknown bench "bfc"; did you mean "bfcl"/, 2],
    [["eval", "--model", "m"], /--bench reward" needs --model DIR and --data FILE/, 2],
    [
      [...bfcl, "--bfcl-data", `${DATA}/nope`, "--dump-prompts", "-"],
      /Cannot open ".*nope\/BFCL_v4_simple_python.json": no such file/,
      1,
    ],
  ];
  for (const [args, re, code] of cases) {
    const r = await star(args);
    assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, re);
    assertEquals(r.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("star eval --help describes the BFCL bench", async () => {
  const r = await star(["eval", "--help"]);
  assertEquals(r.code, 0);
  for (
    const flag of ["--bench", "--bfcl-data", "--generations", "--dump-prompts", "--categories"]
  ) {
    assertMatch(r.stdout, new RegExp(flag));
  }
});

Deno.test("evalWithModel() judges generated completions and resumes a killed run", async () => {
  const entries = await loadSelection({
    dir: DATA,
    categories: ["simple_python", "irrelevance"],
    limit: 3,
  });
  assertEquals(entries.length, 6);
  // A stand-in model: the right call for simple_python_80, a refusal everywhere else.
  const answer = (p: string) => p.includes("restaurants nearby my location") ? GOOD_80 : "No.";
  const asked: string[][] = [];
  let killAfter = 1;
  const generate: Generate = (prompts) => {
    if (killAfter-- === 0) return Promise.reject(new Error("killed"));
    asked.push(prompts);
    return Promise.resolve(prompts.map(answer));
  };
  await withDir(async (dir) => {
    const output = `${dir}/rows.jsonl`;
    const log = () => {};
    await assertRejects(() => evalWithModel(entries, generate, { output, chunk: 4, log }));
    assertEquals((await readRows(output)).length, 4);
    killAfter = Infinity;
    const { counts } = await evalWithModel(entries, generate, { output, chunk: 4, log });
    assertEquals(asked.map((a) => a.length), [4, 2]); // the second run asked only for the rest
    const rows = await readRows(output);
    assertEquals(rows.map((r) => r.id), entries.map((e) => e.id));
    assertEquals(rows[0].completion, GOOD_80);
    assertEquals(Object.fromEntries(counts), {
      simple_python: { correct: 1, total: 3 },
      irrelevance: { correct: 3, total: 3 },
    });
    // another selection must not silently reuse those rows
    await assertRejects(
      () => evalWithModel(entries.slice(1), generate, { output, log }),
      /written for another selection/,
    );
  });
});

Deno.test({
  name:
    "star eval --bench bfcl --model: greedy completions as a float64 CPU generation, judged as --generations judges them",
  ignore: !(await hasGpu()),
  async fn() {
    await withDir(async (dir) => {
      const sel = [
        "--bench",
        "bfcl",
        "--bfcl-data",
        DATA,
        "--categories",
        "simple_python,multiple",
      ];
      const dump = await star(["eval", ...sel, "--limit", "2", "--dump-prompts", `${dir}/p.jsonl`]);
      assertEquals(dump.code, 0, dump.stderr);
      const prompts = await readRows(`${dir}/p.jsonl`);
      assertEquals(prompts.length, 4);
      const { ref, tok } = await smallModel(`${dir}/model`, prompts.map((p) => p.prompt), {
        shape: { num_hidden_layers: 1 },
        seed: 5,
        std: 0.3,
      });
      const r = await star([
        "eval",
        ...sel,
        "--limit",
        "2",
        "--model",
        `${dir}/model`,
        "--max-new-tokens",
        "6",
        "--output",
        `${dir}/model.jsonl`,
        "--summary",
        `${dir}/model.json`,
      ]);
      assertEquals(r.code, 0, r.stderr);
      const rows = await readRows(`${dir}/model.jsonl`);
      assertEquals(rows.map((x) => x.id), prompts.map((p) => p.id));
      const stop = [tok.requireId("<|im_end|>"), tok.requireId("<|endoftext|>")];
      for (const [i, row] of rows.entries()) {
        const want = generateRef(ref, tok.encode(prompts[i].prompt), {
          maxNewTokens: 6,
          stopIds: stop,
          sampling: { temperature: 0, topP: 1, topK: 0 },
        });
        assertEquals(row.completion, tok.decode(want.ids, { skipSpecialTokens: true }), row.id);
      }
      // the same completions given as --generations are judged the same
      await Deno.writeTextFile(
        `${dir}/gens.jsonl`,
        jsonl(rows.map((x) => ({ id: x.id, completion: x.completion }))),
      );
      const g = await star([
        "eval",
        ...sel,
        "--limit",
        "2",
        "--generations",
        `${dir}/gens.jsonl`,
        "--output",
        `${dir}/gens_out.jsonl`,
        "--summary",
        `${dir}/gens.json`,
      ]);
      assertEquals(g.code, 0, g.stderr);
      const judged = await readRows(`${dir}/gens_out.jsonl`);
      assertEquals(
        rows.map(({ completion: _c, ...x }) => x),
        judged.map(({ completion: _c, ...x }) => x),
      );
      assertEquals(
        await Deno.readTextFile(`${dir}/model.json`),
        await Deno.readTextFile(`${dir}/gens.json`),
      );
    });
  },
});
