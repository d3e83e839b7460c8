/**
 * What the endpoints of `star serve` share (serve/openai.ts routes to them): OpenAI-style errors,
 * request bodies read with a size limit and validated, and a request's sequences started on the
 * serving engine, their text decoded as it grows (stop strings applied), streamed as SSE.
 * Sampling: a request with `seed` draws the same tokens whatever else runs beside it; without
 * one each request gets a fresh random seed. Log-probs are of the full softmax at temperature 1.
 */
import { z } from "zod";
import type { Tokenizer } from "../data/tokenizer.ts";
import { sampleSeed, type SamplingParams } from "../model/sampling.ts";
import type { EndReason, ServeEngine, TokenEvent, TokenLogprob } from "./engine.ts";
import { IncrementalText } from "./text.ts";

export interface ApiOptions {
  engine: ServeEngine;
  tokenizer: Tokenizer;
  /** The name clients pass as `model`. */
  modelName: string;
  vocabSize: number;
  /** Bearer token required on /v1 routes when set. */
  apiKey?: string;
  /** Most top log-probs a request may ask for (prompt_logprobs, logprobs, top_logprobs). */
  maxLogprobs: number;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Most sequences one request may start (prompts × n). */
  maxSequences: number;
  /** Stop ids of the model (an end token: stop_reason null). */
  stopIds: number[];
}

/** A request the server refuses: becomes an OpenAI-style error reply. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null) {
    super(message);
  }
}

export const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  500: "server_error",
};

export function errorResponse(status: number, message: string, param: string | null = null) {
  return Response.json({
    error: { message, type: ERROR_TYPES[status] ?? "invalid_request_error", param, code: status },
  }, { status });
}

const stop = z.union([z.string(), z.array(z.string()).max(16)]).nullish();
/** Fields both endpoints take. */
export const samplingFields = {
  model: z.string().nullish(),
  n: z.number().int().min(1).max(128).default(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  seed: z.number().int().nullish(),
  stop,
  stop_token_ids: z.array(z.number().int().min(0)).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
};
type SamplingFields = z.infer<z.ZodObject<typeof samplingFields>>;

/** One sequence's output as it grows. */
export interface Choice {
  index: number;
  /** Index of its prompt in the request. */
  prompt: number;
  text: IncrementalText;
  ids: number[];
  tokens: TokenEvent[];
  end?: EndReason;
  error?: Error;
  stopReason: string | number | null;
}

/** How a request's sequences are sampled. */
export interface Settings {
  p: SamplingParams;
  seed: number;
  stops: string[];
  /** Top log-probs per token (0: none). */
  top: number;
  /** Extra ids that end a sequence (vLLM's stop_token_ids). */
  stopIds: number[];
}

export type Sse = { send(v: unknown): void; done(): void };

export const created = () => Math.floor(Date.now() / 1000);
export const hex = () => crypto.randomUUID().replaceAll("-", "");

export class ApiContext {
  constructor(readonly o: ApiOptions) {}

  decodeOne = (id: number): string => this.o.tokenizer.decode([id]);

  checkModel(name: string | null | undefined): void {
    if (name != null && name !== this.o.modelName) {
      throw new ApiError(404, `The model \`${name}\` does not exist.`, "model");
    }
  }

  checkK(k: number, param: string): void {
    if (k > this.o.maxLogprobs) {
      throw new ApiError(
        400,
        `Requested ${param} of ${k}, which is greater than max allowed: ${this.o.maxLogprobs}`,
        param,
      );
    }
  }

  checkLength(prompt: number, maxTokens: number): void {
    const maxLen = this.o.engine.maxLen;
    if (prompt + maxTokens > maxLen) {
      throw new ApiError(
        400,
        `This model's maximum context length is ${maxLen} tokens. However, you requested ` +
          `${prompt + maxTokens} tokens (${prompt} in the messages, ${maxTokens} in the ` +
          `completion). Please reduce the length of the messages or completion.`,
        "max_tokens",
      );
    }
  }

  settings(b: SamplingFields, top: number): Settings {
    return {
      p: {
        temperature: b.temperature ?? 1,
        topP: b.top_p ?? 1,
        topK: b.top_k != null && b.top_k > 0 ? b.top_k : 0,
      },
      seed: b.seed ?? Math.floor(Math.random() * 2 ** 32),
      stops: b.stop == null ? [] : [b.stop].flat(),
      top,
      stopIds: b.stop_token_ids ?? [],
    };
  }

  /**
   * Starts n sequences per prompt on the engine (choice index prompt·n + sample); `onEvent` is
   * called after each token and once at the end (no token). `finished` resolves when all ended.
   */
  start(
    prompts: number[][],
    n: number,
    maxTokens: number,
    s: Settings,
    signal: AbortSignal,
    onEvent: (c: Choice, t?: TokenEvent) => void = () => {},
  ): { choices: Choice[]; finished: Promise<void> } {
    const choices: Choice[] = [];
    const ends: Promise<void>[] = [];
    prompts.forEach((prompt, pi) => {
      for (let i = 0; i < n; i++) {
        const c: Choice = {
          index: pi * n + i,
          prompt: pi,
          text: new IncrementalText(this.o.tokenizer, s.stops),
          ids: [],
          tokens: [],
          stopReason: null,
        };
        choices.push(c);
        const { promise, resolve } = Promise.withResolvers<void>();
        ends.push(promise);
        this.o.engine.submit({
          prompt,
          maxTokens,
          params: s.p,
          stream: sampleSeed(s.seed, pi, i),
          topLogprobs: s.top,
          signal,
          onToken: (t) => {
            const stopNow = this.#take(c, t, s);
            onEvent(c, t);
            return stopNow;
          },
          onEnd: (reason, err) => {
            c.end = reason;
            c.error = err;
            onEvent(c);
            resolve();
          },
        });
      }
    });
    return { choices, finished: Promise.all(ends).then(() => {}) };
  }

  /** Adds a token to a choice; true when a stop string or an extra stop id ends it. */
  #take(c: Choice, t: TokenEvent, s: Settings): boolean {
    c.ids.push(t.id);
    c.tokens.push(t);
    if (c.text.push(t.id)) {
      c.stopReason = c.text.stoppedBy!;
      return true;
    }
    if (!this.o.stopIds.includes(t.id) && s.stopIds.includes(t.id)) {
      c.stopReason = t.id;
      return true;
    }
    return false;
  }
}

