/**
 * star demo: STAR's pipeline in miniature on an embedded default, start to finish, on whatever
 * WebGPU adapter there is (a CPU-only machine uses the software one): synthetic data, a cut-down
 * tokenizer, a tiny teacher, an SFT student and a CKD student, Sim-RL on the CKD student, and a
 * table of their held-out reward, format rate and exact-call rate (train/demo.ts).
 */
import type { CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import { DEMO_BATCH, DEMO_DEFAULTS, demoTable, runDemo } from "../train/demo.ts";

const flags = {
  output: {
    type: "string",
    value: "DIR",
    description: "Folder for everything the demo writes (also demo.json; default: a temp folder)",
  },
  seed: {
    type: "integer",
    default: 0,
    description: "Picks the synthetic rows and every initialisation",
  },
  "train-rows": {
    type: "integer",
    default: DEMO_DEFAULTS.trainRows,
    description: "Synthetic training rows",
  },
  "heldout-rows": {
    type: "integer",
    default: DEMO_DEFAULTS.heldoutRows,
    description: "Held-out rows scored",
  },
  "teacher-steps": {
    type: "integer",
    default: DEMO_DEFAULTS.teacherSteps,
    description: "SFT steps of the teacher",
  },
  "student-steps": {
    type: "integer",
    default: DEMO_DEFAULTS.studentSteps,
    description: "Steps of each student (SFT and CKD)",
  },
  "simrl-steps": {
    type: "integer",
    default: DEMO_DEFAULTS.simrlSteps,
    description: "Sim-RL optimizer steps",
  },
} as const;

export const command: CommandModule<typeof flags> = {
  spec: {
    name: "demo",
    summary: "The whole pipeline on an embedded default, start to finish",
    details: `Synthesises a tool-calling set, prepares it, cuts the tokenizer down to it,
fine-tunes a tiny random teacher, trains a narrower student from the same initialisation by SFT
and by CKD from the teacher, runs Sim-RL on the CKD student, and prints each model's held-out
Sim-RL reward, format-valid rate and exact-call rate (greedy generations). STAR's claim in
miniature: SFT < CKD < CKD + Sim-RL. About 10 minutes on two CPU cores with no GPU (the software
WebGPU adapter).`,
    flags,
  },
  async run(f) {
    if (f["train-rows"] < DEMO_BATCH) {
      throw new UsageError(
        `Flag "--train-rows" must be at least ${DEMO_BATCH} (one training batch), got ${
          f["train-rows"]
        } ("star demo")`,
      );
    }
    for (
      const k of [
        "heldout-rows",
        "teacher-steps",
        "student-steps",
        "simrl-steps",
      ] as const
    ) {
      if (f[k] < 1) {
        throw new UsageError(`Flag "--${k}" must be at least 1, got ${f[k]} ("star demo")`);
      }
    }
    const output = f.output ?? await Deno.makeTempDir({ prefix: "star-demo-" });
    console.error(`demo: writing everything under "${output}"`);
    const r = await runDemo({
      output,
      seed: f.seed,
      trainRows: f["train-rows"],
      heldoutRows: f["heldout-rows"],
      teacherSteps: f["teacher-steps"],
      studentSteps: f["student-steps"],
      simrlSteps: f["simrl-steps"],
    });
    const lines = [
      "",
      demoTable(r),
      "",
      `Vocabulary cut to ${r.vocabSize} tokens. Total ${r.seconds.toFixed(0)} s (${
        Object.entries(r.stages).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(", ")
      }).`,
      `Models, data, metrics and example generations are under "${output}" (demo.json, examples.txt).`,
      "",
    ];
    console.log(lines.join("\n"));
    return 0;
  },
};
