/**
 * star data format|label|mix: STAR's data recipe (format_data.py, labeling_messages.py,
 * data_proportion.py) on files, streamed. This module wires data/recipe to the command line and
 * supplies the Sim-RL self-check of `format` (data/ renders the texts, reward/ scores them: a
 * converted row is kept when its own answer scores above 0.99 against itself). Dropped or
 * malformed rows are reported on stderr with their file and line (the first 20, then counted);
 * exit 1 when a row could not be read, 0 when rows were only dropped by the recipe's rules.
 */
import type { CommandGroup, CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import { closestName } from "../lib/suggest.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { dumpsPyJson, type PyDict } from "../lib/py/json.ts";
import { RewardError, simRlReward } from "../reward/mod.ts";
import {
  type DatasetName,
  DATASETS,
  formatFile,
  labelFile,
  mixFiles,
  mixReportJson,
  mixReportText,
  promptTokens,
  RowProblem,
  selfCheckTexts,
  writeTextAtomically,
} from "../data/recipe/mod.ts";

/** Problems printed one per line before the rest are only counted. */
const MAX_REPORTED = 20;

function stderrLines() {
  const enc = new TextEncoder();
  let reported = 0;
  return {
    write: (s: string) => Deno.stderr.writeSync(enc.encode(s)),
    problem(line: string) {
      if (reported++ < MAX_REPORTED) Deno.stderr.writeSync(enc.encode(`star: ${line}\n`));
    },
    finish() {
      if (reported > MAX_REPORTED) {
        Deno.stderr.writeSync(enc.encode(`star: ... and ${reported - MAX_REPORTED} more\n`));
      }
    },
  };
}

function counts(m: Map<string, number>): string {
  return [...m].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n} ${r}`).join("; ");
}

const where = (path: string) => path === "-" ? "stdout" : `"${path}"`;

// --- format ---------------------------------------------------------------------------------

/**
 * filter_on_simrl: the row's last message rendered as the answer to its prompt must score
 * above 0.99 against itself with the Sim-RL reward. Returns null to keep, else the reason.
 */
export function simrlSelfCheck(tokenizer: Tokenizer): (row: PyDict) => string | null {
  return (row) => {
    let texts;
    try {
      texts = selfCheckTexts(row, tokenizer);
    } catch (err) {
      if (err instanceof RowProblem) return err.reason;
      throw err;
    }
    try {
      const r = simRlReward(texts.prompt, texts.solution, texts.solution);
      if (r.reward > 0.99) return null;
      return r.format === -1
        ? "Sim-RL self-check: format invalid (score -1)"
        : "Sim-RL self-check: score below 0.99";
    } catch (err) {
      if (!(err instanceof RewardError)) throw err;
      return `Sim-RL self-check: malformed ${err.field === "label" ? "answer" : "tools block"}`;
    }
  };
}

const formatFlags = {
  dataset: {
    type: "string",
    required: true,
    value: DATASETS.join("|"),
    description: "Which public set the input is",
  },
  input: {
    type: "string",
    required: true,
    value: "FILE",
    description: "The set's file as published (JSONL or a JSON array)",
  },
  output: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'Messages rows to write (JSONL, atomically; "-" writes stdout)',
  },
  size: {
    type: "integer",
    description: "Draw this many raw rows first, as random.sample does (default: all)",
  },
  seed: { type: "integer", default: 42, description: "Seed of the draw" },
} as const;

const format: CommandModule<typeof formatFlags> = {
  spec: {
    name: "data format",
    summary: "Turn a public tool-calling set into messages rows (format_data.py)",
    details: `toolmind: Nanbeige/ToolMind graph_syn_datasets/graphsyn.jsonl; reasoning moves from
  <think> in the content to reasoning_content, OpenAI-wrapped tools are unwrapped.
toolace: tryumanshow/ToolACE-Qwen-cleaned rows (tools, conversations); one row per assistant
  turn, unknown tool names repaired (first tool whose name contains it), calls with arguments
  the tool does not declare dropped.
xlam: Salesforce/xlam-function-calling-60k (id, query, answers, tools).
hammer: rows with trace_id, functions, messages, expected_output.
Every converted row must pass STAR's Sim-RL self-check (its answer, rendered with the built-in
Qwen3 chat template, scores above 0.99 against itself); the rest are dropped and counted.`,
    flags: formatFlags,
  },
  async run(f) {
    if (!(DATASETS as readonly string[]).includes(f.dataset)) {
      const near = closestName(f.dataset, DATASETS);
      throw new UsageError(
        `Unknown dataset "${f.dataset}" for "star data format"; expected one of ${
          DATASETS.join(", ")
        }${near ? ` (did you mean "${near}"?)` : ""}`,
      );
    }
    if (f.size !== undefined && f.size < 0) {
      throw new UsageError(`Flag "--size" must be at least 0, got ${f.size} ("star data format")`);
    }
    const tokenizer = await Tokenizer.builtin();
    const out = stderrLines();
    const t0 = performance.now();
    const s = await formatFile(f.input, f.output, {
      dataset: f.dataset as DatasetName,
      size: f.size,
      seed: f.seed,
      keep: simrlSelfCheck(tokenizer),
      onDrop: (line) => out.problem(`dropped ${line}`),
    });
    out.finish();
    const drawn = s.rowsInFile !== null && s.rowsUsed < s.rowsInFile
      ? ` (drawn from ${s.rowsInFile})`
      : "";
    const dropped = s.dropped.size > 0 ? `; dropped: ${counts(s.dropped)}` : "";
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    out.write(
      `data format: ${s.rowsUsed} raw rows${drawn}, ${s.converted} converted, ` +
        `${s.written} written to ${where(f.output)}${dropped} in ${secs} s\n`,
    );
    return s.malformed > 0 ? 1 : 0;
  },
};

// --- label ----------------------------------------------------------------------------------

const labelFlags = {
  input: {
    type: "string",
    required: true,
    value: "FILE",
    description: "Messages rows (JSONL or a JSON array)",
  },
  output: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'Labelled rows to write (JSONL, atomically; "-" writes stdout)',
  },
  report: {
    type: "string",
    value: "FILE",
    description: "Also write the statistics as JSON (labeling_messages.py's report)",
  },
  "only-last-round": {
    type: "boolean",
    description: "Count only a last message that is an assistant message in the statistics",
  },
} as const;

const label: CommandModule<typeof labelFlags> = {
  spec: {
    name: "data label",
    summary: "Tag each assistant message and report the statistics (labeling_messages.py)",
    details: `Each assistant message gets "tag" (response: non-empty content; single or parallel:
one or several tool calls; multi-step: tool calls right after a tool message), "turns"
((index + 1) // 2) and "tool_call_num". The statistics (tags, tag combinations, turns, calls
per message) go to stderr, and as JSON to --report.`,
    flags: labelFlags,
  },
  async run(f) {
    const out = stderrLines();
    const s = await labelFile(f.input, f.output, {
      onlyLastRound: f["only-last-round"] ?? false,
      onBadRow: (e) => out.problem(e.message),
    });
    out.finish();
    if (f.report !== undefined) {
      await writeTextAtomically(
        f.report,
        dumpsPyJson(s.stats.report(), { ensureAscii: false, indent: 2 }),
      );
    }
    const skipped = s.skipped.size > 0 ? `, skipped: ${counts(s.skipped)}` : "";
    out.write(`data label: ${s.written} rows written to ${where(f.output)}${skipped}\n`);
    out.write(s.stats.text());
    return s.skipped.size > 0 ? 1 : 0;
  },
};

// --- mix ------------------------------------------------------------------------------------

const rate = (description: string, value: number) =>
  ({ type: "number", default: value, description }) as const;

const mixFlags = {
  input: {
    type: "string",
    required: true,
    value: "A,B,...",
    description: "Labelled messages files (star data label), comma-separated",
  },
  output: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'The mix to write (JSONL, atomically; "-" writes stdout)',
  },
  size: { type: "integer", required: true, description: "Rows in the mix" },
  seed: { type: "integer", default: 42, description: "Seed of the shuffle and the final draw" },
  "max-turns": {
    type: "integer",
    default: 10,
    description: "Skip rows whose last assistant message is past this turn",
  },
  "response-rate": rate("Quota of rows answering in text", 0.2),
  "multi-step-rate": rate("Quota of rows calling tools right after a tool result", 0.3),
  "single-turns-rate": rate("Quota of single-turn rows (the rest: multi-turn)", 0.3),
  "parallel-rate": rate("Quota of rows with several calls (the rest: one call)", 0.5),
  "max-prompt-tokens": {
    type: "integer",
    default: 8192,
    description: "Drop rows whose prompt is longer, in tokens",
  },
  tokenizer: {
    type: "string",
    value: "DIR",
    description: "Tokenizer to count prompt tokens with (default: built-in Qwen3)",
  },
  report: { type: "string", value: "FILE", description: "Also write the report as JSON" },
} as const;

const mix: CommandModule<typeof mixFlags> = {
  spec: {
    name: "data mix",
    summary: "Sample a stratified training mix from labelled rows (data_proportion.py)",
    details:
      `Rows are classed by their last assistant message: single_turn (turns == 1), multi_turn,
