/**
 * Python-compatible JSON values: `json.loads`, `json.dumps`, `str()` and `repr()` as CPython
 * 3.11 does them, so that star reads and prints values exactly as the reference programs do.
 * Model: int -> bigint, float -> number, bool -> boolean, None -> null, str -> string,
 * list -> array, dict -> Map (insertion order; a repeated key keeps its first position and its
 * last value). Only string keys exist, since JSON objects have no others.
 */
import { NON_PRINTABLE_RANGES } from "./unicode_tables.ts";

export type PyValue = null | boolean | bigint | number | string | PyValue[] | PyDict;
export type PyDict = Map<string, PyValue>;

/** A `json.loads` failure; the message reads like CPython's, with line, column and char. */
export class PyJsonError extends SyntaxError {
  override name = "PyJsonError";
  readonly position: number;
  constructor(reason: string, text: string, position: number) {
    super(`${reason}: ${whereIn(text, position)}`);
    this.position = position;
  }
}

function whereIn(text: string, pos: number): string {
  const line = text.slice(0, pos).split("\n").length;
  const col = pos - text.lastIndexOf("\n", pos - 1);
  return `line ${line} column ${col} (char ${pos})`;
}

export function isPyDict(v: PyValue): v is PyDict {
  return v instanceof Map;
}

/** CPython refuses to convert integer strings longer than this (sys.get_int_max_str_digits()). */
const INT_MAX_STR_DIGITS = 4300;
/**
 * Nesting deeper than this is refused. CPython raises RecursionError a little below its limit
 * of 1000 (994 levels from the top of a script; the exact figure depends on the caller's depth).
 */
const MAX_DEPTH = 990;

/** `json.loads(text)` with its default (strict) settings. */
export function parsePyJson(text: string): PyValue {
  return parseRange(text, 0, text.length, false)!;
}

/**
 * `json.loads(text.slice(start, end))`, read in place (no copy of the text), or undefined
 * instead of an error when `quiet` (no error object is built: callers that only need to know
 * whether the text parses save that cost).
 */
export function parseRange(
  text: string,
  start: number,
  end: number,
  quiet: true,
): PyValue | undefined;
export function parseRange(text: string, start: number, end: number, quiet: false): PyValue;
export function parseRange(
  text: string,
  start: number,
  end: number,
  quiet: boolean,
): PyValue | undefined {
  const p = new Parser(text, start, end, quiet);
  try {
    if (text.charCodeAt(start) === 0xfeff && start < end) {
      p.fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", start);
    }
    const value = p.value(p.ws(start), 0);
    const after = p.ws(p.pos);
    if (after !== end) p.fail("Extra data", after);
    return value;
  } catch (e) {
    if (e === QUIET_FAILURE) return undefined;
    throw e;
  }
}

/** What a quiet parser throws: a constant, so that failing costs no stack trace. */
const QUIET_FAILURE = Object.freeze({ quiet: true });

/**
 * A parser over s[start, end). Every read goes through `at`, which gives NaN from `end` on, as
 * charCodeAt does past the end of a string, so the scanners stop there as they would on the
 * slice alone.
 */
class Parser {
  pos = 0;
  constructor(
    readonly s: string,
    readonly start: number,
    readonly end: number,
    readonly quiet: boolean,
  ) {}

  at(i: number): number {
    return i < this.end ? this.s.charCodeAt(i) : NaN;
  }

  /** Index of the first character at or after i that is not JSON whitespace (space, \t, \n, \r). */
  ws(i: number): number {
    for (;;) {
      const c = this.at(i);
      if (c > 0x20) return i;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return i;
    }
  }

  /** Throws the error json.loads gives for the text alone (positions relative to its start). */
  fail(reason: string, at: number): never {
    if (this.quiet) throw QUIET_FAILURE;
    throw new PyJsonError(reason, this.s.slice(this.start, this.end), at - this.start);
  }

  /** Parses the value starting exactly at i; leaves `pos` just after it. */
  value(i: number, depth: number): PyValue {
    const c = this.at(i);
    switch (c) {
      case 0x22: // "
        return this.string(i + 1);
      case 0x7b: // {
        return this.object(i + 1, depth + 1);
      case 0x5b: // [
        return this.array(i + 1, depth + 1);
      case 0x6e: // n
        if (this.has("null", i)) return this.lit(i + 4, null);
        break;
      case 0x74: // t
        if (this.has("true", i)) return this.lit(i + 4, true);
        break;
      case 0x66: // f
        if (this.has("false", i)) return this.lit(i + 5, false);
        break;
      case 0x4e: // N
        if (this.has("NaN", i)) return this.lit(i + 3, NaN);
        break;
      case 0x49: // I
        if (this.has("Infinity", i)) return this.lit(i + 8, Infinity);
        break;
      case 0x2d: // -
        if (this.has("-Infinity", i)) return this.lit(i + 9, -Infinity);
        break;
    }
    return this.number(i);
  }

