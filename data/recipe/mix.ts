/**
 * The stratified greedy sampling of STAR's data_proportion.py. Rows are classed by their last
 * assistant message, shuffled with Python's `random.shuffle`, taken while a class they belong to
 * is below its quota (rate x size) until 1.1 x size are taken; rows over the prompt-token limit
 * are dropped and `random.sample` draws the final rows. Works on a small summary per row: the
 * caller streams the rows and counts the tokens (mix_file.ts).
 */
import type { PyDict, PyValue } from "../../lib/py/json.ts";
import { pyFixed } from "./_py_format.ts";
import { rowMessages, RowShapeError, toolCallCount } from "./label.ts";
import type { PyRandom } from "./py_random.ts";

export const CATEGORIES = [
  "single_turn",
  "multi_turn",
  "parallel",
  "single",
  "response",
  "multi_step",
] as const;
export type Category = typeof CATEGORIES[number];
export type CategoryCounts = Record<Category, number>;

const BIT: CategoryCounts = {
  single_turn: 1,
  multi_turn: 2,
  parallel: 4,
  single: 8,
  response: 16,
  multi_step: 32,
};

export interface MixRates {
  /** Target size of the mix. */
  size: number;
  maxTurns: number;
  responseRate: number;
  multiStepRate: number;
  singleTurnsRate: number;
  parallelRate: number;
}

/** STAR's defaults (data_proportion.py's flags), without the size. */
export const MIX_DEFAULTS = {
  seed: 42,
  maxTurns: 10,
  responseRate: 0.2,
  multiStepRate: 0.3,
  singleTurnsRate: 0.3,
  parallelRate: 0.5,
  maxPromptTokens: 8192,
} as const;

/** The quota of each class: int(rate x size), with the complements for multi_turn and single. */
export function minCounts(r: MixRates): CategoryCounts {
  return {
    single_turn: Math.trunc(r.singleTurnsRate * r.size),
    multi_turn: Math.trunc((1 - r.singleTurnsRate) * r.size),
    parallel: Math.trunc(r.parallelRate * r.size),
    single: Math.trunc((1 - r.parallelRate) * r.size),
    response: Math.trunc(r.responseRate * r.size),
    multi_step: Math.trunc(r.multiStepRate * r.size),
  };
}

/** Index of the last assistant message, -1 when there is none. */
export function lastAssistantIndex(messages: PyDict[]): number {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].get("role") === "assistant") return i;
  }
  return -1;
}

/** What the sampler needs of a row: its classes (a bit set) and its last assistant turns. */
export interface RowSummary {
  classes: number;
  /** `turns` of the last assistant message; null when the row has no assistant message. */
  turns: number | null;
}

function pyContains(container: PyValue, item: string, where: string): boolean {
  if (Array.isArray(container)) return container.includes(item);
  if (typeof container === "string") return container.includes(item);
  throw new RowShapeError(`${where} is not a list`);
}

/** get_conversation_categories of data_proportion.py, as a summary. */
export function summarizeRow(row: PyValue): RowSummary {
  const messages = rowMessages(row);
  const last = lastAssistantIndex(messages);
  if (last < 0) return { classes: 0, turns: null };
  const m = messages[last];
  const where = `messages[${last}]`;
  const t = m.has("turns") ? m.get("turns")! : 0n;
  if (typeof t !== "bigint" && typeof t !== "number" && typeof t !== "boolean") {
    throw new RowShapeError(`${where}.turns is not a number`);
  }
  const turns = Number(t);
  const tags = m.has("tag") ? m.get("tag")! : [];
  const calls = toolCallCount(m, where);
  let classes = 0;
  if (turns === 1) classes |= BIT.single_turn;
  if (turns > 1) classes |= BIT.multi_turn;
  if (calls > 1) classes |= BIT.parallel;
  if (calls === 1) classes |= BIT.single;
  if (pyContains(tags, "response", `${where}.tag`)) classes |= BIT.response;
  if (pyContains(tags, "multi-step", `${where}.tag`)) classes |= BIT.multi_step;
  return { classes, turns };
}

export function hasClass(s: RowSummary, c: Category): boolean {
  return (s.classes & BIT[c]) !== 0;
}

function zeroCounts(): CategoryCounts {
  return { single_turn: 0, multi_turn: 0, parallel: 0, single: 0, response: 0, multi_step: 0 };
}

export interface GreedyResult {
  /** Positions of the taken rows (into the summaries), in the shuffled order. */
  taken: number[];
  /** Rows taken per class. */
  counts: CategoryCounts;
  targets: CategoryCounts;
}

