/**
 * The assertions our tests use, std-style names on top of `node:assert/strict` (the
 * substitute for @std/assert, which lives on JSR and cannot be installed here).
 */
import assert from "node:assert/strict";

export const assertEquals: <T>(actual: unknown, expected: T, msg?: string) => asserts actual is T =
  assert.deepStrictEqual;
export const assertNotEquals = assert.notDeepStrictEqual;
export const assertMatch: (actual: string, re: RegExp, msg?: string) => void = assert.match;
export const assertOk: (value: unknown, msg?: string) => asserts value = assert.ok;
export const assert_ = assert;

type ErrorClass = new (...args: never[]) => Error;

/** Asserts that fn throws; checks the class or the message pattern; returns the error. */
export function assertThrows(
  fn: () => unknown,
  expected?: ErrorClass | RegExp,
  msg?: string,
): Error {
  try {
    fn();
  } catch (err) {
    checkError(err, expected, msg);
    return err as Error;
  }
  throw new assert.AssertionError({ message: msg ?? "Expected function to throw" });
}

/** Async twin of assertThrows. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  expected?: ErrorClass | RegExp,
  msg?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    checkError(err, expected, msg);
    return err as Error;
  }
  throw new assert.AssertionError({ message: msg ?? "Expected promise to reject" });
}

function checkError(err: unknown, expected: ErrorClass | RegExp | undefined, msg?: string) {
  if (expected instanceof RegExp) {
    assert.match(String((err as Error)?.message ?? err), expected, msg);
  } else if (expected) {
    assert.ok(err instanceof expected, msg ?? `Expected ${expected.name}, got ${err}`);
  }
}

/** |actual - expected| <= atol + rtol * |expected| for a number or every element. */
export function assertClose(
  actual: number | ArrayLike<number>,
  expected: number | ArrayLike<number>,
  opts: { atol?: number; rtol?: number; msg?: string } = {},
): void {
  const { atol = 1e-12, rtol = 1e-9, msg = "" } = opts;
  const a = typeof actual === "number" ? [actual] : actual;
  const e = typeof expected === "number" ? [expected] : expected;
  assert.equal(a.length, e.length, `${msg} length ${a.length} != ${e.length}`);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < e.length; i++) {
    const err = Math.abs(a[i] - e[i]);
    const ok = err <= atol + rtol * Math.abs(e[i]) || (Number.isNaN(a[i]) && Number.isNaN(e[i]));
    if (!ok && (worst < 0 || err > worstErr)) [worst, worstErr] = [i, err];
  }
  if (worst >= 0) {
    throw new assert.AssertionError({
      message: `${msg} mismatch at index ${worst}: ${a[worst]} vs ${
        e[worst]
      } (abs err ${worstErr})`,
    });
  }
}
