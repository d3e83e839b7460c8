/**
 * BFCL's AST checker (`eval_checker/ast_eval/ast_checker.py`) for decoded calls: simple (one
 * call), multiple (one call, the answer's function among several offered) and parallel (any
 * order, greedy first-fit per answer, no backtracking), each call judged by the same sequence
 * of rules (name, required, unexpected, type with int->float, value with string
 * normalisation, missing optional), first failure wins, with BFCL's error types and messages.
 * Java and JavaScript arguments go through their string parsers first. Where BFCL's Python
 * would raise on an input (a huge int for a float, a list of non-objects where objects are
 * expected...) this throws PyException; the caller decides what that row scores.
 */
import { isPyDict, type PyDict, pyRepr, pyStr, type PyValue } from "../../lib/py/json.ts";
import {
  pyEquals,
  PyException,
  pyIn,
  pyIndexItems,
  pyLen,
  type PyTypeName,
  pyTypeName,
} from "./_py.ts";
import { JAVA_TYPES, javaConvert } from "./java_convert.ts";
import { JS_TYPES, jsConvert } from "./js_convert.ts";
import type { DecodedCall } from "./decode.ts";

export type Language = "python" | "java" | "javascript";

/** A verdict: valid, or BFCL's error type and its messages. */
export interface CheckResult {
  valid: boolean;
  errorType: string | null;
  errors: string[];
}

const VALID: CheckResult = Object.freeze({
  valid: true,
  errorType: null,
  errors: [],
}) as CheckResult;

function fail(errorType: string, ...errors: string[]): CheckResult {
  return { valid: false, errorType, errors };
}

/** `PYTHON_TYPE_MAPPING`. */
const PYTHON_TYPES: Record<string, PyTypeName> = {
  string: "str",
  integer: "int",
  float: "float",
  boolean: "bool",
  array: "list",
  tuple: "list",
  dict: "dict",
  any: "str",
};

/** Nested element types are checked only for these (Python docs). */
const PYTHON_NESTED = new Set(["array", "tuple"]);
/** Java/JS types whose converter takes the items' type. */
const NESTED_CONVERSION = new Set(["Array", "ArrayList", "array"]);

function lookup(table: Record<string, string>, key: PyValue): string {
  if (typeof key === "string" && Object.hasOwn(table, key)) return table[key];
  throw new PyException("KeyError", pyRepr(key));
}

/** `d[key]` of a Python dict value; KeyError/TypeError as Python raises them. */
function item(d: PyValue, key: string): PyValue {
  if (isPyDict(d)) {
    if (d.has(key)) return d.get(key)!;
    throw new PyException("KeyError", pyRepr(key));
  }
  if (d === null) throw new PyException("TypeError", "'NoneType' object is not subscriptable");
  if (Array.isArray(d)) {
    throw new PyException("TypeError", "list indices must be integers or slices, not str");
  }
  if (typeof d === "string") {
    throw new PyException("TypeError", "string indices must be integers, not 'str'");
  }
  throw new PyException("TypeError", `'${pyTypeName(d)}' object is not subscriptable`);
}

/** The type of the first acceptable value that is not `""` (`get_possible_answer_type`). */
function answerType(acceptable: PyValue[]): PyTypeName | null {
  for (const a of acceptable) if (a !== "") return pyTypeName(a);
  return null;
}

/** The acceptable values of one answer param: a list (data/bfcl.ts checks it on load). */
function acceptableList(v: PyValue): PyValue[] {
  if (Array.isArray(v)) return v;
  throw new PyException("TypeError", `expected a list of acceptable values, got ${pyRepr(v)}`);
}

interface TypeResult extends CheckResult {
  isVariable: boolean;
}

