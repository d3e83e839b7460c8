/**
 * The prompt text BFCL's Qwen FC handler sends for a single-turn entry (`qwen_fc.py`
 * `_format_prompt`, after `utils.py` adds the language hints): the function docs, with
 * " Note that the provided function is in <language> syntax." appended to each description
 * (Java/JS params also rewritten to "string" with their type, items and schema told in words),
 * each written as Python's `json.dumps` writes it (ensure_ascii, ", "/": " separators, `5.0`
 * stays `5.0`), inside Qwen3's tools system block; then the turns, then `<|im_start|>assistant\n`
 * (thinking on, no `<think>` added). No chat template is involved; the text goes out as is.
 */
import { dumpsPyJson, isPyDict, type PyDict, pyStr, type PyValue } from "../../lib/py/json.ts";
import type { Language } from "./checker.ts";
import { pyEquals } from "./_py.ts";

/** The language BFCL assumes for a category (`is_java`, `is_js`). */
export function categoryLanguage(category: string): Language {
  if (category.includes("javascript")) return "javascript";
  if (category.includes("java")) return "java";
  return "python";
}

const HINTS: Record<Language, string> = {
  python: " Note that the provided function is in Python 3 syntax.",
  java: " Note that the provided function is in Java 8 SDK syntax.",
  javascript: " Note that the provided function is in JavaScript syntax.",
};

function copy(v: PyValue): PyValue {
  if (Array.isArray(v)) return v.map(copy);
  if (isPyDict(v)) return new Map([...v].map(([k, x]) => [k, copy(x)]));
  return v;
}

function field(d: PyValue, key: string, where: string): PyValue {
  if (isPyDict(d) && d.has(key)) return d.get(key)!;
  throw new Error(`${where} has no "${key}"`);
}

function text(d: PyDict, key: string, where: string): string {
  const v = field(d, key, where);
  if (typeof v !== "string") throw new Error(`${where}: "${key}" is not a string`);
  return v;
}

/**
 * The docs as BFCL hands them to the model (`_func_doc_language_specific_pre_processing`):
 * copies, with the language hint and, for Java/JS, every param typed "string" and described.
 */
export function docsForPrompt(functions: PyValue[], category: string): PyValue[] {
  const lang = categoryLanguage(category);
  return functions.map((f, i) => {
    const doc = copy(f) as PyDict;
    const where = `function ${i + 1}`;
    doc.set("description", text(doc, "description", where) + HINTS[lang]);
    if (lang === "python") return doc;
    const props = field(field(doc, "parameters", where), "properties", where);
    if (!isPyDict(props)) throw new Error(`${where}: "properties" is not an object`);
    const langName = lang === "java" ? "Java" : "JavaScript";
    for (const [name, p] of props) {
      if (!isPyDict(p)) throw new Error(`${where}: parameter "${name}" is not an object`);
      const at = `${where} parameter "${name}"`;
      const type = field(p, "type", at);
      let desc = text(p, "description", at);
      desc += type === "any"
        ? ` This parameter can be of any type of ${langName} object in string representation.`
        : ` This is ${langName} ${pyStr(type)} type parameter in string representation.`;
      const listType = lang === "java"
        ? type === "ArrayList" || type === "Array"
        : type === "array";
      if (listType) {
        const itemType = field(field(p, "items", at), "type", at);
        desc += ` The list elements are of type ${
          pyStr(itemType)
        }; they are not in string representation.`;
        p.delete("items");
      }
      if (lang === "javascript" && type === "dict" && p.has("properties")) {
        desc += ` The dictionary entries have the following schema; they are not in string ` +
          `representation. ${dumpsPyJson(p.get("properties")!)}`;
        p.delete("properties");
      }
      p.set("description", desc);
      p.set("type", "string");
    }
    return doc;
  });
}

const TOOLS_HEAD = "# Tools\n\nYou may call one or more functions to assist with the user " +
  "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>";
const TOOLS_TAIL = "\n</tools>\n\nFor each function call, return a json object with function " +
  "name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n" +
  '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n';

function get(m: PyDict, key: string): PyValue | undefined {
  return m.get(key);
}

function stripNewlines(s: string, left: boolean, right: boolean): string {
  let a = 0, b = s.length;
  if (left) { while (a < b && s.charCodeAt(a) === 0x0a) a++; }
  if (right) { while (b > a && s.charCodeAt(b - 1) === 0x0a) b--; }
  return s.slice(a, b);
}

