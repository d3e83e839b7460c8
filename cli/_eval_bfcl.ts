/**
 * `star eval --bench bfcl`: BFCL's single-turn AST categories. Three ways in, one judging:
 * --dump-prompts writes the prompt of each selected entry and stops; --generations judges
 * `{"id", "completion"}` rows made elsewhere (each row on its own, in input order); --model
 * builds the prompts, asks a `Generate` function for greedy completions chunk by chunk
 * (appending rows, so a killed run resumes) and judges them the same way. Per-category counts
 * then give BFCL's leaderboard columns (reward/bfcl/score.ts), printed as a table and written
 * as JSON with --summary.
 */
import { closestName } from "../lib/suggest.ts";
import { JsonlWriter, readJsonl } from "../data/jsonl.ts";
import { DataError, UsageError, UserError } from "../lib/errors.ts";
import { errorText, jsonObject, RowError, rowError, runRows } from "./_rows.ts";
import { type BfclDataEntry, countBfclEntries, loadBfclCategory } from "../data/bfcl.ts";
import {
  BFCL_CATEGORIES,
  BFCL_V4_SIZES,
  type BfclCategory,
  buildPrompt,
  type CategoryCount,
  isRelevanceCategory,
  judge,
  leaderboardScores,
  SCORE_COLUMNS,
  type ScoreColumn,
} from "../reward/bfcl/mod.ts";
import { formatDuration } from "../train/progress.ts";

/**
 * Greedy completions, one per prompt: the text generated after it, special tokens such as
 * `<|im_end|>` left out (as vLLM returns it). BFCL asks for up to min(4096, context - prompt - 2)
 * new tokens at temperature 0.001.
 */
export type Generate = (prompts: string[]) => Promise<string[]>;

export interface BfclFlags {
  "bfcl-data"?: string;
  model?: string;
  generations?: string;
  categories?: string;
  limit?: number;
  output?: string;
  summary?: string;
  "dump-prompts"?: string;
  "max-new-tokens"?: number;
}

export interface BfclSummary {
  categories: Record<string, { correct: number; total: number; accuracy: number }>;
  scores: Record<ScoreColumn, number | null>;
}

/**
 * --model: the engine's batched greedy generation over the model in `dir`, asking for
 * `maxNewTokens` new tokens, or BFCL's min(4096, context − prompt − 2).
 */
export async function loadModelGenerator(
  dir: string,
  maxNewTokens?: number,
): Promise<{ generate: Generate; release: () => void }> {
  const { greedyTextGenerator } = await import("../train/eval.ts");
  const { readModelConfig } = await import("../model/config.ts");
  const ctx = (await readModelConfig(dir)).max_position_embeddings;
  return await greedyTextGenerator(dir, {
    maxNewTokens: (prompt) => maxNewTokens ?? Math.max(1, Math.min(4096, ctx - prompt - 2)),
  });
}

export async function runBfcl(flags: BfclFlags): Promise<number> {
  const dir = flags["bfcl-data"];
  if (dir === undefined) throw new UsageError(`"star eval --bench bfcl" needs --bfcl-data DIR`);
  const modes = (["dump-prompts", "generations", "model"] as const).filter((k) =>
    flags[k] !== undefined
  );
  if (modes.length !== 1) {
    throw new UsageError(
      `"star eval --bench bfcl" takes exactly one of --dump-prompts, --generations, --model` +
        (modes.length ? ` (got ${modes.map((m) => `--${m}`).join(", ")})` : ""),
    );
  }
  if (flags.limit !== undefined && flags.limit < 1) {
    throw new UsageError(`Flag "--limit" must be at least 1, got ${flags.limit}`);
  }
  const categories = parseCategories(flags.categories);
  const sel = { dir, categories, limit: flags.limit };
  if (flags["dump-prompts"] !== undefined) {
    await dumpPrompts(sel, flags["dump-prompts"]);
    return 0;
  }
  let result: { counts: Map<string, CategoryCount>; errors: number };
  if (flags.generations !== undefined) {
    result = await judgeGenerations(sel, flags.generations, flags.output);
  } else {
    const g = await loadModelGenerator(flags.model!, flags["max-new-tokens"]);
    try {
      const entries = await loadSelection(sel);
      result = await evalWithModel(entries, g.generate, { output: flags.output });
    } finally {
      g.release();
    }
  }
  const summary = await summarise(dir, result.counts);
  const table = summaryTable(summary);
  if (flags.output === "-") console.error(table);
  else console.log(table);
  if (flags.summary !== undefined) {
    await writeAtomic(flags.summary, JSON.stringify(summary, null, 2) + "\n");
  }
  return result.errors > 0 ? 1 : 0;
}

