/**
 * data/vocab_cut.ts: the cut tokenizer encodes the synthetic set (several seeds and both shapes
 * of rows) into the full tokenizer's ids mapped through the id map, keeps every added token and
 * the chat template, still encodes any text, and agrees with an independent stdlib byte-level
 * BPE in Python (tests/testdata/vocab_cut/bpe_ref.jsonl, from make_vocab_cut_fixture.sh).
 */
import { join } from "node:path";
import { readTokenizerFiles, Tokenizer, type TokenizerFiles } from "../data/tokenizer.ts";
import { synthRows } from "../data/synthetic.ts";
import { BYTE_SYMBOLS, cutVocab, paddedVocabSize, writeVocabCut } from "../data/vocab_cut.ts";
import { UserError } from "../lib/errors.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertOk, assertThrows } from "./assert.ts";
import { synthTexts } from "./_synth_texts.ts";
import { OUTSIDE_TEXTS } from "./_outside_texts.ts";

const FIXTURE = new URL("./testdata/vocab_cut/bpe_ref.jsonl", import.meta.url).pathname;
const DEMO = { maxCalls: 1, maxDistractors: 0 };

const full = await Tokenizer.builtin();
const fullFiles = await readTokenizerFiles();
// four seeds (independent sets of rows), two of each shape of row
const corpus = [
  ...synthTexts(full, 120, 0),
  ...synthTexts(full, 120, 7919),
  ...synthTexts(full, 120, 104729, DEMO),
  ...synthTexts(full, 120, 31337, DEMO),
];
const cut = cutVocab(fullFiles, corpus);
const small = Tokenizer.fromFiles(cut.files);
const mapped = (ids: number[]) => ids.map((i) => cut.idMap[i]);

Deno.test("cutVocab() encodes every synthetic prompt and target as the full ids mapped through idMap", () => {
  assertEquals(corpus.length, 960);
  for (const [i, text] of corpus.entries()) {
    const ids = small.encode(text);
    assertEquals(ids, mapped(full.encode(text)), `text ${i}`);
    assertEquals(small.tokenize(text), full.tokenize(text), `text ${i}`);
    assertEquals(small.decode(ids), text, `text ${i} round-trips`);
  }
  assertEquals(small.vocabSize, cut.vocabSize);
  assertOk(cut.vocabSize < 2000, `${cut.vocabSize} entries`);
});

Deno.test("cutVocab() ids are dense, ordered as the old ids, with the byte symbols and added tokens", () => {
  const n = cut.vocabSize;
  assertEquals(cut.oldIds.length, n);
  assertEquals(cut.idMap.length, full.vocabSize);
  for (let i = 0; i < n; i++) {
    assertEquals(cut.idMap[cut.oldIds[i]], i);
    if (i > 0) assertOk(cut.oldIds[i] > cut.oldIds[i - 1]);
    assertEquals(small.idToToken(i), full.idToToken(cut.oldIds[i]));
  }
  assertEquals(cut.idMap.filter((x) => x >= 0).length, n);
  // Qwen3 gives the 256 byte symbols ids 0..255 and its 26 added tokens the last ids
  for (const s of BYTE_SYMBOLS) assertEquals(small.tokenToId(s), full.tokenToId(s));
  for (let id = 151643; id < 151669; id++) assertEquals(cut.idMap[id], n - 151669 + id);
});

Deno.test("cutVocab() keeps the special tokens as single ids and the chat template's rendering", () => {
  for (
    const t of [
      "<|im_start|>",
      "<|im_end|>",
      "<think>",
      "</think>",
      "<tool_call>",
      "</tool_call>",
      "<|endoftext|>",
      "<|vision_pad|>",
    ]
  ) {
    const id = small.tokenToId(t);
    assertEquals(id, cut.idMap[full.tokenToId(t)!], t);
    assertEquals(small.encode(t), [id!], t);
    assertEquals(small.decode([id!]), t);
  }
  assertEquals(small.specialTokenId("eos_token"), cut.idMap[151645]);
  assertEquals(small.specialTokenId("pad_token"), cut.idMap[151643]);
  assertEquals(
    small.decode(small.encode("<|im_start|>user\nhi<|im_end|>"), {
      skipSpecialTokens: true,
    }),
    "user\nhi",
  );
  // rows of a seed the corpus does not hold, with and without tools, with a generation prompt
  for (const r of synthRows(40, 4242)) {
    const messages = r.messages.map((m) => ({ ...m, content: m.content ?? "" }));
    for (const [tools, gen] of [[true, true], [false, false]] as const) {
      const vars = {
        messages: parsePyJson(JSON.stringify(gen ? messages.slice(0, -1) : messages)),
        tools: tools ? parsePyJson(JSON.stringify(r.tools)) : null,
        add_generation_prompt: gen,
      };
      const got = small.chatTemplate(tools).render(vars);
      assertEquals(got, full.chatTemplate(tools).render(vars));
      assertOk(got.includes("<|im_start|>user"));
    }
  }
});

