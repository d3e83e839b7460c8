/**
 * `star serve`: an OpenAI-compatible server for a model directory (serve/): /v1/completions
 * (with vLLM's prompt_logprobs, so a served teacher can feed `star ckd`), /v1/chat/completions
 * (tools, reasoning_content, tool_calls), /v1/models, /health. Binds to loopback unless told
 * otherwise; SIGTERM or Ctrl-C stops taking connections and lets running requests finish.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { UsageError } from "../lib/errors.ts";

const spec = {
  name: "serve",
  summary: "Serve a model over an OpenAI-compatible HTTP API",
  details: `Endpoints: GET /health, GET /v1/models, POST /v1/completions (prompt as text or
token ids; n, max_tokens, temperature, top_p, top_k, seed, stop, logprobs, echo, vLLM's
prompt_logprobs, stream), POST /v1/chat/completions (messages and tools through the model's
chat template; the reply's think text as reasoning_content and its <tool_call> blocks as
tool_calls; tool_choice none or auto; logprobs, top_logprobs, stream). Concurrent requests
share the decode batch (continuous batching); a client that goes away frees its slot.`,
  flags: {
    model: { type: "string", value: "DIR", required: true, description: "Model directory" },
    host: {
      type: "string",
      value: "HOST",
      default: "127.0.0.1",
      description: "Address to bind (0.0.0.0: every interface)",
    },
    port: { type: "integer", value: "N", default: 8000, description: "Port (0: a free one)" },
    "served-model-name": {
      type: "string",
      value: "NAME",
      description: "Model name clients use (default: the directory's name)",
    },
    "max-batch": {
      type: "integer",
      value: "N",
      default: 16,
      description: "Sequences decoded together at most",
    },
    "max-model-len": {
      type: "integer",
      value: "N",
      description: "Prompt + completion tokens per sequence (default min(config, 4096))",
    },
    "max-logprobs": {
      type: "integer",
      value: "K",
      default: 128,
      description: "Most top log-probs a request may ask for",
    },
    "api-key": {
      type: "string",
      value: "KEY",
      description: "Require Authorization: Bearer KEY (default: STAR_API_KEY, else none)",
    },
  },
} satisfies CommandSpec;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    for (const k of ["max-batch", "max-logprobs"] as const) {
      if (flags[k] < 1) throw new UsageError(`Flag "--${k}" must be at least 1`);
    }
    if (flags.port < 0 || flags.port > 65535) throw new UsageError(`Flag "--port" is out of range`);
    const mml = flags["max-model-len"];
    if (mml !== undefined && mml < 2) {
      throw new UsageError(`Flag "--max-model-len" must be at least 2`);
    }
    const { startServer } = await import("../serve/server.ts");
    const server = await startServer({
      model: flags.model,
      host: flags.host,
      port: flags.port,
      servedModelName: flags["served-model-name"],
      maxBatch: flags["max-batch"],
      maxModelLen: mml,
      maxLogprobs: flags["max-logprobs"],
      apiKey: flags["api-key"] ?? Deno.env.get("STAR_API_KEY"),
    });
    console.error(
      `serve: "${server.modelName}" on ${server.url}/v1 (${server.engine.slots} sequences of up to ` +
        `${server.engine.maxLen} tokens at once)`,
    );
    const { promise: stop, resolve } = Promise.withResolvers<string>();
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, () => resolve(s));
    const sig = await stop;
    const { running, waiting } = server.engine.load;
    console.error(
      `serve: ${sig}: finishing ${running + waiting} running requests' sequences, then stopping`,
    );
    await server.shutdown();
    console.error("serve: stopped");
    return 0;
  },
};
