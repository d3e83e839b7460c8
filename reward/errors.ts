/** RewardError: a row that cannot be scored (a malformed label or tools block). */
export class RewardError extends Error {
  override name = "RewardError";
  /** The input field at fault: "prompt" (its tools block) or "label". */
  readonly field: "prompt" | "label";
  constructor(message: string, field: "prompt" | "label") {
    super(message);
    this.field = field;
  }
}
