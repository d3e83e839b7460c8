import { emptyStats, loadTrainset, type Sample, tokenizeRow } from "../data/batch.ts";
import { DataError } from "../lib/errors.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { assertEquals, assertOk, assertRejects } from "./assert.ts";

/** One token per character (its code), so lengths are easy to count by hand. */
const chars = { encode: (s: string) => Array.from(s, (c) => c.codePointAt(0)!) };

Deno.test("tokenizeRow() tokenizes inputs and targets apart, drops long prompts, cuts long targets", () => {
  const stats = emptyStats();
  const opts = { promptMaxLen: 4, generateMaxLen: 3 };
  const a = tokenizeRow(chars, { inputs: "abcd", targets: "xy", id: 7 }, opts, stats)!;
  assertEquals([...a.ids], [97, 98, 99, 100, 120, 121]);
  assertEquals([a.promptLength, a.truncated, a.id], [4, false, 7]);
  assertEquals(tokenizeRow(chars, { inputs: "abcde", targets: "x" }, opts, stats), null);
  const c = tokenizeRow(chars, { inputs: "a", targets: "wxyz" }, opts, stats)!;
  assertEquals([...c.ids], [97, 119, 120, 121]);
  assertOk(c.truncated);
  assertEquals(stats, {
    rows: 3,
    kept: 2,
    droppedLongPrompt: 1,
    truncatedTargets: 1,
    badRows: 0,
    promptTokens: 5,
    targetTokens: 5,
  });
});

Deno.test("tokenizeRow() differs from tokenizing the joined text where BPE merges across the seam", async () => {
  // "inputs" ending in a space and "targets" starting with a word: apart, the space is its own
  // token; joined, it merges into " word". The contract asks for the separate tokenization.
  const tok = await Tokenizer.builtin();
  const s = tokenizeRow(tok, { inputs: "say ", targets: "hello" }, {
    promptMaxLen: 99,
    generateMaxLen: 99,
  }, emptyStats())!;
  assertEquals([...s.ids], [...tok.encode("say "), ...tok.encode("hello")]);
  assertOk(tok.encode("say hello").length < s.ids.length);
});

Deno.test("loadTrainset() reads rows, names bad lines and counts them with onError", async () => {
  const p = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(
    p,
    [
      '{"id": "a", "inputs": "ab", "targets": "c"}',
      '{"id": "b", "inputs": "ab"}',
      '{"id": "c", "inputs": 3, "targets": "c"}',
      "oops",
      '{"id": "d", "inputs": "abcdefgh", "targets": "c"}',
      '{"id": "e", "inputs": "x", "targets": "yz"}',
    ].join("\n"),
  );
  const errors: DataError[] = [];
  const opts = { promptMaxLen: 5, generateMaxLen: 8, keepText: true };
  const { samples, stats } = await loadTrainset(p, chars, {
    ...opts,
    onError: (e) => errors.push(e),
  });
  assertEquals(samples.map((x: Sample) => [x.index, x.id, x.line, x.targets]), [
    [0, "a", 1, "c"],
    [1, "e", 6, "yz"],
  ]);
  assertEquals(errors.map((e) => [e.line, e.field]), [[2, "targets"], [3, "inputs"], [
    4,
    undefined,
  ]]);
  assertEquals(errors[0].message, `Cannot read "${p}" line 2: field "targets" is missing`);
  assertEquals([stats.badRows, stats.droppedLongPrompt, stats.kept], [3, 1, 2]);
  await assertRejects(() => loadTrainset(p, chars, opts), DataError);
});
