import { QWEN3_SPECIAL_IDS, Tokenizer } from "../data/tokenizer.ts";
import { synthRows } from "../data/synthetic.ts";
import { checkMessagesRow, toTrainsetRow } from "../data/trainset.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertOk } from "./assert.ts";

Deno.test("Tokenizer.builtin() maps Qwen3's special tokens to their ids", async () => {
  const tok = await Tokenizer.builtin();
  const expected: [string, number][] = [
    ["<|endoftext|>", 151643],
    ["<|im_start|>", 151644],
    ["<|im_end|>", 151645],
    ["<tool_call>", 151657],
    ["</tool_call>", 151658],
    ["<think>", 151667],
    ["</think>", 151668],
  ];
  for (const [t, id] of expected) {
    assertEquals(tok.tokenToId(t), id, t);
    assertEquals(tok.idToToken(id), t);
    assertEquals(tok.encode(t), [id], `${t} written in text is one special token`);
    assertEquals(QWEN3_SPECIAL_IDS[t as keyof typeof QWEN3_SPECIAL_IDS], id);
  }
  assertEquals(tok.vocabSize, 151669);
  assertEquals(tok.specialTokenId("eos_token"), 151645);
  assertEquals(tok.specialTokenId("pad_token"), 151643);
  assertEquals(tok.specialTokenId("bos_token"), undefined);
});

Deno.test("Tokenizer.encode() adds no special tokens and gives Qwen2/3 byte-level BPE ids", async () => {
  const tok = await Tokenizer.builtin();
  // Ids from the published Qwen2/Qwen3 vocabulary: "Hello" 9707, "\n" 198, "user" 872,
  // "assistant" 77091, " world" 1879.
  assertEquals(tok.encode("Hello world"), [9707, 1879]);
  assertEquals(tok.encode("<|im_start|>user\n"), [151644, 872, 198]);
  assertEquals(tok.encode("<|im_start|>assistant\n"), [151644, 77091, 198]);
  assertEquals(tok.encode(""), []);
});

Deno.test("Tokenizer round-trips every prepared synthetic row and the Python-rendered fixtures", async () => {
  const tok = await Tokenizer.builtin();
  const template = tok.chatTemplate();
  let checked = 0;
  for (const r of synthRows(300, 5)) {
    const row = checkMessagesRow(parsePyJson(JSON.stringify(r)), { file: "synth", line: 1 });
    const t = toTrainsetRow(row, template, { file: "synth", line: 1 });
    for (const text of [t.inputs, t.targets]) {
      const ids = tok.encode(text);
      assertEquals(tok.decode(ids), text);
      checked++;
    }
    assertEquals(tok.encode(t.inputs).at(-1), 151667, "inputs end with <think>");
    assertEquals(tok.encode(t.targets).slice(0, 1), [151668], "targets start with </think>");
  }
  // Unicode, emoji and control characters survive byte-level BPE.
  for (const text of ["naïve café 你好 😀 \u0001\t\r\n", "  multiple   spaces\n\n\n", "1.0e-05"]) {
    assertEquals(tok.decode(tok.encode(text)), text);
  }
  assertOk(checked === 600);
});

Deno.test("Tokenizer.decode() can skip special tokens", async () => {
  const tok = await Tokenizer.builtin();
  const ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
  assertEquals(tok.decode(ids, { skipSpecialTokens: true }), "user\nhi");
});

Deno.test("Tokenizer.load() reads a model directory's tokenizer files, else falls back to the built-in", async () => {
  const dir = await Deno.makeTempDir();
  assertEquals((await Tokenizer.load(dir)).source, "built-in Qwen3");
  // A directory with its own (tiny) tokenizer: a word-level model with its own template.
  await Deno.writeTextFile(
    `${dir}/tokenizer.json`,
    JSON.stringify({
      version: "1.0",
      added_tokens: [{
        id: 0,
        content: "<s>",
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }],
      normalizer: null,
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: null,
      model: {
        type: "WordLevel",
        vocab: { "<s>": 0, "a": 1, "b": 2, "[UNK]": 3 },
        unk_token: "[UNK]",
      },
    }),
  );
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    '{"chat_template": "{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}", "eos_token": "<s>"}',
  );
  const tok = await Tokenizer.load(dir);
  assertEquals(tok.source, dir);
  assertEquals(tok.encode("a b <s> b a"), [1, 2, 0, 2, 1]);
  assertEquals(
    tok.chatTemplate().render({ messages: parsePyJson('[{"content": "x"}]') }),
    "[x]<s>",
  );
});
