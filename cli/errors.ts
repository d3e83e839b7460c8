/**
 * Errors meant for users. Library code throws them; only main.ts turns them into an exit code
 * and one line on stderr. Any error with a numeric `exitCode` is treated as a user error.
 */

/** A bad command line: unknown flag, missing value, bad number. Exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly exitCode = 2;
}

/** A problem with the environment or a file the user named that is not a data row. Exits 1. */
export class UserError extends Error {
  override name = "UserError";
  readonly exitCode = 1;
}

/** True when `err` carries its own exit code and a message written for users. */
export function isUserError(err: unknown): err is Error & { exitCode: number } {
  return err instanceof Error && typeof (err as { exitCode?: unknown }).exitCode === "number";
}
