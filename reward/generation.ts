/**
 * Parsing a generation: the text after the last `<|im_start|>assistant\n` of prompt +
 * completion, exactly one `<think>…</think>`, then either tool calls or a plain reply. Also the
 * gold label, which has the same shape after its single `</think>`.
 */
import { isPyDict, parseRange, type PyDict, type PyValue } from "../lib/py/json.ts";
import { countOf, pyStripBounds, rangesBetween } from "../lib/py/text.ts";
import { pyKey } from "../lib/py/values.ts";
import { RewardError } from "./errors.ts";

export interface Call {
  name: PyValue;
  /** pyKey(name): undefined for a list or dict name, null for NaN. */
  key: string | null | undefined;
  /** The `arguments` value as parsed. */
  args: PyValue;
}

/** What a generation says: calls (possibly none) or a reply (null when it made calls). */
export interface Answer {
  calls: Call[];
  reply: string | null;
}

const ASSISTANT = "<|im_start|>assistant\n";

/** Returns null when the format is broken (think tags, a call that is not a JSON object…). */
export function parseGeneration(prompt: string, completion: string): Answer | null {
  const [text, start] = generationText(prompt, completion);
  const end = text.length;
  if (rangesBetween(text, "<think>", "</think>", start, end).length !== 2) return null;
  const [from, to] = pyStripBounds(text, text.lastIndexOf("</think>") + "</think>".length, end);
  if (!holds(text, "<tool_call>", from, to)) return { calls: [], reply: text.slice(from, to) };
  const calls: Call[] = [];
  const bodies = rangesBetween(text, "<tool_call>", "</tool_call>", from, to);
  for (let k = 0; k < bodies.length; k += 2) {
    const call = parseCall(text, bodies[k], bodies[k + 1]);
    if (call === null) return null;
    calls.push(call);
  }
  return { calls, reply: null };
}

/**
 * The text after the last assistant header of prompt + completion, as [text, start] with the
 * generation being text.slice(start): the two are joined only when the header lies in the
 * prompt (which is long, and a joined string is copied whole when it is searched). Parsing then
 * reads the text in place, without slices.
 */
function generationText(prompt: string, completion: string): [string, number] {
  const n = ASSISTANT.length;
  const inCompletion = completion.lastIndexOf(ASSISTANT);
  if (inCompletion >= 0) return [completion, inCompletion + n];
  // A header that starts in the prompt's last n - 1 characters and ends in the completion.
  const from = Math.max(0, prompt.length - (n - 1));
  const seam = prompt.slice(from) + completion.slice(0, n - 1);
  const inSeam = seam.lastIndexOf(ASSISTANT);
  if (inSeam >= 0) return [completion, from + inSeam + n - prompt.length];
  const inPrompt = prompt.lastIndexOf(ASSISTANT);
  return [inPrompt < 0 ? prompt + completion : prompt.slice(inPrompt + n) + completion, 0];
}

/** `text.slice(from, to).includes(needle)`. */
function holds(text: string, needle: string, from: number, to: number): boolean {
  const at = text.indexOf(needle, from);
  return at >= 0 && at + needle.length <= to;
}

/** The call in text.slice(start, end), or null when it is not a call object. */
function parseCall(text: string, start: number, end: number): Call | null {
  let v: PyValue | undefined;
  try {
    v = parseRange(text, start, end, true);
  } catch {
    return null; // a runtime limit (the stack) counts as not parsing, too
  }
  if (v === undefined || !isPyDict(v) || !v.has("name") || !v.has("arguments")) return null;
  const name = v.get("name")!;
  return { name, key: pyKey(name), args: v.get("arguments")! };
}

/** The gold answer of a label: calls with object arguments, or a reply. */
export interface Gold {
  calls: (Call & { args: PyDict })[];
  reply: string | null;
}

export function parseLabel(label: string): Gold {
  const n = countOf(label, "</think>");
  if (n !== 1) {
    throw new RewardError(`the label has ${n} "</think>" tags instead of exactly one`, "label");
  }
  const [from, to] = pyStripBounds(
    label,
    label.indexOf("</think>") + "</think>".length,
    label.length,
  );
  if (!holds(label, "<tool_call>", from, to)) return { calls: [], reply: label.slice(from, to) };
  const calls: Gold["calls"] = [];
  const bodies = rangesBetween(label, "<tool_call>", "</tool_call>", from, to);
  for (let k = 0; k < bodies.length; k += 2) {
    const where = `the label's tool call ${calls.length + 1}`;
    let v: PyValue;
    try {
      v = parseRange(label, bodies[k], bodies[k + 1], false);
    } catch (e) {
      throw new RewardError(`${where} is not valid JSON (${(e as Error).message})`, "label");
    }
    if (!isPyDict(v) || !v.has("name") || !v.has("arguments")) {
      throw new RewardError(`${where} is not an object with "name" and "arguments"`, "label");
    }
    const args = v.get("arguments")!;
    if (!isPyDict(args)) {
      throw new RewardError(`${where} has "arguments" that is not an object`, "label");
    }
    const name = v.get("name")!;
    const key = pyKey(name);
    if (key === undefined) {
      throw new RewardError(`${where} has a name that is a list or an object`, "label");
    }
    calls.push({ name, key, args });
  }
  if (calls.length === 0) {
    throw new RewardError(`the label holds "<tool_call>" but no complete tool call`, "label");
  }
  return { calls, reply: null };
}