/** `--categories a,b`: BFCL category names, de-duplicated, in the order given; default all. */
export function parseCategories(text: string | undefined): BfclCategory[] {
  if (text === undefined) return [...BFCL_CATEGORIES];
  const out: BfclCategory[] = [];
  for (const raw of text.split(",")) {
    const name = raw.trim();
    if (name === "") continue;
    if (!(BFCL_CATEGORIES as readonly string[]).includes(name)) {
      const near = closestName(name, BFCL_CATEGORIES);
      throw new UsageError(
        `Unknown BFCL category "${name}"${near ? `; did you mean "${near}"?` : ""} ` +
          `(categories: ${BFCL_CATEGORIES.join(", ")})`,
      );
    }
    if (!out.includes(name as BfclCategory)) out.push(name as BfclCategory);
  }
  if (out.length === 0) throw new UsageError(`Flag "--categories" names no category`);
  return out;
}

interface Selection {
  dir: string;
  categories: BfclCategory[];
  limit?: number;
}

function loadCategory(dir: string, category: string, limit?: number) {
  return loadBfclCategory(dir, category, { withAnswers: !isRelevanceCategory(category), limit });
}

/** The selected entries: each chosen category's first --limit entries, category by category. */
export async function loadSelection(sel: Selection): Promise<BfclDataEntry[]> {
  const out: BfclDataEntry[] = [];
  for (const c of sel.categories) out.push(...await loadCategory(sel.dir, c, sel.limit));
  return out;
}

async function dumpPrompts(sel: Selection, path: string): Promise<void> {
  const entries = await loadSelection(sel);
  await writeRows(path, async (w) => {
    for (const e of entries) {
      let prompt: string;
      try {
        prompt = buildPrompt(e);
      } catch (err) {
        throw new UserError(`Cannot build the prompt of "${e.id}": ${(err as Error).message}`);
      }
      await w.writeText(JSON.stringify({ id: e.id, prompt }));
    }
  });
}

/** The category of an entry id, as BFCL derives it (`id.rsplit("_", 1)[0]`). */
export function categoryOfId(id: string): string {
  const at = id.lastIndexOf("_");
  return at < 0 ? id : id.slice(0, at);
}

/** The output row of one judged completion. */
function judgedRow(entry: BfclDataEntry, completion: string, counts: Map<string, CategoryCount>) {
  const v = judge(entry, completion);
  const c = counts.get(entry.category) ?? { correct: 0, total: 0 };
  c.total++;
  if (v.valid) c.correct++;
  counts.set(entry.category, c);
  return {
    id: entry.id,
    category: entry.category,
    valid: v.valid,
    error_type: v.errorType,
    error: v.error,
  };
}

/** A readable --generations row: an id and its completion. */
interface GenerationRow {
  id: string;
  completion: string;
  line: number;
}

function parseGeneration(text: string, at: { file: string; line: number }): GenerationRow {
  const row = jsonObject(text, at);
  for (const field of ["id", "completion"] as const) {
    if (typeof row[field] !== "string") {
      const e = new DataError(
        at.file,
        at.line,
        `field "${field}" is missing or not a string`,
        field,
      );
      throw rowError(e, row);
    }
  }
  return { id: row.id as string, completion: row.completion as string, line: at.line };
}

