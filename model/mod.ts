/**
 * model/: Qwen3 configs, safetensors checkpoints (read, write, shard), the parameter table with
 * its loader and random init, and the float64 CPU reference model.
 */
export * from "./config.ts";
export * from "./safetensors.ts";
export * from "./weights.ts";
export * from "./ref.ts";
export * from "./save.ts";
