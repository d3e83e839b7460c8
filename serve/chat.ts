/**
 * POST /v1/chat/completions of `star serve`: `messages` and `tools` rendered with the model's
 * chat template (content parts joined, null content as ""; `chat_template_kwargs` passed on);
 * the reply split into `reasoning_content`, `content` and `tool_calls` as vLLM's qwen3 reasoning
 * parser and hermes tool parser split it (tool calls only with tools and tool_choice "auto");
 * `logprobs`/`top_logprobs`; streaming deltas, the tool calls in the last one.
 * Not done: tool_choice "required" or a named function.
 */
import { z } from "zod";
import type { Tokenizer } from "../data/tokenizer.ts";
import { TemplateError } from "../data/chat_template.ts";
import { parsePyJson, type PyValue } from "../lib/py/json.ts";
import type { TokenEvent } from "./engine.ts";
import {
  type ApiContext,
  ApiError,
  type Choice,
  created,
  failed,
  finishReason,
  hex,
  parse,
  requestAbort,
  samplingFields,
  type Settings,
  type Sse,
  sse,
  tokenEntry,
  usage,
} from "./api.ts";
import {
  parseToolCalls,
  safeLength,
  splitReasoning,
  THINK_CLOSE,
  THINK_OPEN,
  TOOL_OPEN,
  type ToolCall,
} from "./text.ts";