/** `type_checker`: value of the documented type, or of the answer's type ("a variable"). */
function typeChecker(
  param: string,
  value: PyValue,
  acceptable: PyValue[],
  expectedDescription: string,
  expected: PyTypeName | string,
  nested: PyTypeName | string | null,
): TypeResult {
  const pat = answerType(acceptable);
  const isVariable = pat !== null && pat !== expected;
  const t = pyTypeName(value);
  const errors: string[] = [];
  let errorType = "type_error:simple";
  if (t === expected) {
    if (nested === null) return { valid: true, errorType: null, errors: [], isVariable };
    for (const acc of acceptable) {
      let ok = true;
      if (Array.isArray(acc)) {
        for (const v of value as PyValue[]) {
          if (!typeChecker(param, v, acc, `<class '${nested}'>`, nested, null).valid) {
            ok = false;
            break;
          }
        }
      }
      if (ok) return { valid: true, errorType: null, errors: [], isVariable };
    }
    errors.push(
      `Nested type checking failed for parameter ${pyRepr(param)}. Expected outer type ` +
        `${expectedDescription} with inner type <class '${nested}'>. Parameter value: ` +
        `${pyRepr(value)}.`,
    );
    errorType = "type_error:nested";
  }
  if (pat !== null && t === pat) {
    return errors.length === 0
      ? { valid: true, errorType: null, errors, isVariable: true }
      : { valid: false, errorType, errors, isVariable: true };
  }
  errors.push(
    `Incorrect type for parameter ${pyRepr(param)}. Expected type ${expectedDescription}, ` +
      `got ${t}. Parameter value: ${pyRepr(value)}.`,
  );
  return { valid: false, errorType: "type_error:simple", errors, isVariable: false };
}

/** `standardize_string`: drop ` ,./-_*^`, lower-case, then `'` -> `"`. */
export function standardizeString(s: string): string {
  return s.replace(/[ ,./\-_*^]/g, "").toLowerCase().replaceAll("'", '"');
}

function standardizeItem(v: PyValue): PyValue {
  return typeof v === "string" ? standardizeString(v) : v;
}

function stringChecker(param: string, value: string, acceptable: PyValue[]): CheckResult {
  const want = standardizeString(value);
  for (const a of acceptable) {
    if (typeof a === "string" && standardizeString(a) === want) return VALID;
  }
  return fail(
    "value_error:string",
    `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ` +
      `${pyRepr(acceptable)}. Case insensitive.`,
  );
}

function listChecker(param: string, value: PyValue[], acceptable: PyValue[]): CheckResult {
  const got = value.map(standardizeItem);
  // BFCL standardizes every acceptable list before comparing, so a bad one raises first.
  const want = acceptable.map((a) => pyIndexItems(a).map(standardizeItem));
  for (const w of want) if (pyEquals(got, w)) return VALID;
  return fail(
    "value_error:list/tuple",
    `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ` +
      `${pyRepr(acceptable)}.`,
  );
}

function dictChecker(value: PyValue, acceptable: PyValue[]): CheckResult {
  let result = fail("dict_checker:unclear");
  for (const answer of acceptable) {
    if (answer === "") continue;
    result = fail("dict_checker:unclear");
    let ok = true;
    if (!isPyDict(value)) {
      throw new PyException(
        "AttributeError",
        `'${pyTypeName(value)}' object has no attribute 'items'`,
      );
    }
    for (const [key, v] of value) {
      if (!pyIn(key, answer)) {
        result.errors.push(`Unexpected dict key parameter: '${key}'.`);
        result.errorType = "value_error:dict_key";
        ok = false;
        break;
      }
      const want = pyIndexItems(item(answer, key)).map(standardizeItem);
      if (!pyIn(standardizeItem(v), want)) {
        result.errors.push(
          `Invalid value for parameter ${pyRepr(key)}: ${pyRepr(v)}. Expected one of ` +
            `${pyRepr(want)}.`,
        );
        result.errorType = "value_error:dict_value";
        ok = false;
        break;
      }
    }
    if (!isPyDict(answer)) {
      throw new PyException(
        "AttributeError",
        `'${pyTypeName(answer)}' object has no attribute 'items'`,
      );
    }
    for (const [key, v] of answer) {
      if (!value.has(key) && !pyIn("", v)) {
        result.errors.push(`Missing dict key parameter: '${key}'.`);
        result.errorType = "value_error:dict_key";
        ok = false;
        break;
      }
    }
    if (ok) return VALID;
  }
  return result;
}

