/**
 * `star logprobs`: per-token log-probs of sequences under a model (CONTRACT.md "Logprobs"):
 * logprobs[t] = log p(ids[t+1] | ids[..t]) under the full-vocabulary softmax at temperature 1,
 * plus the top-k of each position with --top-k. Rows go through the row pipeline (cli/_rows.ts):
 * packed into batches of up to a token budget, scored in one GPU submit each, and written in
 * input order as each batch finishes.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { UsageError } from "../lib/errors.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { TOPK_MAX } from "../engine/ops/topk.ts";
import { runRows } from "./_rows.ts";
import { type TokenRow, tokenRow } from "./_token_rows.ts";

const spec = {
  name: "logprobs",
  summary: "Per-token log-probs (and top-k) of sequences under a model",
  details: `Input rows: {"id"?, "ids": [int...]} or {"id"?, "text": "..."} (tokenized with the
model's tokenizer, no special tokens added). Output rows, in input order: {"id"?, "ids",
"logprobs"} with logprobs[t] = log p(ids[t+1] | ids[0..t]) (length len(ids) - 1), plus
"topk_ids" and "topk_logprobs" ([len(ids) - 1][K], descending) with --top-k K. A row that cannot
be read gives {"id"?, "line", "error"} and the exit status 1; the other rows are still scored.`,
  flags: {
    model: { type: "string", value: "DIR", required: true, description: "Model directory" },
    input: { type: "string", value: "FILE", required: true, description: "Rows (- for stdin)" },
    output: {
      type: "string",
      value: "FILE",
      default: "-",
      description: "Where to write (- for stdout)",
    },
    "top-k": {
      type: "integer",
      value: "K",
      default: 0,
      description: `Also the K most likely tokens of each position (1..${TOPK_MAX})`,
    },
    "batch-tokens": {
      type: "integer",
      value: "N",
      default: 1024,
      description: "Tokens scored per GPU batch (a longer row gets a batch of its own)",
    },
  },
} satisfies CommandSpec;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    const k = flags["top-k"];
    if (k < 0 || k > TOPK_MAX) {
      throw new UsageError(`Flag "--top-k" must be 0..${TOPK_MAX}, got ${k}`);
    }
    if (flags["batch-tokens"] < 1) {
      throw new UsageError(`Flag "--batch-tokens" must be positive, got ${flags["batch-tokens"]}`);
    }
    const model = await GpuModel.load(flags.model, { precision: "checkpoint" });
    const tokenizer = await Tokenizer.load(flags.model);
    const out = await JsonlWriter.open(flags.output);
    try {
      const { rows, errors } = await runRows<TokenRow>({
        input: flags.input,
        out,
        parse: (text, at) =>
          tokenRow(text, at, {
            textField: "text",
            vocabSize: model.config.vocab_size,
            tokenizer: () => tokenizer,
            minIds: 1,
            maxIds: model.maxTokens(),
          }),
        budget: Math.min(flags["batch-tokens"], model.maxTokens()),
        cost: (row) => row.ids.length,
        process: async (batch) => {
          const res = await model.logprobs(batch.map((r) => r.ids), { topK: k || undefined });
          return batch.map((row, i) => {
            const o: Record<string, unknown> = {};
            if (row.hasId) o.id = row.id;
            o.ids = row.ids;
            o.logprobs = res[i].logprobs;
            if (k) {
              o.topk_ids = res[i].topkIds;
              o.topk_logprobs = res[i].topkLogprobs;
            }
            return JSON.stringify(o);
          });
        },
      });
      if (errors) console.error(`logprobs: ${rows} rows, ${errors} could not be read`);
      return errors ? 1 : 0;
    } finally {
      await out.close();
      model.release();
    }
  },
};
