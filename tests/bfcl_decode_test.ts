/**
 * The output side of BFCL's Qwen FC handler (`</think>` split, the tool-call regex, Python
 * json.loads, the call list) and the Python/Java/JS value parsers the checker leans on.
 * Expected values are hand-written; the int()/float() rows were printed by CPython 3.11.
 */
import { assertEquals, assertThrows } from "./assert.ts";
import { isPyDict, type PyValue } from "../lib/py/json.ts";
import {
  cleanCompletion,
  decodeAst,
  extractToolCalls,
  javaConvert,
  jsConvert,
  PyException,
} from "../reward/bfcl/mod.ts";
import { pyFloat, pyInt } from "../reward/bfcl/_py.ts";

const block = (body: string) => `<tool_call>\n${body}\n</tool_call>`;
const obj = (v: PyValue) => isPyDict(v) ? Object.fromEntries(v) : v;

Deno.test("cleanCompletion() keeps the text after the last </think>, leading newlines removed", () => {
  assertEquals(cleanCompletion("<think>\nhm\n</think>\n\nanswer"), "answer");
  assertEquals(cleanCompletion("a</think>b</think>\n\n c"), " c"); // only "\n" is stripped
  assertEquals(
    cleanCompletion("<think>\nstill thinking " + block("{}")),
    "<think>\nstill thinking " + block("{}"),
  );
  assertEquals(cleanCompletion("x</think>"), "");
  assertEquals(cleanCompletion("no think at all"), "no think at all");
});

Deno.test("extractToolCalls() needs the newlines around each block", () => {
  const c = `{"name": "f", "arguments": {}}`;
  assertEquals(extractToolCalls(block(c)).length, 1);
  assertEquals(extractToolCalls(`<tool_call>${c}</tool_call>`), []);
  assertEquals(extractToolCalls(`<tool_call>\n${c}</tool_call>`), []);
  assertEquals(extractToolCalls(`<tool_call>\r\n${c}\r\n</tool_call>`), []);
  // a block without its closing newline swallows the next one: both are lost
  assertEquals(extractToolCalls(`<tool_call>\n${c}</tool_call>\n${block(c)}`), []);
  assertEquals(extractToolCalls(`${block(c)}\n${block(c)}`).length, 2);
  assertEquals(extractToolCalls(`<tool_call>\n\n</tool_call>`), []); // "" is not JSON
});

