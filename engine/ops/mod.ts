/**
 * The kernel families: each file holds the float64 reference (`…Ref`), the GPU wrappers
 * (`…Forward`, `…Backward`, taking a Recorder and one options object) and owns its pipelines;
 * the WGSL lives in wgsl/<family>.wgsl. Legend: T tokens, D hidden_size, H heads, K kv heads,
 * E head_dim, F intermediate_size, V vocab_size, C vocabulary chunk columns.
 */
export * from "./adamw.ts";
export * from "./attention.ts";
export * from "./attention_decode.ts";
export * from "./cross_entropy.ts";
export * from "./embedding.ts";
export * from "./kd_loss.ts";
export * from "./matmul.ts";
export * from "./residual.ts";
export * from "./rms_norm.ts";
export * from "./rope.ts";
export * from "./sample.ts";
export * from "./softmax.ts";
export * from "./swiglu.ts";
export * from "./topk.ts";
export { OPS_SELF_TESTS } from "./self_tests.ts";
