/**
 * BFCL v4's leaderboard formulas on hand-made category counts, worked out by hand
 * (unweighted vs count-weighted means, N/A for missing parts, zeros in the overall means),
 * and the "{:.2f}" rounding of the percentages (rows printed by CPython 3.11).
 */
import { assertEquals } from "./assert.ts";
import { formatFixed2, leaderboardScores } from "../reward/bfcl/mod.ts";

Deno.test("leaderboardScores() applies BFCL v4's means to a full run", () => {
  const s = leaderboardScores({
    simple_python: { correct: 300, total: 400 }, // 0.75
    simple_java: { correct: 50, total: 100 }, // 0.5
    simple_javascript: { correct: 25, total: 50 }, // 0.5
    multiple: { correct: 100, total: 200 },
    parallel: { correct: 150, total: 200 },
    parallel_multiple: { correct: 50, total: 200 },
    live_simple: { correct: 129, total: 258 },
    live_multiple: { correct: 1053, total: 1053 },
    live_parallel: { correct: 8, total: 16 },
    live_parallel_multiple: { correct: 0, total: 24 },
    irrelevance: { correct: 240, total: 240 },
    live_irrelevance: { correct: 442, total: 884 },
    live_relevance: { correct: 12, total: 16 },
  });
  assertEquals(s, {
    // simple = (0.75 + 0.5 + 0.5) / 3; non-live = (simple + 0.5 + 0.75 + 0.25) / 4 = 0.520833
    "Non-Live Simple AST": 58.33,
    "Non-Live AST Acc": 52.08,
    "Non-Live Multiple AST": 50,
    "Non-Live Parallel AST": 75,
    "Non-Live Parallel Multiple AST": 25,
    // live = (129 + 1053 + 8 + 0) / (258 + 1053 + 16 + 24) = 1190 / 1351, not the plain mean
    "Live Acc": 88.08,
    "Live Simple AST": 50,
    "Live Multiple AST": 100,
    "Live Parallel AST": 50,
    "Live Parallel Multiple AST": 0,
    // irrelevance = (1 + 0.5) / 2, relevance alone
    "Irrelevance Detection": 75,
    "Relevance Detection": 75,
    // 0.1 * 0.520833 + 0.1 * 0.880829 + 0.1 * 0.75 (+ 0.3 * 0 multi-turn + 0.4 * 0 agentic)
    "Overall Acc": 21.52,
  });
});

Deno.test("leaderboardScores() shows N/A for missing parts and counts them 0 in the overall", () => {
  const s = leaderboardScores({ simple_python: { correct: 200, total: 400 } });
  assertEquals(s["Non-Live Simple AST"], null);
  assertEquals(s["Non-Live AST Acc"], null);
  assertEquals(s["Non-Live Multiple AST"], null);
  assertEquals(s["Live Acc"], 0); // BFCL never shows this one as N/A
  assertEquals(s["Live Simple AST"], null);
  assertEquals(s["Relevance Detection"], null);
  assertEquals(s["Irrelevance Detection"], null);
  // 0.1 * ((0.5 / 3) / 4)
  assertEquals(s["Overall Acc"], 0.42);
});

Deno.test("leaderboardScores() weights a live category that was not run by its full size", () => {
  const s = leaderboardScores(
    { live_simple: { correct: 10, total: 10 } },
    { live_multiple: 90, live_parallel: 0, live_parallel_multiple: 0 },
  );
  assertEquals(s["Live Acc"], 10); // 10 / (10 + 90)
  // by default, BFCL v4's sizes: 10 / (10 + 1053 + 16 + 24)
  assertEquals(leaderboardScores({ live_simple: { correct: 10, total: 10 } })["Live Acc"], 0.91);
});

Deno.test("formatFixed2() rounds like Python's {:.2f} (half to even on the binary value)", () => {
  const rows: [number, string][] = [
    [0.125, "0.12"],
    [0.375, "0.38"],
    [2.675, "2.67"],
    [1.005, "1.00"],
    [12.125, "12.12"],
    [12.135, "12.13"],
    [99.995, "100.00"],
    [-0.005, "-0.01"],
    [0, "0.00"],
    [1e-9, "0.00"],
    [43.8, "43.80"],
  ];
  for (const [x, want] of rows) assertEquals(formatFixed2(x), want, String(x));
});
