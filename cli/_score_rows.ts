/**
 * One `star score` input line to one output line, with no I/O, so that the command can run it
 * on the main thread or in workers. Rows are read with JSON.parse; a line that only Python's
 * json.loads accepts (NaN, Infinity) or an id that is an integer beyond 2^53 is re-read with
 * the Python-compatible parser so that the id comes back exactly as given.
 */
import { dumpsPyJson, isPyDict, parsePyJson, type PyValue } from "../lib/py/json.ts";
import { RewardError, simRlReward } from "../reward/mod.ts";
import { decodeLines, isBlank, type LineBytes } from "../data/jsonl.ts";

export interface LineResult {
  /** The output row, serialised. */
  text: string;
  /** Reward and format of a scored row; null for an error row. */
  reward: number | null;
  format: 1 | -1 | null;
}

type Row = Record<string, unknown>;

/** Scores one non-blank line of `file` (line number `line`). */
export function scoreLine(text: string, line: number, file: string): LineResult {
  let row: Row;
  let idText: string | undefined;
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      return errorRow(undefined, line, file, "the row is not a JSON object");
    }
    row = v as Row;
    if (Object.hasOwn(row, "id")) {
      idText = typeof row.id === "number" && !Number.isSafeInteger(row.id) &&
          Number.isInteger(row.id)
        ? pyIdText(text)
        : JSON.stringify(row.id);
    }
  } catch {
    let v: PyValue;
    try {
      v = parsePyJson(text);
    } catch (e) {
      return errorRow(undefined, line, file, `invalid JSON (${(e as Error).message})`);
    }
    if (!isPyDict(v)) return errorRow(undefined, line, file, "the row is not a JSON object");
    row = Object.fromEntries(v);
    if (v.has("id")) idText = dumpsPyJson(v.get("id")!, { ensureAscii: false });
  }
  const prompt = pick(row, "prompt", "inputs");
  const completion = pick(row, "completion");
  const label = pick(row, "label", "targets");
  if (typeof prompt === "string") return errorRow(idText, line, file, prompt);
  if (typeof completion === "string") return errorRow(idText, line, file, completion);
  if (typeof label === "string") return errorRow(idText, line, file, label);
  try {
    const r = simRlReward(prompt.value, completion.value, label.value);
    const head = idText === undefined ? "{" : `{"id": ${idText}, `;
    return {
      text: `${head}"reward": ${r.reward}, "format": ${r.format}, "answer": ${r.answer}}`,
      reward: r.reward,
      format: r.format,
    };
  } catch (e) {
    if (!(e instanceof RewardError)) {
      // A defect of ours, or a runtime limit: report it on this row and go on with the rest.
      return errorRow(idText, line, file, `cannot be scored (${String(e).split("\n")[0]})`);
    }
    const field = e.field === "label"
      ? (Object.hasOwn(row, "label") ? "label" : "targets")
      : (Object.hasOwn(row, "prompt") ? "prompt" : "inputs");
    return errorRow(idText, line, file, `field "${field}": ${e.message}`);
  }
}

/** The first present field among `names` when it is a string; else the reason as a string. */
function pick(row: Row, ...names: string[]): { value: string } | string {
  for (const name of names) {
    if (!Object.hasOwn(row, name)) continue;
    const v = row[name];
    if (typeof v === "string") return { value: v };
    return `field "${name}" is not a string`;
  }
  return `field "${names.join('" or "')}" is missing`;
}

function pyIdText(text: string): string {
  const v = parsePyJson(text);
  return isPyDict(v) ? dumpsPyJson(v.get("id")!, { ensureAscii: false }) : "null";
}

function errorRow(
  idText: string | undefined,
  line: number,
  file: string,
  reason: string,
): LineResult {
  const msg = `Cannot score "${file === "-" ? "stdin" : file}" line ${line}: ${reason}`;
  const head = idText === undefined ? "{" : `{"id": ${idText}, `;
  return {
    text: `${head}"line": ${line}, "error": ${JSON.stringify(msg)}}`,
    reward: null,
    format: null,
  };
}

/**
 * A batch of input lines as bytes, as the command hands it to a worker (the buffer is
 * transferred, not copied).
 */
export interface Batch {
  seq: number;
  file: string;
  lines: LineBytes;
}

/** A batch's output rows joined by "\n", and its counts. */
export interface BatchResult {
  seq: number;
  text: string;
  rows: number;
  errors: number;
  rewardSum: number;
  formatValid: number;
}

/** Decodes a batch as the line reader would (decodeLines), skips blank lines, scores the rest. */
export function scoreBatch(b: Batch): BatchResult {
  const out: string[] = [];
  const res: BatchResult = {
    seq: b.seq,
    text: "",
    rows: 0,
    errors: 0,
    rewardSum: 0,
    formatValid: 0,
  };
  for (const { line, text } of decodeLines(b.lines)) {
    if (isBlank(text)) continue;
    const r = scoreLine(text, line, b.file);
    out.push(r.text);
    res.rows++;
    if (r.reward === null) res.errors++;
    else {
      res.rewardSum += r.reward;
      if (r.format === 1) res.formatValid++;
    }
  }
  res.text = out.join("\n");
  return res;
}