/** Throws the first generation failure of a request as a 500. */
export function failed(choices: Choice[]): void {
  const bad = choices.find((c) => c.end === "error");
  if (bad) throw new ApiError(500, `Generation failed: ${bad.error?.message ?? "unknown error"}`);
}

export const finishReason = (c: Choice) => (c.end === "length" ? "length" : "stop");

export function usage(prompts: number[][], choices: Choice[]) {
  const p = prompts.reduce((s, q) => s + q.length, 0);
  const g = choices.reduce((s, c) => s + c.ids.length, 0);
  return { prompt_tokens: p, completion_tokens: g, total_tokens: p + g };
}

/** An abort controller that follows the request's (the client went away). */
export function requestAbort(signal: AbortSignal): AbortController {
  const abort = new AbortController();
  signal.addEventListener("abort", () => abort.abort());
  return abort;
}

/** A server-sent-events reply fed by `body`; a client that leaves aborts `abort`. */
export function sse(abort: AbortController, body: (out: Sse) => Promise<void>): Response {
  const enc = new TextEncoder();
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(ctrl) {
      const out: Sse = {
        send: (v) => {
          if (!closed) ctrl.enqueue(enc.encode(`data: ${JSON.stringify(v)}\n\n`));
        },
        done: () => {
          if (closed) return;
          ctrl.enqueue(enc.encode("data: [DONE]\n\n"));
          closed = true;
          ctrl.close();
        },
      };
      body(out).catch((err) => {
        const e = err instanceof ApiError ? err : new ApiError(500, (err as Error).message);
        out.send({ error: { message: e.message, type: ERROR_TYPES[e.status], code: e.status } });
        out.done();
      });
    },
    cancel() {
      closed = true;
      abort.abort(); // the client went away: free its slots
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    },
  });
}

/** The request body as JSON, refusing bodies over `limit` bytes (413) and bad JSON (400). */
export async function readJson(req: Request, limit: number): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw new ApiError(413, `The body is over ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let n = 0;
  if (req.body) {
    for await (const c of req.body) {
      n += c.length;
      if (n > limit) throw new ApiError(413, `The body is over ${limit} bytes`);
      chunks.push(c);
    }
  }
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new ApiError(400, `The body is not valid JSON: ${(err as Error).message}`);
  }
}

export function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.path.join(".") || null;
  throw new ApiError(400, `${param ?? "body"}: ${issue.message}`, param);
}

export function tokenEntry(t: TokenLogprob, decode: (id: number) => string) {
  const token = decode(t.id);
  return { token, logprob: t.logprob, bytes: Array.from(new TextEncoder().encode(token)) };
}
