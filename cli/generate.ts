/**
 * `star generate`: sampling with the KV cache over a JSONL of prompts (CONTRACT.md "Generate"):
 * --n samples per row, each seeded by (--seed, row index, sample), temperature / top-p / top-k
 * as transformers applies them (--temperature 0 is greedy). Rows go through the row pipeline
 * (cli/_rows.ts): batched by --batch-size samples (prompts of different lengths share one
 * cache) and written, in input order, as soon as each batch finishes.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { UsageError } from "../lib/errors.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { DEFAULT_STOP_IDS, generate, type GenerateRequest } from "../model/generate.ts";
import { runRows } from "./_rows.ts";
import { type TokenRow, tokenRow } from "./_token_rows.ts";

const spec = {
  name: "generate",
  summary: "Sample completions of prompts with a KV cache",
  details: `Input rows: {"id"?, "prompt": "..."} (text used as is, no chat template) or
{"id"?, "ids": [...]}. Output: one row per sample, {"id"?, "sample", "completion_ids",
"completion", "logprobs", "finish_reason"}; logprobs[i] is the log-prob of completion_ids[i]
under the full-vocabulary softmax at temperature 1; finish_reason is "stop" when an end token
(<|im_end|>, <|endoftext|> or the config's eos) was sampled (it is kept in completion_ids) and
"length" otherwise. The completion text leaves out special tokens. A row that cannot be read
gives {"id"?, "line", "error"} and the exit status 1; the other rows go on.`,
  flags: {
    model: { type: "string", value: "DIR", required: true, description: "Model directory" },
    input: { type: "string", value: "FILE", required: true, description: "Prompts (- for stdin)" },
    output: {
      type: "string",
      value: "FILE",
      default: "-",
      description: "Where to write (- for stdout)",
    },
    "max-new-tokens": {
      type: "integer",
      value: "N",
      default: 256,
      description: "Most tokens generated per sample",
    },
    temperature: {
      type: "number",
      value: "T",
      default: 1,
      description: "Softmax temperature; 0 is greedy (argmax)",
    },
    "top-p": { type: "number", value: "P", default: 1, description: "Nucleus mass (1: off)" },
    "top-k": {
      type: "integer",
      value: "K",
      default: 0,
      description: "Most likely K only (0: off)",
    },
    n: { type: "integer", value: "N", default: 1, description: "Samples per prompt" },
    seed: { type: "integer", value: "S", default: 0, description: "Seed of the sampling" },
    "batch-size": {
      type: "integer",
      value: "B",
      default: 16,
      description: "Sequences decoded together",
    },
  },
} satisfies CommandSpec;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    const check = (ok: boolean, what: string, v: number) => {
      if (!ok || !Number.isFinite(v)) throw new UsageError(`Flag "--${what}" ${v} is out of range`);
    };
    check(flags["max-new-tokens"] >= 1, "max-new-tokens", flags["max-new-tokens"]);
    check(flags.temperature >= 0, "temperature", flags.temperature);
    check(flags["top-p"] > 0 && flags["top-p"] <= 1, "top-p", flags["top-p"]);
    check(flags["top-k"] >= 0, "top-k", flags["top-k"]);
    check(flags.n >= 1, "n", flags.n);
    check(flags["batch-size"] >= 1, "batch-size", flags["batch-size"]);
    const model = await GpuModel.load(flags.model, { precision: "checkpoint" });
    await model.packWeights(); // decoding runs every weight once per token: pack them once
    const tokenizer = await Tokenizer.load(flags.model);
    const eos = model.config.eos_token_id;
    const stopIds = [...new Set([...DEFAULT_STOP_IDS, ...(eos === null ? [] : [eos].flat())])];
    const out = await JsonlWriter.open(flags.output);
    let ordinal = 0; // the row's index among all rows seeds its samples
    try {
      const { rows, errors } = await runRows<TokenRow & { index: number }>({
        input: flags.input,
        out,
        parse: (text, at) => {
          const index = ordinal++;
          return {
            index,
            ...tokenRow(text, at, {
              textField: "prompt",
              vocabSize: model.config.vocab_size,
              tokenizer: () => tokenizer,
              minIds: 1,
              // the KV cache of one sequence must fit one binding
              maxIds: Math.max(1, model.maxCacheSlots(1) - flags["max-new-tokens"]),
            }),
          };
        },
        budget: flags["batch-size"],
        cost: () => flags.n,
        process: async (batch) => {
          const reqs: GenerateRequest[] = batch.flatMap((row) =>
            Array.from({ length: flags.n }, (_, s) => ({
              prompt: row.ids,
              example: row.index,
              sample: s,
            }))
          );
          const res = await generate(model, reqs, {
            maxNewTokens: flags["max-new-tokens"],
            temperature: flags.temperature,
            topP: flags["top-p"],
            topK: flags["top-k"],
            seed: flags.seed,
            stopIds,
            maxBatch: flags["batch-size"],
          });
          return batch.map((row, i) =>
            Array.from({ length: flags.n }, (_, s) => {
              const g = res[i * flags.n + s];
              const o: Record<string, unknown> = {};
              if (row.hasId) o.id = row.id;
              o.sample = s;
              o.completion_ids = g.ids;
              o.completion = tokenizer.decode(g.ids, { skipSpecialTokens: true });
              o.logprobs = g.logprobs;
              o.finish_reason = g.finishReason;
              return JSON.stringify(o);
            }).join("\n")
          );
        },
      });
      if (errors) console.error(`generate: ${rows} rows, ${errors} could not be read`);
      return errors ? 1 : 0;
    } finally {
      await out.close();
      model.release();
    }
  },
};
