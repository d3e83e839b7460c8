import {
  decodeLines,
  JsonlWriter,
  type Line,
  type LineBytes,
  readJsonl,
  readLineBytes,
  readLines,
} from "../data/jsonl.ts";
import { DataError } from "../lib/errors.ts";
import { assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";

async function tmpFile(content: string | Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  return path;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

Deno.test("readLines() strips a BOM and CRLF and numbers lines from 1", async () => {
  const path = await tmpFile('\ufeff{"a":1}\r\n\r\n{"b":2}\r\nlast');
  const lines = await collect(readLines(path));
  assertEquals(lines, [
    { line: 1, text: '{"a":1}' },
    { line: 2, text: "" },
    { line: 3, text: '{"b":2}' },
    { line: 4, text: "last", unterminated: true },
  ]);
});

Deno.test("readLines() keeps lines split across chunk boundaries and multi-byte characters", async () => {
  // 200 lines of ~1000 characters with 3-byte and 4-byte UTF-8, so 64 KiB chunks cut
  // through lines and through characters.
  const expected: string[] = [];
  for (let i = 0; i < 200; i++) expected.push(`${i}:` + "é€𝄞x".repeat(250 + (i % 7)));
  const path = await tmpFile(expected.join("\n") + "\n");
  const lines = await collect(readLines(path));
  assertEquals(lines.map((l) => l.text), expected);
  assertEquals(lines.map((l) => l.line), expected.map((_, i) => i + 1));
  assertOk(lines.every((l) => !l.unterminated));
});

Deno.test("readLines() of an empty file yields nothing; a lone newline is one blank line", async () => {
  assertEquals(await collect(readLines(await tmpFile(""))), []);
  assertEquals(await collect(readLines(await tmpFile("\n"))), [{ line: 1, text: "" }]);
});

Deno.test("readLines() reads stdin for '-'", async () => {
  const code = `import { readLines } from ${
    JSON.stringify(new URL("../data/jsonl.ts", import.meta.url).href)
  };
for await (const l of readLines("-")) console.log(l.line + "|" + l.text);`;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "piped",
    stdout: "piped",
  });
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("x\r\ny\n"));
  await w.close();
  const out = await child.output();
  assertEquals(new TextDecoder().decode(out.stdout), "1|x\n2|y\n");
});

Deno.test("readLines() on a missing file throws a one-line user error naming it", async () => {
  const err = await assertRejects(() => collect(readLines("/nonexistent/rows.jsonl")));
  assertEquals(err.message, 'Cannot open "/nonexistent/rows.jsonl": no such file');
  assertEquals((err as unknown as { exitCode: number }).exitCode, 1);
});

/** The lines of every piece of readLineBytes(path, size). */
async function piecewiseLines(path: string, size: number): Promise<Line[]> {
  const out: Line[] = [];
  for await (const piece of readLineBytes(path, size)) out.push(...decodeLines(piece));
  return out;
}

Deno.test("readLineBytes() cuts just after a newline, numbers lines and marks first and last", async () => {
  const path = await tmpFile("ab\ncd\nef\n\nlong line\ng");
  const pieces = await collect(readLineBytes(path, 7));
  const dec = new TextDecoder();
  assertEquals(pieces.map((p: LineBytes) => [dec.decode(p.bytes), p.firstLine, p.first, p.last]), [
    ["ab\ncd\n", 1, true, false],
    ["ef\n\n", 3, false, false],
    ["long line\ng", 5, false, true], // longer than 7 bytes: a larger piece
  ]);
  assertEquals(await collect(readLineBytes(await tmpFile(""))), []);
});

Deno.test("decodeLines() over readLineBytes() gives readLines()'s lines: BOMs, CRLF, bad UTF-8, long lines", async () => {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [
    new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]),
  ];
  for (let i = 0; i < 300; i++) {
    parts.push(enc.encode(`${i}:` + "é€𝄞x".repeat(i % 13) + (i % 3 ? "\r\n" : "\n")));
    if (i % 17 === 4) parts.push(enc.encode(" \t\r\n\n\ufeff\n")); // blanks; U+FEFF in the file
    if (i % 23 === 5) parts.push(enc.encode("y".repeat(700) + "\n")); // longer than a piece
    // bad UTF-8, and a cut-short sequence right before the newline
    if (i % 29 === 6) parts.push(new Uint8Array([0x61, 0xff, 0xe2, 0x82, 0x62, 0xf0, 0x9d, 0x0a]));
  }
  for (const end of ["", "last\r", "last", "\r\n", "é\xe2"]) {
    const tail = end === "é\xe2" ? new Uint8Array([0xc3, 0xa9, 0xe2]) : enc.encode(end);
    const bytes = new Uint8Array([...parts.flatMap((p) => [...p]), ...tail]);
    const path = await tmpFile(bytes);
    const want = await collect(readLines(path));
    for (const size of [64, 1000, 1 << 19]) {
      assertEquals(
        await piecewiseLines(path, size),
        want,
        `size ${size}, ending ${JSON.stringify(end)}`,
      );
    }
  }
  // Only the start of the input drops a BOM.
  const bom = await tmpFile("\ufeffa\n\ufeffb\n");
  assertEquals((await piecewiseLines(bom, 3)).map((l) => l.text), ["a", "\ufeffb"]);
});

