// The pure parts of data/recipe against tests/reference/recipe_ref.py (Python 3.11: the real
// random and ast modules), byte for byte, on hand-made and fuzzed inputs
// (tests/reference/make_recipe_fixtures.sh writes tests/testdata/recipe/).
import { assertEquals, assertThrows } from "./assert.ts";
import {
  CallSyntaxError,
  labelFile,
  literalEval,
  LiteralSyntaxError,
  mixFiles,
  mixReportJson,
  mixReportText,
  NotJsonError,
  parsePythonCalls,
  PyRandom,
} from "../data/recipe/mod.ts";
import { pyFixed } from "../data/recipe/_py_format.ts";
import { dumpsPyJson, type PyDict, type PyValue } from "../lib/py/json.ts";

const testdata = new URL("./testdata/recipe/", import.meta.url);

async function fixture(name: string): Promise<string> {
  const url = new URL(name, testdata);
  if (!name.endsWith(".gz")) return await Deno.readTextFile(url);
  const file = await Deno.open(url);
  return await new Response(file.readable.pipeThrough(new DecompressionStream("gzip"))).text();
}

async function fixtureFile(name: string): Promise<string> {
  const p = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(p, await fixture(name));
  return p;
}

/** Equal texts, or the first differing line named. */
function assertSameLines(actual: string, expected: string, what: string) {
  const a = actual.split("\n");
  const e = expected.split("\n");
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) assertEquals(a[i], e[i], `${what}: line ${i + 1} differs`);
  }
  assertEquals(actual, expected);
}

Deno.test("PyRandom shuffle(), sampleIndices() and getrandbits() match CPython's random", async () => {
  const rows = (await fixture("random.expected.jsonl.gz")).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(rows.length > 200, true);
  for (const r of rows) {
    const rng = new PyRandom(BigInt(r.seed));
    let got: unknown;
    if (r.op === "shuffle") {
      const x = Array.from({ length: r.n }, (_, i) => i);
      rng.shuffle(x);
      got = x;
    } else if (r.op === "sample") {
      // The big draws are stored cut at 200 positions.
      const all = rng.sampleIndices(r.n, r.k);
      assertEquals(all.length, r.k);
      got = r.k > 200 && r.n > 10000 ? all.slice(0, 200) : all;
    } else {
      got = [1, 7, 31, 32, 33, 64, 100].map((b) => rng.getrandbits(b).toString());
    }
    assertEquals(got, r.result, `${r.op} seed=${r.seed} n=${r.n} k=${r.k}`);
  }
});

function callsResult(text: string): string {
  let v: PyValue;
  try {
    const calls = parsePythonCalls(text);
    v = new Map([[
      "calls",
      calls.map((c) => new Map<string, PyValue>([["name", c.name], ["arguments", c.arguments]])),
    ]]);
  } catch (err) {
    if (err instanceof CallSyntaxError) v = new Map([["error", "CallSyntaxError"]]);
    else if (err instanceof NotJsonError) v = new Map([["error", "NotJson"]]);
    else throw err;
  }
  return dumpsPyJson(v, { ensureAscii: false });
}

Deno.test("parsePythonCalls() matches format_data.py's parser + ast.literal_eval on 3000+ fuzzed texts", async () => {
  const cases = (await fixture("calls_cases.jsonl.gz")).trim().split("\n").map((l) =>
    JSON.parse(l).text as string
  );
  const expected = (await fixture("calls.expected.jsonl.gz")).trim().split("\n");
  assertEquals(cases.length, expected.length);
  let calls = 0, errors = 0;
  for (let i = 0; i < cases.length; i++) {
    const got = callsResult(cases[i]);
    assertEquals(got, expected[i], `case ${i + 1}: ${JSON.stringify(cases[i])}`);
    if (got.startsWith('{"calls": [{')) calls++;
    if (got.startsWith('{"error"')) errors++;
  }
  // The fuzz reaches every outcome often enough to mean something.
  assertEquals(calls > 1000 && errors > 100, true, `${calls} with calls, ${errors} errors`);
});

