/**
 * STAR's Python-style call list parser (`parse_tools_python` of format_data.py):
 * `[f(a=1, b="x, y"), g.h(c=(1, 2))]` -> `[{name, arguments}]`, values through ast.literal_eval
 * (py_literal.ts) or kept as text. Like STAR it counts only parentheses and quotes, so a list or
 * dict value holding a comma is cut at that comma, pieces without "=" are dropped and a call
 * missing its ")" ends the list. STAR defines it but none of its converters calls it.
 */
import type { PyDict } from "../../lib/py/json.ts";
import { pyStrip } from "../../lib/py/text.ts";
import {
  literalEvalValue,
  LiteralSyntaxError,
  literalToJson,
  type PyLiteral,
} from "./py_literal.ts";

export interface PyCall {
  name: string;
  arguments: PyDict;
}

/** A call list the parser cannot read (STAR raises ValueError: no "(" after a name). */
export class CallSyntaxError extends SyntaxError {
  override name = "CallSyntaxError";
}

const NAME_CHAR = /^[\p{L}\p{N}_.]$/u;

/**
 * Parses `[f(a=1), ...]`; [] when the text is not wrapped in brackets. A value JSON cannot
 * hold is a NotJsonError (the script fails when it writes the calls), unless a later argument
 * of the same name replaced it.
 */
export function parsePythonCalls(text: string): PyCall[] {
  const stripped = pyStrip(text);
  if (!(stripped.startsWith("[") && stripped.endsWith("]"))) return [];
  // Code points, as Python indexes strings.
  const s = Array.from(pyStrip(stripped.slice(1, -1)));
  const raw: { name: string; args: Map<string, PyLiteral | string> }[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && " ,\t\n".includes(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    while (i < s.length && NAME_CHAR.test(s[i])) i++;
    const name = s.slice(start, i).join("");
    while (i < s.length && " \t\n".includes(s[i])) i++;
    if (i >= s.length || s[i] !== "(") {
      throw new CallSyntaxError(`Expected "(" after function name "${name}"`);
    }
    i++;
    let args = "";
    let depth = 1;
    let quote: string | null = null;
    let escaped = false;
    for (; i < s.length; i++) {
      const c = s[i];
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (quote !== null) {
        if (c === quote) quote = null;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === "(") depth++;
      else if (c === ")" && --depth === 0) break;
      args += c;
    }
    if (i >= s.length) break;
    i++;
    raw.push({ name, args: rawArguments(pyStrip(args)) });
  }
  return raw.map((c) => ({ name: c.name, arguments: jsonArguments(c.args) }));
}

function jsonArguments(args: Map<string, PyLiteral | string>): PyDict {
  const out: PyDict = new Map();
  for (const [k, v] of args) out.set(k, typeof v === "string" ? v : literalToJson(v));
  return out;
}

/** `key=value, ...` of one call (STAR's `_parse_arguments_dict`). */
export function parseArguments(text: string): PyDict {
  return jsonArguments(rawArguments(text));
}

function rawArguments(text: string): Map<string, PyLiteral | string> {
  const out = new Map<string, PyLiteral | string>();
  if (pyStrip(text) === "") return out;
  const pieces: string[] = [];
  let current = "";
  let depth = 0;
  let quote: string | null = null;
  let escaped = false;
  for (const c of text) {
    if (escaped) escaped = false;
    else if (c === "\\") escaped = true;
    else if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      pieces.push(pyStrip(current));
      current = "";
      continue;
    }
    current += c;
  }
  if (pyStrip(current) !== "") pieces.push(pyStrip(current));
  for (const piece of pieces) {
    const eq = piece.indexOf("=");
    if (eq < 0) continue;
    const key = pyStrip(piece.slice(0, eq));
    const value = pyStrip(piece.slice(eq + 1));
    out.set(key, argumentValue(value));
  }
  return out;
}

function argumentValue(value: string): PyLiteral | string {
  try {
    return literalEvalValue(value);
  } catch (err) {
    if (!(err instanceof LiteralSyntaxError)) throw err;
  }
  const quoted = (q: string) => value.startsWith(q) && value.endsWith(q);
  return quoted('"') || quoted("'") ? sliceCodePoints(value, 1, -1) : value;
}

/** Python's `s[a:b]` over code points. */
function sliceCodePoints(s: string, a: number, b: number): string {
  return Array.from(s).slice(a, b).join("");
}
