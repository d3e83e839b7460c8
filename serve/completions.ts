/**
 * POST /v1/completions of `star serve`: prompts as text, token ids, or a list of either; n,
 * max_tokens, sampling, stop, `logprobs` (OpenAI's legacy shape: tokens, token_logprobs,
 * top_logprobs, text_offset), `echo`, vLLM's `prompt_logprobs`, SSE streaming with `usage`.
 */
import { z } from "zod";
import type { Tokenizer } from "../data/tokenizer.ts";
import type { ServeEngine, TokenEvent, TokenLogprob } from "./engine.ts";
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
  sse,
  usage,
} from "./api.ts";

const completionSchema = z.object({
  ...samplingFields,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1),
  ], { error: "expected a string, a list of token ids, or a list of either" }),
  max_tokens: z.number().int().min(1).nullish(),
  logprobs: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  prompt_logprobs: z.number().int().min(0).nullish(),
});
type CompletionBody = z.infer<typeof completionSchema>;

/** A validated request, ready to run. */
interface Job {
  b: CompletionBody;
  prompts: number[][];
  /** Per prompt: log-prob and top entries at positions 1.. (prompt_logprobs, echo + logprobs). */
  promptLp?: PromptPosition[][];
  settings: Settings;
  maxTokens: number;
  id: string;
  abort: AbortController;
}

/** Per prompt position t ≥ 1: the actual token's log-prob and the top k there. */
export interface PromptPosition {
  logprob: number;
  top: TokenLogprob[];
}

export async function completions(
  ctx: ApiContext,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  const { o } = ctx;
  const b = parse(completionSchema, body);
  ctx.checkModel(b.model);
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
  ctx.checkK(top, "logprobs");
  if (b.prompt_logprobs != null) ctx.checkK(b.prompt_logprobs, "prompt_logprobs");
  const maxTokens = b.max_tokens ?? 16;
  for (const p of prompts) ctx.checkLength(p.length, maxTokens);
  const promptK = Math.max(b.prompt_logprobs ?? -1, b.echo && b.logprobs != null ? top : -1);
  const job: Job = {
    b,
    prompts,
    promptLp: promptK >= 0 ? await promptLogprobs(o.engine, prompts, promptK) : undefined,
    settings: ctx.settings(b, top),
    maxTokens,
    id: `cmpl-${hex()}`,
    abort: requestAbort(signal),
  };
  return b.stream ? stream(ctx, job) : await whole(ctx, job);
}

async function whole(ctx: ApiContext, job: Job): Promise<Response> {
  const { b, prompts } = job;
  const run = ctx.start(prompts, b.n, job.maxTokens, job.settings, job.abort.signal);
  await run.finished;
  failed(run.choices);
  if (job.abort.signal.aborted) throw new ApiError(400, "The client went away");
  return Response.json({
    id: job.id,
    object: "text_completion",
    created: created(),
    model: ctx.o.modelName,
    choices: run.choices.map((c) => ({
      index: c.index,
      text: echoText(ctx, job, c.prompt) + c.text.text,
      logprobs: legacyLogprobs(ctx, job, c, c.tokens, 0, 0),
      finish_reason: finishReason(c),
      stop_reason: c.stopReason,
      prompt_logprobs: promptLogprobsField(ctx, job, c.prompt),
    })),
    usage: usage(prompts, run.choices),
  });
}

function stream(ctx: ApiContext, job: Job): Response {
  const { b, prompts } = job;
  return sse(job.abort, async (out) => {
    const ts = created();
    const send = (choices: unknown[], extra = {}) =>
      out.send({
        id: job.id,
        object: "text_completion",
        created: ts,
        model: ctx.o.modelName,
        choices,
        ...extra,
      });
    const sent = new Map<number, { tokens: number; offset: number }>();
    const run = ctx.start(prompts, b.n, job.maxTokens, job.settings, job.abort.signal, (c, t) => {
      const at = sent.get(c.index);
      const text = (at ? "" : echoText(ctx, job, c.prompt)) + c.text.take(c.end !== undefined);
      if (t && text === "" && b.logprobs == null) return; // nothing to say yet
      if (!t && c.end === "error") return; // the request fails as a whole
      const from = at?.tokens ?? 0;
      const toks = c.tokens.slice(from);
      const lp = toks.length || (!at && b.echo)
        ? legacyLogprobs(ctx, job, c, toks, from, at?.offset ?? 0)
        : null;
      const end = lp ? lp.text_offset.at(-1)! + (lp.tokens.at(-1)?.length ?? 0) : at?.offset ?? 0;
      sent.set(c.index, { tokens: c.tokens.length, offset: end });
      send([{
        index: c.index,
        text,
        logprobs: lp,
        finish_reason: t ? null : finishReason(c),
        stop_reason: t ? null : c.stopReason,
        ...(!at && b.prompt_logprobs != null
          ? { prompt_logprobs: promptLogprobsField(ctx, job, c.prompt) }
          : {}),
      }]);
    });
    await run.finished;
    failed(run.choices);
    if (b.stream_options?.include_usage) send([], { usage: usage(prompts, run.choices) });
    out.done();
  });
}

const echoText = (ctx: ApiContext, job: Job, prompt: number) =>
  job.b.echo ? ctx.o.tokenizer.decode(job.prompts[prompt], { skipSpecialTokens: false }) : "";

/**
 * OpenAI's legacy logprobs of `tokens` (the choice's from token `from` on; with echo, the first
 * call also lists the prompt's tokens, the first one null); `offset0`: the text offset so far.
 */
function legacyLogprobs(
  ctx: ApiContext,
  job: Job,
  c: Choice,
  tokens: TokenEvent[],
  from: number,
  offset0: number,
) {
  const { b } = job;
  if (b.logprobs == null) return null;
  const out = {
    tokens: [] as string[],
    token_logprobs: [] as (number | null)[],
    top_logprobs: [] as (Record<string, number> | null)[],
    text_offset: [] as number[],
  };
  let offset = offset0;
  const add = (id: number, lp: number | null, top: Record<string, number> | null) => {
    const s = ctx.decodeOne(id);
    out.tokens.push(s);
    out.text_offset.push(offset);
    out.token_logprobs.push(lp);
    out.top_logprobs.push(top);
    offset += s.length;
  };
  if (from === 0 && b.echo && job.promptLp) {
    const pl = job.promptLp[c.prompt];
    job.prompts[c.prompt].forEach((id, t) =>
      t === 0 ? add(id, null, null) : add(
        id,
        pl[t - 1].logprob,
        topMap(pl[t - 1].top.slice(0, b.logprobs!), ctx.decodeOne),
      )
    );
  }
  for (const t of tokens) add(t.id, t.logprob, topMap([...(t.top ?? []), t], ctx.decodeOne));
  return out;
}

const promptLogprobsField = (ctx: ApiContext, job: Job, prompt: number) =>
  job.b.prompt_logprobs == null ? undefined : vllmPromptLogprobs(
    job.prompts[prompt],
    job.promptLp![prompt],
    job.b.prompt_logprobs,
    ctx.decodeOne,
  );

/** The prompts of a completion request as token ids. */
function promptIds(prompt: CompletionBody["prompt"], tok: Tokenizer, vocab: number): number[][] {
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