Deno.test("readLineBytes() reads stdin for '-'", async () => {
  const code = `import { decodeLines, readLineBytes } from ${
    JSON.stringify(new URL("../data/jsonl.ts", import.meta.url).href)
  };
for await (const p of readLineBytes("-", 4)) {
  for (const l of decodeLines(p)) console.log(l.line + "|" + l.text + (l.unterminated ? "|u" : ""));
}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("x\r\nyz\n\nw"));
  await w.close();
  const out = await child.output();
  assertEquals(new TextDecoder().decode(out.stdout), "1|x\n2|yz\n3|\n4|w|u\n");
});

Deno.test("readLineBytes() on a missing file throws the same user error as readLines()", async () => {
  const err = await assertRejects(() => collect(readLineBytes("/nonexistent/rows.jsonl")));
  assertEquals(err.message, 'Cannot open "/nonexistent/rows.jsonl": no such file');
});

Deno.test("readJsonl() skips blank lines and reports a malformed line with file and line", async () => {
  const path = await tmpFile('{"a":1}\n\n  \n{"a":2,}\n[3]\n');
  const err = await assertRejects(() => collect(readJsonl(path)), DataError) as DataError;
  assertEquals(err.line, 4);
  assertEquals(err.file, path);
  assertMatch(err.message, new RegExp(`^Cannot read "${path}" line 4: invalid JSON`));
});

Deno.test("readJsonl() with onError reports every bad line and keeps the good rows", async () => {
  const path = await tmpFile('{"a":1}\nnot json\n{"a":2}\n{"a":\n{"a":3}\n{"a":4');
  const errors: DataError[] = [];
  const rows = await collect(readJsonl(path, { onError: (e) => errors.push(e) }));
  assertEquals(rows, [{ line: 1, value: { a: 1 } }, { line: 3, value: { a: 2 } }, {
    line: 5,
    value: { a: 3 },
  }]);
  assertEquals(errors.map((e) => e.line), [2, 4, 6]);
  // The last line has no newline: the message says the file ends inside it.
  assertMatch(errors[2].message, /ends in the middle of this line/);
  assertOk(!/ends in the middle/.test(errors[1].message));
});

Deno.test("readJsonl() accepts a truncated-looking last line that is complete JSON", async () => {
  const path = await tmpFile('{"a":1}\n{"a":2}');
  assertEquals((await collect(readJsonl(path))).map((r) => r.value), [{ a: 1 }, { a: 2 }]);
});

Deno.test("readJsonl() uses the given parser", async () => {
  const path = await tmpFile('{"x": 1.0}\n');
  const rows = await collect(readJsonl(path, { parse: (t) => t.length }));
  assertEquals(rows, [{ line: 1, value: 10 }]);
});

Deno.test("JsonlWriter writes rows, truncates by default and appends on request", async () => {
  const path = await tmpFile("old\n");
  let w = await JsonlWriter.open(path);
  await w.write({ a: 1 });
  await w.writeText('{"b": 2.0}');
  await w.close();
  assertEquals(await Deno.readTextFile(path), '{"a":1}\n{"b": 2.0}\n');
  w = await JsonlWriter.open(path, { append: true });
  assertEquals(w.rowsOnOpen, 2);
  await w.write("é");
  await w.close();
  assertEquals(await Deno.readTextFile(path), '{"a":1}\n{"b": 2.0}\n"é"\n');
});

Deno.test("JsonlWriter.open({resume}) drops a partial last line and counts complete rows", async () => {
  const path = await tmpFile('{"a":1}\n\n{"a":2}\n{"a":3, "trunc');
  const w = await JsonlWriter.open(path, { resume: true });
  assertEquals(w.rowsOnOpen, 2);
  assertEquals(w.droppedBytes, '{"a":3, "trunc'.length);
  await w.write({ a: 3 });
  await w.close();
  assertEquals(await Deno.readTextFile(path), '{"a":1}\n\n{"a":2}\n{"a":3}\n');
  // A cleanly ended file is left alone.
  const w2 = await JsonlWriter.open(path, { resume: true });
  assertEquals([w2.rowsOnOpen, w2.droppedBytes], [3, 0]);
  await w2.close();
  // A file with only a partial line becomes empty.
  const p2 = await tmpFile('{"a"');
  const w3 = await JsonlWriter.open(p2, { resume: true });
  assertEquals([w3.rowsOnOpen, w3.droppedBytes], [0, 4]);
  await w3.close();
  assertEquals(await Deno.readTextFile(p2), "");
});

Deno.test("JsonlWriter flushes large outputs whole and in order", async () => {
  const path = await tmpFile("");
  const w = await JsonlWriter.open(path);
  for (let i = 0; i < 5000; i++) await w.write({ i, s: "x".repeat(i % 50) });
  await w.close();
  const rows = await collect(readJsonl(path));
  assertEquals(rows.length, 5000);
  assertOk(rows.every((r, i) => (r.value as { i: number }).i === i && r.line === i + 1));
});

Deno.test("DataError message names file, line and field", () => {
  const e = new DataError("train.jsonl", 42, 'field "targets" is missing', "targets");
  assertEquals(e.message, 'Cannot read "train.jsonl" line 42: field "targets" is missing');
  assertEquals([e.file, e.line, e.field, e.exitCode], ["train.jsonl", 42, "targets", 1]);
  assertOk(e instanceof SyntaxError);
  assertEquals(new DataError("-", 1, "x").message, 'Cannot read "stdin" line 1: x');
});
