/**
 * `ast.literal_eval` of CPython 3.11 for one argument value: a small parser builds the tree of
 * literal syntax (numbers, prefixed and concatenated strings, True/False/None, ..., containers,
 * set(), unary +/-, real +/- imaginary) and literal_eval's rules convert it; other text is a
 * LiteralSyntaxError. Non-JSON values, unhashable keys and `\N{name}` escapes (no Unicode name
 * table here) are NotJsonError. Left out: lone surrogates, keys that collide only as JSON text.
 */
import { type PyDict, pyFloatRepr, type PyValue } from "../../lib/py/json.ts";
import { pyKey } from "../../lib/py/values.ts";

/** The text is not a Python literal (Python: SyntaxError or "malformed node or string"). */
export class LiteralSyntaxError extends SyntaxError {
  override name = "LiteralSyntaxError";
}

/** A literal Python evaluates but cannot be written as JSON (or a TypeError on hashing). */
export class NotJsonError extends TypeError {
  override name = "NotJsonError";
}

// --- the tree ------------------------------------------------------------------------------

type Const =
  | { t: "str"; v: string }
  | { t: "bytes" }
  | { t: "int"; v: bigint }
  | { t: "float"; v: number }
  | { t: "complex" }
  | { t: "bool"; v: boolean }
  | { t: "none" }
  | { t: "ellipsis" };

type Node =
  | { k: "const"; c: Const }
  | { k: "unary"; op: "+" | "-" | "~"; x: Node }
  | { k: "bin"; op: "+" | "-"; a: Node; b: Node }
  | { k: "list" | "tuple" | "set"; items: Node[] }
  | { k: "dict"; keys: Node[]; values: Node[] }
  | { k: "call_set" }
  | { k: "other" };

// --- the parser ------------------------------------------------------------------------------

const fail = (why: string): never => {
  throw new LiteralSyntaxError(why);
};

const IDENT_START = /[A-Za-z_]/;
const IDENT = /[A-Za-z0-9_]/;

class Parser {
  i = 0;
  depth = 0;
  constructor(readonly s: string) {}

  /** Skips blanks, comments, line continuations, and newlines inside brackets. */
  ws(): void {
    const s = this.s;
    for (;;) {
      const c = s[this.i];
      if (c === " " || c === "\t" || c === "\f") this.i++;
      else if (c === "\\" && s[this.i + 1] === "\n") this.i += 2;
      else if (c === "\\" && s[this.i + 1] === "\r" && s[this.i + 2] === "\n") this.i += 3;
      else if (c === "#") {
        while (this.i < s.length && s[this.i] !== "\n" && s[this.i] !== "\r") this.i++;
      } else if ((c === "\n" || c === "\r") && this.depth > 0) this.i++;
      else return;
    }
  }

  /** Accepts trailing newlines and comments at the top level (eval mode). */
  end(): void {
    for (;;) {
      this.ws();
      const c = this.s[this.i];
      if (c === "\n" || c === "\r") this.i++;
      else break;
    }
    if (this.i !== this.s.length) fail("unexpected text after the value");
  }

  /** Python's tokenizer refuses brackets nested deeper than 200. */
  open(): void {
    if (++this.depth > 200) fail("too many nested parentheses");
  }

  peek(): string | undefined {
    this.ws();
    return this.s[this.i];
  }

  eat(tok: string): boolean {
    this.ws();
    if (this.s.startsWith(tok, this.i)) {
      this.i += tok.length;
      return true;
    }
    return false;
  }

  /** expression list: a bare tuple when it has a comma. */
  top(): Node {
    const first = this.expr();
    if (this.peek() !== ",") return first;
    const items = [first];
    while (this.eat(",")) {
      const c = this.peek();
      if (c === undefined || c === "\n" || c === "\r") break;
      items.push(this.expr());
    }
    return { k: "tuple", items };
  }

  expr(): Node {
    let a = this.unary();
    for (;;) {
      const c = this.peek();
      if (c !== "+" && c !== "-") break;
      this.i++;
      a = { k: "bin", op: c, a, b: this.unary() };
    }
    this.noOperator();
    return a;
  }

  /** Operators other than + and - make the value something literal_eval refuses. */
  noOperator(): void {
    const c = this.peek();
    if (c !== undefined && "*/%@<>=!&|^.[(".includes(c)) fail(`operator "${c}"`);
    if (c !== undefined && IDENT_START.test(c)) fail("a name after the value");
  }

