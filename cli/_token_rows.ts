/**
 * Input rows of `star logprobs` and `star generate`: `{"id"?, "ids": [...]}` or a text field
 * (`text` for logprobs, `prompt` for generate) tokenized with the model's tokenizer. A bad row
 * becomes a DataError naming the file, line and field; the commands write it as an error row
 * `{"id"?, "line", "error"}` and go on with the other rows.
 */
import { DataError } from "../lib/errors.ts";
import type { Tokenizer } from "../data/tokenizer.ts";

export interface TokenRow {
  line: number;
  /** The row's id when it had one (any JSON value). */
  id?: unknown;
  hasId: boolean;
  ids: number[];
}

/** Parses one JSON value of `file` line `line` into token ids, or throws a DataError. */
export function tokenRow(
  value: unknown,
  at: { file: string; line: number },
  o: {
    textField: "text" | "prompt";
    vocabSize: number;
    tokenizer: () => Tokenizer;
    minIds: number;
    maxIds?: number;
  },
): TokenRow {
  const bad = (why: string, field?: string) => new DataError(at.file, at.line, why, field);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw bad("the row is not a JSON object");
  }
  const row = value as Record<string, unknown>;
  const hasId = Object.hasOwn(row, "id");
  let ids: number[];
  if (row.ids !== undefined) {
    if (!Array.isArray(row.ids) || !row.ids.every((x) => Number.isInteger(x))) {
      throw bad('field "ids" must be an array of integer token ids', "ids");
    }
    ids = row.ids as number[];
  } else if (row[o.textField] !== undefined) {
    if (typeof row[o.textField] !== "string") {
      throw bad(`field "${o.textField}" must be a string`, o.textField);
    }
    ids = o.tokenizer().encode(row[o.textField] as string);
  } else {
    throw bad(`field "ids" or "${o.textField}" is missing`, "ids");
  }
  const field = row.ids !== undefined ? "ids" : o.textField;
  const out = ids.find((id) => id < 0 || id >= o.vocabSize);
  if (out !== undefined) {
    throw bad(
      `field "${field}" has token id ${out}, outside the model's vocabulary (size ${o.vocabSize})`,
      field,
    );
  }
  if (ids.length < o.minIds) {
    throw bad(`field "${field}" needs at least ${o.minIds} token${o.minIds > 1 ? "s" : ""}`, field);
  }
  if (o.maxIds !== undefined && ids.length > o.maxIds) {
    throw bad(
      `field "${field}" has ${ids.length} tokens, more than the ${o.maxIds} one forward holds on this GPU`,
      field,
    );
  }
  return { line: at.line, id: row.id, hasId, ids };
}

/** The output row of a bad input row: {"id"?, "line", "error"}. */
export function errorRow(e: DataError, row: unknown): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  if (row !== null && typeof row === "object" && !Array.isArray(row) && Object.hasOwn(row, "id")) {
    r.id = (row as { id: unknown }).id;
  }
  r.line = e.line;
  r.error = e.message;
  return r;
}
