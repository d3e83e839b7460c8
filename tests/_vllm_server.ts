/**
 * A stand-in for a vLLM server in tests: Deno.serve on 127.0.0.1 (port 0) that answers POST
 * /v1/completions through a handler, records every request body, and shuts down when closed.
 * vllmReply() writes a reply in the response schema vLLM documents for /v1/completions.
 */

export type Body = Record<string, unknown>;

export interface FakeServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (the client adds /v1). */
  url: string;
  /** Bodies of the requests received, in arrival order. */
  requests: Body[];
  close(): Promise<void>;
}

/** Starts a server; `handle` gets each request body and its 0-based arrival number. */
export function fakeVllm(
  handle: (body: Body, i: number) => Response | Promise<Response>,
): FakeServer {
  const requests: Body[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/completions") {
      await req.body?.cancel();
      return Response.json({ error: { message: `no route ${url.pathname}`, code: 404 } }, {
        status: 404,
      });
    }
    const body = await req.json() as Body;
    requests.push(body);
    return await handle(body, requests.length - 1);
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** A /v1/completions reply with one choice per text, as vLLM writes it. */
export function vllmReply(texts: string[], model = "teacher"): Body {
  return {
    id: "cmpl-0123456789abcdef",
    object: "text_completion",
    created: 1767225600,
    model,
    choices: texts.map((text, index) => ({
      index,
      text,
      logprobs: null,
      finish_reason: "stop",
      stop_reason: null,
      token_ids: null,
      prompt_logprobs: null,
      prompt_token_ids: null,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage: { prompt_tokens: 10, total_tokens: 10 + texts.length, completion_tokens: texts.length },
    kv_transfer_params: null,
  };
}

/** vLLM's error body. */
export function vllmError(status: number, message: string): Response {
  return Response.json({ error: { message, type: "BadRequestError", param: null, code: status } }, {
    status,
  });
}

/** A handler answering each prompt from a table of recorded replies (404-style error otherwise). */
export function fromRecorded(replies: Map<string, Body>): (body: Body) => Response {
  return (body) => {
    const reply = replies.get(body.prompt as string);
    if (reply === undefined) return vllmError(400, "this prompt was not recorded");
    return Response.json(reply);
  };
}
