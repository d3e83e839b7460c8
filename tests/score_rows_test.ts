import { assertEquals, assertMatch } from "./assert.ts";
import { type Batch, scoreBatch } from "../cli/_score_rows.ts";

const enc = new TextEncoder();
const batch = (
  text: string | Uint8Array<ArrayBuffer>,
  over: Partial<Batch["lines"]> = {},
): Batch => ({
  seq: 0,
  file: "in.jsonl",
  lines: {
    bytes: typeof text === "string" ? enc.encode(text) : text,
    firstLine: 1,
    first: true,
    last: true,
    ...over,
  },
});
const rows = (text: string) => text.split("\n").map((l) => JSON.parse(l));

Deno.test("scoreBatch() drops a BOM and one more U+FEFF at the file's start only", () => {
  const row = '{"id": 1}';
  // At the start of the file: the BOM and one U+FEFF after it go; the row reads.
  const start = scoreBatch(batch("\ufeff\ufeff" + row + "\n"));
  assertMatch(rows(start.text)[0].error, /line 1: field "prompt" or "inputs" is missing/);
  // A third is part of the line: invalid JSON.
  const third = scoreBatch(batch("\ufeff\ufeff\ufeff" + row + "\n"));
  assertMatch(rows(third.text)[0].error, /line 1: invalid JSON/);
  // A later batch starts inside the file: its U+FEFF is part of the line.
  const later = scoreBatch(batch("\ufeff" + row + "\n", { first: false, firstLine: 40 }));
  assertMatch(rows(later.text)[0].error, /line 40: invalid JSON/);
});

Deno.test("scoreBatch() numbers lines from firstLine, counting blank ones it skips", () => {
  const r = scoreBatch(batch('{"id": 1}\r\n \t\r\n\n{"id": 2}\n\r\n{"id": 3}', { firstLine: 7 }));
  assertEquals(r.rows, 3);
  assertEquals(r.errors, 3);
  assertEquals(rows(r.text).map((x) => [x.id, x.line]), [[1, 7], [2, 10], [3, 12]]);
});

Deno.test("scoreBatch() turns invalid UTF-8 into U+FFFD as a streaming decoder does", () => {
  const bytes = new Uint8Array([...enc.encode('{"id": "a'), 0xff, 0xe2, 0x82, ...enc.encode('"}')]);
  const r = scoreBatch(batch(bytes));
  assertEquals(rows(r.text)[0].id, "a\ufffd\ufffd");
});
