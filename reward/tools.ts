/**
 * The tools a prompt offers: the last `<tools>…</tools>` block, one JSON object per line with
 * `name` and `parameters`, and each tool's allowed argument names. Parsed blocks are cached by
 * their text, since many rows share a prompt.
 */
import { isPyDict, parsePyJson, type PyValue } from "../lib/py/json.ts";
import { findAllBetween, pyStrip } from "../lib/py/text.ts";
import { pyKey } from "../lib/py/values.ts";
import { RewardError } from "./errors.ts";

/** Tool name key (see pyKey) -> the set of allowed argument names. */
export type Tools = Map<string, Set<string>>;

const cache = new Map<string, Tools>();
const CACHE_MAX = 4096;

/** The text of the last tools block of a prompt, or null when it has none. */
export function toolsBlock(prompt: string): string | null {
  if (!prompt.includes("<tools>")) return null;
  const blocks = findAllBetween(prompt, "<tools>", "</tools>");
  return blocks.length === 0 ? null : blocks[blocks.length - 1];
}

/** Parses a prompt's tools (an empty map when there is no block); a bad line is a RewardError. */
export function promptTools(prompt: string): Tools {
  const block = toolsBlock(prompt);
  if (block === null) return new Map();
  let tools = cache.get(block);
  if (tools === undefined) {
    tools = parseToolsBlock(block);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(block, tools);
  }
  return tools;
}

export function parseToolsBlock(block: string): Tools {
  const tools: Tools = new Map();
  const lines = block.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = pyStrip(lines[i]);
    if (line === "") continue;
    const where = `tools block line ${i + 1}`;
    let tool: PyValue;
    try {
      tool = parsePyJson(line);
    } catch (e) {
      throw new RewardError(`${where} is not valid JSON (${(e as Error).message})`, "prompt");
    }
    if (!isPyDict(tool) || !tool.has("name") || !tool.has("parameters")) {
      throw new RewardError(`${where} is not an object with "name" and "parameters"`, "prompt");
    }
    const key = pyKey(tool.get("name")!);
    if (key === undefined) {
      throw new RewardError(`${where} has a tool name that is a list or an object`, "prompt");
    }
    const names = allowedNames(tool.get("parameters")!, where);
    if (key !== null) tools.set(key, names);
  }
  return tools;
}

/** Keys of `properties` when it is an object and `type` is not null, else keys of parameters. */
function allowedNames(params: PyValue, where: string): Set<string> {
  if (!isPyDict(params)) {
    throw new RewardError(`${where} has "parameters" that is not an object`, "prompt");
  }
  const props = params.get("properties");
  const type = params.get("type");
  if (props !== undefined && isPyDict(props) && type !== undefined && type !== null) {
    return new Set(props.keys());
  }
  return new Set(params.keys());
}
