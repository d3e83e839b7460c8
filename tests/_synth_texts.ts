/**
 * The texts a model sees of the synthetic set: each row's prepared prompt (inputs) and answer
 * (targets), rendered with a tokenizer's chat template as `star prepare` does.
 */
import { type SynthOptions, synthRows } from "../data/synthetic.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { checkMessagesRow, toTrainsetRow } from "../data/trainset.ts";
import { parsePyJson } from "../lib/py/json.ts";

export function synthTexts(
  tok: Tokenizer,
  n: number,
  seed: number,
  opts: SynthOptions = {},
): string[] {
  const texts: string[] = [];
  for (const r of synthRows(n, seed, opts)) {
    const at = { file: `synth-${seed}`, line: 1 };
    const t = toTrainsetRow(
      checkMessagesRow(parsePyJson(JSON.stringify(r)), at),
      (tools) => tok.chatTemplate(tools),
      at,
    );
    texts.push(t.inputs, t.targets);
  }
  return texts;
}