/**
 * --generations through the row pipeline (cli/_rows.ts): one output row per input row, in
 * order; a row of an entry that exists but is not selected writes nothing and is counted.
 */
async function judgeGenerations(sel: Selection, input: string, output: string | undefined) {
  const counts = new Map<string, CategoryCount>();
  // id -> entry for the selected entries of each category, loaded when a row first needs it;
  // `known` also holds the ids that exist but are not selected (other categories, --limit).
  const selected = new Map<string, BfclDataEntry>();
  const known = new Set<string>();
  const loaded = new Set<string>();
  let unknown = 0, skipped = 0;
  const t0 = performance.now();
  const judgeRow = async (row: GenerationRow): Promise<string> => {
    const category = categoryOfId(row.id);
    if ((BFCL_CATEGORIES as readonly string[]).includes(category) && !loaded.has(category)) {
      loaded.add(category);
      const all = await loadCategory(sel.dir, category);
      const chosen = sel.categories.includes(category as BfclCategory);
      all.forEach((e, i) => {
        known.add(e.id);
        if (chosen && i < (sel.limit ?? Infinity)) selected.set(e.id, e);
      });
    }
    const entry = selected.get(row.id);
    if (entry !== undefined) return JSON.stringify(judgedRow(entry, row.completion, counts));
    if (known.has(row.id)) {
      skipped++;
      return "";
    }
    unknown++;
    const e = new DataError(input, row.line, `unknown BFCL entry id "${row.id}"`, "id");
    console.error(`star: ${e.message}`);
    return errorText(new RowError(e, JSON.stringify(row.id)));
  };
  let errors = 0;
  await writeRows(output, async (out) => {
    const r = await runRows<GenerationRow>({
      input,
      out,
      parse: parseGeneration,
      budget: 1024,
      async process(rows) {
        const texts: string[] = [];
        for (const row of rows) texts.push(await judgeRow(row));
        return texts;
      },
    });
    errors = r.errors + unknown;
  });
  const rows = [...counts.values()].reduce((a, c) => a + c.total, 0);
  const secs = (performance.now() - t0) / 1000;
  console.error(
    `star eval: judged ${rows} rows in ${secs.toFixed(2)} s` +
      (skipped ? `, skipped ${skipped} of entries not selected (--categories, --limit)` : "") +
      `, ${errors} errors`,
  );
  return { counts, errors };
}

export interface ModelEvalOptions {
  /** Rows file; re-running with the same selection resumes after its complete rows. */
  output?: string;
  /** Prompts per Generate call (default 32). */
  chunk?: number;
  /** Progress text (default: a line on stderr per chunk). */
  log?: (line: string) => void;
}

/**
 * The model path: prompts -> generate -> judge, chunk by chunk. Output rows are those of
 * --generations plus "completion". Rows already in `output` (a killed run) are kept and
 * counted, and generation resumes after them.
 */
export async function evalWithModel(
  entries: BfclDataEntry[],
  generate: Generate,
  opts: ModelEvalOptions = {},
): Promise<{ counts: Map<string, CategoryCount>; errors: number }> {
  const counts = new Map<string, CategoryCount>();
  const chunk = opts.chunk ?? 32;
  const log = opts.log ?? ((s: string) => console.error(s));
  let start = 0;
  const out = opts.output === undefined
    ? null
    : await JsonlWriter.open(opts.output, { resume: opts.output !== "-" });
  try {
    if (out && out.rowsOnOpen > 0) start = await recount(opts.output!, entries, counts);
    const t0 = performance.now();
    for (let i = start; i < entries.length; i += chunk) {
      const batch = entries.slice(i, i + chunk);
      const completions = await generate(batch.map((e) => buildPrompt(e)));
      if (completions.length !== batch.length) {
        throw new Error(
          `generate returned ${completions.length} completions for ${batch.length} prompts`,
        );
      }
      for (let k = 0; k < batch.length; k++) {
        const row = judgedRow(batch[k], completions[k], counts);
        await out?.writeText(JSON.stringify({ ...row, completion: completions[k] }));
      }
      await out?.flush();
      const done = i + batch.length;
      const rate = (done - start) / ((performance.now() - t0) / 1000);
      log(
        `star eval: ${done}/${entries.length} entries, ETA ${
          formatDuration((entries.length - done) / Math.max(rate, 1e-9))
        }`,
      );
    }
  } finally {
    await out?.close();
  }
  return { counts, errors: 0 };
}

