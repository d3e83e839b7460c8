/**
 * `star eval`: the benches users put a number on a model with. `--bench reward` (the default)
 * is the held-out Sim-RL reward, format rate and exact-call rate (train/eval_reward.ts);
 * `--bench bfcl` is BFCL's single-turn AST accuracy (cli/_eval_bfcl.ts). One flag table for
 * both; the run dispatches on --bench.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { UsageError } from "../lib/errors.ts";
import { closestName } from "../lib/suggest.ts";
import { runBfcl } from "./_eval_bfcl.ts";

const spec = {
  name: "eval",
  summary: "Evaluate a model: BFCL single-turn AST accuracy or held-out reward",
  details:
    `--bench reward (default): generates for held-out {id, inputs, targets} rows (--data, what star
prepare writes) and scores every sample with the Sim-RL reward as star score does; reports mean
reward, format rate, mean answer score and exact-call rate (calls equal the label's as a
multiset, values compared with Python's ==), overall and per kind (single, parallel, response).
--output DIR gets results.jsonl (one row per sample; re-run to resume) and summary.json.

--bench bfcl: BFCL's single-turn categories from its data folder (BFCL_v4_<category>.json
and possible_answer/), prompted as BFCL's Qwen FC handler prompts, decoded and judged as BFCL's
AST checker judges (shared/BFCL.md). Exactly one of:
  --dump-prompts FILE   {"id", "prompt"} per selected entry, the exact text to complete; stops
  --generations FILE    judge {"id", "completion"} rows made elsewhere (e.g. star generate
                        --temperature 0 on the --dump-prompts file): one output row per input
                        row, in order, {"id", "category", "valid", "error_type", "error"};
                        an unknown id gives {"id", "line", "error"} and the exit status 1
  --model DIR           generate greedily and judge (rows also carry "completion"; re-run the
                        same command to resume)
Categories: simple_python, simple_java, simple_javascript, multiple, parallel,
parallel_multiple, live_simple, live_multiple, live_parallel, live_parallel_multiple,
irrelevance, live_irrelevance, live_relevance. Accuracy is over the rows judged; the summary
adds BFCL v4's leaderboard columns (percent; null where BFCL shows N/A, and a category not run
counts 0 in the overall means, as there). error_type "ast_checker:python_exception" marks an
output on which BFCL's own checker raises (its run would stop); it counts as wrong.`,
  flags: {
    bench: {
      type: "string",
      value: "NAME",
      default: "reward",
      description: "reward (held-out Sim-RL reward) or bfcl",
    },
    model: { type: "string", value: "DIR", description: "Model directory to generate with" },
    data: {
      type: "string",
      value: "FILE",
      description: "Held-out trainset rows (reward bench)",
    },
    n: { type: "integer", value: "N", default: 1, description: "Samples per row (reward bench)" },
    temperature: {
      type: "number",
      value: "T",
      default: 0,
      description: "Sampling temperature; 0 is greedy (reward bench)",
    },
    "max-new-tokens": {
      type: "integer",
      value: "N",
      description: "Most new tokens (reward: 512; bfcl: min(4096, context - prompt - 2))",
    },
    seed: { type: "integer", value: "S", default: 0, description: "Sampling seed (reward bench)" },
    "bfcl-data": {
      type: "string",
      value: "DIR",
      description: "BFCL data folder (BFCL_v4_*.json, possible_answer/)",
    },
    generations: {
      type: "string",
      value: "FILE",
      description: 'Judge these {"id", "completion"} rows instead of generating',
    },
    categories: {
      type: "string",
      value: "A,B",
      description: "Categories to run (default: all 13)",
    },
    limit: {
      type: "integer",
      value: "N",
      description: "First N rows (bfcl: entries per category) only",
    },
    output: {
      type: "string",
      value: "PATH",
      description: "reward: folder for results and summary; bfcl: per-row results FILE (- stdout)",
    },
    summary: { type: "string", value: "FILE", description: "Summary JSON (counts and scores)" },
    "dump-prompts": {
      type: "string",
      value: "FILE",
      description: "Write the prompts and stop (no model needed)",
    },
  },
} satisfies CommandSpec;

type Flags = Parameters<CommandModule<typeof spec.flags>["run"]>[0];

/** Bench name -> runner. Each bench reads the flags it needs and rejects what it lacks. */
const BENCHES: Record<string, (flags: Flags) => Promise<number>> = {
  bfcl: (flags) => runBfcl(flags),
  reward: async (flags) => {
    for (
      const k of ["bfcl-data", "generations", "dump-prompts", "categories", "summary"] as const
    ) {
      if (flags[k] !== undefined) {
        throw new UsageError(`Flag "--${k}" belongs to --bench bfcl, not --bench reward`);
      }
    }
    if (flags.model === undefined || flags.data === undefined) {
      throw new UsageError(`"star eval --bench reward" needs --model DIR and --data FILE`);
    }
    if (flags.n < 1) throw new UsageError(`Flag "--n" must be at least 1, got ${flags.n}`);
    if (!(flags.temperature >= 0)) {
      throw new UsageError(`Flag "--temperature" must be >= 0, got ${flags.temperature}`);
    }
    const { runRewardEval, rewardTable } = await import("../train/eval_reward.ts");
    const { summary, errors } = await runRewardEval({
      model: flags.model,
      data: flags.data,
      n: flags.n,
      temperature: flags.temperature,
      maxNewTokens: flags["max-new-tokens"] ?? 512,
      limit: flags.limit,
      seed: flags.seed,
      output: flags.output,
    });
    console.log(rewardTable(summary));
    if (errors) console.error(`eval: ${errors} rows could not be read or scored`);
    return errors ? 1 : 0;
  },
};

export const command: CommandModule<typeof spec.flags> = {
  spec,
  run(flags) {
    const bench = BENCHES[flags.bench];
    if (!Object.hasOwn(BENCHES, flags.bench)) {
      const near = closestName(flags.bench, Object.keys(BENCHES));
      throw new UsageError(
        `Unknown bench "${flags.bench}"${near ? `; did you mean "${near}"?` : ""} ` +
          `(benches: ${Object.keys(BENCHES).join(", ")})`,
      );
    }
    return bench(flags);
  },
};
