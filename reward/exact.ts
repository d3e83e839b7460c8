/**
 * Exact-call accuracy of a generation against its label, the number `star eval` and the demo
 * report beside the Sim-RL reward: a generation is exact when its format holds (the reward's
 * format check) and its calls equal the gold calls as a multiset of (name, arguments), values
 * compared as JSON values with Python's `==` (1 == 1.0 == True; dict keys in any order; lists in
 * order). For a label whose answer is a text reply, exact means a well-formed reply with no call
 * (the reply's wording is what the reward's ROUGE scores). Also the kind of a label, as STAR's
 * labels name them: `single` (one call), `parallel` (several), `response` (no call).
 */
import { isPyDict, type PyValue } from "../lib/py/json.ts";
import { isPyNumber, pyNumbersEqual } from "../lib/py/values.ts";
import { callsValid } from "./calls.ts";
import { type Call, parseGeneration, parseLabel } from "./generation.ts";
import { promptTools } from "./tools.ts";

export type RowKind = "single" | "parallel" | "response";

/** The kind of a label (throws RewardError when the label is malformed). */
export function labelKind(label: string): RowKind {
  const n = parseLabel(label).calls.length;
  return n === 0 ? "response" : n === 1 ? "single" : "parallel";
}

/** Whether the generation's calls are exactly the label's (see the file header). */
export function exactCalls(prompt: string, completion: string, label: string): boolean {
  const gold = parseLabel(label);
  const pred = parseGeneration(prompt, completion);
  if (pred === null || !callsValid(pred.calls, promptTools(prompt))) return false;
  if (gold.calls.length !== pred.calls.length) return false;
  const left = [...gold.calls];
  for (const p of pred.calls) {
    const i = left.findIndex((g) => sameCall(p, g));
    if (i < 0) return false;
    left.splice(i, 1);
  }
  return true;
}

function sameCall(a: Call, b: Call): boolean {
  return pyEqual(a.name, b.name) && pyEqual(normArgs(a.args), normArgs(b.args));
}

/** `""` and `[]` arguments count as none (the reward's rule, SIMRL_REWARD.md section 4). */
function normArgs(v: PyValue): PyValue {
  return v === "" || (Array.isArray(v) && v.length === 0) ? new Map() : v;
}

/** Python's `==` on JSON values. */
export function pyEqual(a: PyValue, b: PyValue): boolean {
  if (isPyNumber(a) && isPyNumber(b)) return pyNumbersEqual(a, b);
  if (a === null || b === null || typeof a === "string" || typeof b === "string") return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((x, i) => pyEqual(x, b[i]));
  }
  if (isPyDict(a) && isPyDict(b)) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !pyEqual(v, b.get(k)!)) return false;
    return true;
  }
  return false;
}
