/**
 * Errors meant for users, shared by every layer. Library code throws them; only main.ts turns
 * them into an exit code and one line on stderr. Any error with a numeric `exitCode` is treated
 * as a user error. DataError names the file, the 1-based line and, when one is at fault, the
 * field of a row that cannot be read.
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

/** A row of a user's file that cannot be read. Exits 1. */
export class DataError extends SyntaxError {
  override name = "DataError";
  readonly exitCode = 1;
  readonly file: string;
  readonly line: number;
  readonly field?: string;

  /**
   * `new DataError("train.jsonl", 42, 'field "targets" is missing', "targets")` has the message
   * `Cannot read "train.jsonl" line 42: field "targets" is missing`.
   */
  constructor(file: string, line: number, reason: string, field?: string) {
    super(`Cannot read "${displayName(file)}" line ${line}: ${reason}`);
    this.file = file;
    this.line = line;
    if (field !== undefined) this.field = field;
  }
}

/** "-" is shown as "stdin" in messages. */
export function displayName(path: string): string {
  return path === "-" ? "stdin" : path;
}
