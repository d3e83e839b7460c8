/**
 * reward/rollout_format.ts against tests/reference/rollout_ref.py (STAR's teacher-rollout filter
 * in plain Python) on the hand-made and fuzzed cases of tests/testdata/rollout/ (regenerate
 * with tests/reference/make_rollout_fixtures.sh): the verdict and its reason, the message, the
 * dedupe key and the output rows of every case, plus a few claims stated by hand.
 */
import {
  dedupeKey,
  judgeCompletion,
  messageDict,
  pyContains,
  pyEquals,
  type RolloutMessage,
  rolloutRows,
  rolloutTools,
  sortedJson,
  uniqueMessages,
} from "../reward/rollout_format.ts";
import { dumpsPyJson, isPyDict, parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { assertEquals, assertOk } from "./assert.ts";

const testdata = new URL("./testdata/rollout/", import.meta.url);

async function readText(name: string): Promise<string> {
  if (!name.endsWith(".gz")) return await Deno.readTextFile(new URL(name, testdata));
  const file = await Deno.open(new URL(name, testdata));
  return await new Response(file.readable.pipeThrough(new DecompressionStream("gzip"))).text();
}

const lines = (text: string) => text.split("\n").filter((l) => l !== "");
const dict = (v: PyValue) => v as PyDict;

for (
  const [name, cases, expected] of [
    ["hand-made", "cases.jsonl", "cases.expected.jsonl"],
    ["fuzzed", "fuzz.jsonl.gz", "fuzz.expected.jsonl.gz"],
  ]
) {
  Deno.test(`judgeCompletion(), dedupeKey() and rolloutRows() match rollout_ref.py on the ${name} cases`, async () => {
    const ins = lines(await readText(cases)).map(parsePyJson);
    const outs = lines(await readText(expected)).map(parsePyJson);
    assertEquals(outs.length, ins.length);
    let judged = 0, kept = 0, rows = 0;
    ins.forEach((c, i) => {
      const prompt = dict(c).get("prompt") as string;
      const completions = dict(c).get("completions") as string[];
      const want = dict(outs[i]).get("verdicts") as PyValue[];
      const tools = rolloutTools(prompt);
      const messages: RolloutMessage[] = [];
      completions.forEach((completion, j) => {
        const where = `case ${i + 1} completion ${j + 1}: ${JSON.stringify(completion)}`;
        const w = dict(want[j]);
        const v = judgeCompletion(tools, completion);
        judged++;
        assertEquals(v.ok, w.get("ok"), where + (v.ok ? "" : ` (${v.reason}: ${v.detail})`));
        if (!v.ok) {
          assertEquals(v.reason, w.get("reason"), where);
          return;
        }
        kept++;
        messages.push(v.message);
        assertEquals(
          dumpsPyJson(messageDict(v.message), { ensureAscii: false }),
          w.get("message"),
          where,
        );
        assertEquals(dedupeKey(v.message), w.get("key"), where);
      });
      const row = dict(c).get("row");
      if (row === undefined) return;
      const got = rolloutRows(dict(row), uniqueMessages(messages))
        .map((r) => dumpsPyJson(r, { ensureAscii: false }));
      assertEquals(got, dict(outs[i]).get("rows"), `case ${i + 1} rows`);
      rows += got.length;
    });
    assertOk(kept > 0 && kept < judged && rows > 0, `${kept} of ${judged} kept, ${rows} rows`);
  });
}

const PROMPT = `<|im_start|>system
# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
</tools><|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
`;

Deno.test("judgeCompletion() turns a well-formed completion into {reasoning_content, content, tool_calls}", () => {
  const tools = rolloutTools(PROMPT);
  const v = judgeCompletion(
    tools,
    '<think>\nAsk the tool.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
  );
  assertOk(v.ok);
  assertEquals(v.message.reasoning_content, "Ask the tool.");
  assertEquals(v.message.content, null);
  assertEquals(v.message.tool_calls!.length, 1);
  assertEquals(v.message.tool_calls![0].name, "get_weather");
  const reply = judgeCompletion(tools, "no opening tag</think>\n\n It is sunny. ");
  assertOk(reply.ok);
  assertEquals([reply.message.reasoning_content, reply.message.content], [
    "no opening tag",
    "It is sunny.",
  ]);
  assertEquals(
    [
      judgeCompletion(tools, "<think>a</think><think>b</think>c"),
      judgeCompletion(
        tools,
        '<think>a</think><tool_call>{"name": "get_wether", "arguments": {}}</tool_call>',
      ),
      judgeCompletion(
        tools,
        '<think>a</think><tool_call>{"name": "get_weather", "arguments": {"town": 1}}</tool_call>',
      ),
    ].map((r) => r.ok ? "ok" : r.reason),
    ["think", "name", "arguments"],
  );
});

Deno.test("dedupeKey() ignores the order of tool calls and the whitespace around them", () => {
  const tools = rolloutTools(PROMPT.replace(
    "</tools><|im_end|>",
    '{"name": "search", "parameters": {"type": "object", "properties": {"q": {}}}}\n</tools><|im_end|>',
  ));
  const a = judgeCompletion(
    tools,
    '<think>t</think><tool_call>{"name": "search", "arguments": {"q": "x"}}</tool_call><tool_call>{"name": "get_weather", "arguments": {"city": "P"}}</tool_call>',
  );
  const b = judgeCompletion(
    tools,
    '<think> t </think>\n<tool_call>\n{"arguments": {"city": "P"}, "name": "get_weather"}\n</tool_call>\n<tool_call>{"name":"search","arguments":{"q":"x"}}</tool_call>',
  );
  assertOk(a.ok && b.ok);
  assertEquals(dedupeKey(a.message), dedupeKey(b.message));
  assertEquals(uniqueMessages([a.message, b.message]), [a.message]);
});

Deno.test("sortedJson() orders keys by code point, as Python sorts str", () => {
  // U+FF5E (one UTF-16 unit) sorts after U+1F600 in UTF-16 order but before it by code point
  const v = new Map<string, PyValue>([["\u{1F600}", 1n], ["\uff5e", 2n], ["a", 3n]]);
  assertEquals(sortedJson(v), '{"a": 3, "\\uff5e": 2, "\\ud83d\\ude00": 1}');
});

Deno.test("pyEquals() and pyContains() follow Python's == and in", () => {
  assertOk(pyEquals(1n, 1.0) && pyEquals(true, 1n) && pyEquals([1n, [2.0]], [1.0, [2n]]));
  // json.loads returns one NaN object, and `in` compares identity first
  assertOk(pyEquals(NaN, NaN) && pyEquals([NaN], [NaN]) && !pyEquals(NaN, 1.5));
  assertOk(!pyEquals("1", 1n) && !pyEquals(null, false));
  assertOk(
    pyEquals(
      new Map<string, PyValue>([["a", 1n], ["b", 2n]]),
      new Map<string, PyValue>([["b", 2.0], ["a", true]]),
    ),
  );
  assertOk(pyContains("abc", "") && pyContains("x\u{1F600}", "\u{1F600}"));
  assertOk(!pyContains("\u{1F600}", "\ud83d") && !pyContains("\u{1F600}", "\ude00"));
});

Deno.test("rolloutRows() keeps the row's other fields in place and replaces only the last message", () => {
  const row = parsePyJson(
    '{"id": 7, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "old"}], "x": 1.0}',
  ) as PyDict;
  const [out] = rolloutRows(row, [{ reasoning_content: null, content: "new", tool_calls: null }]);
  assertEquals(
    dumpsPyJson(out, { ensureAscii: false }),
    '{"id": 7, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "new", "tool_calls": null, "reasoning_content": null}], "x": 1.0}',
  );
  assertOk(isPyDict(row) && (row.get("messages") as PyValue[]).length === 2);
});
