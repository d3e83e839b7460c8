/**
 * `star eval`: the benches users put a number on a model with. `--bench bfcl` is BFCL's
 * single-turn AST accuracy (cli/_eval_bfcl.ts); `--bench reward` (the default) is the held-out
 * Sim-RL reward, not in this build yet. One flag table for both; the run dispatches on --bench.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { UsageError, UserError } from "../lib/errors.ts";
import { closestName } from "../lib/suggest.ts";
import { runBfcl } from "./_eval_bfcl.ts";

const spec = {
  name: "eval",
  summary: "Evaluate a model: BFCL single-turn AST accuracy or held-out reward",
  details:
    `--bench bfcl: BFCL's single-turn categories from its data folder (BFCL_v4_<category>.json
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
    limit: { type: "integer", value: "N", description: "First N entries per category only" },
    output: { type: "string", value: "FILE", description: "Per-row results (- for stdout)" },
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
  // The held-out reward bench (issue 16 part 1) plugs in here.
  reward: () =>
    Promise.reject(
      new UserError(`"star eval --bench reward" is not in this build yet; use --bench bfcl`),
    ),
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
