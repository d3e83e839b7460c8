/**
 * Raw rows of the four public sets STAR trains on, as format_data.py turns them into messages rows
 * (`id`, `messages`, `tools`): toolmind (ToolMind graphsyn.jsonl), toolace (ToolACE-Qwen-cleaned,
 * one row per assistant turn), xlam (xlam-function-calling-60k), hammer (STAR's rollout rows).
 * Each converter's comment gives its schema. Where the script stops on an exception it does not
 * catch, the row is dropped here with a reason instead.
 */
import {
  dumpsPyJson,
  isPyDict,
  parsePyJson,
  type PyDict,
  pyStr,
  type PyValue,
} from "../../lib/py/json.ts";
import { countOf } from "../../lib/py/text.ts";
import { checkCallArguments, formatTool, repairToolNames, RowProblem } from "./tools.ts";

export const DATASETS = ["toolmind", "toolace", "xlam", "hammer"] as const;
export type DatasetName = typeof DATASETS[number];

export interface Converted {
  rows: PyDict[];
  /** What was dropped from this raw row (a message, the rest of a conversation, the row). */
  problems: RowProblem[];
}

export interface ConvertContext {
  /** Position of the raw row among the (sampled) rows, 0-based: STAR's `i`. */
  index: number;
  /** Rows produced so far from earlier raw rows (hammer's fallback id uses it). */
  produced: number;
}

const dict = (entries: [string, PyValue][]): PyDict => new Map(entries);

function requireDict(v: PyValue, what: string): PyDict {
  if (!isPyDict(v)) throw new RowProblem(`${what} is not an object`);
  return v;
}

function requireList(v: PyValue | undefined, what: string): PyValue[] {
  if (v === undefined) throw new RowProblem(`field "${what}" is missing`);
  if (!Array.isArray(v)) throw new RowProblem(`field "${what}" is not a list`);
  return v;
}

function get(d: PyDict, key: string, what = key): PyValue {
  if (!d.has(key)) throw new RowProblem(`field "${what}" is missing`);
  return d.get(key)!;
}

/** Python truthiness of a JSON value. */
export function truthy(v: PyValue | undefined): boolean {
  if (v === undefined || v === null || v === false) return false;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "bigint") return v !== 0n;
  if (typeof v === "string" || Array.isArray(v)) return v.length > 0;
  if (isPyDict(v)) return v.size > 0;
  return true;
}

/** `json.loads(v)` when v is a string, else v. */
function decoded(v: PyValue, what: string): PyValue {
  if (typeof v !== "string") return v;
  try {
    return parsePyJson(v);
  } catch (err) {
    throw new RowProblem(`field "${what}" is not valid JSON`, (err as Error).message);
  }
}

// --- toolmind: {"conversations": [{role, content (may hold <think>), tool_calls: [{function}]}],
// "tools": [OpenAI tools], ...}; reasoning moves to reasoning_content, other fields are kept ----

function toolmindAssistant(m: PyDict): PyDict {
  let calls: PyValue = null;
  if (m.has("tool_calls")) {
    const raw = requireList(m.get("tool_calls")!, "tool_calls");
    calls = raw.map((tc) => {
      const c = requireDict(tc, "a tool call");
      return c.has("function") ? c.get("function")! : c;
    });
  }
  let reasoning: PyValue = null;
  let content: PyValue = null;
  if (m.has("content")) {
    const whole = m.get("content")!;
    if (typeof whole !== "string") throw new RowProblem("assistant content is not a string");
    if (whole.includes("<think>")) {
      // STAR refuses only when both tags are miscounted, then needs one <think>...</think>.
      if (countOf(whole, "<think>") !== 1 && countOf(whole, "</think>") !== 1) {
        throw new RowProblem("invalid reasoning content", "", "skip");
      }
      const a = whole.indexOf("<think>");
      const b = whole.indexOf("</think>", a + 7);
      if (b < 0) throw new RowProblem("invalid reasoning content", "", "skip");
      reasoning = whole.slice(a + 7, b);
      content = whole.slice(whole.lastIndexOf("</think>") + 8);
    } else content = whole;
  }
  return dict([
    ["role", "assistant"],
    ["reasoning_content", reasoning],
    ["tool_calls", calls],
    ["content", content],
  ]);
}

export function convertToolmind(raw: PyValue, ctx: ConvertContext): Converted {
  const row = new Map(requireDict(raw, "the row"));
  const conversation = requireList(row.get("conversations"), "conversations");
  row.delete("conversations");
  row.set("id", `toolmind_${ctx.index}`);
  const messages: PyValue[] = [];
  for (const m of conversation) {
    const msg = requireDict(m, "a message");
    const role = get(msg, "role", "role");
    if (role === "assistant") {
      try {
        messages.push(toolmindAssistant(msg));
      } catch (err) {
        if (err instanceof RowProblem && err.kind === "skip") return { rows: [], problems: [err] };
        throw err;
      }
    } else if (role === "user" || role === "tool") messages.push(msg);
    else throw new RowProblem("unsupported role", `"${pyStr(role)}"`);
  }
  row.set("messages", messages);
  const tools = requireList(get(row, "tools"), "tools");
  row.set("tools", tools.map(formatTool));
  return { rows: [row], problems: [] };
}

// --- toolace: {"tools": JSON text, "conversations": JSON text, "system" (ignored)}; one row per
// assistant turn, consecutive tool-call messages merged into one parallel turn --------------

