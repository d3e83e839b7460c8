/**
 * The row pipeline of the commands that turn JSONL rows into JSONL rows (score, logprobs,
 * generate; rollout and eval build on it): lines are streamed from a file or stdin (blank lines
 * skipped), each parsed and validated into a row by the command (a bad one becomes
 * `{"id"?, "line", "error"}` and is reported on stderr; the others go on), grouped into batches
 * by a cost budget (tokens, samples, lines), and processed batch by batch, up to `inFlight`
 * batches at once (score's worker threads); every batch's output is written in input order as
 * soon as it and the batches before it are done. Memory is bounded by the batches in flight.
 */
import { DataError, displayName } from "../lib/errors.ts";
import { type JsonlWriter, readLines } from "../data/jsonl.ts";

/** A row that could not be read: the DataError and the row's id when it had one. */
export class RowError extends DataError {
  override name = "RowError";
  constructor(e: DataError, readonly idText?: string) {
    super(e.file, e.line, e.message.replace(/^Cannot read "[^"]*" line \d+: /, ""), e.field);
  }
}

/** Throws a RowError carrying the id of `value` (a parsed row) when it has one. */
export function rowError(e: DataError, value: unknown): RowError {
  const hasId = value !== null && typeof value === "object" && !Array.isArray(value) &&
    Object.hasOwn(value, "id");
  return new RowError(e, hasId ? JSON.stringify((value as { id: unknown }).id) : undefined);
}

/** The output row of a row that could not be read: {"id"?, "line", "error"}. */
export function errorText(e: DataError): string {
  const id = e instanceof RowError && e.idText !== undefined ? `"id": ${e.idText}, ` : "";
  return `{${id}"line": ${e.line}, "error": ${JSON.stringify(e.message)}}`;
}

/** Parses a line as a JSON object (the usual first step of `parse`). */
export function jsonObject(
  text: string,
  at: { file: string; line: number },
): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new DataError(
      at.file,
      at.line,
      `invalid JSON (${(err as Error).message.split("\n")[0]})`,
    );
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new DataError(at.file, at.line, "the row is not a JSON object");
  }
  return v as Record<string, unknown>;
}

export interface RowPipeline<Row> {
  /** Input file, or "-" for stdin. */
  input: string;
  out: JsonlWriter;
  /** A line's text to a row; throws DataError (or rowError()) for a bad row. */
  parse(text: string, at: { file: string; line: number }): Row;
  /** Batches close when the next row's cost would exceed `budget` (a lone row always fits). */
  budget: number;
  cost?(row: Row): number;
  /**
   * The serialised output of each row of the batch, in order (one or more JSON lines each,
   * "\n"-joined; "" writes nothing for that row). `last`: no batch follows (a short input can be
   * done in place).
   */
  process(rows: Row[], o: { last: boolean }): Promise<string[]>;
  /** Batches processed at once (default 1). */
  inFlight?: number;
  /** Called with each bad row's error (default: one line on stderr). */
  onError?(e: DataError): void;
}

/** Runs the pipeline; returns the rows read and how many could not be read. */
export async function runRows<Row>(p: RowPipeline<Row>): Promise<{ rows: number; errors: number }> {
  type Item = { row: Row } | { error: DataError };
  const onError = p.onError ?? ((e: DataError) => console.error(`star: ${e.message}`));
  const inFlight = Math.max(1, p.inFlight ?? 1);
  const running: Promise<string>[] = [];
  let rows = 0, errors = 0, cost = 0;
  let items: Item[] = [];
  const flush = async (last: boolean) => {
    const batch = items;
    items = [];
    cost = 0;
    const good = batch.flatMap((it) => ("row" in it ? [it.row] : []));
    running.push(
      (good.length ? p.process(good, { last }) : Promise.resolve([])).then((outs) => {
        let i = 0;
        const texts = batch.map((it) => ("row" in it ? outs[i++] : errorText(it.error)));
        return texts.filter((t) => t !== "").join("\n");
      }),
    );
    while (running.length >= inFlight || (last && running.length > 0)) {
      const text = await running.shift()!;
      if (text) await p.out.writeText(text);
    }
  };
  for await (const { line, text } of readLines(p.input)) {
    if (isBlank(text)) continue;
    rows++;
    let item: Item;
    try {
      item = { row: p.parse(text, { file: p.input, line }) };
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      errors++;
      onError(e);
      item = { error: e };
    }
    const c = "row" in item ? (p.cost?.(item.row) ?? 1) : 0;
    if (items.length > 0 && cost + c > p.budget) await flush(false);
    items.push(item);
    cost += c;
  }
  await flush(true);
  await p.out.flush();
  return { rows, errors };
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

export { displayName };