Deno.test("extractToolCalls() drops a block of bad JSON and keeps the others", () => {
  const good = `{"name": "f", "arguments": {"x": 1}}`;
  const calls = extractToolCalls(`${block(`{"name": "f", "arguments": {`)}\n${block(good)}`);
  assertEquals(calls.length, 1);
  assertEquals(extractToolCalls(block(`{'name': 'f'}`)), []); // single quotes: not JSON
  assertEquals(extractToolCalls(block(`{"a": 1,}`)), []);
});

Deno.test("extractToolCalls() reads JSON as Python does: NaN, Infinity, big ints, 5 vs 5.0", () => {
  const [v] = extractToolCalls(
    block(
      `{"a": NaN, "b": -Infinity, "c": 123456789012345678901234567890, "d": 5, ` +
        `"e": 5.0, "f": 5e0, "g": 1, "g": 2}`,
    ),
  );
  const o = obj(v) as Record<string, PyValue>;
  assertEquals(Number.isNaN(o.a), true);
  assertEquals(o.b, -Infinity);
  assertEquals(o.c, 123456789012345678901234567890n);
  assertEquals(o.d, 5n);
  assertEquals(o.e, 5);
  assertEquals(o.f, 5);
  assertEquals(o.g, 2n); // a repeated key: the last value
});

Deno.test("decodeAst() makes one call per object block and fails as Python's decode does", () => {
  const ok = decodeAst(block(`{"name": 3, "arguments": {"x": 1}, "extra": true}`));
  assertEquals(ok.ok && ok.calls.map((c) => [c.name, obj(c.args)]), [[3n, { x: 1n }]]);
  const err = (text: string) => {
    const d = decodeAst(text);
    return d.ok ? null : d.error;
  };
  assertEquals(err("nothing"), null); // no block: an empty call list
  assertEquals(
    err(block(`[1, 2]`)),
    `Model did not return a list of function calls: ${block(`[1, 2]`)}`,
  );
  assertEquals(err(block(`{"arguments": {}}`)), "'name'");
  assertEquals(err(block(`{"name": "f"}`)), "'arguments'");
  assertEquals(
    err(block(`{"name": "f", "arguments": [1]}`)),
    "'list' object has no attribute 'items'",
  );
  assertEquals(
    err(block(`{"name": "f", "arguments": "{}"}`)),
    "'str' object has no attribute 'items'",
  );
  assertEquals(err(block(`{"name": ["f"], "arguments": {}}`)), "unhashable type: 'list'");
  assertEquals(err(block(`{"name": {"a": 1}, "arguments": {}}`)), "unhashable type: 'dict'");
  // the non-object check runs over all blocks before any call is built
  const mixed = `${block(`{"arguments": {}}`)}\n${block(`"text"`)}`;
  assertEquals(err(mixed), `Model did not return a list of function calls: ${mixed}`);
});

Deno.test("pyInt() and pyFloat() parse as CPython's int() and float() do", () => {
  // [text, int(text) or null for ValueError, float(text) or null], from CPython 3.11
  const rows: [string, bigint | null, number | null][] = [
    [" 5 ", 5n, 5],
    ["\u20035", 5n, 5],
    ["\u0665", 5n, 5],
    ["1_0", 10n, 10],
    ["_1", null, null],
    ["1_", null, null],
    ["1__0", null, null],
    ["+5", 5n, 5],
    ["\u0663.\u0665", null, 3.5],
    ["1_0.5", null, 10.5],
    ["1._5", null, null],
    ["1e1_0", null, 1e10],
    [".5", null, 0.5],
    ["5.", null, 5],
    [".", null, null],
    ["inf", null, Infinity],
    ["-Infinity", null, -Infinity],
    ["1e", null, null],
    ["0x10", null, null],
    ["00", 0n, 0],
    ["1\n", 1n, 1],
    ["\x0b5", 5n, 5],
    ["\x1c5", null, null],
  ];
  for (const [text, i, f] of rows) {
    if (i === null) assertThrows(() => pyInt(text), PyException);
    else assertEquals(pyInt(text), i, text);
    if (f === null) assertThrows(() => pyFloat(text), PyException);
    else assertEquals(pyFloat(text), f, text);
  }
  assertEquals(Number.isNaN(pyFloat("nAn")), true);
  assertEquals(Object.is(pyFloat("-0"), -0), true);
});

Deno.test("javaConvert() turns Java literals into Python values, else keeps the string", () => {
  const c = (v: string, t: string, n?: string) => {
    const x = javaConvert(v, t, n);
    return isPyDict(x) ? Object.fromEntries(x) : x;
  };
  assertEquals(c("-12", "integer"), -12n);
  assertEquals(c("12\n", "integer"), 12n); // Python's $ matches before a final newline
  assertEquals(c("1.5", "integer"), "1.5");
  assertEquals(c("7L", "long"), 7n);
  assertEquals(c("7", "long"), "7");
  assertEquals(c("3e2f", "float"), 300);
  assertEquals(c("3.5", "float"), "3.5");
  assertEquals(c("3.5", "double"), 3.5);
  assertEquals(c("true", "boolean"), true);
  assertEquals(c("'a'", "char"), "'a'"); // BFCL's char pattern never matches
  assertEquals(c("new long[]{1L, 2, 3L}", "Array", "long"), [1n, "2", 3n]);
  assertEquals(c('new String[]{"a", "b"}', "Array", "String"), ['"a"', '"b"']); // quotes stay
  assertEquals(c('new Object[]{1, "x", true, 2.5f}', "Array"), [1n, "x", true, 2.5]);
  assertEquals(c('new ArrayList<>(Arrays.asList("a", "b"))', "ArrayList", "String"), ["a", "b"]);
  assertEquals(c("new ArrayList<Integer>() {{ add(1); add(2); }}", "ArrayList", "integer"), [
    1n,
    2n,
  ]);
  assertEquals(c("new ArrayList<>()", "ArrayList", "integer"), []);
  assertEquals(c("[1, 2]", "ArrayList", "integer"), "[1, 2]");
  assertEquals(
    c('new HashMap<String, Object>() {{ put("a", 1); put("b", "x"); put("c", 5L); }}', "HashMap"),
    { a: 1n, b: "x", c: 5n },
  );
  assertEquals(c("new HashMap<>()", "HashMap"), {});
  assertEquals(c("anything", "String"), "anything");
  assertThrows(() => javaConvert("x", "Queue"), PyException);
  assertThrows(() => javaConvert("x", "Object"), PyException);
});

Deno.test("jsConvert() turns JavaScript literals into Python values, else keeps the string", () => {
  const c = (v: string, t: string, n?: string) => {
    const x = jsConvert(v, t, n);
    return isPyDict(x) ? Object.fromEntries(x) : x;
  };
  assertEquals(c("'hi'", "String"), "hi");
  assertEquals(c("\"hi'", "String"), "\"hi'");
  assertEquals(c("5", "integer"), 5n);
  assertEquals(c("5", "float"), 5);
  assertEquals(c("5.5e1", "float"), "5.5e1");
  assertEquals(c("5n", "Bigint"), 5n);
  assertEquals(c("true", "Boolean"), true);
  assertEquals(c("[1, 'two', true, 2.5]", "array"), [1n, "two", true, 2.5]);
  assertEquals(c(" new Array(1, 2) ", "array", "integer"), [1n, 2n]);
  assertEquals(c("[]", "array", "integer"), []);
  assertEquals(c("[[1, 2], [3]]", "array"), [[1n, 2n], [3n]]);
  assertEquals(c("[1, 2]", "array", "Object"), "[1, 2]"); // a failure inside: the text back
  assertEquals(c("{a: 1, 'b': 'x', c: [1, 2]}", "dict"), { a: 1n, b: "x", c: [1n, 2n] });
  assertEquals(c("{}", "dict"), {});
  assertEquals(c("not a dict", "dict"), "not a dict");
  assertThrows(() => jsConvert("x", "Symbol"), PyException);
});
