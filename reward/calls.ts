/**
 * Validity of predicted calls against the prompt's tools, and the call similarity of the
 * reward: gold calls bucketed by name, each predicted call greedily takes the most similar gold
 * call left in its bucket (the first on a tie), argument by argument.
 */
import { isPyDict, type PyDict, pyStr, type PyValue } from "../lib/py/json.ts";
import { isPyNumber, pyNumbersEqual } from "../lib/py/values.ts";
import { rouge } from "./rouge.ts";
import type { Call, Gold } from "./generation.ts";
import type { Tools } from "./tools.ts";

const NO_ARGS: PyDict = new Map();

/** A call's arguments as a dict: "" and [] count as none; null for anything else not a dict. */
export function argsDict(args: PyValue): PyDict | null {
  if (isPyDict(args)) return args;
  if (args === "" || (Array.isArray(args) && args.length === 0)) return NO_ARGS;
  return null;
}

/** Every call names a tool and uses only that tool's argument names. */
export function callsValid(calls: Call[], tools: Tools): boolean {
  for (const call of calls) {
    if (typeof call.key !== "string") return false;
    const allowed = tools.get(call.key);
    if (allowed === undefined) return false;
    const args = argsDict(call.args);
    if (args === null) return false;
    for (const k of args.keys()) if (!allowed.has(k)) return false;
  }
  return true;
}

/** Similarity of two argument values (strings: ROUGE; numbers: ==; else str() equal). */
export function valueSimilarity(p: PyValue, g: PyValue): number {
  if (typeof p === "string" && typeof g === "string") return rouge(p, g);
  if (isPyNumber(p) && isPyNumber(g)) return pyNumbersEqual(p, g) ? 1 : 0;
  return pyStr(p) === pyStr(g) ? 1 : 0;
}

/** Argument similarity of a predicted call's arguments against a gold call's. */
export function argSimilarity(p: PyDict, g: PyDict): number {
  // p's keys are distinct, so each shared key is met once: the gold keys left unmatched are
  // g.size - shared.
  let sum = 0;
  let shared = 0;
  for (const [k, pv] of p) {
    const gv = g.get(k);
    if (gv === undefined) continue;
    shared++;
    sum += valueSimilarity(pv, gv);
  }
  const den = p.size + g.size - shared;
  return den === 0 ? 1 : sum / den;
}

/** Call similarity of valid predicted calls against the gold calls. */
export function callSimilarity(pred: Call[], gold: Gold["calls"]): number {
  const buckets = new Map<string, PyDict[]>();
  gold.forEach((g, i) => {
    // A NaN name is a bucket no prediction can reach; it still counts as a gold call left.
    const key = g.key ?? `\u0000nan${i}`;
    let b = buckets.get(key);
    if (b === undefined) buckets.set(key, b = []);
    b.push(g.args);
  });
  let total = 0;
  for (const call of pred) {
    const bucket = typeof call.key === "string" ? buckets.get(call.key) : undefined;
    if (bucket === undefined || bucket.length === 0) continue;
    const args = argsDict(call.args) ?? NO_ARGS;
    let best = -1;
    let bestAt = 0;
    for (let i = 0; i < bucket.length; i++) {
      const s = argSimilarity(args, bucket[i]);
      if (s > best) {
        best = s;
        bestAt = i;
      }
    }
    bucket.splice(bestAt, 1);
    total += best;
  }
  let left = 0;
  for (const b of buckets.values()) left += b.length;
  const den = left + pred.length;
  return den === 0 ? 1 : total / den;
}