Deno.test("literalEval() reads Python literals and refuses the rest", () => {
  const v = (t: string) => dumpsPyJson(literalEval(t), { ensureAscii: false });
  assertEquals(
    v("(1, [2.0, 'x'], {'k': None, 3: True})"),
    '[1, [2.0, "x"], {"k": null, "3": true}]',
  );
  assertEquals(v("-0.0"), "-0.0");
  assertEquals(v("0x_1f"), "31");
  assertEquals(v("'a' \"b\" '''c'''"), '"abc"');
  assertEquals(v("{1: 'x', 1.0: 'y', True: 'z'}"), '{"1": "z"}');
  for (const bad of ["x", "1 +", "-True", "1+2", "[1", "f'x'", "01", "1__0", "a.b", "{**a}"]) {
    assertThrows(() => literalEval(bad), LiteralSyntaxError, bad);
  }
  for (const notJson of ["{1, 2}", "b'x'", "1j", "...", "{(1,): 2}", "{[1]: 2}", "'\\N{BULLET}'"]) {
    assertThrows(() => literalEval(notJson), NotJsonError, notJson);
  }
});

Deno.test("pyFixed() rounds exact ties to even as Python's format does", () => {
  assertEquals(pyFixed(0.125, 2), "0.12");
  assertEquals(pyFixed(0.375, 2), "0.38");
  assertEquals(pyFixed(3.125, 2), "3.12");
  assertEquals(pyFixed(2.675, 2), "2.67"); // just below the tie in binary
  assertEquals(pyFixed(100, 2), "100.00");
  assertEquals(pyFixed(1 / 3 * 100, 2), "33.33");
});

for (const last of [false, true]) {
  const name = last ? "label_last" : "label";
  Deno.test(`labelFile() rows, JSON report and text match labeling_messages.py${last ? " --only-stat-last-round" : ""}`, async () => {
    const input = await fixtureFile("label_cases.jsonl.gz");
    const output = await Deno.makeTempFile();
    const s = await labelFile(input, output, { onlyLastRound: last });
    assertSameLines(
      await Deno.readTextFile(output),
      await fixture(`${name}.expected.jsonl.gz`),
      "rows",
    );
    assertEquals(
      dumpsPyJson(s.stats.report(), { ensureAscii: false, indent: 2 }),
      await fixture(`${name}.report.json`),
    );
    assertSameLines(s.stats.text(), await fixture(`${name}.txt`), "text report");
    assertEquals(s.skipped.size, 0);
  });
}

// The settings of make_recipe_fixtures.sh.
const MIX_SETTINGS: Record<string, Record<string, number>> = {
  default: { size: 400 },
  seed7: { size: 250, seed: 7, maxPromptTokens: 5000, maxTurns: 4 },
  rates: {
    size: 300,
    seed: 1,
    responseRate: 0.5,
    multiStepRate: 0.1,
    singleTurnsRate: 0.6,
    parallelRate: 0.2,
  },
  short: { size: 2900, seed: 3 },
  zero: { size: 0 },
};

for (const [name, setting] of Object.entries(MIX_SETTINGS)) {
  Deno.test(`mixFiles() picks the rows data_proportion.py picks, in its order: ${name}`, async () => {
    const inputs = [
      await fixtureFile("mix_cases_a.jsonl.gz"),
      await fixtureFile("mix_cases_b.jsonl.gz"),
    ];
    const output = await Deno.makeTempFile();
    const s = await mixFiles(inputs, output, {
      seed: 42,
      maxTurns: 10,
      responseRate: 0.2,
      multiStepRate: 0.3,
      singleTurnsRate: 0.3,
      parallelRate: 0.5,
      maxPromptTokens: 8192,
      ...setting,
      size: setting.size,
      promptTokens: (row: PyDict) => Number(row.get("_tokens")),
    });
    assertSameLines(
      await Deno.readTextFile(output),
      await fixture(`mix_${name}.expected.jsonl.gz`),
      "rows",
    );
    assertEquals(
      dumpsPyJson(mixReportJson(s.report), { ensureAscii: false, indent: 2 }),
      await fixture(`mix_${name}.report.json`),
    );
    assertSameLines(mixReportText(s.report), await fixture(`mix_${name}.txt`), "text report");
  });
}
