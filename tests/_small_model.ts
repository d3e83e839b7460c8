/**
 * Test models on a tokenizer cut down to the texts a test uses (data/vocab_cut.ts): the
 * embedding and LM head shrink from 151,936 rows to a few hundred, which makes generation and
 * training tests on the software adapter tens of times cheaper. Any other text still encodes
 * (byte fallback), only into more tokens.
 */
import { readTokenizerFiles, Tokenizer } from "../data/tokenizer.ts";
import { cutVocab, paddedVocabSize, writeVocabCut } from "../data/vocab_cut.ts";
import { type ModelConfig, presetConfig } from "../model/config.ts";
import { randomRefModel, type RefModel } from "../model/ref.ts";
import { saveModel } from "../model/save.ts";

/** Writes a tokenizer cut to `texts` into `dir`; returns it and the padded vocabulary size. */
export async function smallTokenizer(
  dir: string,
  texts: Iterable<string>,
): Promise<{ tok: Tokenizer; vocabSize: number }> {
  const cut = cutVocab(await readTokenizerFiles(), texts);
  await writeVocabCut(dir, cut);
  return { tok: await Tokenizer.load(dir), vocabSize: paddedVocabSize(cut.vocabSize) };
}

/**
 * A random model of `shape` (default: the tiny preset) over a tokenizer cut to `texts`, saved in
 * `dir` in the HF layout with that tokenizer; returns the model's float64 copy, config and
 * tokenizer. `std`/`normJitter` as randomRefModel takes them.
 */
export async function smallModel(
  dir: string,
  texts: Iterable<string>,
  o: { shape?: Partial<ModelConfig>; seed?: number; std?: number; normJitter?: number } = {},
): Promise<{ ref: RefModel; config: ModelConfig; tok: Tokenizer }> {
  const tokDir = await Deno.makeTempDir({ prefix: "star-tok-" });
  try {
    const { tok, vocabSize } = await smallTokenizer(tokDir, texts);
    const config: ModelConfig = {
      ...presetConfig("tiny"),
      ...o.shape,
      vocab_size: vocabSize,
      bos_token_id: tok.requireId("<|endoftext|>"),
      eos_token_id: tok.requireId("<|im_end|>"),
    };
    const ref = randomRefModel(config, o.seed ?? 1, { std: o.std, normJitter: o.normJitter });
    await saveModel(dir, {
      config,
      dtype: "f32",
      tensor: (spec) => Float32Array.from(ref.params[spec.name]),
      tokenizerFrom: tokDir,
    });
    return { ref, config, tok: await Tokenizer.load(dir) };
  } finally {
    await Deno.remove(tokDir, { recursive: true });
  }
}
