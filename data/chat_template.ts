/**
 * Chat templates rendered as transformers' `apply_chat_template` renders them with Python's
 * jinja2: trim_blocks + lstrip_blocks, `tojson` = json.dumps(ensure_ascii=False, ...),
 * `raise_exception`, the tokenizer's special tokens as variables, messages and tools as given.
 *
 * Parsing and evaluation come from npm:@huggingface/jinja. Where that package and jinja2 part
 * ways on what chat templates use, this file makes star follow Python:
 * - values come in as Python values (reward/py_json.ts): ints stay exact, floats print as
 *   repr (1.0, 1e-05), dict keys keep their order, True/None print as Python does;
 * - `tojson` is json.dumps (separators, indent, sort_keys, ensure_ascii, float repr), and an
 *   undefined value is an error, not "null";
 * - `str.strip/lstrip/rstrip(chars)` honour their argument and Python's whitespace set.
 * The package's classes are not exported, so they are taken from values it creates.
 */
import { Environment, Interpreter, parse, tokenize } from "@huggingface/jinja";
import { pyStripChars } from "../lib/py/text.ts";
import { dumpsPyJson, isPyDict, pyFloatRepr, pyStr, type PyValue } from "../lib/py/json.ts";

/** A template that raised (raise_exception) or failed while rendering. */
export class TemplateError extends Error {
  override name = "TemplateError";
}

// --- the package's runtime value classes, recovered from values it builds ---------------

// deno-lint-ignore no-explicit-any
type RV = any;
// deno-lint-ignore no-explicit-any
type RVClass = new (...args: any[]) => RV;

const probe = new Environment();
let probeCount = 0;
const classOf = (v: unknown): RVClass => probe.set(`v${probeCount++}`, v).constructor as RVClass;
const IntegerValue = classOf(1);
const FloatValue = classOf(1.5);
const StringValue = classOf("");
const BooleanValue = classOf(true);
const NullValue = classOf(null);
const UndefinedValue = classOf(undefined);
const ArrayValue = classOf([]);
const ObjectValue = classOf({});
const FunctionValue = classOf(() => 0);

/** An int from the input: exact digits kept beside the float64 the package computes with. */
class PyIntValue extends IntegerValue {
  exact: bigint;
  constructor(exact: bigint) {
    super(Number(exact));
    this.exact = exact;
  }
  toString(): string {
    return this.exact.toString();
  }
}

class PyFloatValue extends FloatValue {
  toString(): string {
    return pyFloatRepr(this.value);
  }
}

class PyBoolValue extends BooleanValue {
  toString(): string {
    return this.value ? "True" : "False";
  }
}

/** A dict or list from the input prints as Python's str() would. */
class PyDictValue extends ObjectValue {
  py: PyValue;
  constructor(entries: Map<string, RV>, py: PyValue) {
    super(entries);
    this.py = py;
  }
  toString(): string {
    return pyStr(this.py);
  }
}

class PyListValue extends ArrayValue {
  py: PyValue;
  constructor(items: RV[], py: PyValue) {
    super(items);
    this.py = py;
  }
  toString(): string {
    return pyStr(this.py);
  }
}

/** Python value -> the package's runtime value. */
export function toRuntime(v: PyValue | undefined): RV {
  if (v === undefined) return new UndefinedValue();
  if (v === null) return new NullValue();
  switch (typeof v) {
    case "boolean":
      return new PyBoolValue(v);
    case "bigint":
      return new PyIntValue(v);
    case "number":
      return new PyFloatValue(v);
    case "string":
      return new StringValue(v);
  }
  if (Array.isArray(v)) return new PyListValue(v.map(toRuntime), v);
  const entries = new Map<string, RV>();
  for (const [k, x] of v) entries.set(k, toRuntime(x));
  return new PyDictValue(entries, v);
}

