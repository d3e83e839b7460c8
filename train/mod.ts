/**
 * The training side: configs, learning-rate schedules, the optimizer and loss references, data
 * order, metrics, progress and checkpoints. The trainers (CKD, Sim-RL) build on these, and
 * so does the teacher rollout (engine or OpenAI-compatible server).
 */
export * from "./config.ts";
export * from "./schedule.ts";
export * from "./optimizer_ref.ts";
export * from "./ckd_loss_ref.ts";
export * from "./ckd_step_ref.ts";
export * from "./grpo.ts";
export * from "./simrl_loss_ref.ts";
export * from "./simrl_ref.ts";
export * from "./data_order.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
export * from "./checkpoint.ts";
export * from "./topk_cache.ts";
export * from "./loop.ts";
export * from "./step.ts";
export * from "./run.ts";
export * from "./optimizer.ts";
export * from "./ckd_batch.ts";
export * from "./ckd_ref.ts";
export * from "./ckd_gpu.ts";
export * from "./ckd.ts";
export * from "./eval.ts";
export * from "./openai_client.ts";
export * from "./rollout.ts";
