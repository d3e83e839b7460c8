/**
 * The OpenAI-compatible HTTP API of `star serve` over the serving engine (serve/engine.ts):
 * GET /health, GET /v1/models, POST /v1/completions (text or token-id prompts, n, sampling,
 * stop strings, logprobs, echo, vLLM's prompt_logprobs, SSE streaming, usage) and POST
 * /v1/chat/completions (messages and tools through the model's chat template; the reply split
 * into reasoning_content, content and tool_calls as vLLM's qwen3 reasoning and hermes tool
 * parsers split it; streaming deltas). Errors are OpenAI's JSON shape,
 * `{"error": {"message", "type", "param", "code"}}`, with 400 (a bad request), 401 (the API
 * key), 404 (a route or model that does not exist), 405, 413 (a body over the limit) or 500;
 * no request can stop the server.
 * Sampling: a request with `seed` draws the same tokens whatever else runs beside it; without
 * one each request gets a fresh random seed. Log-probs are of the full softmax at temperature 1.
 * Not done: tool_choice "required" or a named function, `best_of`, `logit_bias`, penalties.
 */
import { z } from "zod";
import type { Tokenizer } from "../data/tokenizer.ts";
import { TemplateError } from "../data/chat_template.ts";
import { parsePyJson, type PyValue } from "../lib/py/json.ts";
import { sampleSeed, type SamplingParams } from "../model/sampling.ts";
import type { EndReason, ServeEngine, TokenEvent, TokenLogprob } from "./engine.ts";
import {
  IncrementalText,
  parseToolCalls,
  safeLength,
  splitReasoning,
  THINK_CLOSE,
  THINK_OPEN,
  TOOL_OPEN,
  type ToolCall,
} from "./text.ts";

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
  /** Stop ids of the model, sent back as `stop_reason` when one ends a sequence. */
  stopIds: number[];
}

/** A request the server refuses: becomes an OpenAI-style error reply. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null) {
    super(message);
  }
}

const ERROR_TYPES: Record<number, string> = {
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
const sampling = {
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

const completionSchema = z.object({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1),
  ]),
  max_tokens: z.number().int().min(1).nullish(),
  logprobs: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  prompt_logprobs: z.number().int().min(0).nullish(),
});

const contentPart = z.object({ type: z.literal("text"), text: z.string() });
const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
}).loose();
const chatSchema = z.object({
  ...sampling,
  messages: z.array(message).min(1),
  tools: z.array(
    z.object({
      type: z.literal("function"),
      function: z.object({ name: z.string().min(1) }).loose(),
    }).loose(),
  ).nullish(),
  tool_choice: z.union([z.enum(["none", "auto", "required"]), z.object({}).loose()]).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
});

/** One sequence's output as it grows. */
interface Choice {
  index: number;
  prompt: number;
  text: IncrementalText;
  ids: number[];
  tokens: TokenEvent[];
  end?: EndReason;
  error?: Error;
  stopReason: string | number | null;
}

type Sse = { send(v: unknown): void; done(): void };