/** Runtime value -> Python value, for tojson; what json.dumps cannot take is an error. */
function fromRuntime(v: RV): PyValue {
  if (v instanceof PyIntValue) return v.exact;
  if (v instanceof IntegerValue) return BigInt(v.value);
  if (v instanceof FloatValue) return v.value as number;
  if (v instanceof StringValue || v instanceof BooleanValue) return v.value;
  if (v instanceof NullValue) return null;
  if (v instanceof ArrayValue) return (v.value as RV[]).map(fromRuntime);
  if (v instanceof ObjectValue) {
    const out = new Map<string, PyValue>();
    for (const [k, x] of v.value as Map<string, RV>) out.set(k, fromRuntime(x));
    return out;
  }
  const type = v instanceof UndefinedValue ? "Undefined" : String(v?.type ?? typeof v);
  throw new TemplateError(`Object of type ${type} is not JSON serializable`);
}

// --- json.dumps with all the options tojson passes -----------------------------------

export interface PyDumpsOptions {
  ensureAscii?: boolean;
  /** null: one line; a number n: newline + n spaces per level; a string: that string. */
  indent?: number | string | null;
  /** [item separator, key separator]; default [", ", ": "], or [",", ": "] with an indent. */
  separators?: [string, string] | null;
  sortKeys?: boolean;
}

/** Python's json.dumps(v, ensure_ascii, indent, separators, sort_keys). */
export function pyJsonDumps(v: PyValue, opts: PyDumpsOptions = {}): string {
  const ensureAscii = opts.ensureAscii ?? false;
  const indent = opts.indent === undefined || opts.indent === null
    ? null
    : typeof opts.indent === "number"
    ? " ".repeat(Math.max(0, opts.indent))
    : opts.indent;
  const [itemSep, keySep] = opts.separators ?? (indent === null ? [", ", ": "] : [",", ": "]);
  const scalar = (x: PyValue) => dumpsPyJson(x, { ensureAscii });
  const enc = (x: PyValue, level: number): string => {
    if (x === null || typeof x !== "object") return scalar(x);
    const items: string[] = [];
    if (Array.isArray(x)) {
      if (x.length === 0) return "[]";
      for (const y of x) items.push(enc(y, level + 1));
      return wrap("[", items, "]", level);
    }
    if (x.size === 0) return "{}";
    let entries = [...x];
    if (opts.sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [k, y] of entries) items.push(scalar(k) + keySep + enc(y, level + 1));
    return wrap("{", items, "}", level);
  };
  const wrap = (open: string, items: string[], close: string, level: number): string => {
    if (indent === null) return open + items.join(itemSep) + close;
    const inner = "\n" + indent.repeat(level + 1);
    return open + inner + items.join(itemSep + inner) + "\n" + indent.repeat(level) + close;
  };
  return enc(v, 0);
}

// --- Python string methods the package gets wrong ------------------------------------

const STRIPS: Record<string, [boolean, boolean]> = {
  strip: [true, true],
  lstrip: [true, false],
  rstrip: [false, true],
};

function stripMethod(s: string, name: string): RV {
  const [left, right] = STRIPS[name];
  return new FunctionValue((args: RV[]) => {
    const positional = args.filter((a) => a?.type !== "KeywordArgumentsValue");
    const kw = args.find((a) => a?.type === "KeywordArgumentsValue");
    const arg = positional[0] ?? kw?.value.get("chars");
    if (positional.length > 1) throw new TemplateError(`${name} expected at most 1 argument`);
    if (arg === undefined || arg instanceof NullValue) {
      return new StringValue(pyStripChars(s, null, left, right));
    }
    if (!(arg instanceof StringValue)) {
      throw new TemplateError(`${name} arg must be None or str`);
    }
    return new StringValue(pyStripChars(s, arg.value, left, right));
  });
}

// --- the interpreter with Python's behaviour where it matters ------------------------

// deno-lint-ignore no-explicit-any
const base = Interpreter.prototype as any;

class PyInterpreter extends Interpreter {}
// deno-lint-ignore no-explicit-any
const proto = PyInterpreter.prototype as any;

