/**
 * Python semantics that BFCL's checker relies on, for values in the py_json model (int ->
 * bigint, float -> number, dict -> Map): `type(v).__name__`, `==` and `in` (deep, with
 * `1 == 1.0 == True`), `len()`/indexing of str/list/dict, `int(str)` and `float(str)` as CPython
 * parses them, code-point slicing, and the regex classes `\d \w \s .` and
 * `$` of Python's `re` for str patterns written as JavaScript (u-flag) regex source.
 * A Python exception that BFCL's code would raise is a PyException (the caller decides).
 */
import { isPyDict, type PyDict, pyStrRepr as pyReprStr, type PyValue } from "../../lib/py/json.ts";
import { pyNumbersEqual } from "../../lib/py/values.ts";
import { isPySpace } from "../../lib/py/text.ts";

/** An exception CPython raises in BFCL's code on this input: `TypeError: unhashable ...`. */
export class PyException extends Error {
  override name = "PyException";
  constructor(readonly pyType: string, readonly pyMessage: string) {
    super(`${pyType}: ${pyMessage}`);
  }
}

export type PyTypeName = "str" | "int" | "float" | "bool" | "list" | "dict" | "NoneType";

/** `type(v).__name__`. */
export function pyTypeName(v: PyValue): PyTypeName {
  if (v === null) return "NoneType";
  switch (typeof v) {
    case "string":
      return "str";
    case "bigint":
      return "int";
    case "number":
      return "float";
    case "boolean":
      return "bool";
  }
  return Array.isArray(v) ? "list" : "dict";
}

/** Python `a == b`. Lists compare item by item, dicts by key set and values; NaN equals nothing. */
export function pyEquals(a: PyValue, b: PyValue): boolean {
  if (a === b) return typeof a !== "number" || !Number.isNaN(a);
  if (a === null || b === null) return false;
  const ta = typeof a, tb = typeof b;
  if (ta === "string" || tb === "string") return false;
  if (ta !== "object" && tb !== "object") {
    return pyNumbersEqual(a as bigint | number | boolean, b as bigint | number | boolean);
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!pyEquals(a[i], b[i])) return false;
    return true;
  }
  if (isPyDict(a as PyValue)) {
    if (!isPyDict(b as PyValue)) return false;
    const x = a as PyDict, y = b as PyDict;
    if (x.size !== y.size) return false;
    for (const [k, v] of x) {
      if (!y.has(k) || !pyEquals(v, y.get(k)!)) return false;
    }
    return true;
  }
  return false;
}

/** `item in container` for a list, dict (keys), or str (substring); anything else raises. */
export function pyIn(item: PyValue, container: PyValue): boolean {
  if (Array.isArray(container)) {
    for (const x of container) if (pyEquals(item, x)) return true;
    return false;
  }
  if (typeof container === "string") {
    if (typeof item !== "string") {
      throw new PyException(
        "TypeError",
        `'in <string>' requires string as left operand, not ${pyTypeName(item)}`,
      );
    }
    return container.includes(item);
  }
  if (isPyDict(container as PyValue)) {
    if (Array.isArray(item) || isPyDict(item)) {
      throw new PyException("TypeError", `unhashable type: '${pyTypeName(item)}'`);
    }
    return typeof item === "string" && (container as PyDict).has(item);
  }
  throw new PyException(
    "TypeError",
    `argument of type '${pyTypeName(container)}' is not iterable`,
  );
}

/** The items `v[0], ..., v[len(v) - 1]` as Python indexes them (str: code points). */
export function pyIndexItems(v: PyValue): PyValue[] {
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return Array.from(v);
  if (isPyDict(v)) {
    if (v.size === 0) return [];
    throw new PyException("KeyError", "0");
  }
  throw new PyException("TypeError", `object of type '${pyTypeName(v)}' has no len()`);
}

/** `len(v)`. */
export function pyLen(v: PyValue): number {
  if (Array.isArray(v)) return v.length;
  if (typeof v === "string") return codePointLength(v);
  if (isPyDict(v)) return v.size;
  throw new PyException("TypeError", `object of type '${pyTypeName(v)}' has no len()`);
}

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

/** `s[1:-1]`, by code points. */
export function pyDropEnds(s: string): string {
  const cps = Array.from(s);
  return cps.slice(1, -1).join("");
}

/** `s[:-1]`, by code points. */
export function pyDropLast(s: string): string {
  const cps = Array.from(s);
  return cps.slice(0, -1).join("");
}

/** Python's `\s` (str.isspace) as a regex class body. */
const SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/**
 * Translates a Python `re` pattern (str, default flags, optionally DOTALL) that uses only
 * `\d \w \s . $` and plain syntax into JavaScript source for a `u`-flag RegExp.
 * Python `\d` is category Nd; `\w` is alphanumeric (L*, N*) or `_`; `.` is anything but `\n`
 * (anything with DOTALL); `$` matches at the end or before a final `\n`.
 */
