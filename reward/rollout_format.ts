/**
 * STAR's teacher-rollout filter (data_process/teacher_rollout.py) as pure functions: the format
 * check of one sampled completion against its prompt, the assistant message it becomes
 * ({reasoning_content, content, tool_calls}), the key that makes two messages duplicates, and
 * the conversation rows of one input. Where STAR leans on Python (`in` on a dict, list or str,
 * `==` across int, float and bool, iterating a string by code points, an exception anywhere
 * meaning "rejected") the same outcome is computed here; each rejection carries a reason.
 * CPython's json.loads returns one shared object for every `NaN`, and `in` and `==` on
 * containers compare identity first, so here NaN equals NaN (unlike a bare float compare).
 * Not here: sampling, files, the Sim-RL reward (min_reward is applied by train/rollout.ts).
 */
import { dumpsPyJson, isPyDict, parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { findAllBetween, pyStrip } from "../lib/py/text.ts";
import { pyKey, pyNumbersEqual } from "../lib/py/values.ts";

/** Why a completion was rejected, in the order STAR checks. */
export type RejectReason =
  | "think" // not exactly one <think>…</think>
  | "tool_call" // a <tool_call> block is not a JSON object with "name" and "arguments"
  | "tools" // the prompt's last <tools> block cannot be read
  | "name" // a call names no tool of the prompt
  | "arguments"; // an argument is not a parameter of the tool (or the arguments do not iterate)

export const REJECT_REASONS: readonly RejectReason[] = [
  "think",
  "tool_call",
  "tools",
  "name",
  "arguments",
];

export interface RolloutCall {
  name: PyValue;
  arguments: PyValue;
}

/** The assistant message a kept completion becomes. */
export interface RolloutMessage {
  /** The stripped think text; null when empty. */
  reasoning_content: string | null;
  /** The stripped reply; null when empty or when the answer holds "<tool_call>". */
  content: string | null;
  /** The parsed calls; null when there are none. */
  tool_calls: RolloutCall[] | null;
}

export type Verdict =
  | { ok: true; message: RolloutMessage }
  | { ok: false; reason: RejectReason; detail: string };

/** What a tool accepts as argument names, by the type of its (unwrapped) `parameters`. */
type Params =
  | { kind: "dict"; keys: Set<string> }
  | { kind: "list"; items: PyValue[] }
  | { kind: "str"; text: string };

/** A prompt's tools keyed by pyKey(name), or the reason they cannot be read. */
export type RolloutTools = Map<string, Params> | { error: string };

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const CALL_OPEN = "<tool_call>";
const CALL_CLOSE = "</tool_call>";

const reject = (reason: RejectReason, detail: string): Verdict => ({ ok: false, reason, detail });

/**
 * The tools of a prompt as STAR reads them: the last `<tools>…</tools>` block, one JSON object
 * per non-blank line, `{"type", "function": {...}}` unwrapped, `parameters.properties` used
 * when it is an object and `parameters.type` is not null. No block: no tools (every call is
 * then rejected). Any line STAR would fail on makes the whole block unreadable.
 */
export function rolloutTools(prompt: string): RolloutTools {
  const blocks = findAllBetween(prompt, "<tools>", "</tools>");
  const tools = new Map<string, Params>();
  if (blocks.length === 0) return tools;
  const lines = blocks[blocks.length - 1].split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = pyStrip(lines[i]);
    if (line === "") continue;
    const fail = (why: string) => ({ error: `tools line ${i + 1} ${why}` });
    let tool: PyValue;
    try {
      tool = parsePyJson(line);
    } catch (e) {
      return fail(`is not valid JSON (${(e as Error).message})`);
    }
    if (!isPyDict(tool)) return fail("is not an object");
    if (tool.has("type") && tool.has("function")) {
      tool = tool.get("function")!;
      if (!isPyDict(tool)) return fail('has a "function" that is not an object');
    }
    if (!tool.has("name")) return fail('has no "name"');
    if (!tool.has("parameters")) return fail('has no "parameters"');
    const params = paramsOf(tool.get("parameters")!);
    if (params === null) return fail('has "parameters" that STAR cannot read');
    const key = nameKey(tool.get("name")!);
    if (key === undefined) return fail("has a name that is a list or an object");
    tools.set(key, params);
  }
  return tools;
}

