/**
 * Python semantics of values that the reward compares: `==` between numbers and booleans
 * (`1 == 1.0 == True`, exact between big ints and floats) and the identity of a value as a
 * dict key (so that tool names 1, 1.0 and True are one name, as they are in a Python dict).
 */
import { isPyDict, pyFloatRepr, type PyValue } from "./json.ts";

/** Python int, float or bool. */
export function isPyNumber(v: PyValue): v is bigint | number | boolean {
  const t = typeof v;
  return t === "bigint" || t === "number" || t === "boolean";
}

/** Python `a == b` for two numbers or booleans. */
export function pyNumbersEqual(
  a: bigint | number | boolean,
  b: bigint | number | boolean,
): boolean {
  const x = typeof a === "boolean" ? (a ? 1n : 0n) : a;
  const y = typeof b === "boolean" ? (b ? 1n : 0n) : b;
  if (typeof x === "bigint" && typeof y === "bigint") return x === y;
  if (typeof x === "number" && typeof y === "number") return x === y;
  const f = (typeof x === "number" ? x : y) as number;
  const i = (typeof x === "bigint" ? x : y) as bigint;
  return Number.isInteger(f) && BigInt(f) === i;
}

/**
 * A string that is equal for two values exactly when Python treats them as the same dict key;
 * null for values that are never found again (NaN: a fresh float object, equal to nothing)
 * and undefined for unhashable values (lists and dicts).
 */
export function pyKey(v: PyValue): string | null | undefined {
  if (v === null) return "None";
  switch (typeof v) {
    case "string":
      return "s" + v;
    case "boolean":
      return v ? "n1" : "n0";
    case "bigint":
      return "n" + v.toString();
    case "number":
      if (Number.isNaN(v)) return null;
      if (Number.isInteger(v)) return "n" + BigInt(v).toString();
      return "f" + pyFloatRepr(v);
  }
  if (Array.isArray(v) || isPyDict(v)) return undefined;
  return undefined;
}
