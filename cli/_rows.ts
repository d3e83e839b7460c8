/**
 * The row pipeline of the commands that turn JSONL rows into JSONL rows (score, logprobs,
 * generate; rollout and eval build on it): lines are streamed from a file or stdin (blank lines
 * skipped), each parsed and validated into a row by the command (a bad one becomes
 * `{"id"?, "line", "error"}` and is reported on stderr; the others go on), grouped into batches
 * by a cost budget (tokens, samples, lines), and processed batch by batch, up to `inFlight`
 * batches at once; every batch's output is written in input order once it and the batches
 * before it are done. Memory is bounded by the batches in flight. runLineBytes is the same
 * pipeline for a command that parses where it processes (score's worker threads): its batches
 * are whole lines as undecoded bytes, cut by a byte budget, and the rows are the process's.
 */
import { DataError, displayName } from "../lib/errors.ts";
import {
  isBlank,
  type JsonlWriter,
  type LineBytes,
  readLineBytes,
  readLines,
} from "../data/jsonl.ts";

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
  const written = new InOrder(p.out, p.inFlight);
  let rows = 0, errors = 0, cost = 0;
  let items: Item[] = [];
  const flush = async (last: boolean) => {
    const batch = items;
    items = [];
    cost = 0;
    const good = batch.flatMap((it) => ("row" in it ? [it.row] : []));
    await written.push(
      (good.length ? p.process(good, { last }) : Promise.resolve([])).then((outs) => {
        let i = 0;
        const texts = batch.map((it) => ("row" in it ? outs[i++] : errorText(it.error)));
        return texts.filter((t) => t !== "").join("\n");
      }),
    );
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
  await written.drain();
  return { rows, errors };
}

export interface LineBytesPipeline {
  /** Input file, or "-" for stdin. */
  input: string;
  out: JsonlWriter;
  /** Bytes per batch, about (whole lines; a longer line comes whole in a larger batch). */
  budget: number;
  /**
   * The serialised output of a batch's rows, in order ("\n"-joined; "" for none). Decoding
   * (decodeLines), skipping blank lines, parsing and error rows are the process's.
   */
  process(lines: LineBytes): Promise<string>;
  /** Batches processed at once (default 1). */
  inFlight?: number;
}

/** Runs a pipeline whose batches are raw lines (see LineBytesPipeline). */
export async function runLineBytes(p: LineBytesPipeline): Promise<void> {
  const written = new InOrder(p.out, p.inFlight);
  for await (const lines of readLineBytes(p.input, p.budget)) await written.push(p.process(lines));
  await written.drain();
}

/** Writes batch outputs in input order, with up to `inFlight` batches under way. */
class InOrder {
  #running: Promise<string>[] = [];
  readonly #inFlight: number;

  constructor(readonly out: JsonlWriter, inFlight = 1) {
    this.#inFlight = Math.max(1, inFlight);
  }

  /** Queues a batch's output to come; writes the oldest ones while too many are under way. */
  async push(text: Promise<string>): Promise<void> {
    // Each is awaited in its turn; a failure meanwhile must not count as unhandled.
    text.catch(() => {});
    this.#running.push(text);
    while (this.#running.length >= this.#inFlight) await this.#writeOldest();
  }

  /** Writes all that is queued, then flushes the writer. */
  async drain(): Promise<void> {
    while (this.#running.length > 0) await this.#writeOldest();
    await this.out.flush();
  }

  async #writeOldest(): Promise<void> {
    const text = await this.#running.shift()!;
    if (text) await this.out.writeText(text);
  }
}

export { displayName };
