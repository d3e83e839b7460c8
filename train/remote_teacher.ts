/**
 * A CKD teacher on an inference server (`teacher: http://host:port/v1` in a ckd config): the
 * teacher's top-k log-probs at every target position come from POST /v1/completions with the
 * row's token ids as the prompt, `max_tokens: 1` and vLLM's `prompt_logprobs: k` (vLLM, SGLang
 * where it supports it, `star serve`). Before use, the server's vocabulary is checked against
 * the student's tokenizer: a probe text must tokenize to the same ids there and here. A server
 * that returns fewer than k entries per position (vLLM caps prompt_logprobs at its
 * --max-logprobs, 20 by default) is an error naming that setting, never a silent smaller k.
 * Requests run `concurrency` at a time and are retried with backoff (openai_client.ts), so a
 * server restart in the middle of a run is waited out.
 */
import type { Tokenizer } from "../data/tokenizer.ts";
import { ConfigError } from "./config.ts";
import {
  type CompletionResponse,
  OpenAiClient,
  RequestRejectedError,
  type TokenLogprob,
} from "./openai_client.ts";

/** Text whose tokenization differs between unrelated vocabularies: words, digits, CJK, tags. */
export const VOCAB_PROBE = 'Hello, world! 12345 <tool_call>\n{"name": "get_weather", ' +
  '"arguments": {"city": "Zürich"}}\n</tool_call> 你好，世界 <think>\nfine</think>';

export function isRemoteTeacher(teacher: string | undefined): teacher is string {
  return teacher !== undefined && /^https?:\/\//.test(teacher);
}

export interface RemoteTeacherOptions {
  url: string;
  /** The served model name (`teacher_model`). */
  model: string;
  k: number;
  concurrency: number;
  apiKey?: string;
  log?: (line: string) => void;
  /** Attempts per request (default 8: about two minutes of retries). */
  maxAttempts?: number;
  retryBaseMs?: number;
}

/** One sample's top-k: (P, k) ids and log-probs, P = target positions. */
export interface TeacherTopk {
  ids: Uint32Array;
  logprobs: Float32Array;
}

export class RemoteTeacher {
  #client: OpenAiClient;
  #o: RemoteTeacherOptions;

  private constructor(o: RemoteTeacherOptions) {
    this.#o = o;
    this.#client = new OpenAiClient({
      baseUrl: o.url,
      apiKey: o.apiKey,
      concurrency: o.concurrency,
      maxAttempts: o.maxAttempts ?? 8,
      retryBaseMs: o.retryBaseMs ?? 1000,
      log: o.log,
    });
  }

  /** Connects and checks that the server tokenizes as `tokenizer` does. */
  static async connect(o: RemoteTeacherOptions, tokenizer: Tokenizer): Promise<RemoteTeacher> {
    const t = new RemoteTeacher(o);
    await t.#checkVocabulary(tokenizer);
    return t;
  }

  async #checkVocabulary(tok: Tokenizer): Promise<void> {
    const here = tok.encode(VOCAB_PROBE);
    const r = await this.#request({ prompt: VOCAB_PROBE, prompt_logprobs: 0 });
    const there = r.usage?.prompt_tokens;
    const positions = r.choices[0]?.prompt_logprobs;
    const mismatch = (what: string) =>
      new ConfigError(
        `The teacher server "${this.#o.url}" (model "${this.#o.model}") does not share the ` +
          `student's vocabulary: ${what}. CKD needs the same tokenizer on both sides`,
      );
    if (there !== undefined && there !== here.length) {
      throw mismatch(`a probe text is ${there} tokens there and ${here.length} here`);
    }
    if (!Array.isArray(positions)) {
      throw new ConfigError(
        `The teacher server "${this.#o.url}" returned no prompt_logprobs; it must support ` +
          `vLLM's prompt_logprobs on /v1/completions (vLLM, SGLang, star serve)`,
      );
    }
    for (let t = 1; t < here.length; t++) {
      const ids = Object.keys(positions[t] ?? {}).map(Number);
      if (!ids.includes(here[t])) {
        throw mismatch(
          `token ${t} of a probe text is ${JSON.stringify(tok.decode([here[t]]))} (id ${
            here[t]
          }) ` +
            `here and id ${ids[0]} there`,
        );
      }
    }
  }

  #request(body: Record<string, unknown>): Promise<CompletionResponse> {
    return this.#client.completions(
      {
        model: this.#o.model,
        max_tokens: 1,
        temperature: 0,
        ...body,
      } as Parameters<OpenAiClient["completions"]>[0],
    ).catch((err) => {
      if (err instanceof RequestRejectedError) {
        throw new ConfigError(
          `The teacher server "${this.#o.url}" refused a prompt_logprobs request (${err.message}); ` +
            `with vLLM, start it with --max-logprobs ${this.#o.k} or more (kd_topk is ${this.#o.k})`,
        );
      }
      throw err;
    });
  }

  /** The teacher's top-k at each target position (promptLength-1 … len-2) of each sample. */
  topk(samples: { ids: ArrayLike<number>; promptLength: number }[]): Promise<TeacherTopk[]> {
    return Promise.all(samples.map(async (s) => {
      const ids = Array.from(s.ids);
      const r = await this.#request({ prompt: ids, prompt_logprobs: this.#o.k });
      const positions = r.choices[0]?.prompt_logprobs;
      if (!Array.isArray(positions) || positions.length !== ids.length) {
        throw new ConfigError(
          `The teacher server "${this.#o.url}" returned ${
            Array.isArray(positions) ? positions.length : "no"
          } prompt_logprobs entries for a prompt of ${ids.length} tokens`,
        );
      }
      const k = this.#o.k, first = Math.max(0, s.promptLength - 1), P = ids.length - 1 - first;
      const out = { ids: new Uint32Array(P * k), logprobs: new Float32Array(P * k) };
      for (let p = 0; p < P; p++) {
        const top = topEntries(positions[first + p + 1], k);
        if (top.length < k) {
          throw new ConfigError(
            `The teacher server "${this.#o.url}" returned ${top.length} top log-probs at a ` +
              `position, kd_topk is ${k}: raise the server's limit (vLLM: --max-logprobs ${k}) ` +
              `or lower kd_topk; training on fewer would change the loss`,
          );
        }
        top.forEach((e, j) => {
          out.ids[p * k + j] = e.id;
          out.logprobs[p * k + j] = e.logprob;
        });
      }
      return out;
    }));
  }
}

/**
 * The k best entries of one position of vLLM's prompt_logprobs (token id → {logprob, rank}),
 * descending: those ranked 1..k by the server, in rank order; where the server gives no such
 * ranks, by log-prob (then id). The actual token, listed besides the top k, is left out unless
 * it ranks within them.
 */
export function topEntries(
  m: Record<string, TokenLogprob> | null | undefined,
  k: number,
): { id: number; logprob: number }[] {
  const all = Object.entries(m ?? {}).map(([id, v]) => ({
    id: Number(id),
    logprob: v.logprob,
    rank: typeof v.rank === "number" ? v.rank : Infinity,
  }));
  const ranked = all.filter((e) => e.rank <= k).sort((a, b) => a.rank - b.rank || a.id - b.id);
  const best = ranked.length >= k
    ? ranked
    : all.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
  return best.slice(0, k).map(({ id, logprob }) => ({ id, logprob }));
}
