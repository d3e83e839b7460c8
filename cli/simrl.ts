/**
 * star simrl: Similarity-guided RL of a policy with the Sim-RL reward (STAR, phase 2), as
 * configured by a YAML file (keys: README; the run: shared/SIMRL.md, train/simrl.ts).
 * Re-running the same command on the same output_dir resumes from its last checkpoint.
 */
import type { CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import { loadConfig, simrlConfigSchema } from "../train/config.ts";
import { runSimrl } from "../train/simrl.ts";

const flags = {
  config: {
    type: "string",
    required: true,
    value: "FILE.yaml",
    description: "Training config (pretrain, data, output_dir, rollout and loss keys, ...)",
  },
  device: {
    type: "string",
    default: "gpu",
    value: "gpu|cpu",
    description: "gpu: the WebGPU engine; cpu: the float64 reference (tiny models only)",
  },
} as const;

export const command: CommandModule<typeof flags> = {
  spec: {
    name: "simrl",
    summary: "Similarity-guided RL (GRPO-style) of a policy with the Sim-RL reward",
    details: `Per rollout batch: n_samples_per_prompt samples of each prompt from the policy, the
Sim-RL reward of each against the row's targets, groups kept by the dynamic filter until
rollout_batch_size are kept, group-normalised advantages, then optimizer steps of the PPO clipped
loss plus init_kl_coef x the KL estimate against the frozen reference (pretrain, or reference).
replay_rollouts: FILE trains on given completions instead of sampling. Writes
output_dir/config.yaml, metrics.jsonl (one row per step), rollouts.jsonl (one row per sample),
checkpoint-STEP/ and final/. Run it again on the same output_dir to resume.`,
    flags,
  },
  async run(f) {
    if (f.device !== "gpu" && f.device !== "cpu") {
      throw new UsageError(`Flag "--device" must be gpu or cpu, got "${f.device}" ("star simrl")`);
    }
    const cfg = await loadConfig(f.config, simrlConfigSchema);
    const t0 = performance.now();
    const r = await runSimrl(cfg, { device: f.device });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.error(
      `simrl: ${r.steps} steps over ${r.rolloutBatches} rollout batches of ${r.prompts} prompts ` +
        `(${r.skippedRows} rows skipped) in ${secs} s; final model in "${r.finalDir}"`,
    );
    return 0;
  },
};
