/**
 * The Qwen FC prompt of BFCL on hand-made entries, with the expected text written out by hand
 * from qwen_fc.py's template (the fixture test compares real entries with BFCL's own output).
 */
import { assertEquals } from "./assert.ts";
import { parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { buildPrompt, docsForPrompt, formatQwenPrompt } from "../reward/bfcl/mod.ts";

const msgs = (json: string) => parsePyJson(json) as PyDict[];
const docs = (json: string) => parsePyJson(json) as PyValue[];

const TOOLS_HEAD = "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist " +
  "with the user query.\n\nYou are provided with function signatures within <tools></tools> " +
  "XML tags:\n<tools>";
const TOOLS_TAIL = "\n</tools>\n\nFor each function call, return a json object with function " +
  'name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": ' +
  '<function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n';

Deno.test("buildPrompt() writes the docs as Python's json.dumps, with the Python hint", () => {
  const prompt = buildPrompt({
    category: "simple_python",
    messages: msgs(`[{"role": "user", "content": "Café ☕ for 2?"}]`),
    functions: docs(`[{"name": "order", "description": "Order a café.", "parameters":
      {"type": "dict", "properties": {"n": {"type": "integer", "default": 1},
      "price": {"type": "float", "default": 5.0}}, "required": []}}]`),
  });
  assertEquals(
    prompt,
    TOOLS_HEAD +
      '\n{"name": "order", "description": "Order a caf\\u00e9. Note that the provided function ' +
      'is in Python 3 syntax.", "parameters": {"type": "dict", "properties": {"n": {"type": ' +
      '"integer", "default": 1}, "price": {"type": "float", "default": 5.0}}, "required": []}}' +
      TOOLS_TAIL +
      "<|im_start|>user\nCafé ☕ for 2?<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("formatQwenPrompt() puts a leading system message in the tools block", () => {
  const m = msgs(`[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"},
    {"role": "user", "content": "b"}]`);
  assertEquals(
    formatQwenPrompt(m, docs(`[{"name": "f"}]`)),
    `<|im_start|>system\nBe brief.\n\n# Tools` +
      TOOLS_HEAD.slice(TOOLS_HEAD.indexOf("# Tools") + 7) +
      '\n{"name": "f"}' + TOOLS_TAIL +
      "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n",
  );
  // no functions: no tools block, the system message is a turn of its own
  assertEquals(
    formatQwenPrompt(m, []),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\na<|im_end|>\n" +
      "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("formatQwenPrompt() writes earlier assistant turns without their think block", () => {
  const m = msgs(`[{"role": "user", "content": "q1"},
    {"role": "assistant", "content": "<think>\\nr\\n</think>\\n\\nanswer 1"},
    {"role": "user", "content": "q2"}]`);
  assertEquals(
    formatQwenPrompt(m, []),
    "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\nanswer 1<|im_end|>\n" +
      "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("docsForPrompt() rewrites Java params as strings and tells their type in words", () => {
  const [doc] = docsForPrompt(
    docs(`[{"name": "J.f", "description": "Do.", "parameters": {"type": "dict", "properties": {
      "ids": {"type": "ArrayList", "description": "Ids.", "items": {"type": "long"}},
      "o": {"type": "any", "description": "Any."}, "n": {"type": "integer", "description": "N."}},
      "required": ["ids"]}}]`),
    "simple_java",
  );
  assertEquals(
    (doc as PyDict).get("description"),
    "Do. Note that the provided function is in Java 8 SDK syntax.",
  );
  const props = ((doc as PyDict).get("parameters") as PyDict).get("properties") as PyDict;
  assertEquals(Object.fromEntries(props.get("ids") as PyDict), {
    type: "string",
    description: "Ids. This is Java ArrayList type parameter in string representation. The " +
      "list elements are of type long; they are not in string representation.",
  });
  assertEquals(Object.fromEntries(props.get("o") as PyDict), {
    type: "string",
    description: "Any. This parameter can be of any type of Java object in string representation.",
  });
  assertEquals(
    (props.get("n") as PyDict).get("description"),
    "N. This is Java integer type parameter in string representation.",
  );
});

Deno.test("docsForPrompt() folds a JavaScript dict schema into its description", () => {
  const input = docs(`[{"name": "f", "description": "D.", "parameters": {"type": "dict",
    "properties": {"cfg": {"type": "dict", "description": "C.", "properties":
    {"a": {"type": "integer"}}}, "xs": {"type": "array", "description": "X.", "items":
    {"type": "String"}}}, "required": []}}]`);
  const [doc] = docsForPrompt(input, "simple_javascript");
  const props = ((doc as PyDict).get("parameters") as PyDict).get("properties") as PyDict;
  assertEquals(Object.fromEntries(props.get("cfg") as PyDict), {
    type: "string",
    description: "C. This is JavaScript dict type parameter in string representation. The " +
      "dictionary entries have the following schema; they are not in string representation. " +
      '{"a": {"type": "integer"}}',
  });
  assertEquals(Object.fromEntries(props.get("xs") as PyDict), {
    type: "string",
    description: "X. This is JavaScript array type parameter in string representation. The " +
      "list elements are of type String; they are not in string representation.",
  });
  // the entry's own docs (what the checker reads) are left as they were
  const orig = (((input[0] as PyDict).get("parameters") as PyDict).get("properties") as PyDict)
    .get("cfg") as PyDict;
  assertEquals(orig.get("type"), "dict");
});
