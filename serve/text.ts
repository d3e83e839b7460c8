/**
 * Text out of generated ids, as an inference server returns it: decoded incrementally (special
 * tokens skipped), cut before the first stop string (which is not returned, as vLLM and OpenAI
 * do), and released for streaming only when it can no longer change: a trailing incomplete
 * UTF-8 sequence, or a tail that may still grow into a stop string, is held back.
 * And the chat reply's parts, as vLLM's qwen3 reasoning parser and hermes tool parser split
 * them: the think text, the content, and `<tool_call>` blocks as OpenAI tool calls.
 */
import type { Tokenizer } from "../data/tokenizer.ts";
import { dumpsPyJson, parsePyJson, type PyValue } from "../lib/py/json.ts";

const REPLACEMENT = "\uFFFD";
/** Tokens decoded again at each step before the settled prefix is extended. */
const WINDOW = 8;

export class IncrementalText {
  #tok: Tokenizer;
  #stops: string[];
  #ids: number[] = [];
  /** Text of ids[0..#settledIds], which later tokens cannot change. */
  #settled = "";
  #settledIds = 0;
  #text = "";
  #sent = 0;
  /** The stop string that ended the text, once one has. */
  stoppedBy: string | undefined;

  constructor(tok: Tokenizer, stops: string[] = []) {
    this.#tok = tok;
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** The text so far (cut before a stop string once one appeared). */
  get text(): string {
    return this.#text;
  }

  /** Adds a token; returns true when a stop string has appeared (the text is then final). */
  push(id: number): boolean {
    if (this.stoppedBy !== undefined) return true;
    this.#ids.push(id);
    const tail = this.#tok.decode(this.#ids.slice(this.#settledIds), { skipSpecialTokens: true });
    const before = this.#text.length;
    this.#text = this.#settled + tail;
    if (this.#ids.length - this.#settledIds > WINDOW && !tail.endsWith(REPLACEMENT)) {
      this.#settled = this.#text;
      this.#settledIds = this.#ids.length;
    }
    const longest = Math.max(0, ...this.#stops.map((s) => s.length));
    const from = Math.max(0, before - longest);
    let cut = -1;
    for (const s of this.#stops) {
      const at = this.#text.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.stoppedBy = s;
      }
    }
    if (cut >= 0) this.#text = this.#text.slice(0, cut);
    return cut >= 0;
  }

  /** The text not yet released that can no longer change; `final`: everything left. */
  take(final = false): string {
    let end = this.#text.length;
    if (!final) {
      while (end > this.#sent && this.#text[end - 1] === REPLACEMENT) end--;
      end = Math.min(end, this.#sent + safeLength(this.#text.slice(this.#sent, end), this.#stops));
    }
    const out = this.#text.slice(this.#sent, end);
    this.#sent = end;
    return out;
  }
}

/** How much of `s` cannot be the start of one of `stops` continuing past its end. */
export function safeLength(s: string, stops: string[]): number {
  let hold = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, s.length); n > hold; n--) {
      if (s.endsWith(stop.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return s.length - hold;
}

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";
export const TOOL_OPEN = "<tool_call>";
export const TOOL_CLOSE = "</tool_call>";

/**
 * The think text and the rest, as vLLM's qwen3 reasoning parser splits a whole reply: text
 * before a `<think>` is dropped with it; without `</think>` everything is content.
 */
export function splitReasoning(text: string): { reasoning: string | null; content: string | null } {
  const open = text.indexOf(THINK_OPEN);
  const rest = open >= 0 ? text.slice(open + THINK_OPEN.length) : text;
  const close = rest.indexOf(THINK_CLOSE);
  if (close < 0) return { reasoning: null, content: rest };
  const content = rest.slice(close + THINK_CLOSE.length);
  return { reasoning: rest.slice(0, close), content: content || null };
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/**
 * The tool calls of a reply's content, as vLLM's hermes parser reads them: every
 * `<tool_call>…</tool_call>` block (and an unclosed last one) is JSON with a `name` and
 * `arguments` (both required), the arguments written back as `json.dumps(arguments, ensure_ascii=False)`; the
 * content is the text before the first `<tool_call>` (null when empty). If any block is not
 * such JSON, nothing is a call and the whole text stays content.
 */
export function parseToolCalls(
  content: string,
  newId: () => string,
): { content: string | null; toolCalls: ToolCall[] } {
  const first = content.indexOf(TOOL_OPEN);
  if (first < 0) return { content, toolCalls: [] };
  const calls: ToolCall[] = [];
  const re = /<tool_call>([\s\S]*?)<\/tool_call>|<tool_call>([\s\S]*)/g;
  try {
    for (const m of content.matchAll(re)) {
      const body = (m[1] ?? m[2]).trim();
      const v = parsePyJson(body);
      if (!(v instanceof Map)) throw new SyntaxError("not an object");
      const name = v.get("name");
      if (typeof name !== "string") throw new SyntaxError("no name");
      if (!v.has("arguments")) throw new SyntaxError("no arguments");
      const args: PyValue = v.get("arguments")!;
      calls.push({
        id: newId(),
        type: "function",
        function: { name, arguments: dumpsPyJson(args, { ensureAscii: false }) },
      });
    }
  } catch {
    return { content, toolCalls: [] };
  }
  const before = content.slice(0, first);
  return { content: before || null, toolCalls: calls };
}
