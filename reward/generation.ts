/**
 * Parsing a generation: the text after the last `<|im_start|>assistant\n` of prompt +
 * completion, exactly one `<think>…</think>`, then either tool calls or a plain reply. Also the
 * gold label, which has the same shape after its single `</think>`.
 */
import { isPyDict, parsePyJson, type PyDict, type PyValue } from "../lib/py/json.ts";
import { countOf, findAllBetween, pyStrip } from "../lib/py/text.ts";
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
  const query = prompt + completion;
  const at = query.lastIndexOf(ASSISTANT);
  const gen = at < 0 ? query : query.slice(at + ASSISTANT.length);
  if (findAllBetween(gen, "<think>", "</think>").length !== 1) return null;
  const answer = pyStrip(gen.slice(gen.lastIndexOf("</think>") + "</think>".length));
  if (!answer.includes("<tool_call>")) return { calls: [], reply: answer };
  const calls: Call[] = [];
  for (const body of findAllBetween(answer, "<tool_call>", "</tool_call>")) {
    const call = parseCall(body);
    if (call === null) return null;
    calls.push(call);
  }
  return { calls, reply: null };
}

function parseCall(body: string): Call | null {
  let v: PyValue;
  try {
    v = parsePyJson(body);
  } catch {
    return null;
  }
  if (!isPyDict(v) || !v.has("name") || !v.has("arguments")) return null;
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
  const answer = pyStrip(label.slice(label.indexOf("</think>") + "</think>".length));
  if (!answer.includes("<tool_call>")) return { calls: [], reply: answer };
  const calls: Gold["calls"] = [];
  for (const body of findAllBetween(answer, "<tool_call>", "</tool_call>")) {
    const where = `the label's tool call ${calls.length + 1}`;
    let v: PyValue;
    try {
      v = parsePyJson(body);
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
