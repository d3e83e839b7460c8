// star data format|label|mix end to end: hand-made raw rows in each public set's schema
// (tests/testdata/recipe/raw/) against tests/reference/format_ref.py (STAR's format_data.py
// restated, its Sim-RL self-check through prepare_ref.py's template rendering and
// sim_rl_reward.py), the label and mix of the xlam sample against recipe_ref.py, and the
// command line: subcommands, errors, exit codes, atomic outputs.
import { assertEquals, assertMatch } from "./assert.ts";
import { star } from "./_star.ts";
import { simrlSelfCheck } from "../cli/data.ts";
import { formatFile, labelFile, mixFiles, promptTokens } from "../data/recipe/mod.ts";
import type { DatasetName } from "../data/recipe/mod.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { parsePyJson } from "../lib/py/json.ts";

const raw = new URL("./testdata/recipe/raw/", import.meta.url).pathname;
const recipe = new URL("./testdata/recipe/", import.meta.url).pathname;

const FORMAT_CASES: [DatasetName, string, string, number | undefined, number | undefined][] = [
  ["toolmind", "toolmind.jsonl", "toolmind.expected.jsonl", undefined, undefined],
  ["toolmind", "toolmind.jsonl", "toolmind_size4_seed7.expected.jsonl", 4, 7],
  ["toolace", "toolace.jsonl", "toolace.expected.jsonl", undefined, undefined],
  ["xlam", "xlam.json", "xlam.expected.jsonl", undefined, undefined],
  ["xlam", "xlam.json", "xlam_size3.expected.jsonl", 3, undefined],
  ["hammer", "hammer.jsonl", "hammer.expected.jsonl", undefined, undefined],
];

for (const [dataset, input, expected, size, seed] of FORMAT_CASES) {
  const extra = size === undefined
    ? ""
    : ` --size ${size}${seed === undefined ? "" : ` --seed ${seed}`}`;
  Deno.test(`formatFile() output is byte-identical to the Python reference: ${dataset} ${input}${extra}`, async () => {
    const output = await Deno.makeTempFile({ suffix: ".jsonl" });
    const tokenizer = await Tokenizer.builtin();
    const s = await formatFile(raw + input, output, {
      dataset,
      size,
      seed,
      keep: simrlSelfCheck(tokenizer),
    });
    const want = await Deno.readTextFile(raw + expected);
    assertEquals(await Deno.readTextFile(output), want);
    assertEquals(s.written, want.split("\n").length - 1);
    assertEquals(s.written > 0, true);
  });
}

