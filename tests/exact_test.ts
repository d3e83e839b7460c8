import { assertEquals, assertThrows } from "./assert.ts";
import { exactCalls, labelKind, pyEqual } from "../reward/exact.ts";
import { parsePyJson } from "../lib/py/json.ts";

const TOOLS = [
  `{"name": "add", "parameters": {"type": "object", "properties": {"a": {}, "b": {}}}}`,
  `{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {}, "days": {}}}}`,
].join("\n");
const PROMPT =
  `<|im_start|>system\n<tools>\n${TOOLS}\n</tools><|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>`;
const call = (name: string, args: string) =>
  `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;
const label = (...calls: string[]) => `</think>\n\n${calls.join("\n")}<|im_end|>`;
const gen = (...calls: string[]) => `</think>\n\n${calls.join("\n")}<|im_end|>`;

Deno.test("exactCalls() compares calls as a multiset with Python's ==", () => {
  const gold = label(call("add", `{"a": 1, "b": 2.5}`), call("get_weather", `{"city": "Oslo"}`));
  const cases: [string, boolean][] = [
    [gen(call("add", `{"a": 1, "b": 2.5}`), call("get_weather", `{"city": "Oslo"}`)), true],
    // order of calls and of keys does not matter; 1 == 1.0 == True
    [gen(call("get_weather", `{"city": "Oslo"}`), call("add", `{"b": 2.5, "a": 1.0}`)), true],
    [gen(call("add", `{"a": true, "b": 2.5}`), call("get_weather", `{"city": "Oslo"}`)), true],
    // a string is not a number; another value; a missing or an extra call
    [gen(call("add", `{"a": "1", "b": 2.5}`), call("get_weather", `{"city": "Oslo"}`)), false],
    [gen(call("add", `{"a": 1, "b": 2.4}`), call("get_weather", `{"city": "Oslo"}`)), false],
    [gen(call("add", `{"a": 1, "b": 2.5}`)), false],
    [
      gen(
        call("add", `{"a": 1, "b": 2.5}`),
        call("get_weather", `{"city": "Oslo"}`),
        call("add", `{"a": 1, "b": 2.5}`),
      ),
      false,
    ],
    // an extra argument; a tool the prompt does not offer (format fails); a broken think block
    [
      gen(call("add", `{"a": 1, "b": 2.5}`), call("get_weather", `{"city": "Oslo", "days": 2}`)),
      false,
    ],
    [gen(call("add", `{"a": 1, "b": 2.5}`), call("weather", `{"city": "Oslo"}`)), false],
    [`no think ${call("add", `{"a": 1, "b": 2.5}`)}`, false],
  ];
  cases.forEach(([completion, want], i) =>
    assertEquals(exactCalls(PROMPT, completion, gold), want, `case ${i}`)
  );
  // a text reply is exact when it is a well-formed reply with no call, whatever its wording
  const reply = "</think>\n\nIt is sunny.<|im_end|>";
  assertEquals(exactCalls(PROMPT, "</think>\n\nNo idea.<|im_end|>", reply), true);
  assertEquals(exactCalls(PROMPT, gen(call("add", `{"a": 1}`)), reply), false);
  // empty-list arguments count as none
  assertEquals(exactCalls(PROMPT, gen(call("add", "[]")), label(call("add", "{}"))), true);
});

Deno.test("labelKind() names single, parallel and response labels; a bad label throws", () => {
  assertEquals(labelKind(label(call("add", `{"a": 1}`))), "single");
  assertEquals(labelKind(label(call("add", `{"a": 1}`), call("add", `{"a": 2}`))), "parallel");
  assertEquals(labelKind("</think>\n\nhello<|im_end|>"), "response");
  assertThrows(() => labelKind("no think close"));
});

Deno.test("pyEqual() follows Python == on JSON values", () => {
  const p = (s: string) => parsePyJson(s);
  assertEquals(pyEqual(p("[1, 2.0, true]"), p("[1.0, 2, 1]")), true);
  assertEquals(pyEqual(p('{"a": [1, {"b": null}]}'), p('{"a": [1, {"b": null}]}')), true);
  assertEquals(pyEqual(p("[1, 2]"), p("[2, 1]")), false);
  assertEquals(pyEqual(p('{"a": 1}'), p('{"a": 1, "b": 2}')), false);
  assertEquals(pyEqual(p("NaN"), p("NaN")), false);
  assertEquals(pyEqual(p("12345678901234567890"), p("12345678901234567890.0")), false);
  assertEquals(pyEqual(p("null"), p('"None"')), false);
});
