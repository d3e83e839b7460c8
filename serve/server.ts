/**
 * `star serve` as a function: loads a model directory onto the engine, starts the serving
 * engine (serve/engine.ts) and the OpenAI-compatible API (serve/openai.ts) on Deno.serve, and
 * shuts down gracefully: no new connections, running requests finish, then the device is freed.
 */
import { basename, resolve } from "node:path";
import { Tokenizer } from "../data/tokenizer.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { DEFAULT_STOP_IDS } from "../model/generate.ts";
import { ServeEngine } from "./engine.ts";
import { apiHandler } from "./openai.ts";

export interface ServeOptions {
  /** Model directory (HF layout; its tokenizer files, or the built-in Qwen3 tokenizer). */
  model: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The name clients pass as `model` (default: the directory's name). */
  servedModelName?: string;
  /** Sequences decoded together at most (default 16). */
  maxBatch?: number;
  /** Prompt + completion tokens of one sequence at most (default min(max_position_embeddings, 4096)). */
  maxModelLen?: number;
  apiKey?: string;
  /** Most top log-probs a request may ask for (default 128). */
  maxLogprobs?: number;
  /** Largest request body in bytes (default 16 MiB). */
  maxBodyBytes?: number;
  /** Most sequences one request may start (default 256). */
  maxSequences?: number;
}

export interface RunningServer {
  /** http://host:port */
  url: string;
  modelName: string;
  engine: ServeEngine;
  /** Stops taking connections, lets running requests finish, frees the model. */
  shutdown(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const model = await GpuModel.load(o.model, { precision: "checkpoint" });
  try {
    await model.packWeights(); // decoding runs every weight once per token: pack them once
    const tokenizer = await Tokenizer.load(o.model);
    const c = model.config;
    const eos = c.eos_token_id;
    const stopIds = [...new Set([...DEFAULT_STOP_IDS, ...(eos === null ? [] : [eos].flat())])];
    const maxLen = o.maxModelLen ?? Math.min(c.max_position_embeddings, 4096);
    const engine = new ServeEngine(model, { slots: o.maxBatch ?? 16, maxLen, stopIds });
    const modelName = o.servedModelName ?? basename(resolve(o.model));
    const handler = apiHandler({
      engine,
      tokenizer,
      modelName,
      vocabSize: c.vocab_size,
      apiKey: o.apiKey,
      maxLogprobs: o.maxLogprobs ?? 128,
      maxBodyBytes: o.maxBodyBytes ?? 16 << 20,
      maxSequences: o.maxSequences ?? 256,
      stopIds,
    });
    const { promise: listening, resolve: onListen } = Promise.withResolvers<Deno.NetAddr>();
    const server = Deno.serve({
      hostname: o.host ?? "127.0.0.1",
      port: o.port ?? 8000,
      onListen: (addr) => onListen(addr as Deno.NetAddr),
    }, handler);
    const addr = await listening;
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    let down: Promise<void> | undefined;
    return {
      url: `http://${host}:${addr.port}`,
      modelName,
      engine,
      shutdown: () =>
        down ??= (async () => {
          await server.shutdown();
          await engine.close();
          model.release();
        })(),
    };
  } catch (err) {
    model.release();
    throw err;
  }
}
