/**
 * Tool definitions and calls as format_data.py normalises and checks them: formatTool unwraps
 * OpenAI tools and renames `arguments` to `parameters`; repairToolNames replaces an unknown call
 * name by the first offered name containing it (STAR's "closest" name); checkCallArguments
 * decodes string arguments and refuses undeclared argument names. RowProblem "skip" is what the
 * script catches and moves past, "abort" what ends its row or conversation.
 */
import { isPyDict, parsePyJson, type PyDict, type PyValue } from "../../lib/py/json.ts";
import { pyKey } from "../../lib/py/values.ts";

/**
 * A reason to drop something: `skip` where STAR prints and moves on (a ValueError it catches),
 * `abort` where the exception ends the row or conversation. `reason` is a short, stable key
 * for the summary counts; the message adds the details.
 */
export class RowProblem extends Error {
  override name = "RowProblem";
  constructor(readonly reason: string, detail = "", readonly kind: "skip" | "abort" = "abort") {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

/** Python's `key in d` for a dict, `x in s` (substring) for a string, membership for a list. */
export function pyIn(item: PyValue, container: PyValue, what: string): boolean {
  if (isPyDict(container)) {
    const k = pyKey(item);
    if (k === undefined) throw new RowProblem(`unhashable ${what}`);
    if (k === null) return false;
    for (const key of container.keys()) if (pyKey(key) === k) return true;
    return false;
  }
  if (typeof container === "string") {
    if (typeof item !== "string") throw new RowProblem(`${what} is not a string`);
    return container.includes(item);
  }
  if (Array.isArray(container)) {
    const k = pyKey(item);
    return container.some((x) => x === item || (k !== undefined && k !== null && pyKey(x) === k));
  }
  throw new RowProblem(
    `${what}: cannot look into a ${container === null ? "null" : typeof container}`,
  );
}

/** STAR's format_tool: the function object of an OpenAI tool, with `parameters` present. */
export function formatTool(tool: PyValue): PyDict {
  let t = tool;
  while (isPyDict(t) && t.has("type") && t.has("function")) t = t.get("function")!;
  if (!isPyDict(t)) throw new RowProblem("tool is not an object");
  if (!t.has("name")) throw new RowProblem("tool has no name");
  if (!t.has("parameters")) {
    if (!t.has("arguments")) throw new RowProblem("tool has no parameters");
    const args = t.get("arguments")!;
    t.delete("arguments");
    t.set("parameters", args);
  }
  return t;
}

/** The names of the offered tools (each tool's `name`). */
export function toolNames(tools: PyValue[]): PyValue[] {
  return tools.map((t) => {
    if (!isPyDict(t)) throw new RowProblem("tool is not an object");
    if (!t.has("name")) throw new RowProblem("tool has no name");
    return t.get("name")!;
  });
}

/** STAR's find_closest_tool_name: the first offered name that contains `name`. */
export function closestToolName(name: PyValue, names: PyValue[]): PyValue {
  for (const item of names) {
    if (typeof item !== "string" || typeof name !== "string") {
      throw new RowProblem("tool name is not a string");
    }
    if (item.includes(name)) return item;
  }
  throw new RowProblem("unknown tool name", `"${String(name)}"`, "skip");
}

/** STAR's format_expected_output: unknown call names replaced in place by closestToolName. */
export function repairToolNames(calls: PyValue[], tools: PyValue[]): void {
  const names = toolNames(tools);
  for (const call of calls) {
    if (!isPyDict(call)) throw new RowProblem("tool call is not an object");
    if (!call.has("name")) throw new RowProblem("tool call has no name");
    const name = call.get("name")!;
    if (!pyIn(name, names, "tool name")) call.set("name", closestToolName(name, names));
  }
}

/**
 * STAR's make_sure_args_valid: string arguments are decoded as JSON (in place), and every
 * argument name must be among the tool's parameters (keys of `parameters`).
 */
export function checkCallArguments(calls: PyValue[], tools: PyValue[]): void {
  const byName = new Map<string | null, PyDict>();
  for (const t of tools) {
    if (!isPyDict(t) || !t.has("name")) throw new RowProblem("tool has no name");
    const k = pyKey(t.get("name")!);
    if (k === undefined) throw new RowProblem("unhashable tool name");
    byName.set(k, t);
  }
  for (const call of calls) {
    const c = call as PyDict;
    const tool = byName.get(pyKey(c.get("name")!) ?? null);
    if (tool === undefined) throw new RowProblem("unknown tool name");
    if (!c.has("arguments")) throw new RowProblem("tool call has no arguments");
    let args: PyValue = c.get("arguments")!;
    if (!isPyDict(args)) {
      if (typeof args !== "string") throw new RowProblem("tool call arguments are not an object");
      try {
        args = parsePyJson(args);
      } catch (err) {
        throw new RowProblem(
          "tool call arguments are not valid JSON",
          (err as Error).message,
          "skip",
        );
      }
      c.set("arguments", args);
    }
    if (!tool.has("parameters")) throw new RowProblem("tool has no parameters");
    const params = tool.get("parameters")!;
    for (const arg of iterate(args)) {
      if (!pyIn(arg, params, "argument name")) {
        throw new RowProblem(
          "argument not among the tool's parameters",
          `"${String(arg)}"`,
          "skip",
        );
      }
    }
  }
}

/** Python's `for x in v` over a dict (keys), list or string (characters). */
function iterate(v: PyValue): PyValue[] {
  if (isPyDict(v)) return [...v.keys()];
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return Array.from(v);
  throw new RowProblem("tool call arguments are not an object");
}
