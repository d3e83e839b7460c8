/**
 * `star data mix` as a library: labelled messages files in (read in the order given), STAR's
 * stratified mix out (mix.ts). Two streaming passes: the first keeps one small summary per row,
 * the greedy pass picks positions, the second counts the prompt tokens of the picked rows only
 * and keeps those within the limit (at most 1.1 x size rows in memory); the final draw orders
 * them. Malformed rows are reported, skipped and left out of the shuffle.
 */
import { DataError } from "../../lib/errors.ts";
import { dumpsPyJson, type PyDict, type PyValue } from "../../lib/py/json.ts";
import { RowShapeError } from "./label.ts";
import {
  countClasses,
  finalDraw,
  greedySample,
  type MixRates,
  type MixReport,
  type RowSummary,
  summarizeRow,
} from "./mix.ts";
import { writeJsonlAtomically } from "./output.ts";
import { PyRandom } from "./py_random.ts";
import { parseRow, type RawRow, readRawRows } from "./rows.ts";
import { RowProblem } from "./tools.ts";

export interface MixOptions extends MixRates {
  seed: number;
  maxPromptTokens: number;
  /** Prompt length of a row in tokens (render.ts promptTokens with a tokenizer). */
  promptTokens: (row: PyDict) => number;
  onBadRow?: (e: DataError) => void;
}

export interface MixFileSummary {
  report: MixReport;
  skipped: Map<string, number>;
}

/** The good rows of the files in order, parsed, with their place; bad rows are reported. */
async function* goodRows(
  inputs: string[],
  onBad: (e: DataError) => void,
): AsyncGenerator<{ file: string; raw: RawRow; value: PyValue; summary: RowSummary }> {
  for (const file of inputs) {
    for await (const raw of readRawRows(file)) {
      let value: PyValue;
      let summary: RowSummary;
      try {
        value = parseRow(file, raw);
        summary = summarizeRow(value);
      } catch (err) {
        if (err instanceof DataError) onBad(err);
        else if (err instanceof RowShapeError) onBad(new DataError(file, raw.line, err.message));
        else throw err;
        continue;
      }
      yield { file, raw, value, summary };
    }
  }
}

export class NothingLeftError extends Error {
  override name = "NothingLeftError";
  readonly exitCode = 1;
}

export async function mixFiles(
  inputs: string[],
  output: string,
  opts: MixOptions,
): Promise<MixFileSummary> {
  const skipped = new Map<string, number>();
  let reportBad = true;
  const onBad = (e: DataError) => {
    if (!reportBad) return;
    const key = /line \d+: invalid JSON/.test(e.message)
      ? "invalid JSON"
      : e.message.replace(/^Cannot read ".*?" line \d+: /, "").replace(/\[\d+\]/g, "[i]");
    skipped.set(key, (skipped.get(key) ?? 0) + 1);
    opts.onBadRow?.(e);
  };

  // Pass 1: one summary per good row.
  const summaries: RowSummary[] = [];
  for await (const r of goodRows(inputs, onBad)) summaries.push(r.summary);
  reportBad = false;

  const rng = new PyRandom(opts.seed);
  const greedy = greedySample(summaries, opts, rng);
  const order = new Map<number, number>();
  greedy.taken.forEach((pos, k) => order.set(pos, k));

  // Pass 2: prompt tokens of the taken rows; keep the texts of those within the limit.
  const texts = new Array<string | undefined>(greedy.taken.length);
  let pos = 0;
  let over = 0;
  for await (const r of goodRows(inputs, onBad)) {
    const k = order.get(pos++);
    if (k === undefined) continue;
    let n: number;
    try {
      n = opts.promptTokens(r.value as PyDict);
    } catch (err) {
      if (!(err instanceof RowProblem)) throw err;
      opts.onBadRow?.(new DataError(r.file, r.raw.line, `prompt not counted: ${err.message}`));
      n = Infinity;
    }
    if (n <= opts.maxPromptTokens) texts[k] = dumpsPyJson(r.value, { ensureAscii: false });
    else over++;
  }
  const kept: number[] = [];
  texts.forEach((t, k) => {
    if (t !== undefined) kept.push(k);
  });
  const final = finalDraw(kept, opts.size, rng);
  if (final === null) {
    throw new NothingLeftError(
      `No rows are left after the prompt-token limit (${opts.maxPromptTokens}); nothing written`,
    );
  }
  await writeJsonlAtomically(output, async (w) => {
    for (const k of final) await w.writeText(texts[k]!);
  });
  const at = (k: number) => summaries[greedy.taken[k]];
  return {
    report: {
      rowsRead: summaries.length,
      size: opts.size,
      targets: greedy.targets,
      taken: greedy.taken.length,
      takenCounts: greedy.counts,
      overPromptTokens: over,
      maxPromptTokens: opts.maxPromptTokens,
      finalCounts: countClasses(final.map(at)),
      total: final.length,
    },
    skipped,
  };
}