  /** The literal `word` starts at i and ends within the text. */
  has(word: string, i: number): boolean {
    return i + word.length <= this.end && this.s.startsWith(word, i);
  }

  lit<T extends PyValue>(end: number, v: T): T {
    this.pos = end;
    return v;
  }

  /** CPython's number scanner: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, ASCII digits. */
  number(start: number): PyValue {
    const s = this.s;
    let i = start;
    if (this.at(i) === 0x2d) i++;
    const c = this.at(i);
    let int = 0; // the integer part's value while it is exact (up to 15 digits)
    if (c >= 0x31 && c <= 0x39) {
      int = c - 0x30;
      i++;
      for (let d = this.at(i); isDigit(d); d = this.at(++i)) int = int * 10 + d - 0x30;
    } else if (c === 0x30) i++;
    else this.fail("Expecting value", start);
    let isFloat = false;
    if (this.at(i) === 0x2e && isDigit(this.at(i + 1))) {
      isFloat = true;
      i += 2;
      while (isDigit(this.at(i))) i++;
    }
    const e = this.at(i);
    if (e === 0x65 || e === 0x45) {
      let j = i + 1;
      const sign = this.at(j);
      if (sign === 0x2b || sign === 0x2d) j++;
      if (isDigit(this.at(j))) {
        while (isDigit(this.at(j))) j++;
        isFloat = true;
        i = j;
      }
    }
    this.pos = i;
    const negative = this.at(start) === 0x2d;
    const digits = negative ? i - start - 1 : i - start;
    if (!isFloat && digits <= 15) return BigInt(negative ? -int : int);
    const lexeme = s.slice(start, i);
    if (isFloat) return Number(lexeme);
    if (digits > INT_MAX_STR_DIGITS) {
      this.fail(
        `Exceeds the limit (${INT_MAX_STR_DIGITS} digits) for integer string conversion: ` +
          `value has ${digits} digits`,
        start,
      );
    }
    return BigInt(lexeme);
  }

  /** A string body starting just after its opening quote. */
  string(start: number): string {
    const s = this.s;
    let out = "";
    let i = start;
    let chunk = i;
    for (;;) {
      const c = this.at(i);
      // Most characters are plain: neither the quote, a backslash, a control nor the end (NaN).
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
        i++;
        continue;
      }
      if (c === 0x22) {
        out += s.slice(chunk, i);
        this.pos = i + 1;
        return out;
      }
      if (c === 0x5c) {
        out += s.slice(chunk, i);
        const esc = this.at(i + 1);
        switch (esc) {
          case 0x22:
            out += '"';
            break;
          case 0x5c:
            out += "\\";
            break;
          case 0x2f:
            out += "/";
            break;
          case 0x62:
            out += "\b";
            break;
          case 0x66:
            out += "\f";
            break;
          case 0x6e:
            out += "\n";
            break;
          case 0x72:
            out += "\r";
            break;
          case 0x74:
            out += "\t";
            break;
          case 0x75: { // u: four hex digits; surrogate halves pass through as UTF-16 units
            const hex = s.slice(i + 2, Math.min(i + 6, this.end));
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("Invalid \\uXXXX escape", i + 1);
            out += String.fromCharCode(parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            if (Number.isNaN(esc)) this.fail("Unterminated string starting at", start - 1);
            this.fail("Invalid \\escape", i);
        }
        i += 2;
        chunk = i;
        continue;
      }
      if (c < 0x20) this.fail("Invalid control character at", i);
      this.fail("Unterminated string starting at", start - 1);
    }
  }

  object(start: number, depth: number): PyDict {
    if (depth > MAX_DEPTH) this.fail("Too deeply nested", start - 1);
    const out: PyDict = new Map();
    let i = this.ws(start);
    if (this.at(i) === 0x7d) {
      this.pos = i + 1;
      return out;
    }
    for (;;) {
      if (this.at(i) !== 0x22) {
        this.fail("Expecting property name enclosed in double quotes", i);
      }
      const key = this.string(i + 1);
      i = this.ws(this.pos);
      if (this.at(i) !== 0x3a) this.fail("Expecting ':' delimiter", i);
      i = this.ws(i + 1);
      out.set(key, this.value(i, depth));
      i = this.ws(this.pos);
      const c = this.at(i);
      if (c === 0x7d) {
        this.pos = i + 1;
        return out;
      }
      if (c !== 0x2c) this.fail("Expecting ',' delimiter", i);
      i = this.ws(i + 1);
    }
  }

  array(start: number, depth: number): PyValue[] {
    if (depth > MAX_DEPTH) this.fail("Too deeply nested", start - 1);
    const out: PyValue[] = [];
    let i = this.ws(start);
    if (this.at(i) === 0x5d) {
      this.pos = i + 1;
      return out;
    }
    for (;;) {
      out.push(this.value(i, depth));
      i = this.ws(this.pos);
      const c = this.at(i);
      if (c === 0x5d) {
        this.pos = i + 1;
        return out;
      }
      if (c !== 0x2c) this.fail("Expecting ',' delimiter", i);
      i = this.ws(i + 1);
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

// ---------------------------------------------------------------------------------------------
// Printing

/**
 * `repr(x)` of a Python float: the shortest digits that round-trip, fixed notation when the
 * decimal exponent is in [-4, 16), else `d.ddde+XX` with at least two exponent digits.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // toExponential() with no argument gives the shortest round-trip digits, as repr() does.
  const [mant, expText] = Math.abs(x).toExponential().split("e");
  const digits = mant.replace(".", "");
  const exp = Number(expText); // x = d.ddd * 10^exp
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** Python `str(v)`: strings as themselves, everything else as repr. */
export function pyStr(v: PyValue): string {
  return typeof v === "string" ? v : pyRepr(v);
}

/** Python `repr(v)`. */
export function pyRepr(v: PyValue): string {
  if (v === null) return "None";
  switch (typeof v) {
    case "boolean":
      return v ? "True" : "False";
    case "bigint":
      return v.toString();
    case "number":
      return pyFloatRepr(v);
    case "string":
      return pyStrRepr(v);
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  const parts: string[] = [];
  for (const [k, x] of v) parts.push(`${pyStrRepr(k)}: ${pyRepr(x)}`);
  return `{${parts.join(", ")}}`;
}

/**
 * `repr(str)`: single quotes unless the text holds ' and no "; escapes \\, the quote, \t \n
 * \r, other ASCII controls as \xHH, and non-printable code points as \xHH, \uHHHH or \UHHHHHHHH.
 */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x7f && cp >= 0x20) {
      if (ch === quote || ch === "\\") out += "\\" + ch;
      else out += ch;
    } else if (cp === 0x09) out += "\\t";
    else if (cp === 0x0a) out += "\\n";
    else if (cp === 0x0d) out += "\\r";
    else if (cp < 0x80 || !isPrintable(cp)) {
      out += cp <= 0xff
        ? "\\x" + hex(cp, 2)
        : cp <= 0xffff
        ? "\\u" + hex(cp, 4)
        : "\\U" + hex(cp, 8);
    } else out += ch;
  }
  return out + quote;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** Python's str.isprintable() for one code point of 0x80 and above (CPython's own table). */
function isPrintable(cp: number): boolean {
  const t = NON_PRINTABLE_RANGES;
  let lo = 0, hi = t.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t[2 * mid + 1] < cp) lo = mid + 1;
    else hi = mid;
  }
  return !(lo < t.length / 2 && t[2 * lo] <= cp);
}

