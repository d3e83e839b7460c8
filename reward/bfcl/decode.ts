/**
 * From a raw completion to the calls BFCL's checker sees, as its Qwen FC handler does it:
 * the text after the last `</think>` (leading "\n" removed) when one is closed, else all of it;
 * every `<tool_call>\n...\n</tool_call>` block (newlines required, shortest match, no overlap)
 * through Python's `json.loads`, blocks that fail silently dropped; then each object becomes
 * one call `{name: arguments}`, any non-object block or bad object failing the whole decode
 * with the message Python's exception would carry. Nothing else (no repair, no `\r\n`).
 */
import { isPyDict, parsePyJson, type PyDict, type PyValue } from "../../lib/py/json.ts";
import { findAllBetween } from "../../lib/py/text.ts";
import { pyTypeName } from "./_py.ts";

/** The model response BFCL stores for a completion (`_parse_query_response_prompting`). */
export function cleanCompletion(text: string): string {
  const at = text.lastIndexOf("</think>");
  if (at < 0) return text;
  let i = at + "</think>".length;
  while (text.charCodeAt(i) === 0x0a) i++;
  return text.slice(i);
}

/** The JSON values of the tool-call blocks that parse (`_extract_tool_calls`). */
export function extractToolCalls(text: string): PyValue[] {
  const out: PyValue[] = [];
  for (const body of findAllBetween(text, "<tool_call>\n", "\n</tool_call>")) {
    try {
      out.push(parsePyJson(body));
    } catch {
      // json.loads failed: BFCL drops the block without a word.
    }
  }
  return out;
}

/** One decoded call: the `name` value as written (usually a string) and its arguments. */
export interface DecodedCall {
  name: PyValue;
  args: PyDict;
}

export type Decoded = { ok: true; calls: DecodedCall[] } | { ok: false; error: string };

/**
 * `decode_ast` of the stored response. `error` is `str(e)` of the exception Python raises:
 * a non-object block, a missing "name"/"arguments", non-object arguments, a list or object name.
 */
export function decodeAst(result: string): Decoded {
  const blocks = extractToolCalls(result);
  for (const b of blocks) {
    if (!isPyDict(b)) {
      return { ok: false, error: `Model did not return a list of function calls: ${result}` };
    }
  }
  const calls: DecodedCall[] = [];
  for (const b of blocks as PyDict[]) {
    if (!b.has("name")) return { ok: false, error: "'name'" };
    const name = b.get("name")!;
    if (!b.has("arguments")) return { ok: false, error: "'arguments'" };
    const args = b.get("arguments")!;
    if (!isPyDict(args)) {
      return { ok: false, error: `'${pyTypeName(args)}' object has no attribute 'items'` };
    }
    if (Array.isArray(name) || isPyDict(name)) {
      return { ok: false, error: `unhashable type: '${pyTypeName(name)}'` };
    }
    calls.push({ name, args });
  }
  return { ok: true, calls };
}