export function convertToolace(raw: PyValue, ctx: ConvertContext): Converted {
  const rows: PyDict[] = [];
  const problems: RowProblem[] = [];
  const i = ctx.index;
  try {
    const row = requireDict(raw, "the row");
    const tools = decoded(get(row, "tools"), "tools");
    const conversation = decoded(get(row, "conversations"), "conversations");
    if (!Array.isArray(conversation)) throw new RowProblem(`field "conversations" is not a list`);
    const toolList = Array.isArray(tools) ? tools : null;
    const history: PyDict[] = [];
    let parallel: PyValue[] = [];
    const emit = (j: number, message: PyDict) => {
      rows.push(dict([
        ["id", `toolace-${i}-${j}`],
        ["messages", [...history, message]],
        ["tools", tools],
      ]));
      history.push(message);
    };
    for (let j = 0; j < conversation.length; j++) {
      const m = requireDict(conversation[j], "a message");
      const role = get(m, "role");
      if (role === "user" && truthy(m.get("content"))) {
        history.push(dict([["role", "user"], ["content", m.get("content")!]]));
      } else if (role === "tool") {
        let content = get(m, "content");
        if (typeof content !== "string") content = dumpsPyJson(content, { ensureAscii: false });
        history.push(dict([["role", "tool"], ["content", content]]));
      } else if (role === "assistant") {
        if (truthy(m.get("content"))) {
          emit(j, dict([["role", "assistant"], ["content", m.get("content")!]]));
        } else if (truthy(m.get("tool_calls"))) {
          const calls = requireList(m.get("tool_calls")!, "tool_calls").map((tc) =>
            get(requireDict(tc, "a tool call"), "function", "function")
          );
          if (toolList === null) throw new RowProblem(`field "tools" is not a list`);
          try {
            repairToolNames(calls, toolList);
            checkCallArguments(calls, toolList);
          } catch (err) {
            if (err instanceof RowProblem && err.kind === "skip") {
              problems.push(err);
              continue;
            }
            throw err;
          }
          // STAR keeps calls gathered before a skipped message: they join the next group.
          parallel.push(...calls);
          const next = conversation[j + 1];
          const nextCalls = next === undefined
            ? false
            : truthy(requireDict(next, "a message").get("tool_calls"));
          if (!nextCalls) {
            emit(j, dict([["role", "assistant"], ["tool_calls", parallel]]));
            parallel = [];
          }
        } else {
          problems.push(
            new RowProblem("assistant message without content or tool calls", "", "skip"),
          );
        }
      } else {
        problems.push(new RowProblem("unexpected role", `"${pyStr(role)}"`, "skip"));
      }
    }
  } catch (err) {
    if (!(err instanceof RowProblem)) throw err;
    problems.push(err);
  }
  return { rows, problems };
}

// --- xlam: {"id", "query", "answers": JSON text, "tools": JSON text}: a user turn, the gold calls

export function convertXlam(raw: PyValue, _ctx: ConvertContext): Converted {
  const row = requireDict(raw, "the row");
  const id = `xlam_${pyStr(get(row, "id"))}`;
  const tools = decoded(get(row, "tools"), "tools");
  if (!Array.isArray(tools)) throw new RowProblem(`field "tools" is not a list`);
  const newTools = tools.map((t) => {
    const tool = requireDict(t, "a tool");
    return dict([
      ["name", get(tool, "name", "tools[].name")],
      ["parameters", tool.has("parameters") ? tool.get("parameters")! : new Map()],
      ["description", tool.has("description") ? tool.get("description")! : ""],
    ]);
  });
  const answers = decoded(get(row, "answers"), "answers");
  const messages: PyValue[] = [
    dict([["role", "user"], ["content", get(row, "query")]]),
    dict([["role", "assistant"], ["content", null], [
      "tool_calls",
      truthy(answers) ? answers : null,
    ]]),
  ];
  return { rows: [dict([["id", id], ["messages", messages], ["tools", newTools]])], problems: [] };
}

// --- hammer: {"trace_id", "functions", "messages", "expected_output"}: the text as the answer --

export function convertHammer(raw: PyValue, ctx: ConvertContext): Converted {
  const row = requireDict(raw, "the row");
  const id = row.has("trace_id") ? row.get("trace_id")! : `hammer_${ctx.produced}`;
  const functions = row.has("functions") ? row.get("functions")! : [];
  if (!Array.isArray(functions)) throw new RowProblem(`field "functions" is not a list`);
  const tools = functions.map((f) => {
    const fn = requireDict(f, "a function");
    return dict([
      ["name", get(fn, "name", "functions[].name")],
      ["parameters", fn.has("parameters") ? fn.get("parameters")! : new Map()],
      ["description", fn.has("description") ? fn.get("description")! : ""],
    ]);
  });
  const given = row.has("messages") ? row.get("messages")! : [];
  if (!Array.isArray(given)) throw new RowProblem(`field "messages" is not a list`);
  const messages: PyValue[] = given.map((m) => {
    const msg = requireDict(m, "a message");
    return dict([["role", get(msg, "role", "messages[].role")], [
      "content",
      msg.get("content") ?? null,
    ]]);
  });
  messages.push(dict([
    ["role", "assistant"],
    ["content", row.has("expected_output") ? row.get("expected_output")! : ""],
    ["tool_calls", null],
  ]));
  return { rows: [dict([["id", id], ["messages", messages], ["tools", tools]])], problems: [] };
}

export const CONVERTERS: { [K in DatasetName]: (raw: PyValue, ctx: ConvertContext) => Converted } =
  {
    toolmind: convertToolmind,
    toolace: convertToolace,
    xlam: convertXlam,
    hammer: convertHammer,
  };

/** Runs a converter; a problem that ends the row becomes the row's only problem. */
export function convertRow(name: DatasetName, raw: PyValue, ctx: ConvertContext): Converted {
  try {
    return CONVERTERS[name](raw, ctx);
  } catch (err) {
    if (!(err instanceof RowProblem)) throw err;
    return { rows: [], problems: [err] };
  }
}
