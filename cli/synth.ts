/**
 * star synth: writes a synthetic tool-calling data set in the messages format, the same rows
 * for the same --seed (see data/synthetic.ts for what the rows contain).
 */
import type { CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { synthRows } from "../data/synthetic.ts";

const flags = {
  output: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'Messages rows to write (JSONL; "-" writes stdout)',
  },
  n: { type: "integer", required: true, description: "Number of rows" },
  seed: { type: "integer", default: 0, description: "Seed; the same seed gives the same rows" },
} as const;

export const command: CommandModule<typeof flags> = {
  spec: {
    name: "synth",
    summary: "Write a synthetic tool-calling data set (messages + tools rows)",
    details: `Twelve tools with string, number, integer, enum, boolean and nested-object parameters.
Each row offers the tools it needs plus distractors and asks for zero, one, two or three
(parallel) calls; the last message is the gold assistant turn. Feed it to \`star prepare\`.`,
    flags,
  },
  async run(f) {
    if (f.n < 0) throw new UsageError(`Flag "--n" must be at least 0, got ${f.n} ("star synth")`);
    const w = await JsonlWriter.open(f.output);
    try {
      for (const row of synthRows(f.n, f.seed)) await w.write(row);
    } finally {
      await w.close();
    }
    if (f.output !== "-") console.error(`synth: ${f.n} rows written to "${f.output}"`);
    return 0;
  },
};
