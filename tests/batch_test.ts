import {
  attentionSeqs,
  emptyStats,
  loadTrainset,
  lossPositions,
  makeMicroBatches,
  type Sample,
  tokenizeRow,
} from "../data/batch.ts";
import { DataError } from "../lib/errors.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { targetRowsRef } from "../train/ckd_step_ref.ts";
import { assertEquals, assertOk, assertRejects } from "./assert.ts";

/** One token per character (its code), so lengths are easy to count by hand. */
const chars = { encode: (s: string) => Array.from(s, (c) => c.codePointAt(0)!) };

function sample(prompt: string, target: string): { ids: Int32Array; promptLength: number } {
  return { ids: new Int32Array(chars.encode(prompt + target)), promptLength: prompt.length };
}

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

Deno.test("makeMicroBatches() packs samples end to end with labels on target positions", () => {
  const s = [sample("ab", "cd"), sample("e", "f"), sample("ghi", "j")];
  const [mb] = makeMicroBatches(s, { tokenBudget: 100 });
  assertEquals([mb.rows, mb.rowLength, mb.mode], [1, 10, "packed"]);
  assertEquals([...mb.ids], chars.encode("abcdefghij"));
  assertEquals([...mb.positions], [0, 1, 2, 3, 0, 1, 0, 1, 2, 3]);
  // "ab|cd": positions 1,2 predict c,d; "e|f": position 0 predicts f; "ghi|j": 2 predicts j.
  const c = (x: string) => x.codePointAt(0)!;
  assertEquals([...mb.labels], [-1, c("c"), c("d"), -1, c("f"), -1, -1, -1, c("j"), -1]);
  assertEquals([...mb.lossMask], [0, 1, 1, 0, 1, 0, 0, 0, 1, 0]);
  assertEquals(mb.targetTokens, 4);
  assertEquals(mb.seqs.map((q) => [q.sample, q.start, q.length, q.promptLength]), [
    [0, 0, 4, 2],
    [1, 4, 2, 1],
    [2, 6, 4, 3],
  ]);
  assertEquals(attentionSeqs(mb), [
    { qStart: 0, qLen: 4, kStart: 0 },
    { qStart: 4, qLen: 2, kStart: 4 },
    { qStart: 6, qLen: 4, kStart: 6 },
  ]);
  // The same rows and targets as the CKD trainer's reference (train/ckd_step_ref.ts).
  const ref = targetRowsRef(s.map((x) => ({ ids: [...x.ids], promptLength: x.promptLength })));
  const ours = [...mb.labels].flatMap((l, row) => (l >= 0 ? [{ row, target: l }] : []));
  assertEquals(ours, ref);
});

Deno.test("makeMicroBatches() splits by token budget and by maxSequences", () => {
  const s = [sample("ab", "c"), sample("de", "f"), sample("gh", "i"), sample("jklmnop", "q")];
  const budget = makeMicroBatches(s, { tokenBudget: 6 });
  assertEquals(budget.map((m) => m.seqs.map((q) => q.sample)), [[0, 1], [2], [3]]);
  assertOk(budget.every((m) => m.ids.length <= 6 || m.seqs.length === 1));
  const count = makeMicroBatches(s, { tokenBudget: 1000, maxSequences: 3 });
  assertEquals(count.map((m) => m.seqs.map((q) => q.sample)), [[0, 1, 2], [3]]);
});

Deno.test("makeMicroBatches() padded mode: B rows of the longest length, padding ignored", () => {
  const s = [sample("ab", "cd"), sample("e", "f")];
  const [mb] = makeMicroBatches(s, { tokenBudget: 8, mode: "padded", padId: 0 });
  assertEquals([mb.rows, mb.rowLength], [2, 4]);
  assertEquals([...mb.ids], [...chars.encode("abcd"), ...chars.encode("ef"), 0, 0]);
  assertEquals([...mb.positions], [0, 1, 2, 3, 0, 1, 0, 0]);
  assertEquals([...mb.lossMask], [0, 1, 1, 0, 1, 0, 0, 0]);
  assertEquals(mb.seqs.map((q) => q.start), [0, 4]);
  // Padding counts against the budget: a third sample of length 4 would make 3 x 4 > 8.
  const three = makeMicroBatches([...s, sample("gh", "ij")], { tokenBudget: 8, mode: "padded" });
  assertEquals(three.map((m) => m.seqs.length), [2, 1]);
});

Deno.test("lossPositions() covers the positions whose next token is a target token", () => {
  assertEquals(lossPositions(sample("abc", "de")), [2, 3]);
  assertEquals(lossPositions(sample("", "de")), [0]);
  assertEquals(lossPositions(sample("abc", "")), []);
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
