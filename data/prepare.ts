/**
 * `star prepare` as a library: messages rows in, trainset rows out, streamed one row at a
 * time. Bad rows (invalid JSON, a missing field, a wrong type, a template error) are reported
 * through `onBadRow` and skipped; the returned summary counts them by reason.
 */
import { parsePyJson, PyJsonError } from "../lib/py/json.ts";
import { DataError } from "../lib/errors.ts";
import { JsonlWriter, readLines } from "./jsonl.ts";
import type { Tokenizer } from "./tokenizer.ts";
import { checkMessagesRow, formatTrainsetRow, toTrainsetRow } from "./trainset.ts";

export interface PrepareOptions {
  tokenizer: Tokenizer;
  addReasoningContent?: boolean;
  onBadRow?: (e: DataError) => void;
  /** Called every `progressEvery` rows read. */
  onProgress?: (rowsRead: number) => void;
  progressEvery?: number;
}

export interface PrepareSummary {
  rowsRead: number;
  rowsWritten: number;
  skipped: number;
  /** Skipped rows by reason ("invalid JSON", 'field "messages" is missing', ...). */
  reasons: Map<string, number>;
}

/** Short reason of a row error for the summary (the message after "line N: "). */
export function reasonKey(e: DataError): string {
  const r = e.message.replace(/^Cannot read ".*?" line \d+: /, "");
  if (r.startsWith("invalid JSON")) return "invalid JSON";
  if (r.startsWith("the chat template failed")) return "the chat template failed";
  return r.replace(/\[\d+\]/g, "[i]").replace(/, not .*$/, "").replace(/, has \d+$/, "");
}

export async function prepareFile(
  input: string,
  output: string,
  opts: PrepareOptions,
): Promise<PrepareSummary> {
  const template = (withTools: boolean) => opts.tokenizer.chatTemplate(withTools);
  const writer = await JsonlWriter.open(output);
  const summary: PrepareSummary = { rowsRead: 0, rowsWritten: 0, skipped: 0, reasons: new Map() };
  const every = opts.progressEvery ?? 1000;
  try {
    for await (const { line, text, unterminated } of readLines(input)) {
      if (text.trim() === "") continue;
      summary.rowsRead++;
      if (opts.onProgress && summary.rowsRead % every === 0) opts.onProgress(summary.rowsRead);
      const at = { file: input, line };
      let out: string;
      try {
        let value;
        try {
          value = parsePyJson(text);
        } catch (err) {
          if (!(err instanceof PyJsonError)) throw err;
          const tail = unterminated ? "; the file ends in the middle of this line" : "";
          throw new DataError(input, line, `invalid JSON (${err.message})${tail}`);
        }
        const row = checkMessagesRow(value, at);
        out = formatTrainsetRow(
          toTrainsetRow(row, template, at, { addReasoningContent: opts.addReasoningContent }),
        );
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        summary.skipped++;
        const key = reasonKey(err);
        summary.reasons.set(key, (summary.reasons.get(key) ?? 0) + 1);
        opts.onBadRow?.(err);
        continue;
      }
      await writer.writeText(out);
      summary.rowsWritten++;
    }
  } finally {
    await writer.close();
  }
  return summary;
}
