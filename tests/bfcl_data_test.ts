/**
 * loadBfclCategory(): BFCL's data files read with Python's JSON values, answers paired by
 * position, and bad lines reported with their file and line.
 */
import { assertEquals, assertRejects } from "./assert.ts";
import { countBfclEntries, loadBfclCategory } from "../data/bfcl.ts";
import { DataError } from "../lib/errors.ts";

async function withData(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "star_bfcl_data_" });
  try {
    await Deno.mkdir(`${dir}/possible_answer`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const entry = (id: string, fn = "[]") =>
  `{"id": "${id}", "question": [[{"role": "user", "content": "q"}]], "function": ${fn}}`;

Deno.test("loadBfclCategory() pairs entries with answers by line and keeps Python's numbers", async () => {
  await withData({
    "BFCL_v4_simple_python.json": `${entry("simple_python_0")}\n\n${entry("simple_python_1")}`,
    "possible_answer/BFCL_v4_simple_python.json":
      `{"id": "x", "ground_truth": [{"f": {"a": [5.0, 5]}}]}\n` +
      `{"id": "y", "ground_truth": [{"g": {"b": [""]}}]}\n`,
  }, async (dir) => {
    const es = await loadBfclCategory(dir, "simple_python", { withAnswers: true });
    assertEquals(es.map((e) => e.id), ["simple_python_0", "simple_python_1"]);
    assertEquals(es[0].category, "simple_python");
    const params = es[0].answer![0].get("f") as Map<string, unknown>;
    assertEquals(params.get("a"), [5, 5n]); // float 5.0 and int 5 stay apart
    assertEquals([...es[1].answer![0].keys()], ["g"]);
    const one = await loadBfclCategory(dir, "simple_python", { withAnswers: true, limit: 1 });
    assertEquals(one.length, 1);
    assertEquals(await countBfclEntries(dir, "simple_python"), 2);
    assertEquals(await countBfclEntries(dir, "parallel"), null);
  });
});

Deno.test("loadBfclCategory() names the file and line of a bad entry or answer", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { "BFCL_v4_irrelevance.json": `${entry("irrelevance_0")}\n{"id": 1` },
      /BFCL_v4_irrelevance\.json" line 2: invalid JSON/,
    ],
    [
      { "BFCL_v4_irrelevance.json": `{"id": "a", "question": [], "function": []}` },
      /line 1: field "question"/,
    ],
    [
      {
        "BFCL_v4_irrelevance.json": `{"id": "a", "question": [[{"role": "user"}]], "function": []}`,
      },
      /line 1: message 1 of "question" needs a string "role" and "content"/,
    ],
    [
      { "BFCL_v4_irrelevance.json": `{"id": "a", "question": [[]], "function": {}}` },
      /line 1: field "question"/,
    ],
    [
      { "BFCL_v4_irrelevance.json": `{"question": [[{"role": "user", "content": ""}]]}` },
      /line 1: field "id"/,
    ],
  ];
  for (const [files, re] of cases) {
    await withData(files, async (dir) => {
      await assertRejects(() => loadBfclCategory(dir, "irrelevance", { withAnswers: false }), re);
      await assertRejects(
        () => loadBfclCategory(dir, "irrelevance", { withAnswers: false }),
        DataError,
      );
    });
  }
  await withData({
    "BFCL_v4_multiple.json": `${entry("multiple_0")}\n${entry("multiple_1")}\n`,
    "possible_answer/BFCL_v4_multiple.json": `{"ground_truth": [{"f": {"a": 1}}]}\n`,
  }, async (dir) => {
    await assertRejects(
      () => loadBfclCategory(dir, "multiple", { withAnswers: true, limit: 1 }),
      /possible_answer\/BFCL_v4_multiple\.json" line 1: the acceptable values of "f" param "a" are not a list/,
    );
    await assertRejects(
      () => loadBfclCategory(dir, "multiple", { withAnswers: true }),
      /has 1 answers but .* has 2 entries/,
    );
  });
});
