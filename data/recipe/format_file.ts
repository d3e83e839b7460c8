/**
 * `star data format` as a library: a raw file in, messages rows out (formats.ts), each kept only
 * if `keep` (the caller's Sim-RL self-check) says so. With `size` below the row count, rows are
 * drawn as `random.seed(seed); random.sample(rows, size)` draws them: a counting pass, then only
 * the drawn rows are kept, in draw order (the position is STAR's row index). Drops are reported
 * with their line and counted by reason; the output is written atomically.
 */
import { DataError } from "../../lib/errors.ts";
import { dumpsPyJson, type PyDict } from "../../lib/py/json.ts";
import { convertRow, type DatasetName } from "./formats.ts";
import { writeJsonlAtomically } from "./output.ts";
import { PyRandom } from "./py_random.ts";
import { countRows, parseRow, type RawRow, readRawRows } from "./rows.ts";

export interface FormatOptions {
  dataset: DatasetName;
  /** Draw this many raw rows first (all when absent or not below the row count). */
  size?: number;
  seed?: number;
  /** Returns null to keep a converted row, else the reason to drop it. */
  keep?: (row: PyDict) => string | null;
  /** Each dropped row or message, as one line naming the file and line. */
  onDrop?: (message: string) => void;
}

export interface FormatSummary {
  /** Raw rows in the file, and those drawn (= read when there was no draw). */
  rowsInFile: number | null;
  rowsUsed: number;
  /** Messages rows the converter made, and those written after the filter. */
  converted: number;
  written: number;
  /** Drops by reason: malformed rows, conversion problems, filter rejections. */
  dropped: Map<string, number>;
  /** Of the drops, those of rows the script could not have read (it would stop there). */
  malformed: number;
}

/** The drawn rows, in draw order. */
async function drawRows(path: string, n: number, size: number, seed: number): Promise<RawRow[]> {
  const picks = new PyRandom(seed).sampleIndices(n, size);
  const slot = new Map<number, number>();
  picks.forEach((row, k) => slot.set(row, k));
  const out = new Array<RawRow>(size);
  let r = 0;
  for await (const raw of readRawRows(path)) {
    const k = slot.get(r++);
    if (k !== undefined) out[k] = raw;
  }
  return out;
}

export async function formatFile(
  input: string,
  output: string,
  opts: FormatOptions,
): Promise<FormatSummary> {
  const summary: FormatSummary = {
    rowsInFile: null,
    rowsUsed: 0,
    converted: 0,
    written: 0,
    dropped: new Map(),
    malformed: 0,
  };
  const drop = (reason: string, line: number, detail: string, malformed = false) => {
    summary.dropped.set(reason, (summary.dropped.get(reason) ?? 0) + 1);
    if (malformed) summary.malformed++;
    opts.onDrop?.(`"${input}" line ${line}: ${detail}`);
  };
  let rows: AsyncIterable<RawRow> | RawRow[] = readRawRows(input);
  if (opts.size !== undefined) {
    const n = await countRows(input);
    summary.rowsInFile = n;
    if (opts.size < n) rows = await drawRows(input, n, opts.size, opts.seed ?? 42);
  }
  await writeJsonlAtomically(output, async (w) => {
    let index = 0;
    for await (const raw of rows) {
      const i = index++;
      summary.rowsUsed++;
      let value;
      try {
        value = parseRow(input, raw);
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        const why = err.message.replace(/^Cannot read ".*?" line \d+: /, "");
        drop("invalid JSON", raw.line, why, true);
        continue;
      }
      const { rows: out, problems } = convertRow(opts.dataset, value, {
        index: i,
        produced: summary.converted,
      });
      for (const p of problems) drop(p.reason, raw.line, p.message, p.kind === "abort");
      summary.converted += out.length;
      for (const row of out) {
        const why = opts.keep?.(row) ?? null;
        if (why !== null) {
          drop(why, raw.line, `${why} (id ${dumpsPyJson(row.get("id") ?? null)})`);
          continue;
        }
        await w.writeText(dumpsPyJson(row, { ensureAscii: false }));
        summary.written++;
      }
    }
  });
  return summary;
}