/** The identity of a value as a dict key (pyKey), with json.loads's one NaN as a key too. */
function nameKey(v: PyValue): string | undefined {
  const key = pyKey(v);
  return key === null ? "fnan" : key;
}

/** STAR's `'properties' in p and isinstance(p['properties'], dict) and p.get('type')`. */
function paramsOf(p: PyValue): Params | null {
  if (isPyDict(p)) {
    const props = p.get("properties");
    const type = p.get("type");
    const use = props !== undefined && isPyDict(props) && type !== undefined && type !== null;
    return { kind: "dict", keys: new Set((use ? props as PyDict : p).keys()) };
  }
  // `'properties' in` a list or str is true -> p['properties'] raises; numbers and None raise
  if (Array.isArray(p)) return p.includes("properties") ? null : { kind: "list", items: p };
  if (typeof p === "string") return p.includes("properties") ? null : { kind: "str", text: p };
  return null;
}

interface Parsed {
  think: string;
  calls: RolloutCall[];
  reply: string | null;
}

/** STAR's parse_generation: a missing <think> is put in front; one think block; the answer. */
function parse(completion: string): Parsed | Verdict {
  const text = completion.includes(THINK_OPEN) ? completion : THINK_OPEN + completion;
  const thinks = findAllBetween(text, THINK_OPEN, THINK_CLOSE);
  if (thinks.length !== 1) {
    return reject("think", `${thinks.length} <think>…</think> blocks instead of one`);
  }
  const think = pyStrip(thinks[0]);
  const answer = pyStrip(text.slice(text.lastIndexOf(THINK_CLOSE) + THINK_CLOSE.length));
  if (!answer.includes(CALL_OPEN)) return { think, calls: [], reply: answer };
  const calls: RolloutCall[] = [];
  for (const body of findAllBetween(answer, CALL_OPEN, CALL_CLOSE)) {
    const where = `tool call ${calls.length + 1}`;
    let v: PyValue;
    try {
      v = parsePyJson(body);
    } catch (e) {
      return reject("tool_call", `${where} is not valid JSON (${(e as Error).message})`);
    }
    if (!isPyDict(v) || !v.has("name") || !v.has("arguments")) {
      return reject("tool_call", `${where} is not an object with "name" and "arguments"`);
    }
    calls.push({ name: v.get("name")!, arguments: v.get("arguments")! });
  }
  return { think, calls, reply: null };
}

/**
 * STAR's format check and parse of one completion (the text sampled after the prompt).
 * `tools` is rolloutTools(prompt), computed once per prompt.
 */
export function judgeCompletion(tools: RolloutTools, completion: string): Verdict {
  const parsed = parse(completion);
  if ("ok" in parsed) return parsed;
  if (!(tools instanceof Map)) return reject("tools", tools.error);
  for (const [i, call] of parsed.calls.entries()) {
    const key = nameKey(call.name);
    const params = key === undefined ? undefined : tools.get(key);
    if (params === undefined) {
      return reject("name", `tool call ${i + 1} names no tool of the prompt`);
    }
    const names = argumentNames(call.arguments);
    if (names === null) {
      return reject("arguments", `tool call ${i + 1} has arguments STAR cannot read`);
    }
    for (const n of names) {
      if (!accepts(params, n)) {
        return reject("arguments", `tool call ${i + 1} has an argument the tool does not declare`);
      }
    }
  }
  const { think, calls, reply } = parsed;
  return {
    ok: true,
    message: {
      reasoning_content: think === "" ? null : think,
      content: calls.length === 0 && reply ? reply : null,
      tool_calls: calls.length > 0 ? calls : null,
    },
  };
}

/** What `for param in arguments` visits; null where Python cannot iterate. */
function argumentNames(args: PyValue): PyValue[] | null {
  if (isPyDict(args)) return [...args.keys()];
  if (Array.isArray(args)) return args;
  if (typeof args === "string") return Array.from(args); // code points, as Python iterates
  return null;
}