Deno.test("formatFile() counts what it drops by reason: toolmind and toolace", async () => {
  const tokenizer = await Tokenizer.builtin();
  const out = await Deno.makeTempFile();
  const lines: string[] = [];
  const tm = await formatFile(raw + "toolmind.jsonl", out, {
    dataset: "toolmind",
    keep: simrlSelfCheck(tokenizer),
    onDrop: (l) => lines.push(l),
  });
  assertEquals(Object.fromEntries(tm.dropped), {
    "invalid reasoning content": 1,
    "invalid JSON": 1,
    "unsupported role": 1,
    "Sim-RL self-check: format invalid (score -1)": 2,
    "Sim-RL self-check: malformed tools block": 1,
  });
  assertEquals(tm.malformed, 2); // the broken line and the system message
  assertMatch(lines.join("\n"), /toolmind\.jsonl" line 6: invalid JSON/);
  const ta = await formatFile(raw + "toolace.jsonl", out, { dataset: "toolace" });
  assertEquals(Object.fromEntries(ta.dropped), {
    "unexpected role": 2,
    "unknown tool name": 2,
    "argument not among the tool's parameters": 1,
    "tool call arguments are not valid JSON": 1,
    'field "tools" is not valid JSON': 1,
  });
});

Deno.test("star data format writes its output atomically: a failing run leaves the old file", async () => {
  const dir = await Deno.makeTempDir();
  const output = `${dir}/out.jsonl`;
  await Deno.writeTextFile(output, "old\n");
  const broken = `${dir}/broken.json`;
  await Deno.writeTextFile(
    broken,
    '[{"id": 1, "query": "q", "answers": "[]", "tools": "[]"},\n{"id": 2',
  );
  const r = await star([
    "data",
    "format",
    "--dataset",
    "xlam",
    "--input",
    broken,
    "--output",
    output,
  ]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /broken\.json" line 2: the array is not closed/);
  assertEquals(await Deno.readTextFile(output), "old\n");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["broken.json", "out.jsonl"]);
});

Deno.test("star data: subcommand help, unknown subcommand and dataset, bad flags", async () => {
  const help = await star(["data", "--help"]);
  assertEquals(help.code, 0);
  assertMatch(help.stdout, /Usage: star data <format\|label\|mix>/);
  const none = await star(["data"]);
  assertEquals(none.code, 2);
  const sub = await star(["data", "lable"]);
  assertEquals(sub.code, 2);
  assertMatch(sub.stderr, /Unknown subcommand "lable" for "star data"; did you mean "label"\?/);
  const fmtHelp = await star(["data", "format", "--help"]);
  assertMatch(fmtHelp.stdout, /^Usage: star data format --dataset toolmind\|toolace\|xlam\|hammer/);
  const ds = await star(["data", "format", "--dataset", "xlma", "--input", "x", "--output", "y"]);
  assertEquals(ds.code, 2);
  assertMatch(ds.stderr, /Unknown dataset "xlma".*did you mean "xlam"/);
  const flag = await star(["data", "mix", "--input", "a", "--output", "b"]);
  assertEquals(flag.code, 2);
  assertMatch(flag.stderr, /Missing required flag "--size" for "star data mix"/);
  const rate = await star([
    "data",
    "mix",
    "--input",
    "a",
    "--output",
    "b",
    "--size",
    "5",
    "--parallel-rate",
    "2",
  ]);
  assertEquals(rate.code, 2);
});

Deno.test("star data label + mix on the xlam sample: the reference's report numbers and rows", async () => {
  const dir = await Deno.makeTempDir();
  const sample = `${dir}/xlam.jsonl`;
  const gz = await Deno.open(new URL("./testdata/prepare/xlam_sample.jsonl.gz", import.meta.url));
  await Deno.writeTextFile(
    sample,
    await new Response(gz.readable.pipeThrough(new DecompressionStream("gzip"))).text(),
  );
  const label = await star([
    "data",
    "label",
    "--input",
    sample,
    "--output",
    `${dir}/labeled.jsonl`,
    "--report",
    `${dir}/label.json`,
    "--only-last-round",
  ]);
  assertEquals(label.code, 0, label.stderr);
  assertEquals(
    await Deno.readTextFile(`${dir}/label.json`),
    await Deno.readTextFile(recipe + "xlam_label.report.json"),
  );
  assertMatch(label.stderr, /200 rows written/);
  const mixArgs = ["data", "mix", "--input", `${dir}/labeled.jsonl`, "--size", "100"];
  const mix = await star([
    ...mixArgs,
    "--output",
    `${dir}/mix.jsonl`,
    "--report",
    `${dir}/mix.json`,
  ]);
  assertEquals(mix.code, 0, mix.stderr);
  assertEquals(
    await Deno.readTextFile(`${dir}/mix.json`),
    await Deno.readTextFile(recipe + "xlam_mix.report.json"),
  );
  assertMatch(mix.stderr, /final: 100 rows/);
  const ids = (await Deno.readTextFile(`${dir}/mix.jsonl`)).trim().split("\n").map((l) =>
    (parsePyJson(l) as Map<string, unknown>).get("id")
  );
  assertEquals(ids, JSON.parse(await Deno.readTextFile(recipe + "xlam_mix.ids.json")));
  // The same seed gives the same bytes.
  const again = await star([...mixArgs, "--output", `${dir}/mix2.jsonl`]);
  assertEquals(again.code, 0);
  assertEquals(
    await Deno.readTextFile(`${dir}/mix2.jsonl`),
    await Deno.readTextFile(`${dir}/mix.jsonl`),
  );
});

Deno.test("mixFiles() drops rows over --max-prompt-tokens counted with the real tokenizer", async () => {
  const dir = await Deno.makeTempDir();
  const input = `${dir}/in.jsonl`;
  const rows = [];
  for (let i = 0; i < 40; i++) {
    const long = i % 4 === 0 ? " word".repeat(400) : "";
    rows.push(JSON.stringify({
      id: i,
      messages: [
        { role: "user", content: `question ${i}${long}` },
        { role: "assistant", content: null, tool_calls: [{ name: "f", arguments: { x: i } }] },
      ],
      tools: [{ name: "f", description: "f", parameters: { x: { type: "int" } } }],
    }));
  }
  await Deno.writeTextFile(input, rows.join("\n") + "\n");
  await labelFile(input, `${dir}/l.jsonl`);
  const tokenizer = await Tokenizer.builtin();
  const lengths = (await Deno.readTextFile(`${dir}/l.jsonl`)).trim().split("\n").map((l) =>
    promptTokens(parsePyJson(l) as Map<string, never>, tokenizer)
  );
  // Short prompts are ~ 150 tokens with the tools block, long ones 400 more.
  const limit = 400;
  assertEquals(lengths.filter((n) => n > limit).length, 10);
  const s = await mixFiles([`${dir}/l.jsonl`], `${dir}/m.jsonl`, {
    size: 20,
    seed: 42,
    maxTurns: 10,
    responseRate: 0,
    multiStepRate: 0,
    singleTurnsRate: 1,
    parallelRate: 0,
    maxPromptTokens: limit,
    promptTokens: (row) => promptTokens(row, tokenizer),
  });
  const kept = (await Deno.readTextFile(`${dir}/m.jsonl`)).trim().split("\n").map((l) =>
    (parsePyJson(l) as Map<string, unknown>).get("id")
  );
  for (const id of kept) assertEquals(Number(id) % 4 === 0, false, `row ${id} is over the limit`);
  assertEquals(s.report.taken - s.report.overPromptTokens, s.report.total);
  assertEquals(s.report.overPromptTokens > 0, true);
});