/** The request handler of the API (Deno.serve's handler). */
export function apiHandler(o: ApiOptions): (req: Request) => Promise<Response> {
  const created = () => Math.floor(Date.now() / 1000);
  const hex = () => crypto.randomUUID().replaceAll("-", "");
  const decodeOne = (id: number) => o.tokenizer.decode([id]);

  const checkModel = (name: string | null | undefined) => {
    if (name != null && name !== o.modelName) {
      throw new ApiError(404, `The model \`${name}\` does not exist.`, "model");
    }
  };
  const checkK = (k: number, param: string) => {
    if (k > o.maxLogprobs) {
      throw new ApiError(
        400,
        `Requested ${param} of ${k}, which is greater than max allowed: ${o.maxLogprobs}`,
        param,
      );
    }
  };

  function params(b: z.infer<typeof completionSchema> | z.infer<typeof chatSchema>) {
    const p: SamplingParams = {
      temperature: b.temperature ?? 1,
      topP: b.top_p ?? 1,
      topK: b.top_k != null && b.top_k > 0 ? b.top_k : 0,
    };
    const seed = b.seed ?? Math.floor(Math.random() * 2 ** 32);
    return { p, seed, stops: b.stop == null ? [] : [b.stop].flat() };
  }

  /** Starts every choice on the engine; resolves when all have ended. */
  function start(
    prompts: number[][],
    n: number,
    maxTokens: (prompt: number[]) => number,
    b: { p: SamplingParams; seed: number; stops: string[]; top: number; stopIds: number[] },
    signal: AbortSignal,
    onEvent: (c: Choice, t?: TokenEvent) => void,
  ): { choices: Choice[]; finished: Promise<void> } {
    const choices: Choice[] = [];
    const ends: Promise<void>[] = [];
    const extraStops = new Set(b.stopIds);
    prompts.forEach((prompt, pi) => {
      for (let i = 0; i < n; i++) {
        const c: Choice = {
          index: pi * n + i,
          prompt: pi,
          text: new IncrementalText(o.tokenizer, b.stops),
          ids: [],
          tokens: [],
          stopReason: null,
        };
        choices.push(c);
        ends.push(
          new Promise<void>((resolve) => {
            o.engine.submit({
              prompt,
              maxTokens: maxTokens(prompt),
              params: b.p,
              stream: sampleSeed(b.seed, pi, i),
              topLogprobs: b.top,
              signal,
              onToken: (t) => {
                c.ids.push(t.id);
                c.tokens.push(t);
                let stopNow = c.text.push(t.id);
                if (stopNow) c.stopReason = c.text.stoppedBy!;
                else if (o.stopIds.includes(t.id)) c.stopReason = null;
                else if (extraStops.has(t.id)) {
                  c.stopReason = t.id;
                  stopNow = true;
                }
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
          }),
        );
      }
    });
    return { choices, finished: Promise.all(ends).then(() => {}) };
  }

  const failed = (choices: Choice[]) => {
    const bad = choices.find((c) => c.end === "error");
    if (bad) throw new ApiError(500, `Generation failed: ${bad.error?.message ?? "unknown error"}`);
  };
  const finishReason = (c: Choice) => (c.end === "length" ? "length" : "stop");
  const usage = (prompts: number[][], choices: Choice[]) => {
    const p = prompts.reduce((s, q) => s + q.length, 0);
    const g = choices.reduce((s, c) => s + c.ids.length, 0);
    return { prompt_tokens: p, completion_tokens: g, total_tokens: p + g };
  };

  function sse(signal: AbortController, body: (out: Sse) => Promise<void>): Response {
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
        signal.abort(); // the client went away: free its slots
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

  // ---- /v1/completions ----

  async function completions(body: unknown, reqSignal: AbortSignal): Promise<Response> {
    const b = parse(completionSchema, body);
    checkModel(b.model);
    const prompts = promptIds(b.prompt, o.tokenizer, o.vocabSize);
    if (prompts.length * b.n > o.maxSequences) {
      throw new ApiError(
        400,
        `The request asks for ${
          prompts.length * b.n
        } sequences (prompts × n); at most ${o.maxSequences}`,
        "n",
      );
    }
    const top = b.logprobs ?? 0;
    checkK(top, "logprobs");
    if (b.prompt_logprobs != null) checkK(b.prompt_logprobs, "prompt_logprobs");
    const maxTokens = b.max_tokens ?? 16;
    for (const p of prompts) checkLength(p.length, maxTokens, o.engine.maxLen);
    const promptK = Math.max(b.prompt_logprobs ?? -1, b.echo && b.logprobs != null ? top : -1);
    const promptLp = promptK >= 0 ? await promptLogprobs(o.engine, prompts, promptK) : undefined;
    const { p, seed, stops } = params(b);
    const abort = new AbortController();
    reqSignal.addEventListener("abort", () => abort.abort());
    const id = `cmpl-${hex()}`;
    const settings = { p, seed, stops, top, stopIds: b.stop_token_ids ?? [] };
    const echoText = (pi: number) =>
      b.echo ? o.tokenizer.decode(prompts[pi], { skipSpecialTokens: false }) : "";

    const legacyLogprobs = (c: Choice, tokens: TokenEvent[], from: number, offset0: number) => {
      if (b.logprobs == null) return null;
      const out = {
        tokens: [] as string[],
        token_logprobs: [] as (number | null)[],
        top_logprobs: [] as (Record<string, number> | null)[],
        text_offset: [] as number[],
      };
      let offset = offset0;
      if (from === 0 && b.echo && promptLp) {
        const pl = promptLp[c.prompt];
        prompts[c.prompt].forEach((tid, t) => {
          const s = decodeOne(tid);
          out.tokens.push(s);
          out.text_offset.push(offset);
          offset += s.length;
          if (t === 0) {
            out.token_logprobs.push(null);
            out.top_logprobs.push(null);
          } else {
            out.token_logprobs.push(pl[t - 1].logprob);
            out.top_logprobs.push(topMap(pl[t - 1].top.slice(0, top), decodeOne));
          }
        });
      }
      for (const t of tokens) {
        const s = decodeOne(t.id);
        out.tokens.push(s);
        out.text_offset.push(offset);
        offset += s.length;
        out.token_logprobs.push(t.logprob);
        out.top_logprobs.push(topMap([...(t.top ?? []), t], decodeOne));
      }
      return out;
    };
    const promptLogprobsField = (pi: number) =>
      b.prompt_logprobs == null ? undefined : vllmPromptLogprobs(
        prompts[pi],
        promptLp![pi],
        b.prompt_logprobs,
        decodeOne,
      );

    if (!b.stream) {
      const run = start(prompts, b.n, () => maxTokens, settings, abort.signal, () => {});
      await run.finished;
      failed(run.choices);
      if (abort.signal.aborted) throw new ApiError(400, "The client went away");
      return Response.json({
        id,
        object: "text_completion",
        created: created(),
        model: o.modelName,
        choices: run.choices.map((c) => ({
          index: c.index,
          text: echoText(c.prompt) + c.text.text,
          logprobs: legacyLogprobs(c, c.tokens, 0, 0),
          finish_reason: finishReason(c),
          stop_reason: c.stopReason,
          prompt_logprobs: promptLogprobsField(c.prompt),
        })),
        usage: usage(prompts, run.choices),
      });
    }
    return sse(abort, async (out) => {
      const ts = created();
      const chunk = (choice: Record<string, unknown>) =>
        out.send({
          id,
          object: "text_completion",
          created: ts,
          model: o.modelName,
          choices: [choice],
        });
      const sentTokens = new Map<number, number>();
      const offsets = new Map<number, number>();
      const first = new Set<number>();
      const run = start(prompts, b.n, () => maxTokens, settings, abort.signal, (c, t) => {
        const from = sentTokens.get(c.index) ?? 0;
        const head = first.has(c.index) ? "" : echoText(c.prompt);
        const text = head + c.text.take(c.end !== undefined);
        const toks = c.tokens.slice(from);
        if (t && text === "" && b.logprobs == null) return;
        if (!t && c.end === "error") return;
        first.add(c.index);
        sentTokens.set(c.index, c.tokens.length);
        const lp = toks.length || (from === 0 && b.echo)
          ? legacyLogprobs(c, toks, from, offsets.get(c.index) ?? 0)
          : null;
        if (lp) offsets.set(c.index, lp.text_offset.at(-1)! + (lp.tokens.at(-1)?.length ?? 0));
        chunk({
          index: c.index,
          text,
          logprobs: lp,
          finish_reason: t ? null : finishReason(c),
          stop_reason: t ? null : c.stopReason,
          ...(from === 0 && t && b.prompt_logprobs != null
            ? { prompt_logprobs: promptLogprobsField(c.prompt) }
            : {}),
        });
      });
      await run.finished;
      failed(run.choices);
      if (b.stream_options?.include_usage) {
        out.send({
          id,
          object: "text_completion",
          created: ts,
          model: o.modelName,
          choices: [],
          usage: usage(prompts, run.choices),
        });
      }
      out.done();
    });
  }

  // ---- /v1/chat/completions ----

  async function chat(body: unknown, reqSignal: AbortSignal): Promise<Response> {
    const b = parse(chatSchema, body);
    checkModel(b.model);
    if (b.n > o.maxSequences) {
      throw new ApiError(400, `n is ${b.n}; at most ${o.maxSequences}`, "n");
    }
    const choice = b.tool_choice ?? "auto";
    if (choice !== "none" && choice !== "auto") {
      throw new ApiError(
        400,
        'tool_choice must be "none" or "auto" (a required or named function is not supported)',
        "tool_choice",
      );
    }
    const tools = b.tools ?? [];
    const parseTools = tools.length > 0 && choice === "auto";
    const top = b.logprobs ? (b.top_logprobs ?? 0) : 0;
    checkK(top, "top_logprobs");
    const text = renderChat(o.tokenizer, b.messages, tools, b.chat_template_kwargs ?? {});
    const prompt = o.tokenizer.encode(text);
    const asked = b.max_completion_tokens ?? b.max_tokens;
    checkLength(prompt.length, asked ?? 1, o.engine.maxLen);
    const maxTokens = asked ?? o.engine.maxLen - prompt.length;
    const { p, seed, stops } = params(b);
    const abort = new AbortController();
    reqSignal.addEventListener("abort", () => abort.abort());
    const id = `chatcmpl-${hex()}`;
    const toolId = () => `chatcmpl-tool-${hex()}`;
    const settings = { p, seed, stops, top: b.logprobs ? top : 0, stopIds: b.stop_token_ids ?? [] };
    const chatLogprobs = (tokens: TokenEvent[]) =>
      b.logprobs
        ? {
          content: tokens.map((t) => ({
            ...tokenEntry(t, decodeOne),
            top_logprobs: (t.top ?? []).slice(0, top).map((x) => tokenEntry(x, decodeOne)),
          })),
        }
        : null;
    const final = (c: Choice) => {
      const { reasoning, content } = splitReasoning(c.text.text);
      const calls = parseTools && content !== null
        ? parseToolCalls(content, toolId)
        : { content, toolCalls: [] as ToolCall[] };
      return { reasoning, content: calls.content, toolCalls: calls.toolCalls };
    };
    const reason = (c: Choice, calls: ToolCall[]) =>
      calls.length && c.end === "stop" ? "tool_calls" : finishReason(c);

    if (!b.stream) {
      const run = start([prompt], b.n, () => maxTokens, settings, abort.signal, () => {});
      await run.finished;
      failed(run.choices);
      return Response.json({
        id,
        object: "chat.completion",
        created: created(),
        model: o.modelName,
        choices: run.choices.map((c) => {
          const f = final(c);
          return {
            index: c.index,
            message: {
              role: "assistant",
              content: f.content,
              reasoning_content: f.reasoning,
              tool_calls: f.toolCalls,
            },
            logprobs: chatLogprobs(c.tokens),
            finish_reason: reason(c, f.toolCalls),
            stop_reason: c.stopReason,
          };
        }),
        usage: usage([prompt], run.choices),
      });
    }
    return sse(abort, async (out) => {
      const ts = created();
      const chunk = (choice: Record<string, unknown>) =>
        out.send({
          id,
          object: "chat.completion.chunk",
          created: ts,
          model: o.modelName,
          choices: [choice],
        });
      const state = new Map<number, { reasoning: number; content: number; tokens: number }>();
      const run = start([prompt], b.n, () => maxTokens, settings, abort.signal, (c, t) => {
        let s = state.get(c.index);
        if (!s) {
          state.set(c.index, s = { reasoning: 0, content: 0, tokens: 0 });
          chunk({ index: c.index, delta: { role: "assistant", content: "" }, finish_reason: null });
        }
        if (!t && c.end === "error") return;
        const toks = c.tokens.slice(s.tokens);
        s.tokens = c.tokens.length;
        const lp = toks.length ? chatLogprobs(toks) : null;
        if (t) {
          const v = streamingSplit(c.text.text, parseTools, b.stop == null ? [] : [b.stop].flat());
          const delta: Record<string, string> = {};
          if (v.reasoning.length > s.reasoning) {
            delta.reasoning_content = v.reasoning.slice(s.reasoning);
          }
          if (v.content.length > s.content) delta.content = v.content.slice(s.content);
          s.reasoning = Math.max(s.reasoning, v.reasoning.length);
          s.content = Math.max(s.content, v.content.length);
          if (Object.keys(delta).length || lp) {
            chunk({ index: c.index, delta, logprobs: lp, finish_reason: null });
          }
          return;
        }
        // the end: what the whole reply parses to, past what was streamed
        const f = final(c);
        const delta: Record<string, unknown> = {};
        const r = f.reasoning ?? "", ct = f.content ?? "";
        if (r.length > s.reasoning) delta.reasoning_content = r.slice(s.reasoning);
        if (ct.length > s.content) delta.content = ct.slice(s.content);
        if (f.toolCalls.length) {
          delta.tool_calls = f.toolCalls.map((call, index) => ({ index, ...call }));
        }
        chunk({
          index: c.index,
          delta,
          logprobs: lp,
          finish_reason: reason(c, f.toolCalls),
          stop_reason: c.stopReason,
        });
      });
      await run.finished;
      failed(run.choices);
      if (b.stream_options?.include_usage) {
        out.send({
          id,
          object: "chat.completion.chunk",
          created: ts,
          model: o.modelName,
          choices: [],
          usage: usage([prompt], run.choices),
        });
      }
      out.done();
    });
  }

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      const route = `${req.method} ${url.pathname.replace(/\/+$/, "")}`;
      if (route === "GET /health") return new Response(null, { status: 200 });
      if (!url.pathname.startsWith("/v1/")) throw new ApiError(404, `No route ${url.pathname}`);
      if (o.apiKey !== undefined && req.headers.get("authorization") !== `Bearer ${o.apiKey}`) {
        throw new ApiError(401, "Missing or wrong API key (send Authorization: Bearer KEY)");
      }
      switch (route) {
        case "GET /v1/models":
          return Response.json({
            object: "list",
            data: [{
              id: o.modelName,
              object: "model",
              created: created(),
              owned_by: "star",
              max_model_len: o.engine.maxLen,
            }],
          });
        case "POST /v1/completions":
          return await completions(await readJson(req, o.maxBodyBytes), req.signal);
        case "POST /v1/chat/completions":
          return await chat(await readJson(req, o.maxBodyBytes), req.signal);
      }
      const known = ["/v1/models", "/v1/completions", "/v1/chat/completions"];
      if (known.includes(url.pathname.replace(/\/+$/, ""))) {
        throw new ApiError(405, `Method ${req.method} is not allowed on ${url.pathname}`);
      }
      throw new ApiError(404, `No route ${url.pathname}`);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err.status, err.message, err.param);
      return errorResponse(500, `Internal error: ${(err as Error).message}`);
    }
  };
}

/** The request body as JSON, refusing bodies over `limit` bytes (413) and bad JSON (400). */
async function readJson(req: Request, limit: number): Promise<unknown> {
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

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.path.join(".") || null;
  throw new ApiError(400, `${param ?? "body"}: ${issue.message}`, param);
}

function checkLength(prompt: number, maxTokens: number, maxLen: number) {
  if (prompt + maxTokens > maxLen) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${maxLen} tokens. However, you requested ` +
        `${
          prompt + maxTokens
        } tokens (${prompt} in the messages, ${maxTokens} in the completion). ` +
        `Please reduce the length of the messages or completion.`,
      "max_tokens",
    );
  }
}

/** The prompts of a completion request as token ids. */
function promptIds(
  prompt: z.infer<typeof completionSchema>["prompt"],
  tok: Tokenizer,
  vocab: number,
): number[][] {
  const list: (string | number[])[] = typeof prompt === "string"
    ? [prompt]
    : typeof prompt[0] === "number"
    ? [prompt as number[]]
    : (prompt as (string | number[])[]);
  return list.map((p, i) => {
    const ids = typeof p === "string" ? tok.encode(p) : p;
    if (ids.length === 0) throw new ApiError(400, `prompt ${i} is empty`, "prompt");
    const bad = ids.find((t) => t < 0 || t >= vocab);
    if (bad !== undefined) {
      throw new ApiError(
        400,
        `prompt ${i} holds token id ${bad}, outside 0..${vocab - 1}`,
        "prompt",
      );
    }
    return ids;
  });
}

/** Per prompt position t ≥ 1: the actual token's log-prob and the top k there. */
interface PromptPosition {
  logprob: number;
  top: TokenLogprob[];
}

/** Log-probs of each prompt's tokens (and the top k at each position), on the engine's loop. */
async function promptLogprobs(
  engine: ServeEngine,
  prompts: number[][],
  k: number,
): Promise<PromptPosition[][]> {
  const out: PromptPosition[][] = [];
  for (const p of prompts) {
    const [r] = await engine.run((m) => m.logprobs([p], { topK: Math.max(1, k) }));
    out.push(r.logprobs.map((lp, t) => ({
      logprob: lp,
      top: r.topkIds![t].slice(0, k).map((id, j) => ({ id, logprob: r.topkLogprobs![t][j] })),
    })));
  }
  return out;
}

/**
 * vLLM's prompt_logprobs: null for the first token, then per position a map token id →
 * {logprob, rank, decoded_token} of the top k (ranks 1..k) and the actual token (its rank: its
 * place in the top k, or null when it is not in it; the exact rank past k is not computed).
 */
export function vllmPromptLogprobs(
  prompt: number[],
  positions: PromptPosition[],
  k: number,
  decode: (id: number) => string,
): (Record<string, { logprob: number; rank: number | null; decoded_token: string }> | null)[] {
  return [
    null,
    ...positions.map((pos, t) => {
      const m: Record<string, { logprob: number; rank: number | null; decoded_token: string }> = {};
      const actual = prompt[t + 1];
      const at = pos.top.findIndex((x) => x.id === actual);
      m[actual] = {
        logprob: pos.logprob,
        rank: at >= 0 ? at + 1 : null,
        decoded_token: decode(actual),
      };
      pos.top.slice(0, k).forEach((x, j) => {
        m[x.id] = { logprob: x.logprob, rank: j + 1, decoded_token: decode(x.id) };
      });
      return m;
    }),
  ];
}

function topMap(entries: TokenLogprob[], decode: (id: number) => string): Record<string, number> {
  const m: Record<string, number> = {};
  for (const e of entries) {
    const s = decode(e.id);
    if (!(s in m)) m[s] = e.logprob;
  }
  return m;
}

function tokenEntry(t: TokenLogprob, decode: (id: number) => string) {
  const token = decode(t.id);
  return { token, logprob: t.logprob, bytes: Array.from(new TextEncoder().encode(token)) };
}

/** The chat prompt: messages (content parts joined, null content as "") and tools, rendered. */
function renderChat(
  tok: Tokenizer,
  messages: z.infer<typeof chatSchema>["messages"],
  tools: unknown[],
  kwargs: Record<string, unknown>,
): string {
  const msgs = messages.map((m) => {
    const c = m.content;
    return { ...m, content: Array.isArray(c) ? c.map((p) => p.text).join("") : c ?? "" };
  });
  const py = (v: unknown) => parsePyJson(JSON.stringify(v)) as PyValue;
  const vars: Record<string, PyValue> = {};
  for (const [k, v] of Object.entries(kwargs)) vars[k] = py(v);
  try {
    return tok.chatTemplate(tools.length > 0).render({
      ...vars,
      messages: py(msgs),
      tools: tools.length ? py(tools) : null,
      add_generation_prompt: true,
    });
  } catch (err) {
    if (err instanceof TemplateError) {
      throw new ApiError(
        400,
        `The chat template failed on these messages: ${err.message}`,
        "messages",
      );
    }
    throw err;
  }
}

/**
 * What of a growing reply can be streamed: the think text and the content so far, each short
 * of a tail that may still become a tag (`</think>`, `<tool_call>`) or a stop string; once a
 * `<tool_call>` appears (with tools), the rest is held for the final parse.
 */
export function streamingSplit(
  text: string,
  tools: boolean,
  stops: string[],
): { reasoning: string; content: string } {
  const open = text.indexOf(THINK_OPEN);
  if (open < 0 && THINK_OPEN.startsWith(text)) return { reasoning: "", content: "" };
  let reasoning = "", content: string;
  if (open >= 0) {
    const rest = text.slice(open + THINK_OPEN.length);
    const close = rest.indexOf(THINK_CLOSE);
    if (close < 0) {
      return { reasoning: rest.slice(0, safeLength(rest, [THINK_CLOSE, ...stops])), content: "" };
    }
    reasoning = rest.slice(0, close);
    content = rest.slice(close + THINK_CLOSE.length);
  } else {
    content = text;
  }
  if (tools) {
    const at = content.indexOf(TOOL_OPEN);
    if (at >= 0) return { reasoning, content: content.slice(0, at) };
  }
  return {
    reasoning,
    content: content.slice(0, safeLength(content, tools ? [TOOL_OPEN, ...stops] : stops)),
  };
}
