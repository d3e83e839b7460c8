/**
 * Rows of a data file as the public sets are published: JSON Lines (one value a line, blank
 * lines skipped) or one JSON array (xlam's .json). The kind is told by the first character
 * other than whitespace ("[" is an array). Both are streamed: lines through readLines, arrays
 * by a scanner that cuts top-level elements out of the decoded text (strings, escapes and
 * nesting followed) without holding the file. Each row comes with the line it starts on; the
 * text is parsed later (parseRow), so counting or skipping rows costs no JSON parsing.
 */
import { DataError, UserError } from "../../lib/errors.ts";
import { readLines } from "../jsonl.ts";
import { parsePyJson, PyJsonError, type PyValue } from "../../lib/py/json.ts";

export interface RawRow {
  /** 1-based line where the row starts. */
  line: number;
  text: string;
  /** A JSONL line with no "\n" after it (the file may be cut short there). */
  unterminated?: true;
}

async function openText(path: string): Promise<ReadableStream<string>> {
  try {
    const file = await Deno.open(path, { read: true });
    return file.readable.pipeThrough(new TextDecoderStream());
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : (err as Error).message;
    throw new UserError(`Cannot open "${path}": ${why}`);
  }
}

/** "array" when the first non-blank character of the file is "[", else "jsonl". */
export async function fileKind(path: string): Promise<"array" | "jsonl"> {
  const reader = (await openText(path)).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "jsonl";
      const m = /[^\s\ufeff]/.exec(value);
      if (m) return m[0] === "[" ? "array" : "jsonl";
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** The rows of a file, JSONL or a JSON array, unparsed. */
export async function* readRawRows(path: string): AsyncGenerator<RawRow> {
  if ((await fileKind(path)) === "array") {
    yield* arrayElements(path);
    return;
  }
  for await (const { line, text, unterminated } of readLines(path)) {
    if (text.trim() === "") continue;
    yield unterminated ? { line, text, unterminated } : { line, text };
  }
}

/** Parses a row as Python's json.loads would; a DataError names the file and line. */
export function parseRow(path: string, row: RawRow): PyValue {
  try {
    return parsePyJson(row.text);
  } catch (err) {
    if (!(err instanceof PyJsonError)) throw err;
    const tail = row.unterminated ? "; the file ends in the middle of this line" : "";
    throw new DataError(path, row.line, `invalid JSON (${err.message})${tail}`);
  }
}

/** Number of rows of a file (a cheap first pass: nothing is parsed). */
export async function countRows(path: string): Promise<number> {
  let n = 0;
  for await (const _ of readRawRows(path)) n++;
  return n;
}

/**
 * Top-level elements of a JSON array file. Structure outside the elements (the brackets and
 * commas) is checked; a broken element is still cut at the next top-level comma and left to
 * the parser to report.
 */
async function* arrayElements(path: string): AsyncGenerator<RawRow> {
  const reader = (await openText(path)).getReader();
  let line = 1;
  let opened = false;
  let closed = false;
  // Inside an element: its text so far, its first line, nesting depth and string state.
  let parts: string[] | null = null;
  let startLine = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  const bad = (why: string) => new DataError(path, line, why);
  try {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      let from = 0; // start of the element's text in this chunk
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk.charCodeAt(i);
        if (c === 10) line++;
        if (parts !== null) {
          if (inString) {
            if (escaped) escaped = false;
            else if (c === 92) escaped = true;
            else if (c === 34) inString = false;
            continue;
          }
          if (c === 34) inString = true;
          else if (c === 123 || c === 91) depth++;
          else if ((c === 125 || c === 93) && depth > 0) depth--;
          else if (depth === 0 && (c === 44 || c === 93)) {
            parts.push(chunk.slice(from, i));
            yield { line: startLine, text: parts.join("") };
            parts = null;
            if (c === 93) closed = true;
          }
          continue;
        }
        if (c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff) continue;
        if (closed) throw bad('unexpected text after the closing "]" of the array');
        if (!opened) {
          if (c !== 91) throw bad('expected "[" to open the array');
          opened = true;
          continue;
        }
        if (c === 93) {
          closed = true;
          continue;
        }
        if (c === 44) continue;
        parts = [];
        from = i;
        startLine = line;
        depth = c === 123 || c === 91 ? 1 : 0;
        inString = c === 34;
      }
      if (parts !== null) parts.push(chunk.slice(from));
    }
    if (parts !== null || !closed) throw bad('the array is not closed with "]"');
  } finally {
    await reader.cancel().catch(() => {});
  }
}
