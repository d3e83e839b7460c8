/**
 * `star eval --bench reward`: held-out `{id, inputs, targets}` rows (what `star prepare` writes)
 * generated from with the engine (batched, KV cache; greedy at temperature 0) and every sample
 * scored with reward/ exactly as `star score` scores it (the completion decoded with special
 * tokens kept), plus exact-call accuracy (reward/exact.ts). Reports mean reward, format rate,
 * mean answer score and exact-call rate, overall and per kind of row (single, parallel,
 * response). With an output folder: results.jsonl (one row per sample, appended chunk by chunk;
 * a killed run re-run continues after its complete rows) and summary.json.
 */
import { join } from "node:path";
import { loadTrainset } from "../data/batch.ts";
import { JsonlWriter, readJsonl } from "../data/jsonl.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { DataError, UserError } from "../lib/errors.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { exactCalls, labelKind, type RowKind } from "../reward/exact.ts";
import { RewardError } from "../reward/errors.ts";
import { type EvalRow, generateAndScore } from "./eval.ts";
import { formatDuration } from "./progress.ts";

export interface RewardEvalOptions {
  model: string;
  data: string;
  /** Samples per row. */
  n: number;
  temperature: number;
  maxNewTokens: number;
  /** First rows only. */
  limit?: number;
  seed?: number;
  /** Folder for results.jsonl and summary.json. */
  output?: string;
  /** Rows generated together. */
  chunk?: number;
  log?: (line: string) => void;
}

/** One sample's result, as results.jsonl holds it. */
export interface RewardResult {
  id: unknown;
  sample: number;
  completion: string;
  reward: number;
  format: 1 | -1;
  answer: number;
  exact: boolean;
  kind: RowKind;
}

export interface RewardFigures {
  samples: number;
  reward: number;
  format_rate: number;
  answer: number;
  exact_rate: number;
}

export interface RewardSummary extends RewardFigures {
  rows: number;
  kinds: Partial<Record<RowKind, RewardFigures>>;
}

const KINDS: RowKind[] = ["single", "parallel", "response"];

/** Runs (or resumes) the bench; returns the summary and the rows that could not be read. */
export async function runRewardEval(
  o: RewardEvalOptions,
): Promise<{ summary: RewardSummary; errors: number }> {
  const log = o.log ?? ((s: string) => console.error(s));
  const tok = await Tokenizer.load(o.model);
  let errors = 0;
  const { samples } = await loadTrainset(o.data, tok, {
    promptMaxLen: Infinity,
    generateMaxLen: Infinity,
    keepText: true,
    onError: (e) => {
      errors++;
      log(`star: ${e.message}`);
    },
  });
  const rows: (EvalRow & { id: unknown; kind: RowKind })[] = [];
  for (const s of samples.slice(0, o.limit ?? samples.length)) {
    try {
      rows.push({
        id: s.id ?? s.line,
        kind: labelKind(s.targets!),
        prompt: Array.from(s.ids.subarray(0, s.promptLength)),
        inputs: s.inputs!,
        targets: s.targets!,
      });
    } catch (e) {
      if (!(e instanceof RewardError)) throw e;
      errors++;
      log(`star: ${new DataError(o.data, s.line, e.message, "targets").message}`);
    }
  }
  const results = o.output ? await resumeResults(o.output, o.n, rows) : [];
  const out = o.output
    ? await JsonlWriter.open(join(o.output, "results.jsonl"), { append: true })
    : undefined;
  const model = await GpuModel.load(o.model, { precision: "checkpoint" });
  await model.packWeights();
  try {
    const chunk = o.chunk ?? 16, start = results.length / o.n, t0 = performance.now();
    for (let i = start; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const scored = await generateAndScore({
        model,
        rows: part,
        tokenizer: tok,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        n: o.n,
        seed: o.seed,
        firstRow: i,
      });
      for (const s of scored) {
        const r = part[s.row];
        const res: RewardResult = {
          id: r.id,
          sample: s.sample,
          completion: s.completion,
          reward: s.reward,
          format: s.format,
          answer: s.answer,
          exact: exactCalls(r.inputs, s.completion, r.targets),
          kind: r.kind,
        };
        results.push(res);
        await out?.write(res);
      }
      await out?.flush();
      const done = Math.min(rows.length, i + chunk);
      const rate = (done - start) / ((performance.now() - t0) / 1000);
      log(
        `eval: ${done}/${rows.length} rows, ETA ${
          formatDuration((rows.length - done) / Math.max(rate, 1e-9))
        }`,
      );
    }
  } finally {
    await out?.close();
    model.release();
  }
  const summary = summarize(results, rows.length);
  if (o.output) {
    const path = join(o.output, "summary.json");
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(summary, null, 2) + "\n");
    await Deno.rename(`${path}.tmp`, path);
  }
  return { summary, errors };
}

/**
 * The results a killed run wrote, checked against these rows: complete groups of n samples of
 * the first rows, in order; anything after the last complete group is dropped.
 */
async function resumeResults(
  dir: string,
  n: number,
  rows: { id: unknown }[],
): Promise<RewardResult[]> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "results.jsonl");
  const old: RewardResult[] = [];
  try {
    for await (const { value } of readJsonl(path, { onError: () => {} })) {
      old.push(value as RewardResult);
    }
  } catch (e) {
    if (!(e instanceof UserError)) throw e; // no file yet
  }
  const keep = Math.floor(old.length / n) * n;
  for (let i = 0; i < keep; i++) {
    if (JSON.stringify(old[i].id) !== JSON.stringify(rows[Math.floor(i / n)]?.id)) {
      throw new UserError(
        `Cannot resume from "${path}": row ${i + 1} is not a sample of row ${
          JSON.stringify(rows[Math.floor(i / n)]?.id)
        }; it was written for other data or --n (move it away to start over)`,
      );
    }
  }
  const kept = old.slice(0, keep);
  await Deno.writeTextFile(`${path}.tmp`, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  await Deno.rename(`${path}.tmp`, path);
  return kept;
}

function figures(rs: RewardResult[]): RewardFigures {
  const n = Math.max(1, rs.length);
  return {
    samples: rs.length,
    reward: rs.reduce((a, r) => a + r.reward, 0) / n,
    format_rate: rs.filter((r) => r.format === 1).length / n,
    answer: rs.reduce((a, r) => a + r.answer, 0) / n,
    exact_rate: rs.filter((r) => r.exact).length / n,
  };
}

export function summarize(results: RewardResult[], rows: number): RewardSummary {
  const kinds: Partial<Record<RowKind, RewardFigures>> = {};
  for (const k of KINDS) {
    const of = results.filter((r) => r.kind === k);
    if (of.length) kinds[k] = figures(of);
  }
  return { rows, ...figures(results), kinds };
}

/** The summary as a table (overall, then each kind present). */
export function rewardTable(s: RewardSummary): string {
  const line = (name: string, f: RewardFigures) =>
    [
      name.padEnd(10),
      String(f.samples).padStart(8),
      f.reward.toFixed(4).padStart(8),
      f.format_rate.toFixed(4).padStart(8),
      f.answer.toFixed(4).padStart(8),
      f.exact_rate.toFixed(4).padStart(8),
    ].join("  ");
  return [
    ["", "samples", "reward", "format", "answer", "exact"].map((h, i) =>
      i === 0 ? h.padEnd(10) : h.padStart(8)
    ).join("  "),
    line("all", s),
    ...KINDS.flatMap((k) => (s.kinds[k] ? [line(k, s.kinds[k]!)] : [])),
  ].join("\n");
}
