/**
 * A client for OpenAI-compatible inference servers (vLLM, SGLang, `star serve`): POST
 * /v1/completions with at most `concurrency` requests in flight. A refused connection, a
 * timeout, 408, 429, a 5xx or a reply that is not a completion is retried after base, 2 x base,
 * 4 x base ... ms, up to `maxAttempts` attempts; then ServerUnavailableError ends the caller's
 * run. 400, 413 and 422 reject that one request (RequestRejectedError: a prompt too long for
 * the server, say); other 4xx (a wrong model name, a missing key) are ServerUnavailableError
 * at once. Request and response types name vLLM's fields (top_k, seed, prompt_logprobs, ...)
 * and let others through. Not done: streaming, chat completions.
 */

/** A /v1/completions request; fields beyond OpenAI's are vLLM's and SGLang's. */
export interface CompletionRequest {
  model: string;
  prompt: string | number[];
  max_tokens?: number;
  n?: number;
  temperature?: number;
  top_p?: number;
  /** -1 (or absent): off. Not an OpenAI field; vLLM and SGLang accept it. */
  top_k?: number;
  seed?: number;
  stop?: string[];
  /** Log-probs of this many top tokens per generated token. */
  logprobs?: number | null;
  /** vLLM: log-probs of this many top tokens at every prompt position. */
  prompt_logprobs?: number | null;
  echo?: boolean;
  [extra: string]: unknown;
}

/** vLLM's Logprob entry of prompt_logprobs, keyed by token id. */
export interface TokenLogprob {
  logprob: number;
  rank?: number | null;
  decoded_token?: string | null;
}

export interface CompletionChoice {
  index: number;
  text: string;
  finish_reason: string | null;
  logprobs?: {
    text_offset?: number[];
    token_logprobs?: (number | null)[];
    tokens?: string[];
    top_logprobs?: (Record<string, number> | null)[] | null;
  } | null;
  /** vLLM: one entry per prompt token (null for the first), token id -> log-prob. */
  prompt_logprobs?: (Record<string, TokenLogprob> | null)[] | null;
  stop_reason?: number | string | null;
  token_ids?: number[] | null;
  [extra: string]: unknown;
}

export interface CompletionResponse {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: { prompt_tokens: number; completion_tokens?: number; total_tokens: number } | null;
  [extra: string]: unknown;
}

export interface OpenAiClientOptions {
  /** http://host:port, with or without a trailing /v1. */
  baseUrl: string;
  /** Sent as a bearer token when given. */
  apiKey?: string;
  /** Requests in flight at most (default 32). */
  concurrency?: number;
  /** Milliseconds one attempt may take (default 600000). */
  timeoutMs?: number;
  /** Attempts per request (default 3). */
  maxAttempts?: number;
  /** Wait before the first retry in ms, doubled for each later one (default 1000). */
  retryBaseMs?: number;
  /** One line per failed attempt that will be retried. */
  log?: (line: string) => void;
}

/** The server cannot be used: down after every attempt, or refusing as misconfigured. Exits 1. */
export class ServerUnavailableError extends Error {
  override name = "ServerUnavailableError";
  readonly exitCode = 1;
}

/** The server refused this one request (HTTP 400, 413 or 422); others may still succeed. */
export class RequestRejectedError extends Error {
  override name = "RequestRejectedError";
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** A failed attempt that may succeed when tried again. */
class Retryable extends Error {}

/** The API root of a base URL: "http://h:8000" and "http://h:8000/v1/" give "http://h:8000/v1". */
export function apiRoot(baseUrl: string): string {
  const b = baseUrl.replace(/\/+$/, "");
  return b.endsWith("/v1") ? b : `${b}/v1`;
}

export class OpenAiClient {
  readonly root: string;
  readonly #o: Required<Omit<OpenAiClientOptions, "apiKey" | "log">> & OpenAiClientOptions;
  #active = 0;
  #waiting: (() => void)[] = [];

  constructor(opts: OpenAiClientOptions) {
    this.#o = {
      ...opts,
      concurrency: opts.concurrency ?? 32,
      timeoutMs: opts.timeoutMs ?? 600_000,
      maxAttempts: opts.maxAttempts ?? 3,
      retryBaseMs: opts.retryBaseMs ?? 1000,
    };
    this.root = apiRoot(opts.baseUrl);
  }

  /** POST /v1/completions. */
  completions(req: CompletionRequest): Promise<CompletionResponse> {
    return this.post("/completions", req, asCompletion);
  }

  /** POSTs JSON to root + path with the retries above; `check` validates the reply. */
  async post<T>(path: string, body: unknown, check: (v: unknown) => T): Promise<T> {
    await this.#acquire();
    try {
      const url = this.root + path;
      const text = JSON.stringify(body);
      for (let attempt = 1;; attempt++) {
        try {
          return await this.#attempt(url, text, check);
        } catch (err) {
          if (!(err instanceof Retryable)) throw err;
          if (attempt >= this.#o.maxAttempts) {
            throw new ServerUnavailableError(
              `The server at "${url}" did not answer after ${attempt} attempt${
                attempt > 1 ? "s" : ""
              } (last: ${err.message})`,
            );
          }
          const wait = this.#o.retryBaseMs * 2 ** (attempt - 1);
          this.#o.log?.(`${url}: ${err.message}; retrying in ${wait} ms`);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      this.#release();
    }
  }

  async #attempt<T>(url: string, body: string, check: (v: unknown) => T): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;
    const signal = AbortSignal.timeout(this.#o.timeoutMs);
    let status: number, text: string;
    try {
      const res = await fetch(url, { method: "POST", headers, body, signal });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      if (e.name === "TimeoutError" || e.name === "AbortError") {
        throw new Retryable(`no reply within ${this.#o.timeoutMs / 1000} s`);
      }
      throw new Retryable(e.message.split("\n")[0]);
    }
    if (status === 200) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new Retryable(`the reply is not JSON: ${JSON.stringify(text.slice(0, 100))}`);
      }
      try {
        return check(value);
      } catch (err) {
        throw new Retryable((err as Error).message);
      }
    }
    const why = `HTTP ${status}${serverMessage(text)}`;
    if (status === 408 || status === 429 || status >= 500) throw new Retryable(why);
    if (status === 400 || status === 413 || status === 422) {
      throw new RequestRejectedError(why, status);
    }
    throw new ServerUnavailableError(`The server at "${url}" refused the request: ${why}`);
  }

  async #acquire(): Promise<void> {
    if (this.#active < this.#o.concurrency) {
      this.#active++;
      return;
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(); // the slot passes to the next waiter
    else this.#active--;
  }
}

/** ": message" from an error body (vLLM's {"error": {"message"}} or {"message"}), or a prefix. */
function serverMessage(text: string): string {
  try {
    const v = JSON.parse(text);
    const m = v?.error?.message ?? v?.message ?? v?.detail;
    if (typeof m === "string") return `: ${m.split("\n")[0].slice(0, 300)}`;
  } catch { /* not JSON */ }
  const t = text.trim().split("\n")[0].slice(0, 200);
  return t ? `: ${t}` : "";
}

/** Checks the parts of a completion reply that callers rely on. */
function asCompletion(v: unknown): CompletionResponse {
  const r = v as CompletionResponse;
  if (typeof r !== "object" || r === null || !Array.isArray(r.choices)) {
    throw new Error('the reply has no "choices" list');
  }
  for (const c of r.choices) {
    if (typeof c?.index !== "number" || typeof c?.text !== "string") {
      throw new Error('a choice of the reply lacks "index" or "text"');
    }
  }
  return r;
}