function listDictChecker(value: PyValue[], acceptable: PyValue[]): CheckResult {
  let result = fail("list_dict_checker:unclear");
  for (const answer of acceptable) {
    let ok = true;
    if (value.length !== pyLen(answer)) {
      result = fail("value_error:list_dict_count", "Wrong number of dictionaries in the list.");
      continue;
    }
    const items = pyIndexItems(answer);
    for (let i = 0; i < value.length; i++) {
      result = dictChecker(value[i], [items[i]]);
      if (!result.valid) {
        ok = false;
        break;
      }
    }
    if (ok) return VALID;
  }
  return result;
}

/** `float(value)` of a Python int. */
function intToFloat(v: bigint): number {
  const f = Number(v);
  if (!Number.isFinite(f)) {
    throw new PyException("OverflowError", "int too large to convert to float");
  }
  return f;
}

/**
 * `simple_function_checker`: one decoded call against one answer `{name: {param: [acceptable
 * values]}}` and the function's doc.
 */
export function checkCall(
  doc: PyValue,
  call: DecodedCall,
  answer: PyDict,
  language: Language,
): CheckResult {
  const expected = [...answer.values()][0];
  const funcName = item(doc, "name");
  const props = item(item(doc, "parameters"), "properties");
  const required = item(item(doc, "parameters"), "required");

  // `func_name not in model_output`: a dict lookup, so a str name matches only that str.
  const found = typeof funcName === "string"
    ? call.name === funcName
    : pyEquals(call.name, funcName);
  if (!found) {
    return fail(
      "simple_function_checker:wrong_func_name",
      `Function name ${pyRepr(funcName)} not found in model output.`,
    );
  }
  const args = call.args;
  for (const p of pyIndexItems(required)) {
    if (!pyIn(p, args)) {
      return fail(
        "simple_function_checker:missing_required",
        `Missing required parameter: ${pyRepr(p)}.`,
      );
    }
  }
  for (const [param, raw] of args) {
    if (!pyIn(param, props) || !pyIn(param, expected)) {
      return fail(
        "simple_function_checker:unexpected_param",
        `Unexpected parameter: ${pyRepr(param)}.`,
      );
    }
    const details = item(props, param);
    const description = item(details, "type");
    let value = raw;
    let expectedType: string;
    let nested: string | null = null;
    if (language === "python") {
      expectedType = lookup(PYTHON_TYPES, description);
      if (typeof description === "string" && PYTHON_NESTED.has(description)) {
        nested = lookup(PYTHON_TYPES, item(item(details, "items"), "type"));
      }
    } else {
      const table = language === "java" ? JAVA_TYPES : JS_TYPES;
      expectedType = lookup(table, description);
      const desc = description as string;
      if (typeof value !== "string") {
        return fail(
          language === "java" ? "type_error:java" : "type_error:js",
          `Incorrect type for parameter ${pyRepr(param)}. Expected type String, got ` +
            `${pyTypeName(value)}. Parameter value: ${pyRepr(value)}.`,
        );
      }
      const convert = language === "java" ? javaConvert : jsConvert;
      if (NESTED_CONVERSION.has(desc)) {
        const nestedName = item(item(details, "items"), "type");
        nested = lookup(table, nestedName);
        value = convert(value, desc, nestedName as string);
      } else {
        value = convert(value, desc);
      }
    }
    if (language === "python" && description === "float" && typeof value === "bigint") {
      value = intToFloat(value);
    }
    const acceptable = acceptableList(item(expected, param));
    const typed = typeChecker(
      param,
      value,
      acceptable,
      pyStr(description),
      expectedType,
      nested,
    );
    if (!typed.valid) return typed;
    if (!typed.isVariable) {
      if (expectedType === "dict") {
        const r = dictChecker(value, acceptable);
        if (!r.valid) return r;
        continue;
      }
      if (expectedType === "list" && nested === "dict") {
        const r = listDictChecker(value as PyValue[], acceptable);
        if (!r.valid) return r;
        continue;
      }
      if (expectedType === "str") {
        const r = stringChecker(param, value as string, acceptable);
        if (!r.valid) return r;
        continue;
      }
      if (expectedType === "list") {
        const r = listChecker(param, value as PyValue[], acceptable);
        if (!r.valid) return r;
        continue;
      }
    }
    if (!pyIn(value, acceptable)) {
      return fail(
        "value_error:others",
        `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ` +
          `${pyRepr(acceptable)}.`,
      );
    }
  }
  for (const [param, acc] of expected as PyDict) {
    if (!args.has(param) && !pyIn("", acc)) {
      return fail(
        "simple_function_checker:missing_optional",
        `Optional parameter ${pyRepr(param)} not provided and not marked as optional.`,
      );
    }
  }
  return VALID;
}