export interface DumpsOptions {
  /** Escape every non-ASCII character as \uXXXX (default true, like json.dumps). */
  ensureAscii?: boolean;
  /** Pretty-print with this many spaces per level (separators become "," and ": "). */
  indent?: number | null;
}

/** `json.dumps(v, ensure_ascii=..., indent=...)` with the default separators. */
export function dumpsPyJson(v: PyValue, opts: DumpsOptions = {}): string {
  const ascii = opts.ensureAscii ?? true;
  const indent = opts.indent ?? null;
  const enc = (x: PyValue, level: number): string => {
    if (x === null) return "null";
    switch (typeof x) {
      case "boolean":
        return x ? "true" : "false";
      case "bigint":
        return x.toString();
      case "number":
        return Number.isNaN(x)
          ? "NaN"
          : x === Infinity
          ? "Infinity"
          : x === -Infinity
          ? "-Infinity"
          : pyFloatRepr(x);
      case "string":
        return jsonString(x, ascii);
    }
    const items: string[] = [];
    if (Array.isArray(x)) {
      if (x.length === 0) return "[]";
      for (const y of x) items.push(enc(y, level + 1));
      return wrap("[", items, "]", level);
    }
    if (x.size === 0) return "{}";
    for (const [k, y] of x) items.push(`${jsonString(k, ascii)}: ${enc(y, level + 1)}`);
    return wrap("{", items, "}", level);
  };
  const wrap = (open: string, items: string[], close: string, level: number): string => {
    if (indent === null) return open + items.join(", ") + close;
    const inner = "\n" + " ".repeat(indent * (level + 1));
    return open + inner + items.join("," + inner) + "\n" + " ".repeat(indent * level) + close;
  };
  return enc(v, 0);
}

const JSON_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};
// deno-lint-ignore no-control-regex
const ESCAPE = /["\\\x00-\x1f]/g;
// deno-lint-ignore no-control-regex
const ESCAPE_ASCII = /["\\\x00-\x1f\x7f-\uffff]/g;

/** A JSON string literal as json.dumps writes it (astral characters as surrogate pairs). */
function jsonString(s: string, ascii: boolean): string {
  const re = ascii ? ESCAPE_ASCII : ESCAPE;
  return '"' + s.replace(re, (c) => JSON_ESCAPES[c] ?? "\\u" + hex(c.charCodeAt(0), 4)) + '"';
}