parallel (several calls), single (one call), response, multi_step. Shuffled with the seed,
rows are taken while a class they belong to is below its quota (rate x size) until 1.1 x size
are taken; rows past --max-turns, and response rows once their quota is met, are skipped.
Rows with prompts over --max-prompt-tokens are dropped, then --size rows are drawn. Same
seed and inputs, same output as the Python script.`,
    flags: mixFlags,
  },
  async run(f) {
    const w = `("star data mix")`;
    if (f.size < 0) throw new UsageError(`Flag "--size" must be at least 0, got ${f.size} ${w}`);
    for (const k of ["response-rate", "multi-step-rate", "single-turns-rate", "parallel-rate"]) {
      const v = f[k as "response-rate"];
      if (v < 0 || v > 1) throw new UsageError(`Flag "--${k}" must be in [0, 1], got ${v} ${w}`);
    }
    const inputs = f.input.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (inputs.length === 0) throw new UsageError(`Flag "--input" names no file ${w}`);
    const tokenizer = await Tokenizer.load(f.tokenizer);
    const out = stderrLines();
    const s = await mixFiles(inputs, f.output, {
      size: f.size,
      seed: f.seed,
      maxTurns: f["max-turns"],
      responseRate: f["response-rate"],
      multiStepRate: f["multi-step-rate"],
      singleTurnsRate: f["single-turns-rate"],
      parallelRate: f["parallel-rate"],
      maxPromptTokens: f["max-prompt-tokens"],
      promptTokens: (row) => promptTokens(row, tokenizer),
      onBadRow: (e) => out.problem(e.message),
    });
    out.finish();
    if (f.report !== undefined) {
      await writeTextAtomically(
        f.report,
        dumpsPyJson(mixReportJson(s.report), { ensureAscii: false, indent: 2 }),
      );
    }
    const skipped = s.skipped.size > 0 ? `, skipped: ${counts(s.skipped)}` : "";
    out.write(`data mix: ${s.report.total} rows written to ${where(f.output)}${skipped}\n`);
    out.write(mixReportText(s.report));
    return s.skipped.size > 0 ? 1 : 0;
  },
};

export const command: CommandGroup = {
  name: "data",
  summary: "STAR's data recipe: public tool-calling sets to a labelled, stratified training mix",
  details: `The whole preparation, as STAR's scripts/prepare_rl_data.sh runs it:
  star data format --dataset toolmind --input graphsyn.jsonl --output toolmind.jsonl
  star data label --input toolmind.jsonl --output toolmind_labeled.jsonl --only-last-round
  star data mix --input toolmind_labeled.jsonl --output toolmind_mix.jsonl --size 50000
  star data format --dataset xlam --input xlam_function_calling_60k.json --output xlam.jsonl
  star data format --dataset toolace --input toolace.jsonl --output toolace.jsonl
  cat toolmind_mix.jsonl xlam.jsonl toolace.jsonl hammer_messages.jsonl > merged.jsonl
  star prepare --input merged.jsonl --output trainset.jsonl`,
  subcommands: {
    format,
    label,
    mix,
  },
};