const contentPart = z.object({ type: z.literal("text"), text: z.string() });
const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
}).loose();
const chatSchema = z.object({
  ...samplingFields,
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
type ChatBody = z.infer<typeof chatSchema>;

/** A validated request, ready to run. */
interface Job {
  b: ChatBody;
  prompt: number[];
  /** Parse tool calls out of the reply (tools given, tool_choice "auto"). */
  tools: boolean;
  top: number;
  settings: Settings;
  maxTokens: number;
  id: string;
  abort: AbortController;
}

export async function chat(ctx: ApiContext, body: unknown, signal: AbortSignal): Promise<Response> {
  const { o } = ctx;
  const b = parse(chatSchema, body);
  ctx.checkModel(b.model);
  if (b.n > o.maxSequences) throw new ApiError(400, `n is ${b.n}; at most ${o.maxSequences}`, "n");
  const choice = b.tool_choice ?? "auto";
  if (choice !== "none" && choice !== "auto") {
    throw new ApiError(
      400,
      'tool_choice must be "none" or "auto" (a required or named function is not supported)',
      "tool_choice",
    );
  }
  const tools = b.tools ?? [];
  const top = b.logprobs ? (b.top_logprobs ?? 0) : 0;
  ctx.checkK(top, "top_logprobs");
  const prompt = o.tokenizer.encode(
    renderChat(o.tokenizer, b.messages, tools, b.chat_template_kwargs ?? {}),
  );
  const asked = b.max_completion_tokens ?? b.max_tokens;
  ctx.checkLength(prompt.length, asked ?? 1);
  const job: Job = {
    b,
    prompt,
    tools: tools.length > 0 && choice === "auto",
    top,
    settings: ctx.settings(b, top),
    maxTokens: asked ?? o.engine.maxLen - prompt.length,
    id: `chatcmpl-${hex()}`,
    abort: requestAbort(signal),
  };
  return b.stream ? stream(ctx, job) : await whole(ctx, job);
}

/** What a whole reply parses to. */
function final(job: Job, c: Choice) {
  const { reasoning, content } = splitReasoning(c.text.text);
  const calls = job.tools && content !== null
    ? parseToolCalls(content, () => `chatcmpl-tool-${hex()}`)
    : { content, toolCalls: [] as ToolCall[] };
  return { reasoning, content: calls.content, toolCalls: calls.toolCalls };
}

const reason = (c: Choice, calls: ToolCall[]) =>
  calls.length && c.end === "stop" ? "tool_calls" : finishReason(c);

function chatLogprobs(ctx: ApiContext, job: Job, tokens: TokenEvent[]) {
  if (!job.b.logprobs) return null;
  return {
    content: tokens.map((t) => ({
      ...tokenEntry(t, ctx.decodeOne),
      top_logprobs: (t.top ?? []).slice(0, job.top).map((x) => tokenEntry(x, ctx.decodeOne)),
    })),
  };
}

async function whole(ctx: ApiContext, job: Job): Promise<Response> {
  const run = ctx.start([job.prompt], job.b.n, job.maxTokens, job.settings, job.abort.signal);
  await run.finished;
  failed(run.choices);
  return Response.json({
    id: job.id,
    object: "chat.completion",
    created: created(),
    model: ctx.o.modelName,
    choices: run.choices.map((c) => {
      const f = final(job, c);
      return {
        index: c.index,
        message: {
          role: "assistant",
          content: f.content,
          reasoning_content: f.reasoning,
          tool_calls: f.toolCalls,
        },
        logprobs: chatLogprobs(ctx, job, c.tokens),
        finish_reason: reason(c, f.toolCalls),
        stop_reason: c.stopReason,
      };
    }),
    usage: usage([job.prompt], run.choices),
  });
}

function stream(ctx: ApiContext, job: Job): Response {
  return sse(job.abort, async (out) => {
    const ts = created();
    const send = (choices: unknown[], extra = {}) =>
      out.send({
        id: job.id,
        object: "chat.completion.chunk",
        created: ts,
        model: ctx.o.modelName,
        choices,
        ...extra,
      });
    const sent = new Map<number, Sent>();
    const run = ctx.start(
      [job.prompt],
      job.b.n,
      job.maxTokens,
      job.settings,
      job.abort.signal,
      (c, t) => streamEvent(ctx, job, c, t, sent, send),
    );
    await run.finished;
    failed(run.choices);
    if (job.b.stream_options?.include_usage) {
      send([], { usage: usage([job.prompt], run.choices) });
    }
    out.done();
  });
}

/** How much of a choice has been streamed. */
interface Sent {
  reasoning: number;
  content: number;
  tokens: number;
}

/** The chunk(s) one token (or the end) of a choice gives: role first, then deltas. */
function streamEvent(
  ctx: ApiContext,
  job: Job,
  c: Choice,
  t: TokenEvent | undefined,
  sent: Map<number, Sent>,
  send: Sse["send"],
): void {
  let s = sent.get(c.index);
  if (!s) {
    sent.set(c.index, s = { reasoning: 0, content: 0, tokens: 0 });
    send([{ index: c.index, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  }
  if (!t && c.end === "error") return; // the request fails as a whole
  const toks = c.tokens.slice(s.tokens);
  s.tokens = c.tokens.length;
  const lp = toks.length ? chatLogprobs(ctx, job, toks) : null;
  const delta: Record<string, unknown> = {};
  const grow = (key: "reasoning" | "content", text: string) => {
    if (text.length > s[key]) {
      delta[key === "reasoning" ? "reasoning_content" : "content"] = text.slice(s[key]);
      s[key] = text.length;
    }
  };
  if (t) {
    const v = streamingSplit(c.text.text, job.tools, job.settings.stops);
    grow("reasoning", v.reasoning);
    grow("content", v.content);
    if (Object.keys(delta).length || lp) {
      send([{ index: c.index, delta, logprobs: lp, finish_reason: null }]);
    }
    return;
  }
  // the end: what the whole reply parses to, past what was streamed
  const f = final(job, c);
  grow("reasoning", f.reasoning ?? "");
  grow("content", f.content ?? "");
  if (f.toolCalls.length) delta.tool_calls = f.toolCalls.map((call, index) => ({ index, ...call }));
  send([{
    index: c.index,
    delta,
    logprobs: lp,
    finish_reason: reason(c, f.toolCalls),
    stop_reason: c.stopReason,
  }]);
}

/** The chat prompt: messages (content parts joined, null content as "") and tools, rendered. */
function renderChat(
  tok: Tokenizer,
  messages: ChatBody["messages"],
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
