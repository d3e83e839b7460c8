/**
 * `star data label` as a library: messages rows in, the same rows with their assistant
 * messages labelled out (label.ts), streamed, plus the statistics. Malformed rows are reported
 * with their line, skipped and counted; the output is written atomically.
 */
import { DataError } from "../../lib/errors.ts";
import { dumpsPyJson } from "../../lib/py/json.ts";
import { labelRow, LabelStats, RowShapeError } from "./label.ts";
import { writeJsonlAtomically } from "./output.ts";
import { parseRow, readRawRows } from "./rows.ts";

export interface LabelFileSummary {
  stats: LabelStats;
  rowsRead: number;
  written: number;
  skipped: Map<string, number>;
}

export async function labelFile(
  input: string,
  output: string,
  opts: { onlyLastRound?: boolean; onBadRow?: (e: DataError) => void } = {},
): Promise<LabelFileSummary> {
  const stats = new LabelStats(opts.onlyLastRound ?? false);
  const s: LabelFileSummary = { stats, rowsRead: 0, written: 0, skipped: new Map() };
  await writeJsonlAtomically(output, async (w) => {
    for await (const raw of readRawRows(input)) {
      s.rowsRead++;
      let labeled;
      try {
        labeled = labelRow(parseRow(input, raw), stats.onlyLastRound);
      } catch (err) {
        let e: DataError;
        if (err instanceof DataError) e = err;
        else if (err instanceof RowShapeError) e = new DataError(input, raw.line, err.message);
        else throw err;
        const key = err instanceof DataError
          ? "invalid JSON"
          : err.message.replace(/\[\d+\]/g, "[i]");
        s.skipped.set(key, (s.skipped.get(key) ?? 0) + 1);
        opts.onBadRow?.(e);
        continue;
      }
      stats.add(labeled);
      await w.writeText(dumpsPyJson(labeled.row, { ensureAscii: false }));
      s.written++;
    }
  });
  return s;
}