/** `find_description`: the doc whose name equals `name`, or null. */
function findDoc(docs: PyValue[], name: string): PyValue {
  for (const d of docs) if (pyEquals(item(d, "name"), name)) return d;
  return null;
}

/** The checker path a category takes, by BFCL's substring rules. */
export type CheckerKind = "simple" | "multiple" | "parallel";

export function checkerKind(category: string): CheckerKind {
  if (category.includes("parallel")) return "parallel";
  if (category.includes("multiple")) return "multiple";
  return "simple";
}

/** `ast_checker`: decoded calls against an entry's docs and ground truth. */
export function astCheck(
  docs: PyValue[],
  calls: DecodedCall[],
  answers: PyDict[],
  language: Language,
  kind: CheckerKind,
): CheckResult {
  if (kind === "parallel") return parallelCheck(docs, calls, answers, language);
  if (kind === "multiple") {
    if (calls.length !== answers.length) {
      return fail("multiple_function_checker:wrong_count", "Wrong number of functions.");
    }
    const name = [...answers[0].keys()][0];
    return checkCall(findDoc(docs, name), calls[0], answers[0], language);
  }
  if (calls.length !== 1) {
    return fail("simple_function_checker:wrong_count", "Wrong number of functions.");
  }
  return checkCall(docs[0] ?? throwIndex(), calls[0], answers[0], language);
}

function throwIndex(): never {
  throw new PyException("IndexError", "list index out of range");
}

function parallelCheck(
  docs: PyValue[],
  calls: DecodedCall[],
  answers: PyDict[],
  language: Language,
): CheckResult {
  if (calls.length !== answers.length) {
    return fail("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.");
  }
  const matched = new Set<number>();
  for (let i = 0; i < answers.length; i++) {
    const doc = findDoc(docs, [...answers[i].keys()][0]);
    const subErrors: string[] = [];
    let found = false;
    for (let j = 0; j < calls.length; j++) {
      if (matched.has(j)) continue;
      const r = checkCall(doc, calls[j], answers[i], language);
      if (r.valid) {
        matched.add(j);
        found = true;
        break;
      }
      subErrors.push(`Model Result Index ${j}: ${r.errorType}: ${r.errors.join(" ")}`);
    }
    if (!found) {
      const considered = calls.map((_, j) => j).filter((j) => !matched.has(j));
      return fail(
        "parallel_function_checker_no_order:cannot_find_match",
        `Could not find a matching function among index [${considered.join(", ")}] of model ` +
          `output for index ${i} of possible answers.`,
        ...subErrors,
      );
    }
  }
  return VALID;
}
