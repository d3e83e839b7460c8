/**
 * star rollout: teacher rollouts for CKD (STAR's data_process/teacher_rollout.py) on the engine
 * or on an OpenAI-compatible server, configured by a YAML file and/or flags (flags win). Prints
 * STAR's summary at the end; exit 1 when some rows could not be read (they are reported).
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { loadConfigWithFlags, rolloutConfigSchema } from "../train/config.ts";
import { runRollout, summaryLines } from "../train/rollout.ts";

const spec = {
  name: "rollout",
  summary: "Teacher rollouts for CKD: sample, format-check, dedupe (STAR's teacher_rollout.py)",
  details: `Keys of the config (each flag sets the key of the same name, "-" for "_"): input,
output, teacher (model directory, run on the engine) or server (base URL of an OpenAI-compatible
server) with model (its served name) and concurrency (32); tokenizer; rollout_n (8); temperature
(1.0); top_p (1.0); top_k (-1: off); max_tokens (2048); batch_size (128 conversations per
batch); max_rollout (3 attempts per server request); request_timeout (600 s); seed (42);
save_interval (100 rows or inputs between saves); min_reward (keep completions whose Sim-RL reward against the
original answer is at least this); overwrite (false).
Per conversation ending with an assistant message: rollout_n completions of messages[:-1] and
the tools under the chat template; those passing STAR's format check become assistant
messages {reasoning_content, content, tool_calls}; one output row per unique message. Other
conversations pass through; those left with no message are dropped and counted.
Run it again on the same output to resume (OUTPUT.progress.json records where it stands).
The server gets OPENAI_API_KEY as a bearer token when that variable is set.`,
  flags: {
    config: { type: "string", value: "FILE.yaml", description: "Config file (keys below)" },
    input: { type: "string", value: "FILE", description: "Messages rows (JSONL)" },
    output: { type: "string", value: "FILE", description: "Rows to write (JSONL, resumable)" },
    teacher: { type: "string", value: "DIR", description: "Teacher model directory (engine)" },
    server: {
      type: "string",
      value: "URL",
      description: "OpenAI-compatible server, e.g. http://localhost:8000",
    },
    model: { type: "string", value: "NAME", description: "Model name on the server" },
    concurrency: { type: "integer", value: "N", description: "Server requests in flight" },
    tokenizer: {
      type: "string",
      value: "DIR",
      description: "Tokenizer and chat template (default: the teacher's, else built-in Qwen3)",
    },
    "rollout-n": { type: "integer", value: "N", description: "Samples per conversation" },
    temperature: { type: "number", value: "T", description: "Sampling temperature; 0 is greedy" },
    "top-p": { type: "number", value: "P", description: "Nucleus mass (1: off)" },
    "top-k": { type: "integer", value: "K", description: "Most likely K only (-1: off)" },
    "max-tokens": { type: "integer", value: "N", description: "Most tokens per completion" },
    "batch-size": { type: "integer", value: "N", description: "Conversations per batch" },
    seed: { type: "integer", value: "S", description: "Seed of the sampling" },
    "min-reward": {
      type: "number",
      value: "R",
      description: "Keep completions whose Sim-RL reward is at least R",
    },
    overwrite: { type: "boolean", description: "Start the output over instead of resuming" },
  },
} satisfies CommandSpec;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(f) {
    const cfg = await loadConfigWithFlags(
      f.config,
      {
        input: f.input,
        output: f.output,
        teacher: f.teacher,
        server: f.server,
        model: f.model,
        concurrency: f.concurrency,
        tokenizer: f.tokenizer,
        rollout_n: f["rollout-n"],
        temperature: f.temperature,
        top_p: f["top-p"],
        top_k: f["top-k"],
        max_tokens: f["max-tokens"],
        batch_size: f["batch-size"],
        seed: f.seed,
        min_reward: f["min-reward"],
        overwrite: f.overwrite,
      },
      rolloutConfigSchema,
      "rollout",
    );
    const t0 = performance.now();
    const { counts } = await runRollout(cfg);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    for (const line of summaryLines(counts)) console.error(`rollout: ${line}`);
    console.error(`rollout: results in "${cfg.output}" (${secs} s)`);
    return counts.bad_rows > 0 ? 1 : 0;
  },
};
