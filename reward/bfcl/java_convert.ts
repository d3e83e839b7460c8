/**
 * BFCL's Java value parser (`type_convertor/java_type_converter.py`): the model writes every
 * Java argument as a string; this turns it into a Python value by the parameter's Java type
 * with the same regexes (`"5L"`, `"2.5f"`, `"true"`, `new int[]{..}`,
 * `new ArrayList<>(Arrays.asList(..))`, `new HashMap<..>() {{ put("k", v); }}`). A string
 * that does not fit stays the string. Set, Hashtable, Queue and Stack raise, as there.
 */
import type { PyDict, PyValue } from "../../lib/py/json.ts";
import {
  pyDropEnds,
  pyDropLast,
  PyException,
  pyExec,
  pyFindAll,
  pyFloat,
  pyInt,
  pyRegex,
} from "./_py.ts";
import { pyStrip } from "../../lib/py/text.ts";

/** `JAVA_TYPE_CONVERSION`: Java type name -> the Python type the checker expects. */
export const JAVA_TYPES: Record<string, string> = {
  byte: "int",
  short: "int",
  integer: "int",
  float: "float",
  double: "float",
  long: "int",
  boolean: "bool",
  char: "str",
  Array: "list",
  ArrayList: "list",
  Set: "set",
  HashMap: "dict",
  Hashtable: "dict",
  Queue: "list",
  Stack: "list",
  String: "str",
  any: "str",
};

const INTEGER = pyRegex(String.raw`^-?\d+$`, { mode: "match" });
const FLOAT = pyRegex(String.raw`^-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$`, { mode: "match" });
const DOUBLE = pyRegex(String.raw`^-?\d+(\.\d+)?([eE][+-]?\d+)?$`, { mode: "match" });
const LONG = pyRegex(String.raw`^-?\d+[lL]$`, { mode: "match" });
const F_SUFFIX = pyRegex(String.raw`[fF]$`, { mode: "findall" });
const L_SUFFIX = pyRegex(String.raw`[lL]$`, { mode: "findall" });

/** `java_type_converter(value, expected_type, nested_type)`. */
export function javaConvert(value: string, type: string, nested?: string): PyValue {
  if (!Object.hasOwn(JAVA_TYPES, type)) {
    throw new PyException("ValueError", `Unsupported type: ${type}`);
  }
  switch (type) {
    case "byte":
    case "short":
    case "integer":
      return pyExec(INTEGER, value) ? pyInt(value) : value;
    case "float":
      return pyExec(FLOAT, value) ? pyFloat(value.replace(F_SUFFIX, "")) : value;
    case "double":
      return pyExec(DOUBLE, value) ? pyFloat(value) : value;
    case "long":
      return pyExec(LONG, value) ? pyInt(value.replace(L_SUFFIX, "")) : value;
    case "boolean":
      return value === "true" ? true : value === "false" ? false : value;
    case "char":
      // BFCL's pattern `^\'.$\'` can never match (`$` is followed by a quote), so a char
      // argument always stays the string as written.
      return value;
    case "Array":
      return parseArray(value, nested);
    case "ArrayList":
      return parseArrayList(value, nested);
    case "HashMap":
      return parseHashMap(value);
    case "Set":
    case "Hashtable":
      throw new PyException("NotImplementedError", "Set conversion is not implemented");
    case "Queue":
    case "Stack":
      throw new PyException("NotImplementedError", `${type} conversion is not implemented`);
    default: // String, any
      return value;
  }
}

const AS_LIST = pyRegex(String.raw`new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)`);
const ADD_BLOCK = pyRegex(String.raw`new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}`, {
  dotAll: true,
});
const ADD = pyRegex(String.raw`add\((.+?)\)`, { mode: "findall" });
const EMPTY_LIST = pyRegex(String.raw`new\s+ArrayList<\w*>\(\)`);

function listElement(text: string, nested: string | undefined): PyValue {
  if (nested === "char" || nested === "String") return pyDropEnds(text);
  return nested ? javaConvert(text, nested) : parseJavaValue(text);
}

function parseArrayList(input: string, nested: string | undefined): PyValue {
  const asList = pyExec(AS_LIST, input);
  if (asList) return asList[1].split(",").map((e) => listElement(pyStrip(e), nested));
  const adds = pyExec(ADD_BLOCK, input);
  if (adds) return pyFindAll(ADD, adds[1]).map((m) => listElement(pyStrip(m[1]), nested));
  if (pyExec(EMPTY_LIST, input)) return [];
  return input;
}

const ARRAY = pyRegex(String.raw`new\s+\w+\[\]\s*\{(.*?)\}`);

function parseArray(input: string, nested: string | undefined): PyValue {
  const m = pyExec(ARRAY, input);
  if (!m) return input;
  const out: PyValue[] = [];
  for (const part of m[1].split(",")) {
    const x = pyStrip(part);
    if (x === "") continue;
    out.push(nested ? javaConvert(x, nested) : parseJavaValue(x));
  }
  return out;
}

const HASHMAP = pyRegex(String.raw`new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}`, {
  dotAll: true,
});
const PUT = pyRegex(String.raw`put\(\"(.*?)\",\s*(.*?)\)`, { mode: "findall" });
const EMPTY_MAP = pyRegex(String.raw`new\s+HashMap<.*?>\s*\(\)`);

function parseHashMap(input: string): PyValue {
  const m = pyExec(HASHMAP, input);
  if (m) {
    const out: PyDict = new Map();
    if (pyStrip(m[1]) !== "") {
      for (const put of pyFindAll(PUT, m[1])) out.set(put[1], parseJavaValue(pyStrip(put[2])));
    }
    return out;
  }
  if (pyExec(EMPTY_MAP, input)) return new Map();
  return input;
}

/** `parse_java_value`: a literal without a known type. */
export function parseJavaValue(s: string): PyValue {
  if (s === "true") return true;
  if (s === "false") return false;
  if (s.startsWith('"') && s.endsWith('"')) return pyDropEnds(s);
  if (pyExec(LONG, s)) return pyInt(pyDropLast(s));
  if (pyExec(FLOAT, s)) return pyFloat(s.replace(F_SUFFIX, ""));
  try {
    return pyInt(s);
  } catch (e) {
    if (!(e instanceof PyException)) throw e;
  }
  try {
    return pyFloat(s);
  } catch (e) {
    if (!(e instanceof PyException)) throw e;
  }
  return s;
}
