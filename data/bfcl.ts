/**
 * Reads BFCL's data folder: `BFCL_v4_<category>.json` (one entry per line) and, for the AST
 * categories, `possible_answer/BFCL_v4_<category>.json`, paired by position as BFCL's runner
 * pairs them. Values keep Python's JSON semantics (int vs float, key order) through the
 * py_json parser. Each line is checked for the fields the prompt and the checker use; a bad
 * line is a DataError naming the file and line. Only single-turn entries (`question[0]`).
 */
import { isPyDict, parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { DataError, UserError } from "../lib/errors.ts";

/** One entry with its answer (null when loaded without one: the (ir)relevance categories). */
export interface BfclDataEntry {
  id: string;
  category: string;
  messages: PyDict[];
  functions: PyValue[];
  answer: PyDict[] | null;
}

export interface LoadBfclOptions {
  /** Read `possible_answer/` too (every category but the (ir)relevance ones). */
  withAnswers: boolean;
  /** Keep only the first N entries. */
  limit?: number;
}

/** The path of a category's entries (or answers) file in a BFCL data folder. */
export function bfclFile(dir: string, category: string, answers = false): string {
  return `${dir.replace(/\/+$/, "")}/${answers ? "possible_answer/" : ""}BFCL_v4_${category}.json`;
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new UserError(`Cannot open "${path}": ${why}`);
  }
}

interface Row {
  line: number;
  value: PyDict;
}

/** The non-blank lines of a JSONL-like file, each parsed as one JSON object. */
function parseRows(path: string, text: string, limit: number): Row[] {
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && rows.length < limit; i++) {
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === "") continue;
    let value: PyValue;
    try {
      value = parsePyJson(raw);
    } catch (err) {
      throw new DataError(path, i + 1, `invalid JSON (${(err as Error).message})`);
    }
    if (!isPyDict(value)) throw new DataError(path, i + 1, "the line is not a JSON object");
    rows.push({ line: i + 1, value });
  }
  return rows;
}

function entryOf(path: string, row: Row, category: string): BfclDataEntry {
  const bad = (reason: string, field?: string): never => {
    throw new DataError(path, row.line, reason, field);
  };
  const v = row.value;
  const id = v.get("id");
  if (typeof id !== "string") bad(`field "id" is missing or not a string`, "id");
  const question = v.get("question");
  if (!Array.isArray(question) || !Array.isArray(question[0]) || question[0].length === 0) {
    bad(`field "question" is not a list holding a non-empty list of messages`, "question");
  }
  const messages = (question as PyValue[][])[0];
  messages.forEach((m, k) => {
    if (!isPyDict(m) || typeof m.get("role") !== "string" || typeof m.get("content") !== "string") {
      bad(`message ${k + 1} of "question" needs a string "role" and "content"`, "question");
    }
  });
  const functions = v.get("function");
  if (!Array.isArray(functions) || !functions.every(isPyDict)) {
    bad(`field "function" is not a list of function docs`, "function");
  }
  return {
    id: id as string,
    category,
    messages: messages as PyDict[],
    functions: functions as PyValue[],
    answer: null,
  };
}

function answerOf(path: string, row: Row): PyDict[] {
  const bad = (reason: string): never => {
    throw new DataError(path, row.line, reason, "ground_truth");
  };
  const truth = row.value.get("ground_truth");
  if (!Array.isArray(truth)) bad(`field "ground_truth" is missing or not a list`);
  for (const call of truth as PyValue[]) {
    if (!isPyDict(call) || call.size !== 1) bad(`each expected call must be {"function": {...}}`);
    const [[name, params]] = [...(call as PyDict)];
    if (!isPyDict(params)) bad(`the params of "${name}" are not an object`);
    for (const [p, acceptable] of params as PyDict) {
      if (!Array.isArray(acceptable)) {
        bad(`the acceptable values of "${name}" param "${p}" are not a list`);
      }
    }
  }
  return truth as PyDict[];
}

/** The entries of one category (with answers unless told otherwise), in file order. */
export async function loadBfclCategory(
  dir: string,
  category: string,
  opts: LoadBfclOptions,
): Promise<BfclDataEntry[]> {
  const limit = opts.limit ?? Infinity;
  const path = bfclFile(dir, category);
  const entries = parseRows(path, await readText(path), limit).map((r) =>
    entryOf(path, r, category)
  );
  if (!opts.withAnswers) return entries;
  const answerPath = bfclFile(dir, category, true);
  const answerText = await readText(answerPath);
  const answers = parseRows(answerPath, answerText, limit);
  if (answers.length !== entries.length) {
    const all = parseRows(answerPath, answerText, Infinity).length;
    throw new UserError(
      `"${answerPath}" has ${all} answers but "${path}" has ${
        parseRows(path, await readText(path), Infinity).length
      } entries; they are paired line by line`,
    );
  }
  entries.forEach((e, i) => e.answer = answerOf(answerPath, answers[i]));
  return entries;
}

/** Entries in a category's file (non-blank lines), or null when the file is absent. */
export async function countBfclEntries(dir: string, category: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(bfclFile(dir, category));
  } catch {
    return null;
  }
  let n = 0;
  for (const line of text.split("\n")) if (line.trim() !== "") n++;
  return n;
}
