/**
 * The labels of STAR's labeling_messages.py: every assistant message gets `tag` (a list of
 * "response" when it has non-empty content, "single" or "parallel" for one or several tool
 * calls, "multi-step" when it calls tools right after a tool message), `turns` = (index + 1)
 * // 2 and `tool_call_num`; LabelStats accumulates the statistics report (tag, tag-combination,
 * turns and call-count distributions) row by row, as the script builds it from all rows at once.
 */
import { isPyDict, type PyDict, type PyValue } from "../../lib/py/json.ts";
import { pyFixed } from "./_py_format.ts";

/** Thrown for a row whose shape the labelling cannot read; the caller skips and counts it. */
export class RowShapeError extends Error {
  override name = "RowShapeError";
}

export interface AssistantLabel {
  tag: string[];
  turns: number;
  toolCallNum: number;
}

/** Number of tool calls of a message: the length of its list, 0 for none, null or []. */
export function toolCallCount(message: PyDict, where: string): number {
  const calls = message.get("tool_calls");
  if (calls === undefined || calls === null) return 0;
  if (!Array.isArray(calls)) throw new RowShapeError(`${where}.tool_calls is not a list`);
  return calls.length;
}

/** The label of the assistant message at `index` of `messages`. */
export function labelAssistant(messages: PyDict[], index: number): AssistantLabel {
  const m = messages[index];
  const tag: string[] = [];
  const content = m.get("content");
  if (content !== undefined && content !== null && content !== "") tag.push("response");
  const toolCallNum = toolCallCount(m, `messages[${index}]`);
  if (toolCallNum > 1) tag.push("parallel");
  else if (toolCallNum === 1) tag.push("single");
  if (index > 0 && messages[index - 1].get("role") === "tool" && toolCallNum > 0) {
    tag.push("multi-step");
  }
  return { tag, turns: Math.floor((index + 1) / 2), toolCallNum };
}

/** The messages of a row (none when the field is absent), checked to be objects. */
export function rowMessages(row: PyValue): PyDict[] {
  if (!isPyDict(row)) throw new RowShapeError("a row must be a JSON object");
  const messages = row.get("messages");
  if (messages === undefined) return [];
  if (!Array.isArray(messages)) throw new RowShapeError('field "messages" is not a list');
  messages.forEach((m, i) => {
    if (!isPyDict(m)) throw new RowShapeError(`messages[${i}] is not an object`);
  });
  return messages as PyDict[];
}

export interface LabeledRow {
  /** A copy of the row whose assistant messages carry tag, turns and tool_call_num. */
  row: PyDict;
  assistantMessages: number;
  /** The labels that enter the statistics (all, or the last message's with onlyLastRound). */
  counted: AssistantLabel[];
}

/**
 * Labels one conversation. With `onlyLastRound` only an assistant message that is the last
 * message of the row enters the statistics (a row ending on another role adds none).
 */
export function labelRow(row: PyValue, onlyLastRound = false): LabeledRow {
  const messages = rowMessages(row);
  const out: PyValue[] = [];
  const counted: AssistantLabel[] = [];
  let assistantMessages = 0;
  messages.forEach((m, index) => {
    if (m.get("role") !== "assistant") {
      out.push(m);
      return;
    }
    const label = labelAssistant(messages, index);
    const labeled = new Map(m);
    labeled.set("tag", [...label.tag]);
    labeled.set("turns", BigInt(label.turns));
    labeled.set("tool_call_num", BigInt(label.toolCallNum));
    out.push(labeled);
    assistantMessages++;
    if (!onlyLastRound || index === messages.length - 1) counted.push(label);
  });
  const copy = new Map(row as PyDict);
  copy.set("messages", out);
  return { row: copy, assistantMessages, counted };
}

/** A Python Counter over keys of type K: insertion-ordered counts. */
class Counter<K> {
  readonly counts = new Map<K, number>();
  total = 0;
  add(k: K): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.total++;
  }
  /** Counter.most_common(): by count, descending; ties keep first-seen order. */
  mostCommon(): [K, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1]);
  }
}