export function pyRegex(
  pattern: string,
  flags: { dotAll?: boolean; mode?: "match" | "search" | "findall" } = {},
): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const n = pattern[i + 1];
      i++;
      if (n === "d") out += "\\p{Nd}";
      else if (n === "w") out += inClass ? "\\p{L}\\p{N}_" : "[\\p{L}\\p{N}_]";
      else if (n === "s") out += inClass ? SPACE : `[${SPACE}]`;
      else if ("^$\\.*+?()[]{}|/-".includes(n)) out += "\\" + n;
      else out += n; // an escaped plain character (\" \, \_): the character itself
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      continue;
    }
    if (c === ".") out += flags.dotAll ? "[\\s\\S]" : "[^\\n]";
    else if (c === "$") out += "(?=\\n?$)";
    else out += c;
  }
  const mode = flags.mode ?? "search";
  return new RegExp(out, mode === "match" ? "uy" : mode === "findall" ? "gu" : "u");
}

/** `re.match` / `re.search` with a RegExp from pyRegex (mode "match" is sticky at 0). */
export function pyExec(re: RegExp, s: string): RegExpExecArray | null {
  re.lastIndex = 0;
  return re.exec(s);
}

/** `re.findall` with a "findall" RegExp from pyRegex (patterns that never match empty). */
export function pyFindAll(re: RegExp, s: string): RegExpExecArray[] {
  re.lastIndex = 0;
  return Array.from(s.matchAll(re));
}

/** Decimal digits (category Nd), tested one character at a time. */
const ND = /^\p{Nd}$/u;
/** First code point of each run of ten Nd digits (their values are 0..9 in order). */
let digitZeros: number[] | null = null;

function digitValue(cp: number): number {
  if (digitZeros === null) {
    // Every Nd block is a whole number of runs of ten; found once, only if ever needed.
    digitZeros = [];
    let run = 0;
    for (let c = 0x80; c <= 0x1fbff; c++) {
      if (ND.test(String.fromCodePoint(c))) {
        if (run % 10 === 0) digitZeros.push(c);
        run++;
      } else run = 0;
    }
  }
  let zero = 0;
  for (const z of digitZeros) if (z <= cp) zero = z;
  return cp - zero;
}

/**
 * What CPython does to the text before parsing a number: every non-ASCII whitespace character
 * becomes a space and every non-ASCII decimal digit its ASCII digit; null when another
 * non-ASCII character is present (CPython then fails).
 */
function toAsciiNumberText(s: string): string | null {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return s;
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp <= 0x7f) out += ch;
    else if (isPySpace(cp)) out += " ";
    else if (ND.test(ch)) out += String(digitValue(cp));
    else return null;
  }
  return out;
}

const INT_TEXT = /^[ \t\n\v\f\r]*([+-]?)(\d(?:_?\d)*)[ \t\n\v\f\r]*$/;

/** Python `int(s)` (base 10); throws PyException(ValueError) where CPython does. */
export function pyInt(s: string): bigint {
  const t = toAsciiNumberText(s);
  const m = t === null ? null : INT_TEXT.exec(t);
  if (m === null) {
    throw new PyException("ValueError", `invalid literal for int() with base 10: ${pyReprStr(s)}`);
  }
  const digits = m[2].replaceAll("_", "");
  if (digits.length > 4300) {
    throw new PyException(
      "ValueError",
      `Exceeds the limit (4300 digits) for integer string conversion: value has ${digits.length} digits; use sys.set_int_max_str_digits() to increase the limit`,
    );
  }
  const v = BigInt(digits);
  return m[1] === "-" ? -v : v;
}

const FLOAT_TEXT =
  /^[ \t\n\v\f\r]*([+-]?)(?:(inf|infinity|nan)|((?:\d(?:_?\d)*)?(?:\.(?:\d(?:_?\d)*)?)?)(?:[eE]([+-]?\d(?:_?\d)*))?)[ \t\n\v\f\r]*$/i;

/** Python `float(s)`; throws PyException(ValueError) where CPython does. */
export function pyFloat(s: string): number {
  const t = toAsciiNumberText(s);
  const m = t === null ? null : FLOAT_TEXT.exec(t);
  const fail = () =>
    new PyException("ValueError", `could not convert string to float: ${pyReprStr(s)}`);
  if (m === null) throw fail();
  const sign = m[1] === "-" ? -1 : 1;
  if (m[2] !== undefined) {
    return m[2].toLowerCase() === "nan" ? NaN : sign * Infinity;
  }
  const mant = m[3];
  // A mantissa needs a digit somewhere ("." and "" are not numbers); the exponent needs one.
  if (!/\d/.test(mant)) throw fail();
  const text = mant.replaceAll("_", "") +
    (m[4] !== undefined ? "e" + m[4].replaceAll("_", "") : "");
  return sign * Number(text);
}
