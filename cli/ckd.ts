/**
 * star ckd: Constrained Knowledge Distillation of a student from a teacher (STAR, phase 1), as
 * configured by a YAML file (keys: CONTRACT.md; recipe: DESIGN.md). Re-running the same command
 * on the same output_dir resumes from its last checkpoint.
 */
import type { CommandModule } from "./command.ts";
import { UsageError } from "../lib/errors.ts";
import { ckdConfigSchema, loadConfig } from "../train/config.ts";
import { runCkd } from "../train/ckd.ts";

const flags = {
  config: {
    type: "string",
    required: true,
    value: "FILE.yaml",
    description: "Training config (student, teacher, data, output_dir, kd_* keys, ...)",
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
    name: "ckd",
    summary: "Constrained Knowledge Distillation of a student from a teacher",
    details: `Per target token: fkl (or rkl, akl) on the teacher's top-k (kd_topk) log-probs, plus
kd_kl_l1_coef x the student's probability on its own top-m (kd_student_topm) tokens outside the
teacher's top-k; kd_ratio < 1 mixes in cross-entropy; kd_ratio: 0 without a teacher is plain
fine-tuning. teacher_topk_cache: DIR computes the teacher's top-k once and trains from it.
teacher: http://host:port/v1 with teacher_model: NAME scores on an inference server (vLLM,
SGLang, star serve) through prompt_logprobs.
Writes output_dir/config.yaml, metrics.jsonl (one row per step), checkpoint-STEP/ every
save_steps and final/. Run it again on the same output_dir to resume.`,
    flags,
  },
  async run(f) {
    if (f.device !== "gpu" && f.device !== "cpu") {
      throw new UsageError(`Flag "--device" must be gpu or cpu, got "${f.device}" ("star ckd")`);
    }
    const cfg = await loadConfig(f.config, ckdConfigSchema);
    const t0 = performance.now();
    const r = await runCkd(cfg, { device: f.device });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.error(
      `ckd: ${r.steps} steps (${r.skipped} skipped) in ${secs} s; final model in "${r.finalDir}"`,
    );
    return 0;
  },
};
