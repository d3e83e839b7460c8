import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { jsonObject, rowError, runLineBytes, runRows } from "../cli/_rows.ts";
import { decodeLines, isBlank, JsonlWriter } from "../data/jsonl.ts";
import { DataError } from "../lib/errors.ts";

/** A file of `n` rows {"i": k} with blank lines and CRLF sprinkled in. */
async function rowsFile(n: number): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  const lines: string[] = [];
  for (let k = 0; k < n; k++) {
    if (k % 7 === 3) lines.push(" ");
    lines.push(`{"i": ${k}}` + (k % 2 ? "\r" : ""));
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

/** Resolves after a pseudo-random few milliseconds, so that batches finish out of order. */
function later<T>(value: T, k: number): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), (k * 7919) % 5));
}

Deno.test("runLineBytes() writes batches in input order with at most inFlight under way", async () => {
  const input = await rowsFile(3000);
  const output = await Deno.makeTempFile({ suffix: ".jsonl" });
  const out = await JsonlWriter.open(output);
  let running = 0, most = 0, batches = 0;
  await runLineBytes({
    input,
    out,
    budget: 256,
    inFlight: 4,
    process: async (lines) => {
      most = Math.max(most, ++running);
      const k = batches++;
      const rows = [...decodeLines(lines)].filter((l) => !isBlank(l.text))
        .map((l) => JSON.stringify({ line: l.line, i: JSON.parse(l.text).i }));
      const text = await later(rows.join("\n"), k);
      running--;
      return text;
    },
  });
  await out.close();
  const got = (await Deno.readTextFile(output)).trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(got.map((r) => r.i), Array.from({ length: 3000 }, (_, k) => k));
  // Line numbers count the blank lines: row k sits after floor((k + 4) / 7) of them.
  assertEquals(got.map((r) => r.line), got.map((_, k) => k + 1 + Math.floor((k + 4) / 7)));
  assertOk(batches > 50, `${batches} batches`);
  assertEquals(most, 4);
});

Deno.test("runRows() puts error rows in place and keeps input order across batches in flight", async () => {
  const input = await Deno.makeTempFile({ suffix: ".jsonl" });
  const lines = Array.from(
    { length: 500 },
    (_, k) => k % 50 === 9 ? `{"id": ${k}}` : `{"i": ${k}}`,
  );
  await Deno.writeTextFile(input, lines.join("\n"));
  const output = await Deno.makeTempFile({ suffix: ".jsonl" });
  const out = await JsonlWriter.open(output);
  let k = 0;
  const res = await runRows<number>({
    input,
    out,
    parse: (text, at) => {
      const v = jsonObject(text, at);
      if (typeof v.i !== "number") throw rowError(new DataError(at.file, at.line, "no i"), v);
      return v.i;
    },
    budget: 16,
    inFlight: 3,
    process: (rows) => later(rows.map((i) => JSON.stringify({ i })), k++),
    onError: () => {},
  });
  await out.close();
  assertEquals(res, { rows: 500, errors: 10 });
  const got = (await Deno.readTextFile(output)).trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(got.map((r) => r.i ?? r.id), Array.from({ length: 500 }, (_, k) => k));
  assertEquals(got[9], { id: 9, line: 10, error: `Cannot read "${input}" line 10: no i` });
});

Deno.test("runLineBytes() rejects with the first failed batch's error, none left unhandled", async () => {
  const input = await rowsFile(300);
  const out = await JsonlWriter.open(await Deno.makeTempFile());
  let k = 0;
  // Batches 2 and 3 fail at once while batch 0 is still under way.
  const err = await assertRejects(() =>
    runLineBytes({
      input,
      out,
      budget: 64,
      inFlight: 5,
      process: () => {
        const n = k++;
        if (n === 0) return later("", 3);
        return n === 2 || n === 3 ? Promise.reject(new Error(`boom ${n}`)) : Promise.resolve("");
      },
    })
  );
  assertEquals(err.message, "boom 2");
  await out.close();
});
