/**
 * star's BFCL port against verdicts, prompts and leaderboard rows produced by BFCL's own code
 * (gorilla 6ea57973: eval_runner's single-entry evaluators with the Qwen FC handler, its
 * `_format_prompt`, `generate_leaderboard_csv`) on mutated completions of real entries.
 * tests/testdata/bfcl/data holds those entries (a subset of BFCL v4's data, Apache-2.0).
 */
import { assertEquals } from "./assert.ts";
import { loadBfclCategory } from "../data/bfcl.ts";
import {
  BFCL_CATEGORIES,
  type BfclEntry,
  buildPrompt,
  isRelevanceCategory,
  judge,
  leaderboardScores,
  SCORE_COLUMNS,
} from "../reward/bfcl/mod.ts";

const DIR = new URL("./testdata/bfcl/", import.meta.url).pathname;
const DATA = `${DIR}data`;

async function gunzipLines(name: string): Promise<string[]> {
  const file = await Deno.open(`${DIR}${name}`);
  const text = await new Response(
    file.readable.pipeThrough(new DecompressionStream("gzip")),
  ).text();
  return text.split("\n").filter((l) => l !== "");
}

async function allEntries(): Promise<Map<string, BfclEntry>> {
  const byId = new Map<string, BfclEntry>();
  for (const c of BFCL_CATEGORIES) {
    const entries = await loadBfclCategory(DATA, c, { withAnswers: !isRelevanceCategory(c) });
    for (const e of entries) byId.set(e.id, e);
  }
  return byId;
}

Deno.test("judge() gives BFCL's valid and error_type on 6000 checked completions", async () => {
  const entries = await allEntries();
  const cases = (await gunzipLines("checker_cases.jsonl.gz")).map((l) => JSON.parse(l));
  assertEquals(cases.length, 6000);
  const wrong: string[] = [];
  const seen = new Set<string | null>();
  for (const c of cases) {
    const v = judge(entries.get(c.id)!, c.completion);
    seen.add(v.errorType);
    if (v.valid !== c.valid || v.errorType !== c.error_type) {
      wrong.push(
        `${c.id} ${JSON.stringify(c.completion).slice(0, 200)}: got ${v.valid}/` +
          `${v.errorType}, BFCL ${c.valid}/${c.error_type}`,
      );
    }
  }
  assertEquals(wrong.slice(0, 5), []);
  // The fixture reaches every error type BFCL's AST path has, but the unreachable format one.
  assertEquals(seen.size, 23);
});

Deno.test("buildPrompt() writes BFCL's Qwen FC prompt byte for byte for entries of all 13 categories", async () => {
  const entries = await allEntries();
  const rows = (await gunzipLines("prompts.jsonl.gz")).map((l) => JSON.parse(l));
  assertEquals(rows.length, entries.size);
  const cats = new Set<string>();
  for (const r of rows) {
    const e = entries.get(r.id)!;
    cats.add(e.category);
    assertEquals(buildPrompt(e), r.prompt, r.id);
  }
  assertEquals(cats.size, 13);
});

Deno.test("leaderboardScores() equals BFCL's data_overall.csv columns on 60 simulated runs", async () => {
  const lines = (await Deno.readTextFile(`${DIR}leaderboard_cases.jsonl`)).trim().split("\n");
  assertEquals(lines.length, 60);
  for (const line of lines) {
    const { counts, scores } = JSON.parse(line) as {
      counts: Record<string, [number, number]>;
      scores: Record<string, string>;
    };
    const c = Object.fromEntries(
      Object.entries(counts).map(([k, [correct, total]]) => [k, { correct, total }]),
    );
    const ours = leaderboardScores(c);
    for (const col of SCORE_COLUMNS) {
      const want = scores[col] === "N/A" ? null : Number(scores[col].replace("%", ""));
      assertEquals(ours[col], want, `${col} for ${JSON.stringify(counts)}`);
    }
  }
});