proto.applyFilter = function (this: RV, operand: RV, filterNode: RV, env: RV): RV {
  const isCall = filterNode.type === "CallExpression";
  const name = isCall ? filterNode.callee?.value : filterNode.value;
  if (name !== "tojson") return base.applyFilter.call(this, operand, filterNode, env);
  let args: RV[] = [];
  let kwargs = new Map<string, RV>();
  if (isCall) [args, kwargs] = this.evaluateArguments(filterNode.args, env);
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const pick = (i: number, key: string) => args[i] ?? kwargs.get(key);
  const ensureAscii = pick(0, "ensure_ascii");
  const indent = pick(1, "indent");
  const separators = pick(2, "separators");
  const sortKeys = pick(3, "sort_keys");
  const opts: PyDumpsOptions = {
    ensureAscii: ensureAscii ? Boolean(ensureAscii.__bool__().value) : false,
    indent: indent === undefined || indent instanceof NullValue ? null : indent.value,
    separators: separators instanceof ArrayValue
      ? [String(separators.value[0]?.value), String(separators.value[1]?.value)]
      : null,
    sortKeys: sortKeys ? Boolean(sortKeys.__bool__().value) : false,
  };
  return new StringValue(pyJsonDumps(fromRuntime(operand), opts));
};

proto.evaluateMemberExpression = function (this: RV, expr: RV, env: RV): RV {
  const prop = expr.property;
  if (expr.computed || prop.type !== "Identifier" || !(prop.value in STRIPS)) {
    return base.evaluateMemberExpression.call(this, expr, env);
  }
  // `x.strip` and friends: evaluate the object once, then do what the package would do
  // unless it is a string.
  const object = this.evaluate(expr.object, env);
  if (object instanceof StringValue) return stripMethod(object.value, prop.value);
  let value: RV;
  if (object instanceof ObjectValue) {
    value = object.value.get(prop.value) ?? object.builtins.get(prop.value);
  } else if (object?.value instanceof Map) value = object.value.get(prop.value);
  else value = object.builtins?.get(prop.value);
  return value ?? new UndefinedValue();
};

/** What `{{ v }}` prints in Python: str(v). */
function pyPrint(v: RV): string {
  if (v instanceof StringValue) return v.value;
  if (v instanceof BooleanValue) return v.value ? "True" : "False";
  if (v instanceof FloatValue) return pyFloatRepr(v.value);
  if (v instanceof ArrayValue || v instanceof ObjectValue) {
    try {
      return pyStr(fromRuntime(v));
    } catch {
      return v.toString();
    }
  }
  return v.toString();
}

proto.evaluateBlock = function (this: RV, statements: RV[], env: RV): RV {
  let out = "";
  for (const statement of statements) {
    const v = this.evaluate(statement, env);
    if (!(v instanceof NullValue) && !(v instanceof UndefinedValue)) out += pyPrint(v);
  }
  return new StringValue(out);
};

// --- globals -------------------------------------------------------------------------

