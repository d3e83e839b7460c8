/**
 * From trainset rows to token micro-batches for the trainers (CONTRACT.md "Tokens of a
 * trainset row"): ids = tokenize(inputs) ++ tokenize(targets), each tokenized on its own with
 * no special tokens added; a prompt longer than prompt_max_len drops the row (counted);
 * targets are cut at generate_max_len tokens (counted).
 *
 * Loss positions: position t of a sample is a loss position when its next token ids[t+1] is a
 * targets token, i.e. t in [max(0, P-1), len-2] for a prompt of P tokens; `labels[t]` is that
 * token and -1 elsewhere (padding, prompt).
 *
 * Micro-batches are PACKED by default: the samples of a micro-batch are laid end to end in
 * one row of T tokens with no padding; `seqs` gives each sample's offset and length, so the
 * engine applies one causal mask per sample (engine/ops/attention.ts `attentionRanges` with
 * qStart = kStart = start, qLen = length) and RoPE positions restart at 0 (`positions`).
 * PADDED mode lays them out as B rows of the longest length L (T = B*L) with `padId` after
 * each sample and `positions` 0 on the padding; same `seqs`, `labels` -1 on padding.
 * A micro-batch closes when the next sample would exceed the token budget (T, counting
 * padding in padded mode) or `maxSequences`; a sample longer than the budget on its own
 * gets a micro-batch of its own.
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

/** Loss positions of a sample: t with ids[t+1] a targets token. */
export function lossPositions(s: { ids: ArrayLike<number>; promptLength: number }): number[] {
  const out: number[] = [];
  for (let t = Math.max(0, s.promptLength - 1); t + 1 < s.ids.length; t++) out.push(t);
  return out;
}

/** Where one sample sits in a micro-batch. */
export interface SeqSlot {
  /** Index of the sample in the list given to makeMicroBatches. */
  sample: number;
  /** First token of the sample in the micro-batch (row b * L in padded mode). */
  start: number;
  /** Its number of tokens (without padding). */
  length: number;
  promptLength: number;
}

export interface MicroBatch {
  mode: "packed" | "padded";
  /** Token ids (T); T = sum of lengths (packed) or rows * rowLength (padded). */
  ids: Int32Array;
  /** Position of each token within its sample, for RoPE (T); 0 on padding. */
  positions: Int32Array;
  /** The next token where it is a targets token, else -1 (T). */
  labels: Int32Array;
  /** 1 where labels >= 0 (T). */
  lossMask: Uint8Array;
  seqs: SeqSlot[];
  /** Padded mode: B and L; packed: 1 and T. */
  rows: number;
  rowLength: number;
  /** Number of loss positions (the denominator of the micro-batch mean). */
  targetTokens: number;
}

export interface BatchOptions {
  /** Most tokens per micro-batch (T, padding included). */
  tokenBudget: number;
  /** Most samples per micro-batch (micro_train_batch_size); unlimited when absent. */
  maxSequences?: number;
  mode?: "packed" | "padded";
  /** Token written on padding (padded mode), e.g. <|endoftext|> 151643. */
  padId?: number;
}

/** Groups samples, in the given order, into micro-batches (see the file header). */
export function makeMicroBatches(
  samples: readonly { ids: ArrayLike<number>; promptLength: number }[],
  opts: BatchOptions,
): MicroBatch[] {
  const mode = opts.mode ?? "packed";
  const maxSeq = opts.maxSequences ?? Infinity;
  if (!(opts.tokenBudget >= 1)) {
    throw new RangeError(`Token budget must be >= 1, got ${opts.tokenBudget}`);
  }
  const groups: number[][] = [];
  let cur: number[] = [];
  let sum = 0;
  let longest = 0;
  for (let i = 0; i < samples.length; i++) {
    const n = samples[i].ids.length;
    const cost = mode === "packed" ? sum + n : (cur.length + 1) * Math.max(longest, n);
    if (cur.length > 0 && (cost > opts.tokenBudget || cur.length >= maxSeq)) {
      groups.push(cur);
      cur = [];
      sum = 0;
      longest = 0;
    }
    cur.push(i);
    sum += n;
    longest = Math.max(longest, n);
  }
  if (cur.length > 0) groups.push(cur);
  return groups.map((g) => buildMicroBatch(samples, g, mode, opts.padId ?? 0));
}

function buildMicroBatch(
  samples: readonly { ids: ArrayLike<number>; promptLength: number }[],
  group: number[],
  mode: "packed" | "padded",
  padId: number,
): MicroBatch {
  const lengths = group.map((i) => samples[i].ids.length);
  const rowLength = mode === "packed"
    ? lengths.reduce((a, b) => a + b, 0)
    : Math.max(0, ...lengths);
  const rows = mode === "packed" ? 1 : group.length;
  const T = rows * rowLength;
  const ids = new Int32Array(T).fill(padId);
  const positions = new Int32Array(T);
  const labels = new Int32Array(T).fill(-1);
  const lossMask = new Uint8Array(T);
  const seqs: SeqSlot[] = [];
  let offset = 0;
  let targetTokens = 0;
  group.forEach((i, b) => {
    const s = samples[i];
    const start = mode === "packed" ? offset : b * rowLength;
    const n = s.ids.length;
    for (let t = 0; t < n; t++) {
      ids[start + t] = s.ids[t];
      positions[start + t] = t;
    }
    for (let t = Math.max(0, s.promptLength - 1); t + 1 < n; t++) {
      labels[start + t] = s.ids[t + 1];
      lossMask[start + t] = 1;
      targetTokens++;
    }
    seqs.push({ sample: i, start, length: n, promptLength: s.promptLength });
    offset += n;
  });
  return { mode, ids, positions, labels, lossMask, seqs, rows, rowLength, targetTokens };
}

/** The micro-batch's sequences as engine/ops/attention.ts AttentionSeq values. */
export function attentionSeqs(mb: MicroBatch): { qStart: number; qLen: number; kStart: number }[] {
  return mb.seqs.map((s) => ({ qStart: s.start, qLen: s.length, kStart: s.start }));
}
