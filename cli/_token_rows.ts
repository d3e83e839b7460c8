/**
 * Input rows of `star logprobs` and `star generate`: `{"id"?, "ids": [...]}` or a text field
 * (`text` for logprobs, `prompt` for generate) tokenized with the model's tokenizer. A bad row
 * becomes a RowError naming the file, line and field; the row pipeline (cli/_rows.ts) writes it
 * as an error row `{"id"?, "line", "error"}` and goes on with the other rows.
 */
import { DataError } from "../lib/errors.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { jsonObject, rowError } from "./_rows.ts";

export interface TokenRow {
  line: number;
  /** The row's id when it had one (any JSON value). */
  id?: unknown;
  hasId: boolean;
  ids: number[];
}

/** Parses one line of `file` into token ids, or throws a RowError naming the line and field. */
export function tokenRow(
  text: string,
  at: { file: string; line: number },
  o: {
    textField: "text" | "prompt";
    vocabSize: number;
    tokenizer: () => Tokenizer;
    minIds: number;
    maxIds?: number;
  },
): TokenRow {
  const row = jsonObject(text, at);
  const bad = (why: string, field?: string) =>
    rowError(new DataError(at.file, at.line, why, field), row);
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