Deno.test("cutVocab() still encodes text outside the corpus and decodes it back exactly", () => {
  for (const text of OUTSIDE_TEXTS) {
    const ids = small.encode(text);
    assertOk(ids.every((i) => i >= 0 && i < cut.vocabSize));
    assertEquals(small.decode(ids), text);
  }
  // a word the corpus lacks falls back to shorter kept tokens, at worst its bytes
  const ids = small.encode("zzqxj😀");
  assertEquals(small.decode(ids), "zzqxj😀");
  assertOk(ids.length >= 5, `${ids.length} ids`);
});

Deno.test("cutVocab() keeps exactly the merges of the full list whose parts and result stay, in order", () => {
  const model = (t: TokenizerFiles) => t.tokenizer.model as { merges: [string, string][] };
  const kept = new Set(model(cut.files).merges.map(([a, b]) => `${a} ${b}`));
  const want: string[] = [];
  for (const [a, b] of model(fullFiles).merges) {
    if ([a, b, a + b].every((t) => small.tokenToId(t) !== undefined)) want.push(`${a} ${b}`);
  }
  assertEquals(model(cut.files).merges.map(([a, b]) => `${a} ${b}`), want);
  assertEquals(kept.size, cut.merges.kept);
  assertEquals(cut.merges.total, 151387);
});

