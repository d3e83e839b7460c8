/**
 * From trainset rows to token micro-batches for the trainers (CONTRACT.md "Tokens of a
 * trainset row"): ids = tokenize(inputs) ++ tokenize(targets), each tokenized on its own with
 * no special tokens added; a prompt longer than prompt_max_len drops the row (counted);
 * targets are cut at generate_max_len tokens (counted).
 * Loss positions: position t of a sample is a loss position when its next token ids[t+1] is a
 * targets token, i.e. t in [max(0, P-1), len-2] for a prompt of P tokens. The trainers pack a
 * micro-batch's samples end to end (model/ lays them out; one causal mask per sample).
 */
import { DataError } from "../lib/errors.ts";
import { readJsonl } from "./jsonl.ts";

/** What batching needs of a tokenizer (data/tokenizer.ts Tokenizer has it). */
export interface Encoder {
  encode(text: string): number[];
}

/** One trainset row as tokens. */
export interface Sample {
  /** Index of the row among the kept rows (0-based, in file order). */
  index: number;
  /** The row's id, when it had one. */
  id?: unknown;
  /** Line of the row in its file. */
  line: number;
  /** prompt ++ targets token ids. */
  ids: Int32Array;
  /** Number of prompt (inputs) tokens. */
  promptLength: number;
  /** The targets were cut at generate_max_len. */
  truncated: boolean;
  /** The texts, only when asked for (keepText): the RL trainer scores against targets. */
  inputs?: string;
  targets?: string;
}

export interface TokenizeOptions {
  /** Rows whose prompt has more tokens are dropped. */
  promptMaxLen: number;
  /** Targets are cut to at most this many tokens. */
  generateMaxLen: number;
  keepText?: boolean;
}

export interface TokenizeStats {
  rows: number;
  kept: number;
  /** Rows dropped because the prompt is longer than prompt_max_len. */
  droppedLongPrompt: number;
  /** Rows whose targets were cut at generate_max_len. */
  truncatedTargets: number;
  /** Rows that could not be read (bad JSON, missing or mistyped inputs/targets). */
  badRows: number;
  promptTokens: number;
  targetTokens: number;
}

export function emptyStats(): TokenizeStats {
  return {
    rows: 0,
    kept: 0,
    droppedLongPrompt: 0,
    truncatedTargets: 0,
    badRows: 0,
    promptTokens: 0,
    targetTokens: 0,
  };
}

/**
 * Tokenizes one row; null when the prompt is too long (counted in `stats`).
 * `index` is filled in by the caller.
 */
export function tokenizeRow(
  enc: Encoder,
  row: { inputs: string; targets: string; id?: unknown },
  opts: TokenizeOptions,
  stats: TokenizeStats,
  line = 0,
): Omit<Sample, "index"> | null {
  stats.rows++;
  const prompt = enc.encode(row.inputs);
  if (prompt.length > opts.promptMaxLen) {
    stats.droppedLongPrompt++;
    return null;
  }
  let target = enc.encode(row.targets);
  const truncated = target.length > opts.generateMaxLen;
  if (truncated) {
    target = target.slice(0, Math.max(0, opts.generateMaxLen));
    stats.truncatedTargets++;
  }
  const ids = new Int32Array(prompt.length + target.length);
  ids.set(prompt, 0);
  ids.set(target, prompt.length);
  stats.kept++;
  stats.promptTokens += prompt.length;
  stats.targetTokens += target.length;
  const s: Omit<Sample, "index"> = { line, ids, promptLength: prompt.length, truncated };
  if (row.id !== undefined) s.id = row.id;
  if (opts.keepText) {
    s.inputs = row.inputs;
    s.targets = row.targets;
  }
  return s;
}

/**
 * Reads a trainset file ({"id", "inputs", "targets"} rows) and tokenizes every row. Bad rows
 * go to `onError` when given (and are counted), else the first one throws a DataError.
 */
export async function loadTrainset(
  path: string,
  enc: Encoder,
  opts: TokenizeOptions & { onError?: (e: DataError) => void },
): Promise<{ samples: Sample[]; stats: TokenizeStats }> {
  const stats = emptyStats();
  const samples: Sample[] = [];
  const fail = (e: DataError) => {
    stats.badRows++;
    if (!opts.onError) throw e;
    opts.onError(e);
  };
  for await (
    const { line, value } of readJsonl(path, { onError: opts.onError ? fail : undefined })
  ) {
    const row = value as Record<string, unknown>;
    if (row === null || typeof row !== "object" || Array.isArray(row)) {
      fail(new DataError(path, line, "a row must be a JSON object"));
      continue;
    }
    let bad = false;
    for (const field of ["inputs", "targets"]) {
      const v = row[field];
      if (typeof v !== "string") {
        const why = v === undefined ? "is missing" : `must be a string, not ${typeof v}`;
        fail(new DataError(path, line, `field "${field}" ${why}`, field));
        bad = true;
        break;
      }
    }
    if (bad) continue;
    const s = tokenizeRow(
      enc,
      row as { inputs: string; targets: string; id?: unknown },
      opts,
      stats,
      line,
    );
    if (s) samples.push({ index: samples.length, ...s });
  }
  return { samples, stats };
}