const pct = (count: number, total: number): number => total > 0 ? count / total * 100 : 0;

/** The statistics of labeling_messages.py, fed one labelled row at a time. */
export class LabelStats {
  conversations = 0;
  assistantMessages = 0;
  readonly tags = new Counter<string>();
  readonly combinations = new Counter<string>();
  readonly turns = new Counter<number>();
  readonly toolCallNums = new Counter<number>();

  constructor(readonly onlyLastRound = false) {}

  add(r: LabeledRow): void {
    this.conversations++;
    this.assistantMessages += r.assistantMessages;
    for (const l of r.counted) for (const t of l.tag) this.tags.add(t);
    for (const l of r.counted) this.combinations.add([...l.tag].sort().join("+"));
    for (const l of r.counted) this.turns.add(l.turns);
    for (const l of r.counted) this.toolCallNums.add(l.toolCallNum);
  }

  /** The report as the script's `generate_statistics` builds it (for json.dump). */
  report(): PyDict {
    const counts = <K>(c: Counter<K>, entries = [...c.counts]): PyDict =>
      new Map(entries.map(([k, n]) => [String(k), BigInt(n)]));
    const percents = <K>(c: Counter<K>): PyDict =>
      new Map([...c.counts].map(([k, n]) => [String(k), pct(n, c.total)]));
    return new Map<string, PyValue>([
      [
        "summary",
        new Map<string, PyValue>([
          ["total_conversations", BigInt(this.conversations)],
          ["total_assistant_messages", BigInt(this.assistantMessages)],
          ["only_stat_last_round", this.onlyLastRound],
        ]),
      ],
      [
        "tag_distribution",
        new Map<string, PyValue>([
          ["total_tags", BigInt(this.tags.total)],
          ["tag_counts", counts(this.tags)],
          ["tag_percentages", percents(this.tags)],
        ]),
      ],
      [
        "tag_combination_distribution",
        new Map<string, PyValue>([
          ["total_combinations", BigInt(this.combinations.total)],
          ["combination_counts", counts(this.combinations, this.combinations.mostCommon())],
          ["combination_percentages", percents(this.combinations)],
        ]),
      ],
      [
        "turns_distribution",
        new Map<string, PyValue>([
          ["turns_counts", counts(this.turns)],
          ["turns_percentages", percents(this.turns)],
        ]),
      ],
      [
        "tool_call_num_distribution",
        new Map<string, PyValue>([
          ["tool_call_num_counts", counts(this.toolCallNums)],
          ["tool_call_num_percentages", percents(this.toolCallNums)],
        ]),
      ],
    ]);
  }

  /** The report for people: each distribution with counts and percentages. */
  text(): string {
    const lines: string[] = [];
    const row = (name: string, n: number, total: number) =>
      lines.push(`  ${name.padEnd(24)} ${String(n).padStart(8)}  ${pyFixed(pct(n, total), 2)}%`);
    const scope = this.onlyLastRound ? "last message only" : "every assistant message";
    lines.push(
      `${this.conversations} conversations, ${this.assistantMessages} assistant messages ` +
        `(statistics: ${scope})`,
    );
    lines.push(`tags (${this.tags.total} in all):`);
    for (const [k, n] of [...this.tags.counts].sort((a, b) => b[1] - a[1])) {
      row(k, n, this.tags.total);
    }
    lines.push(`tag combinations (${this.combinations.total} messages, top 20):`);
    for (const [k, n] of this.combinations.mostCommon().slice(0, 20)) {
      row(k === "" ? "(none)" : k, n, this.combinations.total);
    }
    lines.push("turns:");
    for (const [k, n] of [...this.turns.counts].sort((a, b) => a[0] - b[0])) {
      row(String(k), n, this.turns.total);
    }
    lines.push("tool calls per message:");
    for (const [k, n] of [...this.toolCallNums.counts].sort((a, b) => a[0] - b[0])) {
      row(String(k), n, this.toolCallNums.total);
    }
    return lines.join("\n") + "\n";
  }
}
