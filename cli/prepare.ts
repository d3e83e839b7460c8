/**
 * star prepare: messages rows -> trainset rows ({"id", "inputs", "targets"}) with the chat
 * template of the tokenizer in use (CONTRACT.md "Trainset"). Bad rows are reported on stderr
 * with file, line and field, skipped and counted; the exit code is 1 when any was skipped.
 */
import type { CommandModule } from "./command.ts";
import { prepareFile } from "../data/prepare.ts";
import { Tokenizer } from "../data/tokenizer.ts";

const flags = {
  input: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'Messages rows (JSONL; "-" reads stdin)',
  },
  output: {
    type: "string",
    required: true,
    value: "FILE",
    description: 'Trainset rows to write (JSONL; "-" writes stdout)',
  },
  tokenizer: {
    type: "string",
    value: "DIR",
    description:
      "Directory with tokenizer.json and tokenizer_config.json (default: built-in Qwen3)",
  },
  "add-reasoning-content": {
    type: "boolean",
    description: "Put the last message's reasoning_content in front of the targets",
  },
} as const;

/** Bad rows printed one per line before the rest are only counted. */
const MAX_REPORTED = 20;

export const command: CommandModule<typeof flags> = {
  spec: {
    name: "prepare",
    summary: "Turn messages+tools rows into prompt/target rows (inputs, targets) for training",
    details: `inputs = chat template of messages[:-1] with the tools and the generation prompt, then
"<think>"; targets = the last (assistant) message rendered alone, without its
"<|im_start|>assistant\\n" header, starting with "</think>" unless it has one.
Rows that cannot be converted are reported (file, line, field) and skipped; exit code 1 then.`,
    flags,
  },
  async run(f) {
    const tokenizer = await Tokenizer.load(f.tokenizer);
    const tty = Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    const err = (s: string) => Deno.stderr.writeSync(enc.encode(s));
    const t0 = performance.now();
    let reported = 0;
    let progressShown = false;
    const summary = await prepareFile(f.input, f.output, {
      tokenizer,
      addReasoningContent: f["add-reasoning-content"] ?? false,
      onBadRow: (e) => {
        if (progressShown) err("\r\x1b[K");
        if (reported++ < MAX_REPORTED) err(`star: ${e.message}\n`);
      },
      onProgress: tty
        ? (n) => {
          const s = (performance.now() - t0) / 1000;
          err(`\r\x1b[Kprepare: ${n} rows (${Math.round(n / s)} rows/s)`);
          progressShown = true;
        }
        : undefined,
    });
    if (progressShown) err("\r\x1b[K");
    if (reported > MAX_REPORTED) err(`star: ... and ${reported - MAX_REPORTED} more bad rows\n`);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const where = f.output === "-" ? "stdout" : `"${f.output}"`;
    let line =
      `prepare: ${summary.rowsWritten} rows written to ${where}, ${summary.skipped} skipped`;
    if (summary.skipped > 0) {
      const parts = [...summary.reasons].map(([r, n]) => `${n} ${r}`);
      line += ` (${parts.join("; ")})`;
    }
    err(`${line} in ${secs} s\n`);
    return summary.skipped > 0 ? 1 : 0;
  },
};