function pyRange(args: RV[]): RV {
  const n = args.map((a) => {
    if (!(a instanceof IntegerValue)) throw new TemplateError("range() arguments must be ints");
    return a.value as number;
  });
  const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
  if (step === 0) throw new TemplateError("range() arg 3 must not be zero");
  const out: RV[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(new IntegerValue(i));
  return new ArrayValue(out);
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** datetime.now().strftime(format) for the common directives (local time). */
export function strftime(d: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%([a-zA-Z%])/g, (m, c: string) => {
    switch (c) {
      case "Y":
        return String(d.getFullYear());
      case "y":
        return p2(d.getFullYear() % 100);
      case "m":
        return p2(d.getMonth() + 1);
      case "d":
        return p2(d.getDate());
      case "H":
        return p2(d.getHours());
      case "I":
        return p2(d.getHours() % 12 || 12);
      case "M":
        return p2(d.getMinutes());
      case "S":
        return p2(d.getSeconds());
      case "p":
        return d.getHours() < 12 ? "AM" : "PM";
      case "B":
        return MONTHS[d.getMonth()];
      case "b":
        return MONTHS[d.getMonth()].slice(0, 3);
      case "A":
        return DAYS[d.getDay()];
      case "a":
        return DAYS[d.getDay()].slice(0, 3);
      case "j": {
        const start = new Date(d.getFullYear(), 0, 1);
        return String(Math.floor((d.getTime() - start.getTime()) / 86400000) + 1).padStart(3, "0");
      }
      case "%":
        return "%";
      default:
        return m;
    }
  });
}

function makeGlobals(): Map<string, RV> {
  const g = new Map<string, RV>();
  g.set("true", new BooleanValue(true));
  g.set("false", new BooleanValue(false));
  g.set("none", new NullValue());
  g.set("True", new BooleanValue(true));
  g.set("False", new BooleanValue(false));
  g.set("None", new NullValue());
  g.set(
    "raise_exception",
    new FunctionValue((args: RV[]) => {
      throw new TemplateError(String(args[0]?.value ?? ""));
    }),
  );
  g.set("range", new FunctionValue(pyRange));
  g.set(
    "strftime_now",
    new FunctionValue((args: RV[]) =>
      new StringValue(strftime(new Date(), String(args[0]?.value)))
    ),
  );
  return g;
}

// --- the template ----------------------------------------------------------------------

export interface RenderVars {
  messages: PyValue;
  tools?: PyValue;
  add_generation_prompt?: boolean;
  /** Any other variables (enable_thinking, documents, ...). */
  [name: string]: PyValue | undefined;
}

export class ChatTemplate {
  readonly source: string;
  #program: RV;
  #constants: Map<string, PyValue>;

  /**
   * @param source the template text (a trailing newline is dropped, as jinja2 does)
   * @param constants variables present in every render: the special tokens
   *   (bos_token, eos_token, pad_token, ...), as transformers passes them
   */
  constructor(source: string, constants: Record<string, PyValue> = {}) {
    this.source = source;
    try {
      this.#program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    } catch (err) {
      throw new TemplateError(`Cannot parse the chat template: ${(err as Error).message}`);
    }
    this.#constants = new Map(Object.entries(constants));
  }

  /** Renders with the given variables; a template error becomes a TemplateError. */
  render(vars: RenderVars): string {
    const env = new Environment();
    for (const [k, v] of makeGlobals()) env.variables.set(k, v);
    for (const [k, v] of this.#constants) env.variables.set(k, toRuntime(v));
    const all: Record<string, PyValue | undefined> = {
      tools: null,
      documents: null,
      add_generation_prompt: false,
      ...vars,
    };
    for (const [k, v] of Object.entries(all)) {
      if (v !== undefined) env.variables.set(k, toRuntime(v));
    }
    try {
      return new PyInterpreter(env).run(this.#program).value as string;
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      throw new TemplateError((err as Error).message);
    }
  }
}

/**
 * The special tokens transformers passes to a template: bos/eos/unk/sep/pad/cls/mask tokens
 * that are set, and additional_special_tokens, from a tokenizer_config.json.
 */
export function specialTokensOf(config: PyValue): Record<string, PyValue> {
  const out: Record<string, PyValue> = {};
  if (!isPyDict(config)) return out;
  const content = (v: PyValue | undefined): PyValue | undefined =>
    v !== undefined && isPyDict(v) ? v.get("content") : v;
  for (
    const key of [
      "bos_token",
      "eos_token",
      "unk_token",
      "sep_token",
      "pad_token",
      "cls_token",
      "mask_token",
    ]
  ) {
    const v = content(config.get(key));
    if (v !== undefined && v !== null) out[key] = v;
  }
  const extra = config.get("additional_special_tokens");
  if (Array.isArray(extra) && extra.length > 0) {
    out.additional_special_tokens = extra.map((t) => content(t) ?? null);
  }
  return out;
}

/**
 * The chat template of a tokenizer_config.json: a string, or a list of named templates of
 * which transformers picks "tool_use" when tools are given and it exists, else "default".
 */
export function chatTemplateSource(config: PyValue, withTools = false): string | null {
  if (!isPyDict(config)) return null;
  const t = config.get("chat_template");
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = new Map<string, string>();
    for (const e of t) {
      if (
        isPyDict(e) && typeof e.get("name") === "string" && typeof e.get("template") === "string"
      ) {
        named.set(e.get("name") as string, e.get("template") as string);
      }
    }
    if (withTools && named.has("tool_use")) return named.get("tool_use")!;
    return named.get("default") ?? null;
  }
  return null;
}
