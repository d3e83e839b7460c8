import { prepareFile } from "../data/prepare.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { checkMessagesRow, formatTrainsetRow, toTrainsetRow } from "../data/trainset.ts";
import { DataError } from "../lib/errors.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertMatch, assertOk, assertThrows } from "./assert.ts";
import { star } from "./_star.ts";

const testdata = new URL("./testdata/prepare/", import.meta.url);

async function gunzip(name: string): Promise<string> {
  const file = await Deno.open(new URL(name, testdata));
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

async function tmpWith(text: string): Promise<string> {
  const p = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(p, text);
  return p;
}

// The expected files come from tests/reference/prepare_ref.py: Python's jinja2 rendering the
// Qwen3 template as transformers does, then the STAR conversion.
for (const name of ["prepare_cases", "prepare_cases_reasoning", "xlam_sample", "fuzz"]) {
  for (const rc of [false, true]) {
    Deno.test(`prepareFile() output is byte-identical to the Python reference: ${name}${rc ? " --add-reasoning-content" : ""}`, async () => {
      const input = await tmpWith(await gunzip(`${name}.jsonl.gz`));
      const expected = await gunzip(`${name}.expected${rc ? "_rc" : ""}.jsonl.gz`);
      const output = await Deno.makeTempFile({ suffix: ".jsonl" });
      const tokenizer = await Tokenizer.builtin();
      const s = await prepareFile(input, output, { tokenizer, addReasoningContent: rc });
      const actual = await Deno.readTextFile(output);
      const exp = expected.split("\n");
      const act = actual.split("\n");
      for (let i = 0; i < Math.max(exp.length, act.length); i++) {
        if (exp[i] !== act[i]) assertEquals(act[i], exp[i], `row ${i + 1} differs`);
      }
      assertEquals(actual, expected);
      assertEquals(s.skipped, 0);
      assertEquals(s.rowsWritten, exp.length - 1);
    });
  }
}

function row(text: string) {
  return checkMessagesRow(parsePyJson(text), { file: "m.jsonl", line: 7 });
}

Deno.test("checkMessagesRow() names the file, line and field of a missing or mistyped field", () => {
  const cases: [string, RegExp, string | undefined][] = [
    ['{"id": 1}', /field "messages" is missing/, "messages"],
    ['{"messages": {}}', /field "messages" must be a list, not an object/, "messages"],
    ["[1]", /a row must be a JSON object, not a list/, undefined],
    [
      '{"messages": [{"role": "user", "content": "a"}, {"content": "b"}]}',
      /field "messages\[1\]\.role" is missing/,
      "messages[1].role",
    ],
    [
      '{"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "b"}]}',
      /field "messages\[0\]\.content" must be a string or null, not a list/,
      "messages[0].content",
    ],
    [
      '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": null, "tool_calls": [{"arguments": {}}]}]}',
      /field "messages\[1\]\.tool_calls\[0\]\.name" is missing/,
      "messages[1].tool_calls[0].name",
    ],
    [
      '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f"}}]}]}',
      /field "messages\[1\]\.tool_calls\[0\]\.function\.arguments" is missing/,
      "messages[1].tool_calls[0].function.arguments",
    ],
    [
      '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}',
      /the last message must have role "assistant", not "user"/,
      "messages[1].role",
    ],
    [
      '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "tools": [1]}',
      /field "tools\[0\]" must be an object, not a number/,
      "tools[0]",
    ],
  ];
  for (const [text, re, field] of cases) {
    const err = assertThrows(() => row(text), DataError) as DataError;
    assertMatch(err.message, /^Cannot read "m\.jsonl" line 7: /);
    assertMatch(err.message, re);
    assertEquals(err.field, field, text);
  }
});

Deno.test("toTrainsetRow() follows the STAR conversion on a hand-written row", async () => {
  const tokenizer = await Tokenizer.builtin();
  const r = row(
    '{"id": 3, "messages": [{"role": "user", "content": "x?"}, {"role": "assistant", "content": null, "reasoning_content": "R", "tool_calls": [{"name": "f", "arguments": {"a": 1.0}}]}], "tools": [{"name": "f", "parameters": {}}]}',
  );
  const at = { file: "m.jsonl", line: 1 };
  const plain = toTrainsetRow(r, tokenizer.chatTemplate(), at);
  assertEquals(plain.id, 3n);
  assertOk(plain.inputs.startsWith("<|im_start|>system\n# Tools\n"));
  assertOk(plain.inputs.includes('\n{"name": "f", "parameters": {}}\n'));
  assertOk(plain.inputs.endsWith("<|im_start|>user\nx?<|im_end|>\n<|im_start|>assistant\n<think>"));
  assertEquals(
    plain.targets,
    '</think><tool_call>\n{"name": "f", "arguments": {"a": 1.0}}\n</tool_call><|im_end|>\n',
  );
  const withRc = toTrainsetRow(r, tokenizer.chatTemplate(), at, { addReasoningContent: true });
  assertEquals(withRc.targets, "R" + plain.targets);
});

Deno.test("star prepare reports bad rows with file and line, skips them and exits 1", async () => {
  const input = await tmpWith(
    [
      '{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
      "{not json",
      '{"id": "b", "messages": [{"role": "user", "content": "hi"}]}',
      '{"id": "c", "messages": [{"role": "user", "content": "é"}, {"role": "assistant", "content": "ok"}]}',
      '{"id": "d", "messa',
    ].join("\r\n"),
  );
  const output = await Deno.makeTempFile({ suffix: ".jsonl" });
  const r = await star(["prepare", "--input", input, "--output", output]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, new RegExp(`Cannot read "${input}" line 2: invalid JSON`));
  assertMatch(r.stderr, /line 3: field "messages" needs at least 2 messages/);
  assertMatch(r.stderr, /line 5: invalid JSON .*ends in the middle of this line/);
  assertMatch(
    r.stderr,
    /prepare: 2 rows written to .*, 3 skipped \(2 invalid JSON; 1 field "messages" needs/,
  );
  assertEquals(
    await Deno.readTextFile(output),
    '{"id": "a", "inputs": "<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n<think>", "targets": "</think>yo<|im_end|>\\n"}\n' +
      '{"id": "c", "inputs": "<|im_start|>user\\né<|im_end|>\\n<|im_start|>assistant\\n<think>", "targets": "</think>ok<|im_end|>\\n"}\n',
  );
});

Deno.test('formatTrainsetRow() writes id null when the row has none, like row.get("id")', async () => {
  const tokenizer = await Tokenizer.builtin();
  const r = row(
    '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
  );
  const out = formatTrainsetRow(toTrainsetRow(r, tokenizer.chatTemplate(), { file: "m", line: 1 }));
  assertEquals(
    out,
    '{"id": null, "inputs": "<|im_start|>user\\nq<|im_end|>\\n<|im_start|>assistant\\n<think>", "targets": "</think>a<|im_end|>\\n"}',
  );
});

Deno.test("star prepare reads stdin and writes stdout; usage errors exit 2", async () => {
  const r = await star(
    ["prepare", "--input", "-", "--output", "-", "--add-reasoning-content"],
    '\ufeff{"id": 1, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "think"}]}\n',
  );
  assertEquals(r.code, 0);
  assertEquals(
    r.stdout,
    '{"id": 1, "inputs": "<|im_start|>user\\nq<|im_end|>\\n<|im_start|>assistant\\n<think>", "targets": "think</think>a<|im_end|>\\n"}\n',
  );
  assertMatch(r.stderr, /prepare: 1 rows written to stdout, 0 skipped/);
  const u = await star(["prepare", "--input", "x.jsonl"]);
  assertEquals(u.code, 2);
  assertMatch(u.stderr, /Missing required flag "--output"/);
  const m = await star(["prepare", "--input", "/nonexistent.jsonl", "--output", "-"]);
  assertEquals(m.code, 1);
  assertMatch(m.stderr, /Cannot open "\/nonexistent\.jsonl": no such file/);
});

Deno.test("star prepare --tokenizer DIR renders that tokenizer's own chat template", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/tokenizer.json`,
    JSON.stringify({
      version: "1.0",
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab: { "a": 0 }, unk_token: "a" },
    }),
  );
  // A template in the shape of Qwen's: tools as tojson, a header per message.
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({
      chat_template:
        "{%- for t in tools or [] %}{{ t | tojson }}\n{% endfor %}{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}",
    }),
  );
  const r = await star(
    ["prepare", "--tokenizer", dir, "--input", "-", "--output", "-"],
    '{"id": 1, "messages": [{"role": "user", "content": " q "}, {"role": "assistant", "content": "a"}], "tools": [{"n": 1.0}]}\n',
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(
    r.stdout,
    // What Python's jinja2 renders for this template ("{%-" eats the newline before it).
    '{"id": 1, "inputs": "{\\"n\\": 1.0}\\n<|im_start|>user\\nq<|im_end|><|im_start|>assistant<think>", "targets": "</think>a<|im_end|>"}\n',
  );
});