Deno.test("writeVocabCut() writes files that Tokenizer.load() reads back, config ids re-mapped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeVocabCut(dir, cut);
    const loaded = await Tokenizer.load(dir);
    assertEquals(loaded.source, dir);
    assertEquals(loaded.vocabSize, cut.vocabSize);
    for (const text of [...corpus.slice(0, 20), ...OUTSIDE_TEXTS]) {
      assertEquals(loaded.encode(text), small.encode(text));
    }
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json")));
    const fullCfg = JSON.parse(fullFiles.config);
    assertEquals(cfg.chat_template, fullCfg.chat_template);
    assertEquals(cfg.eos_token, "<|im_end|>");
    for (const [k, v] of Object.entries(fullCfg.added_tokens_decoder)) {
      assertEquals(cfg.added_tokens_decoder[String(cut.idMap[Number(k)])], v, k);
    }
    const tj = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer.json")));
    assertEquals(tj.pre_tokenizer, fullFiles.tokenizer.pre_tokenizer);
    assertEquals(tj.decoder, fullFiles.tokenizer.decoder);
    assertEquals(tj.normalizer, fullFiles.tokenizer.normalizer);
    assertEquals(Object.keys(tj.model.vocab).length + tj.added_tokens.length, cut.vocabSize);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface RefRow {
  text: string;
  corpus: boolean;
  full: number[];
  cut: number[];
  round_trip: boolean;
}

Deno.test("cutVocab() agrees with a stdlib Python byte-level BPE on the full and the cut tokenizer", async () => {
  const rows: RefRow[] = (await Deno.readTextFile(FIXTURE)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const c = cutVocab(fullFiles, rows.filter((r) => r.corpus).map((r) => r.text));
  const tok = Tokenizer.fromFiles(c.files);
  assertEquals(rows.filter((r) => !r.corpus).map((r) => r.text), OUTSIDE_TEXTS);
  for (const [i, r] of rows.entries()) {
    assertEquals(full.encode(r.text), r.full, `row ${i}: full tokenizer against Python`);
    assertEquals(tok.encode(r.text), r.cut, `row ${i}: cut tokenizer against Python`);
    if (r.corpus) assertEquals(r.cut, r.full.map((id) => c.idMap[id]), `row ${i}: Python, mapped`);
    assertOk(r.round_trip, `row ${i}: Python decodes the cut ids back`);
  }
});

/** A byte-level BPE with the 256 byte symbols and a few merges, written by hand. */
function toyFiles(merges: [string, string][], extra: string[]): TokenizerFiles {
  const vocab: Record<string, number> = {};
  BYTE_SYMBOLS.forEach((s, i) => vocab[s] = i);
  for (const t of extra) vocab[t] = Object.keys(vocab).length;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false };
  return {
    tokenizer: {
      version: "1.0",
      added_tokens: [{
        id: 256 + extra.length,
        content: "<eos>",
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }],
      normalizer: null,
      pre_tokenizer: { ...byteLevel, use_regex: true },
      post_processor: null,
      decoder: { ...byteLevel, use_regex: true },
      model: { type: "BPE", vocab, merges, ignore_merges: false },
    },
    config: JSON.stringify({
      added_tokens_decoder: { [256 + extra.length]: { content: "<eos>" } },
    }),
    source: "toy",
  };
}

Deno.test("cutVocab() keeps the intermediate tokens a word's merges build, and no others (hand-worked)", () => {
  // merges by rank: c+d, a+b, ab+cd, b+c, e+e; vocab also holds "bc", "ee" and "xy" (unused)
  const files = toyFiles(
    [["c", "d"], ["a", "b"], ["ab", "cd"], ["b", "c"], ["e", "e"]],
    ["cd", "ab", "abcd", "bc", "ee", "xy"],
  );
  // "abcd" -> c+d, a+b, ab+cd: needs cd, ab, abcd; " e" splits off as "Ġ", "e" with no merge
  const c = cutVocab(files, ["abcd e<eos>"]);
  const kept = Object.keys((c.files.tokenizer.model as { vocab: object }).vocab).slice(256);
  assertEquals(kept, ["cd", "ab", "abcd"]);
  assertEquals((c.files.tokenizer.model as { merges: unknown }).merges, [
    ["c", "d"],
    ["a", "b"],
    ["ab", "cd"],
  ]);
  assertEquals(c.vocabSize, 256 + 3 + 1);
  assertEquals(Array.from(c.oldIds.slice(256)), [256, 257, 258, 262]);
  assertEquals(c.idMap[262], 259, "<eos> moves from 262 to 259");
  assertEquals(c.idMap[260], -1, '"ee" is dropped');
  assertEquals(JSON.parse(c.files.config).added_tokens_decoder, { "259": { content: "<eos>" } });
  const tok = Tokenizer.fromFiles(c.files);
  assertEquals(tok.tokenize("abcd e<eos>"), ["abcd", "Ġ", "e", "<eos>"]);
  assertEquals(tok.encode("abcd e<eos>"), [258, BYTE_SYMBOLS.indexOf("Ġ"), 101, 259]);
  // "bcd" (outside the corpus): b+c is gone, so c+d then nothing: [b, cd]
  assertEquals(tok.tokenize("bcd"), ["b", "cd"]);
  assertEquals(tok.decode(tok.encode("eee bcd ")), "eee bcd ");
});

Deno.test("cutVocab() refuses tokenizers it cannot cut, naming why", () => {
  const files = toyFiles([], []);
  const model = files.tokenizer.model as Record<string, unknown>;
  const variant = (t: Record<string, unknown>) => ({
    ...files,
    tokenizer: { ...files.tokenizer, ...t },
  });
  assertThrows(
    () => cutVocab(variant({ model: { ...model, type: "WordPiece" } }), []),
    /toy: its model is "WordPiece", not "BPE"/,
  );
  assertThrows(
    () => cutVocab(variant({ pre_tokenizer: { type: "Whitespace" } }), []),
    /its pre-tokenizer is not byte-level/,
  );
  assertThrows(
    () => cutVocab(variant({ model: { ...model, byte_fallback: true } }), []),
    /"byte_fallback" is not supported/,
  );
  const noByte = { ...model, vocab: { ...(model.vocab as object), "Ā": undefined } };
  const e = assertThrows(() =>
    cutVocab(variant({ model: JSON.parse(JSON.stringify(noByte)) }), [])
  );
  assertOk(e instanceof UserError && /no symbol for byte 0/.test(e.message), e.message);
});

Deno.test("paddedVocabSize() rounds up to a multiple of 64 (or the one given)", () => {
  assertEquals(paddedVocabSize(1), 64);
  assertEquals(paddedVocabSize(64), 64);
  assertEquals(paddedVocabSize(65), 128);
  assertEquals(paddedVocabSize(1150), 1152);
  assertEquals(paddedVocabSize(1153), 1216);
  assertEquals(paddedVocabSize(151669, 128), 151680);
  assertThrows(() => paddedVocabSize(0), RangeError);
  assertThrows(() => paddedVocabSize(10, 0), RangeError);
});
