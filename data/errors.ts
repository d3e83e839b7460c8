/**
 * DataError: a row of a user's file that cannot be read. It names the file, the 1-based line
 * and, when one is at fault, the field; main.ts prints its message as one line and exits 1.
 */

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