/**
 * Shuffles the positions 0..n-1 with `rng` (Python's random.shuffle on the row list) and runs
 * greedy_sample over them.
 */
export function greedySample(
  summaries: readonly RowSummary[],
  rates: MixRates,
  rng: PyRandom,
): GreedyResult {
  const order = new Int32Array(summaries.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  rng.shuffle(order);
  const targets = minCounts(rates);
  const target = Math.trunc(rates.size * 1.1);
  const counts = zeroCounts();
  const taken: number[] = [];
  for (const pos of order) {
    if (taken.length >= target) break;
    const s = summaries[pos];
    if (s.turns !== null && s.turns > rates.maxTurns) continue;
    if (hasClass(s, "response") && counts.response >= targets.response) continue;
    if (!CATEGORIES.some((c) => hasClass(s, c) && counts[c] < targets[c])) continue;
    taken.push(pos);
    for (const c of CATEGORIES) if (hasClass(s, c)) counts[c]++;
  }
  return { taken, counts, targets };
}

/**
 * The final draw: `random.sample(kept, size)` when enough rows are left, else all of them in
 * order (the script warns); null when none is left.
 */
export function finalDraw(kept: readonly number[], size: number, rng: PyRandom): number[] | null {
  if (kept.length >= size) return rng.sample(kept, size);
  return kept.length > 0 ? [...kept] : null;
}

export interface MixReport {
  rowsRead: number;
  targets: CategoryCounts;
  /** Rows the greedy pass took, and per class. */
  taken: number;
  takenCounts: CategoryCounts;
  /** Taken rows dropped for a prompt over the limit (or a prompt that cannot be rendered). */
  overPromptTokens: number;
  maxPromptTokens: number;
  /** The final rows per class. */
  finalCounts: CategoryCounts;
  total: number;
  size: number;
}

export function countClasses(summaries: Iterable<RowSummary>): CategoryCounts {
  const c = zeroCounts();
  for (const s of summaries) for (const k of CATEGORIES) if (hasClass(s, k)) c[k]++;
  return c;
}

/** The report as JSON: the script's calculate_statistics keys plus the greedy pass. */
export function mixReportJson(r: MixReport): PyDict {
  const ints = (c: CategoryCounts): PyDict =>
    new Map(CATEGORIES.map((k) => [k, BigInt(c[k])] as [string, PyValue]));
  return new Map<string, PyValue>([
    ["rows_read", BigInt(r.rowsRead)],
    ["dataset_size", BigInt(r.size)],
    ["targets", ints(r.targets)],
    ["sampled", BigInt(r.taken)],
    ["sampled_counts", ints(r.takenCounts)],
    ["max_prompt_tokens", BigInt(r.maxPromptTokens)],
    ["over_max_prompt_tokens", BigInt(r.overPromptTokens)],
    ["total_count", BigInt(r.total)],
    ["category_counts", ints(r.finalCounts)],
    [
      "category_proportions",
      new Map(
        CATEGORIES.map((k) =>
          [k, r.total > 0 ? r.finalCounts[k] / r.total * 100 : 0n] as [string, PyValue]
        ),
      ),
    ],
  ]);
}

/** The report for people. */
export function mixReportText(r: MixReport): string {
  const lines = [
    `${r.rowsRead} rows read; quotas for ${r.size} rows, ` +
    `at most ${Math.trunc(r.size * 1.1)} taken before the prompt-token limit`,
    `greedy pass: ${r.taken} rows taken`,
    `  ${"class".padEnd(12)} ${"taken".padStart(8)} ${"quota".padStart(8)}`,
  ];
  for (const k of CATEGORIES) {
    const mark = r.takenCounts[k] >= r.targets[k] ? "" : "  (short)";
    lines.push(
      `  ${k.padEnd(12)} ${String(r.takenCounts[k]).padStart(8)} ${
        String(r.targets[k]).padStart(8)
      }${mark}`,
    );
  }
  lines.push(
    `prompt-token limit ${r.maxPromptTokens}: ${r.overPromptTokens} rows dropped, ` +
      `${r.taken - r.overPromptTokens} left`,
  );
  const short = r.total < r.size ? ` (fewer than the ${r.size} asked for)` : "";
  lines.push(`final: ${r.total} rows${short}`);
  for (const k of CATEGORIES) {
    const p = r.total > 0 ? r.finalCounts[k] / r.total * 100 : 0;
    lines.push(
      `  ${k.padEnd(12)} ${String(r.finalCounts[k]).padStart(8)}  ${pyFixed(p, 2)}%`,
    );
  }
  return lines.join("\n") + "\n";
}
