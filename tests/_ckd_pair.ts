/**
 * A CKD test fixture: a short trainset (prompts and targets of a few tokens) and a random
 * one-layer tiny student and teacher on the built-in tokenizer, in a fresh folder.
 */
import { join } from "node:path";
import { presetConfig } from "../model/config.ts";
import { saveModel } from "../model/save.ts";
import { randomWeightF32 } from "../model/weights.ts";
import { builtinTokenizerTexts } from "../data/builtin_tokenizer.ts";

export const tiny = { ...presetConfig("tiny"), num_hidden_layers: 1 };

/** Writes train.jsonl (`rows` rows), student/ and teacher/ into a new folder; returns it. */
export async function ckdPair(rows: number): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "star-ckd-" });
  const lines = Array.from({ length: rows }, (_, i) =>
    JSON.stringify({
      id: `r${i}`,
      inputs: `<|im_start|>user\nadd ${i} and ${i + 3}<|im_end|>\n<|im_start|>assistant\n<think>`,
      targets: `</think>the sum is ${2 * i + 3}<|im_end|>\n`,
    }));
  await Deno.writeTextFile(join(root, "train.jsonl"), lines.join("\n") + "\n");
  for (const [name, seed, std] of [["student", 1, 0.1], ["teacher", 2, 0.5]] as const) {
    await saveModel(join(root, name), {
      config: tiny,
      dtype: "f32",
      tensor: (spec) => randomWeightF32(spec, { seed, std: spec.kind === "norm" ? 0 : std }),
      tokenizerFiles: await builtinTokenizerTexts(),
    });
  }
  return root;
}
