/**
 * Hand-made cases for each rule of BFCL's AST checker (shared/BFCL.md sections 5, 6), judged
 * through judge() on built entries. Expected verdicts are worked out from the rules by hand.
 */
import { assertEquals } from "./assert.ts";
import { isPyDict, parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { type BfclEntry, judge, standardizeString } from "../reward/bfcl/mod.ts";

function entry(category: string, docs: string, answer: string | null): BfclEntry {
  const functions = parsePyJson(docs) as PyValue[];
  const truth = answer === null ? null : parsePyJson(answer) as PyValue[];
  if (truth && !truth.every(isPyDict)) throw new Error("bad answer");
  return {
    id: `${category}_0`,
    category,
    messages: [],
    functions,
    answer: truth as PyDict[] | null,
  };
}

/** One `<tool_call>` block per `{"name", "arguments"}` JSON text, Qwen's format. */
function completion(...calls: string[]): string {
  return "<think>\nok\n</think>\n\n" +
    calls.map((c) => `<tool_call>\n${c}\n</tool_call>`).join("\n");
}

const call = (name: string, args: string) => `{"name": "${name}", "arguments": ${args}}`;

/** The error type (null when valid) of one completion. */
function errorType(e: BfclEntry, text: string): string | null {
  const v = judge(e, text);
  assertEquals(v.valid, v.errorType === null);
  return v.errorType;
}

const PY_DOC = `[{"name": "math.area", "description": "d", "parameters": {"type": "dict",
  "properties": {
    "base": {"type": "integer", "description": ""},
    "height": {"type": "float", "description": ""},
    "unit": {"type": "string", "description": ""},
    "tags": {"type": "array", "items": {"type": "string"}, "description": ""},
    "sizes": {"type": "array", "items": {"type": "integer"}, "description": ""},
    "weights": {"type": "array", "items": {"type": "float"}, "description": ""},
    "opts": {"type": "dict", "description": ""},
    "rows": {"type": "array", "items": {"type": "dict"}, "description": ""},
    "flag": {"type": "boolean", "description": ""},
    "extra": {"type": "string", "description": ""}},
  "required": ["base", "height"]}}]`;
const PY_ANSWER = `[{"math.area": {"base": [10], "height": [5.0, 5.5], "unit": ["units", ""],
  "tags": [["a b", "C"], ""], "sizes": [[1, 2]], "weights": [[1.5, 2.0], ""],
  "opts": [{"k": ["v1"], "n": [1, ""]}, ""], "rows": [[{"a": [1]}, {"a": [2]}], ""],
  "flag": ["", true]}}]`;
const py = entry("simple_python", PY_DOC, PY_ANSWER);
/** A call with the required answer params right, plus `more` (JSON members). */
const area = (more = "") =>
  completion(call("math.area", `{"base": 10, "height": 5.0, "sizes": [1, 2]${more}}`));

Deno.test("judge() passes a call that matches the answer, optional params left out", () => {
  assertEquals(errorType(py, area()), null);
  assertEquals(errorType(py, area(`, "unit": "units", "flag": true`)), null);
});

Deno.test("judge() wants the exact, case-sensitive function name (no dot rewriting for Qwen)", () => {
  for (const name of ["Math.area", "math_area", "area", "math.area "]) {
    const text = completion(call(name, `{"base": 10, "height": 5.0, "sizes": [1, 2]}`));
    assertEquals(errorType(py, text), "simple_function_checker:wrong_func_name", name);
  }
  const numeric = completion(`{"name": 7, "arguments": {}}`);
  assertEquals(errorType(py, numeric), "simple_function_checker:wrong_func_name");
});

Deno.test("judge() checks required params first, then each param in the call's order", () => {
  const noHeight = completion(call("math.area", `{"base": 10, "zzz": 1}`));
  assertEquals(errorType(py, noHeight), "simple_function_checker:missing_required");
  // base's type error comes before zzz, zzz before base's
  assertEquals(
    errorType(py, area(`, "base": "x", "zzz": 1`).replace(`"base": 10, `, "")),
    "type_error:simple",
  );
  const zzzFirst = completion(
    call("math.area", `{"zzz": 1, "base": "x", "height": 5.0, "sizes": [1, 2]}`),
  );
  assertEquals(errorType(py, zzzFirst), "simple_function_checker:unexpected_param");
});

Deno.test("judge() rejects a param absent from the doc or from the answer", () => {
  assertEquals(errorType(py, area(`, "zzz": 1`)), "simple_function_checker:unexpected_param");
  // documented but not in the answer: unexpected too
  assertEquals(errorType(py, area(`, "extra": "x"`)), "simple_function_checker:unexpected_param");
});

Deno.test('judge() wants every answer param without "": missing_optional', () => {
  const e = entry(
    "simple_python",
    PY_DOC,
    `[{"math.area": {"base": [10], "height": [5.0], "unit": ["units"]}}]`,
  );
  const text = completion(call("math.area", `{"base": 10, "height": 5.0}`));
  assertEquals(errorType(e, text), "simple_function_checker:missing_optional");
});

Deno.test("judge() types exactly: int for float is converted, nothing else is", () => {
  const at = (base: string, height: string) =>
    errorType(
      py,
      completion(call("math.area", `{"base": ${base}, "height": ${height}, "sizes": [1, 2]}`)),
    );
  assertEquals(at("10", "5"), null); // int -> float
  assertEquals(at("10", "5.5"), null);
  assertEquals(at("10.0", "5.0"), "type_error:simple"); // no float -> int
  assertEquals(at("1e1", "5.0"), "type_error:simple");
  assertEquals(at("true", "5.0"), "type_error:simple"); // bool is not int
  assertEquals(at('"10"', "5.0"), "type_error:simple"); // no string -> number
  assertEquals(at("10", "true"), "type_error:simple");
  assertEquals(at("10", "null"), "type_error:simple");
  assertEquals(at("11", "5.0"), "value_error:others");
  assertEquals(at("10", "6"), "value_error:others");
});

Deno.test("judge() normalises strings by [ ,./-_*^], lower case and ' -> \" only", () => {
  const unit = (u: string) => errorType(py, area(`, "unit": ${JSON.stringify(u)}`));
  assertEquals(unit("Units"), null);
  assertEquals(unit(" U-n_i.t,s*^/"), null);
  assertEquals(unit(""), null); // "" is listed: an empty string is accepted
  assertEquals(unit("units\t"), "value_error:string"); // tab is not removed
  assertEquals(unit("units\u00a0"), "value_error:string"); // nor NBSP
  assertEquals(unit("unit"), "value_error:string");
  assertEquals(unit("units!"), "value_error:string");
  assertEquals(standardizeString("It's A-B_c*d^e/f.g,h i"), 'it"sabcdefghi');
});

Deno.test("judge() compares lists in order after normalising their top-level strings", () => {
  const tags = (t: string) => errorType(py, area(`, "tags": ${t}`));
  assertEquals(tags(`["A B", "c"]`), null);
  assertEquals(tags(`["c", "a b"]`), "value_error:list/tuple"); // order matters
  assertEquals(tags(`[]`), null); // an optional array: "" becomes []
  assertEquals(tags(`["a b"]`), "value_error:list/tuple");
  // optional arrays skip item typing ("" is not a list), so a wrong item is a value error
  assertEquals(tags(`[1, 2]`), "value_error:list/tuple");
  assertEquals(tags(`"a b"`), "type_error:simple");
  const sizes = (s: string) =>
    errorType(py, completion(call("math.area", `{"base": 10, "height": 5.0, "sizes": ${s}}`)));
  // a required array types its items: float items for integer are a nested type error
  assertEquals(sizes(`[1.0, 2.0]`), "type_error:nested");
  assertEquals(sizes(`[2, 1]`), "value_error:list/tuple");
  assertEquals(sizes(`[true, 2]`), "type_error:nested");
  // weights: [1.5, 2] (int item) passes the optional typing and 2 == 2.0
  assertEquals(errorType(py, area(`, "weights": [1.5, 2]`)), null);
});

Deno.test("judge() checks dict keys and (normalised) values, not their types", () => {
  const opts = (o: string) => errorType(py, area(`, "opts": ${o}`));
  assertEquals(opts(`{"k": "V1"}`), null); // n is optional inside the dict
  assertEquals(opts(`{"k": "v1", "n": 1.0}`), null); // 1.0 == 1, no type check
  assertEquals(opts(`{"k": "v1", "z": 1}`), "value_error:dict_key");
  assertEquals(opts(`{}`), "value_error:dict_key");
  assertEquals(opts(`{"k": "v2"}`), "value_error:dict_value");
  assertEquals(opts(`{"n": 2}`), "value_error:dict_key"); // the missing k overrides dict_value
  assertEquals(opts(`["k"]`), "type_error:simple");
});

Deno.test("judge() checks a list of dicts element by element and by count", () => {
  const rows = (r: string) => errorType(py, area(`, "rows": ${r}`));
  assertEquals(rows(`[{"a": 1}, {"a": 2}]`), null);
  assertEquals(rows(`[{"a": 1}]`), "value_error:list_dict_count");
  assertEquals(rows(`[]`), null); // "" has length 0
  // the last acceptable value tried sets the error: here "" (length 0), a count error
  assertEquals(rows(`[{"a": 2}, {"a": 1}]`), "value_error:list_dict_count");
  const required = entry(
    "simple_python",
    PY_DOC,
    `[{"math.area": {"base": [10], "height": [5.0], "rows": [[{"a": [1]}, {"a": [2]}]]}}]`,
  );
  const req = (r: string) =>
    errorType(required, completion(call("math.area", `{"base": 10, "height": 5.0, "rows": ${r}}`)));
  assertEquals(req(`[{"a": 2}, {"a": 1}]`), "value_error:dict_value");
  assertEquals(req(`[{"a": 1}, {"b": 2}]`), "value_error:dict_key");
  assertEquals(req(`[{"a": 1}, {"a": 2}, {"a": 3}]`), "value_error:list_dict_count");
  // BFCL's own checker raises here (a string where a dict is read): counted wrong
  assertEquals(rows(`["x", "y"]`), "ast_checker:python_exception");
});

Deno.test("judge() compares other values with Python ==, exact for booleans and None", () => {
  assertEquals(errorType(py, area(`, "flag": false`)), "value_error:others");
  assertEquals(errorType(py, area(`, "flag": 1`)), "type_error:simple");
  // a huge int for a float param: float() overflows in BFCL's checker
  const big = completion(
    call("math.area", `{"base": 10, "height": 1${"0".repeat(400)}, "sizes": [1, 2]}`),
  );
  assertEquals(errorType(py, big), "ast_checker:python_exception");
  const nan = completion(call("math.area", `{"base": 10, "height": NaN, "sizes": [1, 2]}`));
  assertEquals(errorType(py, nan), "value_error:others");
});

Deno.test("judge() takes a value of the answer's own type as a variable, compared exactly", () => {
  // "dontcare" for an integer, a number for a string, null for a string: the answer's type wins
  const e = entry(
    "simple_python",
    `[{"name": "f", "description": "", "parameters": {"type": "dict", "properties": {
      "n": {"type": "integer", "description": ""}, "s": {"type": "string", "description": ""}},
      "required": []}}]`,
    `[{"f": {"n": ["dontcare", ""], "s": [2, ""]}}]`,
  );
  const f = (args: string) => errorType(e, completion(call("f", args)));
  assertEquals(f(`{"n": "dontcare"}`), null);
  assertEquals(f(`{"n": "DONTCARE"}`), "value_error:others"); // no normalisation
  assertEquals(f(`{"n": 3}`), "value_error:others"); // the documented type, then == fails
  assertEquals(f(`{"s": 2}`), null);
  assertEquals(f(`{"s": 2.0}`), "type_error:simple"); // float is neither str nor int
  assertEquals(f(`{"s": true}`), "type_error:simple");
  assertEquals(f(`{"s": "2"}`), "value_error:others");
});

const PAR_DOC = `[{"name": "f", "description": "", "parameters": {"type": "dict", "properties": {
  "x": {"type": "integer", "description": ""}, "y": {"type": "integer", "description": ""}},
  "required": ["x"]}},
  {"name": "g", "description": "", "parameters": {"type": "dict", "properties": {
  "s": {"type": "string", "description": ""}}, "required": ["s"]}}]`;

Deno.test("judge() matches parallel calls in any order, greedily per answer", () => {
  const e = entry(
    "parallel_multiple",
    PAR_DOC,
    `[{"f": {"x": [1], "y": ["", 2]}}, {"g": {"s": ["a"]}}, {"f": {"x": [1], "y": [2]}}]`,
  );
  const f1 = call("f", `{"x": 1}`),
    f12 = call("f", `{"x": 1, "y": 2}`),
    g = call("g", `{"s": "A"}`);
  assertEquals(errorType(e, completion(f1, g, f12)), null);
  assertEquals(errorType(e, completion(g, f1, f12)), null);
  // the trap: answer 0 takes f(x=1, y=2) first, so answer 2 is left with f(x=1)
  assertEquals(
    errorType(e, completion(f12, g, f1)),
    "parallel_function_checker_no_order:cannot_find_match",
  );
  assertEquals(
    errorType(e, completion(f1, g)),
    "parallel_function_checker_no_order:wrong_count",
  );
  assertEquals(
    errorType(e, completion(f1, g, f12, g)),
    "parallel_function_checker_no_order:wrong_count",
  );
  const v = judge(e, completion(f12, g, f1));
  assertEquals(
    v.error!.split(" Model Result")[0],
    "Could not find a matching function among index [2] of model output for index 2 of " +
      "possible answers.",
  );
});

Deno.test("judge() wants one call of the answer's function for multiple, one call for simple", () => {
  const m = entry("multiple", PAR_DOC, `[{"g": {"s": ["a"]}}]`);
  assertEquals(errorType(m, completion(call("g", `{"s": "a"}`))), null);
  assertEquals(
    errorType(m, completion(call("f", `{"x": 1}`))),
    "simple_function_checker:wrong_func_name",
  );
  assertEquals(
    errorType(m, completion(call("g", `{"s": "a"}`), call("g", `{"s": "a"}`))),
    "multiple_function_checker:wrong_count",
  );
  assertEquals(errorType(m, "no call"), "multiple_function_checker:wrong_count");
  assertEquals(errorType(py, "no call"), "simple_function_checker:wrong_count");
  const one = call("math.area", `{"base": 10, "height": 5.0, "sizes": [1, 2]}`);
  assertEquals(errorType(py, completion(one, one)), "simple_function_checker:wrong_count");
});

Deno.test("judge() scores irrelevance by the absence of any decoded call", () => {
  const e = entry("irrelevance", PAR_DOC, null);
  assertEquals(errorType(e, "I cannot do that."), null);
  assertEquals(errorType(e, '<tool_call>{"name": "f"}</tool_call>'), null); // no newlines
  assertEquals(errorType(e, completion(`{"name": "f", "arguments": {`)), null); // bad JSON
  assertEquals(errorType(e, completion(`[1]`)), null); // decode raises: no call
  assertEquals(errorType(e, completion(call("nope", `{}`))), "irrelevance_error:decoder_success");
  assertEquals(
    errorType(e, completion(call("f", `{"x": NaN}`))),
    "irrelevance_error:decoder_success",
  );
  const live = entry("live_irrelevance", "[]", null);
  assertEquals(errorType(live, completion(call("f", `{}`))), "irrelevance_error:decoder_success");
});

Deno.test("judge() scores live_relevance by the presence of any decoded call", () => {
  const e = entry("live_relevance", PAR_DOC, null);
  assertEquals(errorType(e, completion(call("anything", `{"z": [1]}`))), null);
  assertEquals(errorType(e, "No call."), "relevance_error:decoder_failed");
  assertEquals(
    judge(e, "No call.").error,
    "Invalid syntax. Failed to decode AST when it should have. None",
  );
  assertEquals(
    judge(e, completion(`{"arguments": {}}`)).error,
    "Invalid syntax. Failed to decode AST when it should have. 'name'",
  );
});

const JAVA_DOC = `[{"name": "J.run", "description": "", "parameters": {"type": "dict",
  "properties": {
    "n": {"type": "integer", "description": ""}, "l": {"type": "long", "description": ""},
    "f": {"type": "float", "description": ""}, "d": {"type": "double", "description": ""},
    "b": {"type": "boolean", "description": ""}, "s": {"type": "String", "description": ""},
    "arr": {"type": "Array", "items": {"type": "integer"}, "description": ""},
    "list": {"type": "ArrayList", "items": {"type": "String"}, "description": ""},
    "map": {"type": "HashMap", "description": ""}, "a": {"type": "any", "description": ""}},
  "required": []}}]`;
const JAVA_ANSWER = `[{"J.run": {"n": [5, ""], "l": [42, ""], "f": [2.5, ""], "d": [0.5, ""],
  "b": [true, ""], "s": ["Hello World", ""], "arr": [[1, 2], ""], "list": [["a", "b"], ""],
  "map": [{"k": ["v"], "m": [1]}, ""], "a": ["x", ""]}}]`;

Deno.test("judge() parses Java argument strings by the parameter's Java type", () => {
  const e = entry("simple_java", JAVA_DOC, JAVA_ANSWER);
  const j = (k: string, v: unknown) =>
    errorType(e, completion(call("J.run", JSON.stringify({ [k]: v }))));
  assertEquals(j("n", "5"), null);
  assertEquals(j("n", 5), "type_error:java"); // every Java value must be a string
  assertEquals(j("n", "5L"), "type_error:simple"); // stays the string "5L"
  assertEquals(j("l", "42L"), null);
  assertEquals(j("l", "42"), "type_error:simple");
  assertEquals(j("f", "2.5f"), null);
  assertEquals(j("f", "2.5"), "type_error:simple");
  assertEquals(j("d", "0.5"), null);
  assertEquals(j("d", "5e-1"), null);
  assertEquals(j("b", "true"), null);
  assertEquals(j("b", "True"), "type_error:simple");
  assertEquals(j("s", "hello world"), null); // String: the raw text, normalised
  assertEquals(j("arr", "new int[]{1, 2}"), null);
  assertEquals(j("arr", "new int[] { 1,2 }"), null);
  assertEquals(j("arr", "new int[]{2, 1}"), "value_error:list/tuple");
  assertEquals(j("arr", "[1, 2]"), "type_error:simple"); // not Java: stays a string
  assertEquals(j("list", 'new ArrayList<>(Arrays.asList("a", "b"))'), null);
  assertEquals(j("list", 'new ArrayList<String>() {{ add("a"); add("b"); }}'), null);
  assertEquals(j("map", 'new HashMap<String, Object>() {{ put("k", "v"); put("m", 1); }}'), null);
  assertEquals(
    j("map", 'new HashMap<String, Object>() {{ put("k", "v"); }}'),
    "value_error:dict_key",
  );
  assertEquals(j("a", "x"), null);
  assertEquals(j("a", 1), "type_error:java");
});

const JS_DOC = `[{"name": "run", "description": "", "parameters": {"type": "dict",
  "properties": {
    "n": {"type": "integer", "description": ""}, "f": {"type": "float", "description": ""},
    "big": {"type": "Bigint", "description": ""}, "b": {"type": "Boolean", "description": ""},
    "s": {"type": "String", "description": ""},
    "arr": {"type": "array", "items": {"type": "float"}, "description": ""},
    "obj": {"type": "dict", "description": ""}},
  "required": []}}]`;
const JS_ANSWER = `[{"run": {"n": [5, ""], "f": [4.0, ""], "big": [12, ""], "b": [false, ""],
  "s": ["hi there", ""], "arr": [[60, 30], ""], "obj": [{"method": ["GET"], "n": [2]}, ""]}}]`;

Deno.test("judge() parses JavaScript argument strings by the parameter's JS type", () => {
  const e = entry("simple_javascript", JS_DOC, JS_ANSWER);
  const j = (k: string, v: unknown) =>
    errorType(e, completion(call("run", JSON.stringify({ [k]: v }))));
  assertEquals(j("n", "5"), null);
  assertEquals(j("n", 5), "type_error:js");
  assertEquals(j("f", "4"), null); // "4" matches the float pattern: 4.0
  assertEquals(j("f", "4.0"), null);
  assertEquals(j("f", "4e0"), "type_error:simple");
  assertEquals(j("big", "12n"), null);
  assertEquals(j("big", "12"), "type_error:simple");
  assertEquals(j("b", "false"), null);
  assertEquals(j("s", "'Hi There'"), null); // quotes removed
  assertEquals(j("s", '"hi there"'), null);
  assertEquals(j("arr", "[60, 30]"), null); // 60.0 == 60
  assertEquals(j("arr", "new Array(60, 30.0)"), null);
  assertEquals(j("arr", "[30, 60]"), "value_error:list/tuple");
  assertEquals(j("obj", "{method: 'GET', n: 2}"), null);
  assertEquals(j("obj", "{'method': \"get\", 'n': 2}"), null);
  assertEquals(j("obj", "{method: 'GET'}"), "value_error:dict_key");
  assertEquals(j("obj", "{method: 'POST', n: 2}"), "value_error:dict_value");
});