/** Counts the rows a previous run wrote; they must be the first entries of this selection. */
async function recount(
  path: string,
  entries: BfclDataEntry[],
  counts: Map<string, CategoryCount>,
): Promise<number> {
  let n = 0;
  for await (const { line, value } of readJsonl(path)) {
    const row = value as { id?: unknown; valid?: unknown; category?: unknown };
    const e = entries[n];
    if (e === undefined || row.id !== e.id || typeof row.valid !== "boolean") {
      throw new UserError(
        `Cannot resume from "${path}": line ${line} is not the row of entry ` +
          `"${
            e?.id ?? "(none)"
          }"; it was written for another selection (move it away to start over)`,
      );
    }
    const c = counts.get(e.category) ?? { correct: 0, total: 0 };
    c.total++;
    if (row.valid) c.correct++;
    counts.set(e.category, c);
    n++;
  }
  return n;
}

/** The summary: per-category counts (BFCL's order) and the leaderboard columns. */
export async function summarise(
  dir: string,
  counts: Map<string, CategoryCount>,
): Promise<BfclSummary> {
  const categories: BfclSummary["categories"] = {};
  const sizes: Record<string, number> = {};
  for (const c of BFCL_CATEGORIES) {
    const n = counts.get(c);
    if (n && n.total > 0) {
      categories[c] = { correct: n.correct, total: n.total, accuracy: n.correct / n.total };
    } else sizes[c] = await countBfclEntries(dir, c) ?? BFCL_V4_SIZES[c];
  }
  return { categories, scores: leaderboardScores(Object.fromEntries(counts), sizes) };
}

export function summaryTable(s: BfclSummary): string {
  const lines = [
    `${"category".padEnd(32)}${"correct".padStart(8)}${"total".padStart(8)}${
      "accuracy".padStart(10)
    }`,
  ];
  for (const c of BFCL_CATEGORIES) {
    const x = s.categories[c];
    lines.push(
      x
        ? `${c.padEnd(32)}${String(x.correct).padStart(8)}${String(x.total).padStart(8)}${
          `${(100 * x.accuracy).toFixed(2)}%`.padStart(10)
        }`
        : `${c.padEnd(32)}${"-".padStart(8)}${"-".padStart(8)}${"N/A".padStart(10)}`,
    );
  }
  lines.push("");
  for (const col of SCORE_COLUMNS) {
    const v = s.scores[col];
    lines.push(`${col.padEnd(48)}${(v === null ? "N/A" : `${v.toFixed(2)}%`).padStart(10)}`);
  }
  return lines.join("\n");
}

/** Writes rows to `path` ("-": stdout; none: nowhere) through a temp file renamed at the end. */
async function writeRows(
  path: string | undefined,
  fill: (w: JsonlWriter) => void | Promise<void>,
): Promise<void> {
  if (path === undefined) {
    const sink = {
      writeText: () => Promise.resolve(),
      flush: () => Promise.resolve(),
    } as unknown as JsonlWriter;
    await fill(sink);
    return;
  }
  const tmp = path === "-" ? "-" : `${path}.tmp-${Deno.pid}`;
  const w = await JsonlWriter.open(tmp);
  try {
    await fill(w);
    await w.close();
    if (tmp !== "-") await Deno.rename(tmp, path);
  } catch (err) {
    await w.close();
    if (tmp !== "-") await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  if (path === "-") {
    console.log(text.trimEnd());
    return;
  }
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new UserError(`Cannot write "${path}": ${(err as Error).message}`);
  }
}
