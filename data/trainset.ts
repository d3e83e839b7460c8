/**
 * The STAR conversion of a messages row into a trainset row (CONTRACT.md, "Trainset"):
 * inputs = template(messages[:-1], tools, add_generation_prompt) + "<think>";
 * targets = template([messages[-1]]) without the leading "<|im_start|>assistant\n" and a
 * leading "<think>", with "</think>" put in front when it has none, and (optionally) the last
 * message's reasoning_content in front of that. `content: null` renders as "".
 * Rows are read as Python values (reward/py_json.ts) so numbers and key order survive.
 */
import { dumpsPyJson, isPyDict, type PyDict, type PyValue } from "../lib/py/json.ts";
import { type ChatTemplate, TemplateError } from "./chat_template.ts";
import { DataError } from "../lib/errors.ts";

export const ASSISTANT_HEADER = "<|im_start|>assistant\n";
export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

/** A messages row that passed checkMessagesRow. */
export interface MessagesRow {
  id?: PyValue;
  messages: PyDict[];
  tools?: PyValue;
}

export interface TrainsetRow {
  /** The messages row's id; null when it had none (as Python's row.get("id")). */
  id: PyValue;
  inputs: string;
  targets: string;
}

/** Where a row came from, for error messages. */
export interface RowPlace {
  file: string;
  line: number;
}

function typeName(v: PyValue | undefined): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isPyDict(v)) return "an object";
  switch (typeof v) {
    case "string":
      return "a string";
    case "boolean":
      return "a boolean";
    default:
      return "a number";
  }
}

/**
 * Checks the shape of a messages row: what the template needs and what the conversion
 * relies on. Throws DataError naming the file, line and field.
 */
export function checkMessagesRow(v: PyValue, at: RowPlace): MessagesRow {
  const fail = (field: string | undefined, reason: string): never => {
    throw new DataError(at.file, at.line, reason, field);
  };
  const expect = (field: string, x: PyValue | undefined, what: string): never =>
    fail(
      field,
      x === undefined
        ? `field "${field}" is missing`
        : `field "${field}" must be ${what}, not ${typeName(x)}`,
    );
  if (!isPyDict(v)) return fail(undefined, `a row must be a JSON object, not ${typeName(v)}`);
  const messages = v.get("messages");
  if (!Array.isArray(messages)) return expect("messages", messages, "a list");
  if (messages.length < 2) {
    fail(
      "messages",
      `field "messages" needs at least 2 messages (the prompt and the answer), has ${messages.length}`,
    );
  }
  messages.forEach((m, i) => {
    const f = `messages[${i}]`;
    if (!isPyDict(m)) return expect(f, m, "an object");
    const role = m.get("role");
    if (typeof role !== "string") expect(`${f}.role`, role, "a string");
    for (const key of ["content", "reasoning_content"]) {
      const c = m.get(key);
      if (c !== undefined && c !== null && typeof c !== "string") {
        expect(`${f}.${key}`, c, "a string or null");
      }
    }
    const calls = m.get("tool_calls");
    if (calls === undefined || calls === null) return;
    if (!Array.isArray(calls)) return expect(`${f}.tool_calls`, calls, "a list");
    calls.forEach((call, j) => {
      let g = `${f}.tool_calls[${j}]`;
      if (!isPyDict(call)) return expect(g, call, "an object");
      let target: PyDict = call;
      const fn = call.get("function");
      if (fn !== undefined && fn !== null) {
        g += ".function";
        if (!isPyDict(fn)) return expect(g, fn, "an object");
        if (fn.size > 0) target = fn;
      }
      const name = target.get("name");
      if (typeof name !== "string") expect(`${g}.name`, name, "a string");
      if (!target.has("arguments")) expect(`${g}.arguments`, undefined, "");
    });
  });
  const last = messages[messages.length - 1] as PyDict;
  if (last.get("role") !== "assistant") {
    fail(
      `messages[${messages.length - 1}].role`,
      `the last message must have role "assistant", not "${last.get("role")}"`,
    );
  }
  const tools = v.get("tools");
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) expect("tools", tools, "a list");
    else {
      tools.forEach((t, i) => {
        if (!isPyDict(t)) expect(`tools[${i}]`, t, "an object");
      });
    }
  }
  const row: MessagesRow = { messages: messages as PyDict[] };
  if (v.has("id")) row.id = v.get("id");
  if (tools !== undefined) row.tools = tools;
  return row;
}

/**
 * A copy of a message with `content: null` (or no content) turned into "", as the published
 * Qwen3 templates treat a content that is not a string.
 */
export function withContent(m: PyDict): PyDict {
  const c = m.get("content");
  if (typeof c === "string") return m;
  const out = new Map(m);
  out.set("content", "");
  return out;
}

export interface ConvertOptions {
  /** Put the last message's reasoning_content in front of the targets. */
  addReasoningContent?: boolean;
}

type TemplateChoice = ChatTemplate | ((withTools: boolean) => ChatTemplate);

const pick = (template: TemplateChoice, withTools: boolean) =>
  typeof template === "function" ? template(withTools) : template;

function templateFailed(err: unknown, at: RowPlace): unknown {
  if (!(err instanceof TemplateError)) return err;
  return new DataError(at.file, at.line, `the chat template failed: ${err.message}`);
}

/**
 * The prompt a teacher answers (STAR's teacher rollout samples after it): the template of
 * messages[:-1] with the tools and the generation prompt. The trainset's inputs are this text
 * followed by "<think>".
 */
export function promptText(row: MessagesRow, template: TemplateChoice, at: RowPlace): string {
  const tools = row.tools ?? null;
  try {
    return pick(template, tools !== null).render({
      messages: row.messages.slice(0, -1).map(withContent),
      tools,
      add_generation_prompt: true,
    });
  } catch (err) {
    throw templateFailed(err, at);
  }
}

/**
 * The STAR conversion; a template failure becomes a DataError for the row. `template` may be a
 * chooser (transformers picks a "tool_use" template, where one exists, when tools are given).
 */
export function toTrainsetRow(
  row: MessagesRow,
  template: TemplateChoice,
  at: RowPlace,
  opts: ConvertOptions = {},
): TrainsetRow {
  const inputs = promptText(row, template, at) + THINK_OPEN;
  const last = withContent(row.messages[row.messages.length - 1]);
  let targets: string;
  try {
    targets = pick(template, false).render({
      messages: [last],
      tools: null,
      add_generation_prompt: false,
    });
  } catch (err) {
    throw templateFailed(err, at);
  }
  if (targets.startsWith(ASSISTANT_HEADER)) targets = targets.slice(ASSISTANT_HEADER.length);
  if (targets.startsWith(THINK_OPEN)) targets = targets.slice(THINK_OPEN.length);
  if (!targets.includes(THINK_CLOSE)) targets = THINK_CLOSE + targets;
  if (opts.addReasoningContent) {
    const reasoning = last.get("reasoning_content");
    if (typeof reasoning === "string") targets = reasoning + targets;
  }
  return { id: row.id ?? null, inputs, targets };
}

/** One output line as Python's json.dumps(row, ensure_ascii=False) writes it. */
export function formatTrainsetRow(row: TrainsetRow): string {
  const m = new Map<string, PyValue>([
    ["id", row.id],
    ["inputs", row.inputs],
    ["targets", row.targets],
  ]);
  return dumpsPyJson(m, { ensureAscii: false });
}
