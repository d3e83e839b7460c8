/**
 * Writes what tests/reference/bpe_ref.py checks: OUT/full (the built-in Qwen3 tokenizer files),
 * OUT/cut (the tokenizer cut to a small synthetic corpus) and OUT/texts.jsonl (the corpus,
 * flagged "corpus": true, then texts outside it). Run by make_vocab_cut_fixture.sh.
 */
import { readTokenizerFiles, Tokenizer } from "../../data/tokenizer.ts";
import { cutVocab, writeVocabCut } from "../../data/vocab_cut.ts";
import { synthTexts } from "../_synth_texts.ts";
import { OUTSIDE_TEXTS } from "../_outside_texts.ts";

const out = Deno.args[0];
const tok = await Tokenizer.builtin();
const corpus = [
  ...synthTexts(tok, 10, 7),
  ...synthTexts(tok, 10, 90001, { maxCalls: 1, maxDistractors: 0 }),
];
const files = await readTokenizerFiles();
await writeVocabCut(`${out}/cut`, cutVocab(files, corpus));
await Deno.mkdir(`${out}/full`, { recursive: true });
await Deno.writeTextFile(`${out}/full/tokenizer.json`, JSON.stringify(files.tokenizer));
const rows = [
  ...corpus.map((text) => ({ text, corpus: true })),
  ...OUTSIDE_TEXTS.map((text) => ({ text, corpus: false })),
];
await Deno.writeTextFile(`${out}/texts.jsonl`, rows.map((r) => JSON.stringify(r) + "\n").join(""));