  unary(): Node {
    const c = this.peek();
    if (c === "+" || c === "-" || c === "~") {
      this.i++;
      return { k: "unary", op: c, x: this.unary() };
    }
    const a = this.atom();
    if (this.peek() === "*" && this.s[this.i + 1] === "*") fail("a power");
    return a;
  }

  atom(): Node {
    const s = this.s;
    const c = this.peek();
    if (c === undefined) return fail("unexpected end");
    if (c === "(") return this.bracket("(", ")");
    if (c === "[") return this.bracket("[", "]");
    if (c === "{") return this.brace();
    if (c === "." && s.startsWith("...", this.i)) {
      this.i += 3;
      return { k: "const", c: { t: "ellipsis" } };
    }
    if (c === '"' || c === "'") return this.strings();
    if ((c >= "0" && c <= "9") || (c === "." && /[0-9]/.test(s[this.i + 1] ?? ""))) {
      return { k: "const", c: this.number() };
    }
    if (IDENT_START.test(c)) {
      let j = this.i;
      while (j < s.length && IDENT.test(s[j])) j++;
      const name = s.slice(this.i, j);
      if (
        (s[j] === '"' || s[j] === "'") &&
        /^(?:[rRuUbBfF]|[bB][rR]|[rR][bB]|[fF][rR]|[rR][fF])$/.test(name)
      ) {
        return this.strings();
      }
      this.i = j;
      if (name === "True") return { k: "const", c: { t: "bool", v: true } };
      if (name === "False") return { k: "const", c: { t: "bool", v: false } };
      if (name === "None") return { k: "const", c: { t: "none" } };
      if (name === "set" && this.peek() === "(") {
        this.i++;
        this.open();
        const closed = this.eat(")");
        this.depth--;
        if (closed) return { k: "call_set" };
      }
      return { k: "other" };
    }
    return fail(`unexpected "${c}"`);
  }

  /** ( ... ) or [ ... ]: a parenthesised value, a tuple or a list. */
  bracket(open: string, close: string): Node {
    this.i++;
    this.open();
    const items: Node[] = [];
    let comma = false;
    while (!this.eat(close)) {
      if (this.peek() === "*") fail("a starred item");
      items.push(this.expr());
      if (this.eat(",")) comma = true;
      else if (!this.eat(close)) fail(`expected "${close}"`);
      else break;
    }
    this.depth--;
    if (open === "[") return { k: "list", items };
    if (items.length === 1 && !comma) return items[0];
    return { k: "tuple", items };
  }

  /** { ... }: a dict or a set. */
  brace(): Node {
    this.i++;
    this.open();
    const keys: Node[] = [];
    const values: Node[] = [];
    const items: Node[] = [];
    let isDict: boolean | null = null;
    while (!this.eat("}")) {
      if (this.peek() === "*") fail("an unpacked item");
      const a = this.expr();
      if (isDict === null) isDict = this.peek() === ":";
      if (isDict) {
        if (!this.eat(":")) fail('expected ":"');
        keys.push(a);
        values.push(this.expr());
      } else items.push(a);
      if (!this.eat(",")) {
        if (!this.eat("}")) fail('expected "}"');
        break;
      }
    }
    this.depth--;
    if (isDict === false) return { k: "set", items };
    return { k: "dict", keys, values };
  }