/** `param in parameters`; false also where Python raises (unhashable key, non-str in str). */
function accepts(p: Params, param: PyValue): boolean {
  switch (p.kind) {
    case "dict":
      return typeof param === "string" && p.keys.has(param);
    case "list":
      return p.items.some((x) => pyEquals(x, param));
    case "str":
      return typeof param === "string" && pyContains(p.text, param);
  }
}

/** Python's `a == b` between values of json.loads, inside `in` (NaN is one object: equal). */
export function pyEquals(a: PyValue, b: PyValue): boolean {
  const num = (v: PyValue) =>
    typeof v === "number" || typeof v === "bigint" || typeof v === "boolean";
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  if (num(a) && num(b)) {
    return pyNumbersEqual(a as number | bigint | boolean, b as number | bigint | boolean);
  }
  if (a === null || b === null || typeof a === "string" || typeof b === "string") return a === b;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  }
  if (isPyDict(a) && isPyDict(b)) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !pyEquals(v, b.get(k)!)) return false;
    return true;
  }
  return false;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Python `needle in text`: a match may not cut a surrogate pair (one code point in Python). */
export function pyContains(text: string, needle: string): boolean {
  const cuts = (j: number) =>
    j > 0 && j < text.length && isHigh(text.charCodeAt(j - 1)) && isLow(text.charCodeAt(j));
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
    if (!cuts(i) && !cuts(i + needle.length)) return true;
  }
  return false;
}

/** Python's ordering of str: by code point (lone surrogates are their own code points). */
function compareCodePoints(a: string, b: string): number {
  let i = 0, j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!, y = b.codePointAt(j)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return (a.length - i) - (b.length - j);
}

/** `json.dumps(v, sort_keys=True)` (ensure_ascii, default separators). */
export function sortedJson(v: PyValue): string {
  if (Array.isArray(v)) return "[" + v.map(sortedJson).join(", ") + "]";
  if (isPyDict(v)) {
    const keys = [...v.keys()].sort(compareCodePoints);
    return "{" + keys.map((k) => `${dumpsPyJson(k)}: ${sortedJson(v.get(k)!)}`).join(", ") + "}";
  }
  return dumpsPyJson(v);
}

const callDict = (c: RolloutCall): PyDict =>
  new Map<string, PyValue>([["name", c.name], ["arguments", c.arguments]]);

/**
 * Two messages are duplicates when their keys are equal: STAR hashes json.dumps(sort_keys) of
 * content, the tool calls sorted by their own sorted JSON, and reasoning_content (the string
 * itself serves here; STAR takes its md5).
 */
export function dedupeKey(m: RolloutMessage): string {
  const calls = m.tool_calls && m.tool_calls.length > 0
    ? "[" + m.tool_calls.map((c) => sortedJson(callDict(c))).sort().join(", ") + "]"
    : "null";
  return `{"content": ${sortedJson(m.content)}, "reasoning_content": ${
    sortedJson(m.reasoning_content)
  }, "tool_calls": ${calls}}`;
}

/** The message as STAR writes it: role, content, tool_calls, reasoning_content. */
export function messageDict(m: RolloutMessage): PyDict {
  return new Map<string, PyValue>([
    ["role", "assistant"],
    ["content", m.content],
    ["tool_calls", m.tool_calls && m.tool_calls.map(callDict)],
    ["reasoning_content", m.reasoning_content],
  ]);
}

/** The messages in order, each duplicate after its first occurrence left out. */
export function uniqueMessages(messages: Iterable<RolloutMessage>): RolloutMessage[] {
  const seen = new Set<string>();
  const out: RolloutMessage[] = [];
  for (const m of messages) {
    const k = dedupeKey(m);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(m);
  }
  return out;
}

/**
 * The output rows of one conversation: per message, the input row (other fields kept in their
 * places) with `messages` = messages[:-1] + [that message].
 */
export function rolloutRows(row: PyDict, messages: RolloutMessage[]): PyDict[] {
  const history = row.get("messages") as PyValue[];
  return messages.map((m) => {
    const out = new Map(row);
    out.set("messages", [...history.slice(0, -1), messageDict(m)]);
    return out;
  });
}
