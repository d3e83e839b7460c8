/**
 * star: the command-line entry. A dispatch table from command names to modules, loaded on
 * demand; the one place where errors become exit codes (0 ok, 1 failure, 2 usage).
 */
import type { Command } from "./cli/command.ts";
import { isCommandGroup, runCommand, runGroup, writeOut } from "./cli/command.ts";
import { isUserError, UsageError } from "./lib/errors.ts";

export const VERSION = "0.1.0";

interface Entry {
  summary: string;
  load: () => Promise<{ command: Command }>;
}

/** Every command that exists. A command is listed here only once it works. */
export const COMMANDS: Record<string, Entry> = {
  score: {
    summary: "Sim-RL rewards of generations, offline (no GPU needed)",
    load: () => import("./cli/score.ts"),
  },
  prepare: {
    summary: "Turn messages+tools rows into prompt/target trainset rows",
    load: () => import("./cli/prepare.ts"),
  },
  data: {
    summary: "STAR's data recipe: public sets to messages rows, labels, the stratified mix",
    load: () => import("./cli/data.ts"),
  },
  synth: {
    summary: "Write a synthetic tool-calling data set in the messages format",
    load: () => import("./cli/synth.ts"),
  },
  "init-model": {
    summary: "Write a randomly initialised Qwen3 checkpoint (tests, demos)",
    load: () => import("./cli/init_model.ts"),
  },
  ckd: {
    summary: "Constrained Knowledge Distillation of a student from a teacher",
    load: () => import("./cli/ckd.ts"),
  },
  simrl: {
    summary: "Similarity-guided RL (GRPO-style) of a policy with the Sim-RL reward",
    load: () => import("./cli/simrl.ts"),
  },
  demo: {
    summary: "The whole pipeline on an embedded default, start to finish",
    load: () => import("./cli/demo.ts"),
  },
  info: {
    summary: "Show the GPU adapter, its limits, and self-test the kernels on it",
    load: () => import("./cli/info.ts"),
  },
  logprobs: {
    summary: "Per-token log-probs (and top-k) of sequences under a model",
    load: () => import("./cli/logprobs.ts"),
  },
  generate: {
    summary: "Sample completions of prompts with a KV cache",
    load: () => import("./cli/generate.ts"),
  },
  rollout: {
    summary: "Teacher rollouts for CKD: sample, format-check, dedupe (engine or server)",
    load: () => import("./cli/rollout.ts"),
  },
  eval: {
    summary: "Evaluate a model: BFCL single-turn AST accuracy or held-out reward",
    load: () => import("./cli/eval.ts"),
  },
  serve: {
    summary: "Serve a model over an OpenAI-compatible HTTP API (completions, chat, tools)",
    load: () => import("./cli/serve.ts"),
  },
};

const TOP_HELP = () => {
  const names = Object.keys(COMMANDS);
  const width = Math.max(8, ...names.map((n) => n.length)) + 2;
  return [
    `star ${VERSION}: distil a large Qwen3's function calling into a small one (CKD + Sim-RL)`,
    "",
    "Usage: star <command> [flags]",
    "",
    "Commands:",
    ...names.map((n) => `  ${n.padEnd(width)}${COMMANDS[n].summary}`),
    "",
    "Run `star <command> --help` for its flags. --debug or STAR_DEBUG=1 shows stack traces.",
    "",
  ].join("\n");
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    await writeOut(TOP_HELP());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    await writeOut(`star ${VERSION}\n`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    const { closestName } = await import("./lib/suggest.ts");
    const near = closestName(name, Object.keys(COMMANDS));
    throw new UsageError(
      `Unknown command "${name}"${near ? `; did you mean "${near}"?` : ""} (see star --help)`,
    );
  }
  const { command } = await entry.load();
  return isCommandGroup(command) ? await runGroup(command, rest) : await runCommand(command, rest);
}

function debugOn(argv: string[]): boolean {
  const level = Number(Deno.env.get("STAR_DEBUG") ?? "0");
  return argv.includes("--debug") || (Number.isFinite(level) && level >= 1);
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    if (debugOn(Deno.args)) console.error(err);
    else if (isUserError(err)) console.error(`star: ${err.message}`);
    else {
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      console.error(
        `star: ${msg.split("\n").slice(0, 2).join("\n")}\n(run with --debug for details)`,
      );
    }
    code = isUserError(err) ? err.exitCode : 1;
  }
  Deno.exit(code);
}