  /** Adjacent string literals, concatenated; str and bytes cannot mix, f-strings are refused. */
  strings(): Node {
    let text = "";
    let kind: "str" | "bytes" | null = null;
    let fstring = false;
    for (;;) {
      const save = this.i;
      this.ws();
      const m = /^([rRuUbBfF]{0,2})(['"])/.exec(this.s.slice(this.i, this.i + 3));
      if (m === null || !/^(?:|[rRuUbBfF]|[bB][rR]|[rR][bB]|[fF][rR]|[rR][fF])$/.test(m[1])) {
        this.i = save;
        break;
      }
      const prefix = m[1].toLowerCase();
      this.i += m[1].length;
      const lit = this.stringBody(prefix.includes("r"), prefix.includes("b"));
      const k = prefix.includes("b") ? "bytes" : "str";
      if (kind !== null && kind !== k) fail("str and bytes concatenated");
      kind = k;
      if (prefix.includes("f")) fstring = true;
      text += lit;
    }
    if (fstring) fail("an f-string");
    return { k: "const", c: kind === "bytes" ? { t: "bytes" } : { t: "str", v: text } };
  }

  stringBody(raw: boolean, bytes: boolean): string {
    const s = this.s;
    const q = s[this.i];
    const triple = s.startsWith(q + q + q, this.i);
    const closeTok = triple ? q + q + q : q;
    this.i += closeTok.length;
    let out = "";
    for (;;) {
      if (this.i >= s.length) fail("an unterminated string");
      if (s.startsWith(closeTok, this.i)) {
        this.i += closeTok.length;
        return out;
      }
      const c = s[this.i];
      if (bytes && c.charCodeAt(0) > 0x7f) fail("a non-ASCII character in bytes");
      if ((c === "\n" || c === "\r") && !triple) fail("a newline in a string");
      if (c !== "\\") {
        out += c;
        this.i++;
        continue;
      }
      const d = s[this.i + 1];
      if (d === undefined) fail("an unterminated string");
      if (raw) {
        // In raw strings a backslash keeps the next character, a quote included.
        out += c + d;
        this.i += 2;
        continue;
      }
      this.i += 2;
      out += this.escape(d, bytes);
    }
  }

  escape(d: string, bytes: boolean): string {
    const s = this.s;
    const simple: Record<string, string> = {
      "\n": "",
      "\\": "\\",
      "'": "'",
      '"': '"',
      a: "\x07",
      b: "\b",
      f: "\f",
      n: "\n",
      r: "\r",
      t: "\t",
      v: "\v",
    };
    if (d === "\r") {
      if (s[this.i] === "\n") this.i++;
      return "";
    }
    if (d in simple) return simple[d];
    if (d >= "0" && d <= "7") {
      let j = this.i;
      while (j < this.i + 2 && s[j] >= "0" && s[j] <= "7") j++;
      const v = parseInt(d + s.slice(this.i, j), 8);
      this.i = j;
      return String.fromCodePoint(v);
    }
    const hex = (n: number): number => {
      const h = s.slice(this.i, this.i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) fail("a truncated escape");
      this.i += n;
      return parseInt(h, 16);
    };
    if (d === "x") return String.fromCodePoint(hex(2));
    if (!bytes && d === "u") return String.fromCharCode(hex(4));
    if (!bytes && d === "U") {
      const v = hex(8);
      if (v > 0x10ffff) fail("an escape beyond U+10FFFF");
      return String.fromCodePoint(v);
    }
    if (!bytes && d === "N") {
      // Python looks the name up in the Unicode database, which star does not carry.
      throw new NotJsonError("\\N{...} escapes are not supported");
    }
    return "\\" + d;
  }

  number(): Const {
    const s = this.s;
    const rest = s.slice(this.i);
    const digits = "[0-9](?:_?[0-9])*";
    const exp = `[eE][+-]?${digits}`;
    const patterns: [RegExp, "int" | "float" | "radix"][] = [
      [/^0[xX](?:_?[0-9a-fA-F])+/, "radix"],
      [/^0[oO](?:_?[0-7])+/, "radix"],
      [/^0[bB](?:_?[01])+/, "radix"],
      [
        new RegExp(`^(?:(?:${digits})?\\.${digits}|${digits}\\.)(?:${exp})?|^${digits}${exp}`),
        "float",
      ],
      [new RegExp(`^${digits}`), "int"],
    ];
    for (const [re, kind] of patterns) {
      const m = re.exec(rest);
      if (m === null) continue;
      let text = m[0];
      this.i += text.length;
      const after = s[this.i] ?? "";
      if ((after === "j" || after === "J") && kind !== "radix") {
        this.i++;
        if (IDENT.test(s[this.i] ?? "")) fail("a name after a number");
        return { t: "complex" };
      }
      if (IDENT.test(after) || (after === "." && kind !== "float")) {
        fail("a malformed number");
      }
      text = text.replace(/_/g, "");
      if (kind === "float") return { t: "float", v: Number(text) };
      if (kind === "radix") return { t: "int", v: BigInt(text.toLowerCase()) };
      if (/^0+$/.test(text)) return { t: "int", v: 0n };
      if (text.startsWith("0")) fail("leading zeros in an integer");
      if (text.length > 4300) fail("an integer with more than 4300 digits");
      return { t: "int", v: BigInt(text) };
    }
    return fail("a malformed number");
  }
}

// --- literal_eval's conversion ----------------------------------------------------------------

type Py =
  | Const
  | { t: "list" | "tuple"; items: Py[] }
  | { t: "set" }
  | { t: "dict"; keys: Py[]; values: Py[] };

/** The hash identity of a value (Python dict/set equality); throws for unhashable values. */
function hashKey(v: Py): string | null {
  switch (v.t) {
    case "str":
      return pyKey(v.v) as string;
    case "int":
      return pyKey(v.v) as string;
    case "float":
      return pyKey(v.v) ?? null;
    case "bool":
      return pyKey(v.v) as string;
    case "none":
      return "None";
    case "tuple": {
      const parts = v.items.map(hashKey);
      return parts.includes(null) ? null : `t(${parts.join(",")})`;
    }
    case "list":
    case "dict":
    case "set":
      throw new NotJsonError(`unhashable type: '${v.t}'`);
    default:
      // bytes, complex, Ellipsis: hashable; such a key has no JSON form, so which of several
      // equal ones survives does not matter (toJson refuses it).
      return `${v.t}?${uniqueKeys++}`;
  }
}

let uniqueKeys = 0;

const malformed = (): never => fail("malformed node or string");

function convertNum(n: Node): Py {
  if (n.k === "const" && (n.c.t === "int" || n.c.t === "float" || n.c.t === "complex")) {
    return n.c;
  }
  return malformed();
}

function convertSigned(n: Node): Py {
  if (n.k === "unary" && (n.op === "+" || n.op === "-")) {
    const x = convertNum(n.x);
    if (n.op === "+" || x.t === "complex") return x;
    return x.t === "int" ? { t: "int", v: -(x as { v: bigint }).v } : {
      t: "float",
      v: -(x as { v: number }).v,
    };
  }
  return convertNum(n);
}

function convert(n: Node): Py {
  switch (n.k) {
    case "const":
      return n.c;
    case "list":
    case "tuple":
      return { t: n.k, items: n.items.map(convert) };
    case "set":
      for (const item of n.items) hashKey(convert(item));
      return { t: "set" };
    case "call_set":
      return { t: "set" };
    case "dict": {
      const keys: Py[] = [];
      const values: Py[] = [];
      const at = new Map<string, number>();
      for (let i = 0; i < n.keys.length; i++) {
        const k = convert(n.keys[i]);
        const v = convert(n.values[i]);
        const h = hashKey(k);
        const j = h === null ? undefined : at.get(h);
        if (j !== undefined) values[j] = v;
        else {
          if (h !== null) at.set(h, keys.length);
          keys.push(k);
          values.push(v);
        }
      }
      return { t: "dict", keys, values };
    }
    case "bin": {
      const a = convertSigned(n.a);
      const b = convertNum(n.b);
      if ((a.t === "int" || a.t === "float") && b.t === "complex") return { t: "complex" };
      return malformed();
    }
    case "unary":
      return convertSigned(n);
    default:
      return malformed();
  }
}

function jsonKey(k: Py): string {
  switch (k.t) {
    case "str":
      return k.v;
    case "int":
      return k.v.toString();
    case "float":
      return Number.isNaN(k.v)
        ? "NaN"
        : k.v === Infinity
        ? "Infinity"
        : k.v === -Infinity
        ? "-Infinity"
        : pyFloatRepr(k.v);
    case "bool":
      return k.v ? "true" : "false";
    case "none":
      return "null";
    default:
      throw new NotJsonError(`keys must be str, int, float, bool or None, not ${k.t}`);
  }
}

function toJson(v: Py): PyValue {
  switch (v.t) {
    case "str":
    case "int":
    case "float":
    case "bool":
      return v.v;
    case "none":
      return null;
    case "list":
    case "tuple":
      return v.items.map(toJson);
    case "dict": {
      const out: PyDict = new Map();
      v.keys.forEach((k, i) => {
        const key = jsonKey(k);
        if (out.has(key)) throw new NotJsonError(`two keys are written as "${key}"`);
        out.set(key, toJson(v.values[i]));
      });
      return out;
    }
    default:
      throw new NotJsonError(`Object of type ${v.t} is not JSON serializable`);
  }
}

/** A value as literal_eval returns it, before JSON sees it (see literalToJson). */
export type PyLiteral = Py;

/**
 * `ast.literal_eval(text)`. Throws LiteralSyntaxError when Python would raise ValueError or
 * SyntaxError, NotJsonError for an unhashable dict key or set item (Python's TypeError).
 */
export function literalEvalValue(text: string): PyLiteral {
  let s = text;
  let a = 0;
  while (s[a] === " " || s[a] === "\t") a++;
  s = s.slice(a);
  if (s.includes("\0")) fail("a null character");
  const p = new Parser(s);
  const tree = p.top();
  p.end();
  return convert(tree);
}

/** The value as json.dumps writes it; NotJsonError when it (or a dict key) has no JSON form. */
export function literalToJson(v: PyLiteral): PyValue {
  return toJson(v);
}

/** literalEvalValue then literalToJson. */
export function literalEval(text: string): PyValue {
  return toJson(literalEvalValue(text));
}
