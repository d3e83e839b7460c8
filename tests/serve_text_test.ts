/**
 * The text side of `star serve`, against hand-worked cases: vLLM's qwen3 reasoning split and
 * hermes tool-call parsing (arguments written back as Python's json.dumps with
 * ensure_ascii=False), what a stream may release while a tag or stop string could still be
 * forming, and incremental decoding with stop strings on the real Qwen3 tokenizer.
 */
import { assertEquals, assertOk } from "./assert.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { IncrementalText, parseToolCalls, safeLength, splitReasoning } from "../serve/text.ts";
import { streamingSplit } from "../serve/chat.ts";

Deno.test("splitReasoning() splits as vLLM's qwen3 reasoning parser", () => {
  assertEquals(splitReasoning("<think>\nabc\n</think>\n\nhi"), {
    reasoning: "\nabc\n",
    content: "\n\nhi",
  });
  assertEquals(splitReasoning("no tags"), { reasoning: null, content: "no tags" });
  assertEquals(splitReasoning("<think>unfinished"), { reasoning: null, content: "unfinished" });
  assertEquals(splitReasoning("<think>x</think>"), { reasoning: "x", content: null });
  assertEquals(splitReasoning("pre<think>r</think>c"), { reasoning: "r", content: "c" });
  assertEquals(splitReasoning("r</think>c"), { reasoning: "r", content: "c" });
});

Deno.test("parseToolCalls() reads <tool_call> blocks as vLLM's hermes parser", () => {
  let n = 0;
  const id = () => `call-${n++}`;
  assertEquals(
    parseToolCalls(
      '<tool_call>\n{"name": "f", "arguments": {"a": 1, "b": "é", "c": 1.0}}\n</tool_call>',
      id,
    ),
    {
      content: null,
      toolCalls: [{
        id: "call-0",
        type: "function",
        function: { name: "f", arguments: '{"a": 1, "b": "é", "c": 1.0}' },
      }],
    },
  );
  // text before the first call is the content; an unclosed last block still counts
  const two = parseToolCalls(
    'Sure.\n<tool_call>{"name":"a","arguments":{}}</tool_call>\n<tool_call>{"name":"b","arguments":{"x":[1,2],"y":null}}',
    id,
  );
  assertEquals(two.content, "Sure.\n");
  assertEquals(two.toolCalls.map((c) => [c.function.name, c.function.arguments]), [
    ["a", "{}"],
    ["b", '{"x": [1, 2], "y": null}'],
  ]);
  // any block that is not {"name", "arguments"} JSON: no calls, everything is content
  for (
    const bad of [
      '<tool_call>{"name": "f", "arguments": {</tool_call>',
      '<tool_call>{"name": "f"}</tool_call>',
      '<tool_call>["f"]</tool_call>',
      '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>nope</tool_call>',
    ]
  ) {
    assertEquals(parseToolCalls(bad, id), { content: bad, toolCalls: [] }, bad);
  }
  assertEquals(parseToolCalls("just text", id), { content: "just text", toolCalls: [] });
});

Deno.test("streamingSplit() releases only what a later token cannot turn into a tag", () => {
  assertEquals(streamingSplit("<thi", true, []), { reasoning: "", content: "" });
  assertEquals(streamingSplit("<think>abc</th", true, []), { reasoning: "abc", content: "" });
  assertEquals(streamingSplit("<think>a</think>b<tool", true, []), {
    reasoning: "a",
    content: "b",
  });
  assertEquals(streamingSplit("<think>a</think>b<tool", false, []), {
    reasoning: "a",
    content: "b<tool",
  });
  assertEquals(streamingSplit("<think>a</think>b<tool_call>{", true, []), {
    reasoning: "a",
    content: "b",
  });
  assertEquals(streamingSplit("plain EN", false, ["END"]), { reasoning: "", content: "plain " });
  assertEquals(safeLength("abcST", ["STOP", "TX"]), 3);
  assertEquals(safeLength("abc", ["STOP"]), 3);
});

Deno.test("IncrementalText cuts at a stop string and holds back what could still become one", async () => {
  const tok = await Tokenizer.load();
  const ids = tok.encode("Hello world. STOP here, 你好 and more text after it");
  const t = new IncrementalText(tok, ["STOP"]);
  let streamed = "";
  let stopped = false;
  for (const id of ids) {
    stopped = t.push(id);
    const piece = t.take();
    assertOk(!piece.includes("\uFFFD"), JSON.stringify(piece));
    streamed += piece;
    assertOk(!streamed.includes("S"), streamed); // "S", "ST", "STO" may start "STOP": held
    if (stopped) break;
  }
  assertEquals(stopped, true);
  assertEquals(t.stoppedBy, "STOP");
  assertEquals(t.text, "Hello world. ");
  streamed += t.take(true);
  assertEquals(streamed, "Hello world. ");
  // without stops: the streamed pieces add up to the decoded text, multi-byte characters whole
  const all = tok.encode("αβγ 你好世界 🙂 emoji and <think>tags</think> <|im_end|>");
  const u = new IncrementalText(tok);
  let out = "";
  for (const id of all) {
    u.push(id);
    const piece = u.take();
    assertOk(!piece.includes("\uFFFD"), JSON.stringify(piece));
    out += piece;
  }
  out += u.take(true);
  assertEquals(out, tok.decode(all, { skipSpecialTokens: true }));
  assertEquals(out, "αβγ 你好世界 🙂 emoji and <think>tags</think> ");
});
