/**
 * BFCL v4's leaderboard columns for the single-turn categories (`eval_runner_helper.py`
 * `generate_leaderboard_csv`): per-category accuracy = correct / rows judged; Non-Live Simple
 * = unweighted mean of python/java/javascript; Non-Live AST = unweighted mean of simple,
 * multiple, parallel, parallel_multiple; Live = count-weighted mean of the four live AST
 * categories; Irrelevance = unweighted mean of irrelevance, live_irrelevance; Overall = 10/10/10/
 * 30/40 on [Non-Live, Live, Irrelevance, Multi-Turn, Agentic], the last two never run here (0).
 * A category not run counts 0 with its full size as weight; a column BFCL would show as "N/A"
 * is null. Percentages are rounded to 2 decimals as its CSV prints them ("{:.2f}").
 */
import { BFCL_V4_SIZES, type BfclCategory } from "./judge.ts";

export interface CategoryCount {
  correct: number;
  total: number;
}

/** The columns of BFCL's overall table that single-turn runs fill, in its order. */
export const SCORE_COLUMNS = [
  "Overall Acc",
  "Non-Live AST Acc",
  "Non-Live Simple AST",
  "Non-Live Multiple AST",
  "Non-Live Parallel AST",
  "Non-Live Parallel Multiple AST",
  "Live Acc",
  "Live Simple AST",
  "Live Multiple AST",
  "Live Parallel AST",
  "Live Parallel Multiple AST",
  "Relevance Detection",
  "Irrelevance Detection",
] as const;

export type ScoreColumn = typeof SCORE_COLUMNS[number];

interface Acc {
  accuracy: number;
  totalCount: number;
  /** Shown as "N/A" by BFCL (a category, or a part of a mean, was not run). */
  na: boolean;
}

function unweighted(parts: Acc[], naIfMissing = true): Acc {
  let sum = 0, count = 0, na = false;
  for (const p of parts) {
    sum += p.accuracy;
    count += p.totalCount;
    na ||= p.na;
  }
  return { accuracy: sum / parts.length, totalCount: count, na: na && naIfMissing };
}

function weighted(parts: Acc[], naIfMissing = true): Acc {
  let sum = 0, count = 0, na = false;
  for (const p of parts) {
    sum += p.accuracy * p.totalCount;
    count += p.totalCount;
    na ||= p.na;
  }
  return { accuracy: sum / count, totalCount: count, na: na && naIfMissing };
}

function percentageWeighted(parts: Acc[], weights: number[]): Acc {
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0, count = 0;
  parts.forEach((p, i) => {
    sum += p.accuracy * (weights[i] / total);
    count += p.totalCount;
  });
  return { accuracy: sum, totalCount: count, na: false };
}

/**
 * The 13 columns, in percent (null where BFCL shows "N/A"), from per-category counts.
 * `sizes` gives the entry count of categories not run (default: BFCL v4's).
 */
export function leaderboardScores(
  counts: Partial<Record<string, CategoryCount>>,
  sizes: Partial<Record<string, number>> = {},
): Record<ScoreColumn, number | null> {
  const cat = (name: BfclCategory): Acc => {
    const c = counts[name];
    if (c && c.total > 0) return { accuracy: c.correct / c.total, totalCount: c.total, na: false };
    return { accuracy: 0, totalCount: sizes[name] ?? BFCL_V4_SIZES[name], na: true };
  };
  const simple = unweighted([cat("simple_python"), cat("simple_java"), cat("simple_javascript")]);
  const multiple = cat("multiple");
  const parallel = cat("parallel");
  const parallelMultiple = cat("parallel_multiple");
  const nonLiveParts = [simple, multiple, parallel, parallelMultiple];
  const nonLiveSummary = unweighted(nonLiveParts);
  const nonLiveOverall = unweighted(nonLiveParts, false);
  const liveParts = [
    cat("live_simple"),
    cat("live_multiple"),
    cat("live_parallel"),
    cat("live_parallel_multiple"),
  ];
  const liveOverall = weighted(liveParts, false);
  const irrelevance = unweighted([cat("irrelevance"), cat("live_irrelevance")]);
  const notRun: Acc = { accuracy: 0, totalCount: 0, na: true };
  const overall = percentageWeighted(
    [nonLiveOverall, liveOverall, irrelevance, notRun, notRun],
    [10, 10, 10, 30, 40],
  );
  const show = (a: Acc) => a.na ? null : percent(a.accuracy);
  return {
    "Overall Acc": show(overall),
    "Non-Live AST Acc": show(nonLiveSummary),
    "Non-Live Simple AST": show(simple),
    "Non-Live Multiple AST": show(multiple),
    "Non-Live Parallel AST": show(parallel),
    "Non-Live Parallel Multiple AST": show(parallelMultiple),
    "Live Acc": show(liveOverall),
    "Live Simple AST": show(liveParts[0]),
    "Live Multiple AST": show(liveParts[1]),
    "Live Parallel AST": show(liveParts[2]),
    "Live Parallel Multiple AST": show(liveParts[3]),
    "Relevance Detection": show(cat("live_relevance")),
    "Irrelevance Detection": show(irrelevance),
  };
}

/** `float("{:.2f}".format(x * 100))`: round half to even on the exact binary value. */
export function percent(x: number): number {
  return Number(formatFixed2(x * 100));
}

/** Python's `"{:.2f}".format(x)` for a finite x. */
export function formatFixed2(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const neg = x < 0 || Object.is(x, -0);
  const bits = new DataView(new ArrayBuffer(8));
  bits.setFloat64(0, Math.abs(x));
  const hi = bits.getUint32(0), lo = bits.getUint32(4);
  const biased = hi >>> 20;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  // |x| = mant * 2^exp; hundredths = round_half_even(mant * 100 * 2^exp)
  let q: bigint;
  const n = mant * 100n;
  if (exp >= 0) q = n << BigInt(exp);
  else {
    const s = BigInt(-exp);
    q = n >> s;
    const r = n - (q << s);
    const half = 1n << (s - 1n);
    if (r > half || (r === half && (q & 1n) === 1n)) q++;
  }
  const digits = q.toString().padStart(3, "0");
  return `${neg ? "-" : ""}${digits.slice(0, -2)}.${digits.slice(-2)}`;
}