/** Python truthiness of a message field. */
function truthy(v: PyValue | undefined): boolean {
  if (v === undefined || v === null || v === false || v === "" || v === 0 || v === 0n) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPyDict(v)) return v.size > 0;
  return true;
}

/** `QwenFCHandler._format_prompt(messages, functions)`: the whole prompt text. */
export function formatQwenPrompt(messages: PyDict[], functions: PyValue[]): string {
  let out = "";
  const role0 = messages.length > 0 ? get(messages[0], "role") : undefined;
  if (functions.length > 0) {
    out += "<|im_start|>system\n";
    if (role0 === "system") out += text(messages[0], "content", "message 1") + "\n\n";
    out += TOOLS_HEAD;
    for (const tool of functions) out += "\n" + dumpsPyJson(tool);
    out += TOOLS_TAIL;
  } else if (role0 === "system") {
    out += `<|im_start|>system\n${pyStr(get(messages[0], "content") ?? null)}<|im_end|>\n`;
  }

  let lastQuery = messages.length - 1;
  for (let i = messages.length - 1; i >= 0; i--) {
    const c = get(messages[i], "content");
    if (
      get(messages[i], "role") === "user" && typeof c === "string" &&
      !(c.startsWith("<tool_response>") && c.endsWith("</tool_response>"))
    ) {
      lastQuery = i;
      break;
    }
  }

  messages.forEach((m, idx) => {
    const role = pyStr(get(m, "role") ?? null);
    const content0 = get(m, "content") ?? null;
    if (role === "user" || (role === "system" && idx !== 0)) {
      out += `<|im_start|>${role}\n${pyStr(content0)}<|im_end|>\n`;
    } else if (role === "assistant") {
      let content = pyStr(content0);
      let reasoning = "";
      const rc = get(m, "reasoning_content");
      if (truthy(rc)) reasoning = pyStr(rc!);
      else if (content.includes("</think>")) {
        const parts = content.split("</think>");
        const before = stripNewlines(parts[0], false, true).split("<think>");
        reasoning = stripNewlines(before[before.length - 1], true, false);
        content = stripNewlines(parts[parts.length - 1], true, false);
      }
      if (idx > lastQuery && (idx === messages.length - 1 || reasoning !== "")) {
        out += `<|im_start|>${role}\n<think>\n${stripNewlines(reasoning, true, true)}\n` +
          `</think>\n\n${stripNewlines(content, true, false)}`;
      } else {
        out += `<|im_start|>${role}\n${content}`;
      }
      const toolCalls = get(m, "tool_calls");
      if (toolCalls !== undefined) {
        const list = Array.isArray(toolCalls) ? toolCalls : [];
        for (const tc0 of list) {
          // BFCL compares each call with the first by value, not by position.
          const first = pyEquals(tc0, list[0]);
          if ((first && content !== "") || !first) out += "\n";
          let tc = tc0;
          if (isPyDict(tc) && tc.has("function")) tc = tc.get("function")!;
          const call = isPyDict(tc) ? tc : new Map<string, PyValue>();
          const args = call.get("arguments") ?? null;
          out += `<tool_call>\n{"name": "${pyStr(call.get("name") ?? null)}", "arguments": ` +
            `${typeof args === "string" ? args : dumpsPyJson(args)}}\n</tool_call>`;
        }
      }
      out += "<|im_end|>\n";
    } else if (role === "tool") {
      const prev = idx > 0 ? get(messages[idx - 1], "role") : undefined;
      const next = idx < messages.length - 1 ? get(messages[idx + 1], "role") : undefined;
      if (idx === 0 || prev !== "tool") out += "<|im_start|>user";
      out += `\n<tool_response>\n${pyStr(content0)}\n</tool_response>`;
      if (idx === messages.length - 1 || next !== "tool") out += "<|im_end|>\n";
    }
  });
  return out + "<|im_start|>assistant\n";
}

/** The prompt of one entry: its first turn's messages and its docs with the language hints. */
export function buildPrompt(
  entry: { category: string; messages: PyDict[]; functions: PyValue[] },
): string {
  return formatQwenPrompt(entry.messages, docsForPrompt(entry.functions, entry.category));
}
