/**
 * BFCL's JavaScript value parser (`type_convertor/js_type_converter.py`): every argument is a
 * string, turned into a Python value by the parameter's JS type with the same regexes
 * (`"5n"`, `"true"`, `'text'`, `[..]`, `new Array(..)`, 2-D arrays, `{k: v}`). A string that
 * does not fit stays the string; a failure inside an array or object parse gives back the
 * stripped text, as there.
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
import { pyStrip, pyStripChars } from "../../lib/py/text.ts";

/** `JS_TYPE_CONVERSION`: JS type name -> the Python type the checker expects. */
export const JS_TYPES: Record<string, string> = {
  String: "str",
  integer: "int",
  float: "float",
  Bigint: "int",
  Boolean: "bool",
  dict: "dict",
  array: "list",
  any: "str",
};

const INTEGER = pyRegex(String.raw`^-?\d+$`, { mode: "match" });
const FLOAT = pyRegex(String.raw`^-?\d+(\.\d+)?$`, { mode: "match" });
const BIGINT = pyRegex(String.raw`^-?\d+n$`, { mode: "match" });

function quoted(s: string): boolean {
  return (s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'"));
}

/** `js_type_converter(value, expected_type, nested_type)`. */
export function jsConvert(value: string, type: string, nested?: string): PyValue {
  if (!Object.hasOwn(JS_TYPES, type)) {
    throw new PyException("ValueError", `Unsupported type: ${type}`);
  }
  switch (type) {
    case "String":
      return quoted(value) ? pyDropEnds(value) : value;
    case "integer":
      return pyExec(INTEGER, value) ? pyInt(value) : value;
    case "float":
      return pyExec(FLOAT, value) ? pyFloat(value) : value;
    case "Bigint":
      return pyExec(BIGINT, value) ? pyInt(pyDropLast(value)) : value;
    case "Boolean":
      return value === "true" ? true : value === "false" ? false : value;
    case "dict":
      return parseDict(pyStrip(value));
    case "array":
      return parseArray(pyStrip(value), nested);
    default: // any
      return value;
  }
}

// The `\b` in front of `new` in BFCL's patterns always holds: re.match anchors them at 0.
const ARRAY_2D = pyRegex(
  String.raw`(?:\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]|new\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\))`,
  { mode: "match" },
);
const ARRAY_1D = pyRegex(String.raw`(?:\[(.*?)\]|new\s+Array\((.*?)\))`, { mode: "match" });
const INNER = pyRegex(String.raw`\[(.*?)\]`, { mode: "findall" });

/** `parse_js_collection(code, "array", nested_type)` of the stripped code. */
function parseArray(code: string, nested: string | undefined): PyValue {
  try {
    const m2 = pyExec(ARRAY_2D, code);
    if (m2) {
      return pyFindAll(INNER, m2[0]).map((m, idx) => {
        let inner = pyStrip(m[1]);
        if (idx === 0 && inner.startsWith("[")) inner = inner.slice(1);
        return inner.split(",").map((e) => parseJsValue(pyStrip(e)));
      });
    }
    const m = pyExec(ARRAY_1D, code);
    if (!m) return code;
    const body = pyStrip(m[1] ?? m[2] ?? "");
    const parts = body === "" ? [] : body.split(",");
    if (!nested) return parts.map((e) => parseJsValue(pyStrip(e)));
    return parts.map((e) => {
      const x = pyStrip(e);
      return x.startsWith("'") || x.startsWith('"')
        ? jsConvert(x, nested, "String")
        : jsConvert(x, nested);
    });
  } catch (e) {
    if (e instanceof PyException) return code;
    throw e;
  }
}

const DICT = pyRegex(String.raw`\{(.*?)\}`, { mode: "match" });
const PAIR = pyRegex(String.raw`([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)`, { mode: "findall" });

/** `parse_js_collection(code, "dict")` of the stripped code. */
function parseDict(code: string): PyValue {
  if (code === "{}") return new Map();
  const m = pyExec(DICT, code);
  if (!m) return code;
  const out: PyDict = new Map();
  for (const [, rawKey, rawValue] of pyFindAll(PAIR, m[1])) {
    const key = pyStripChars(pyStrip(rawKey), `'"`, true, true);
    const value = pyStrip(rawValue);
    if (value.startsWith("[") && value.endsWith("]")) out.set(key, parseArray(value, undefined));
    else if (value.startsWith("{") && value.endsWith("}")) out.set(key, parseDict(value));
    else out.set(key, parseJsValue(pyStripChars(value, `'"`, true, true)));
  }
  return out;
}

/** `parse_js_value`: a literal without a known type. */
export function parseJsValue(text: string): PyValue {
  const s = pyStrip(text);
  if (s === "true") return true;
  if (s === "false") return false;
  if (quoted(s)) return pyDropEnds(s);
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
