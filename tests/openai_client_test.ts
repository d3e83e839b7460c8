/**
 * train/openai_client.ts against an in-test server: the URL it posts to, the concurrency cap,
 * retries with exponential backoff on 5xx and timeouts, and which errors end a run at once.
 */
import {
  apiRoot,
  OpenAiClient,
  RequestRejectedError,
  ServerUnavailableError,
} from "../train/openai_client.ts";
import { fakeVllm, vllmError, vllmReply } from "./_vllm_server.ts";
import { assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("apiRoot() accepts a base URL with or without /v1", () => {
  assertEquals(apiRoot("http://h:8000"), "http://h:8000/v1");
  assertEquals(apiRoot("http://h:8000/"), "http://h:8000/v1");
  assertEquals(apiRoot("http://h:8000/v1/"), "http://h:8000/v1");
  assertEquals(apiRoot("https://h/api/v1"), "https://h/api/v1");
});

Deno.test("OpenAiClient.completions() keeps at most `concurrency` requests in flight", async () => {
  let inFlight = 0, most = 0;
  const server = fakeVllm(async () => {
    most = Math.max(most, ++inFlight);
    await sleep(30);
    inFlight--;
    return Response.json(vllmReply(["x"]));
  });
  try {
    const client = new OpenAiClient({ baseUrl: server.url, concurrency: 2 });
    const res = await Promise.all(
      Array.from({ length: 7 }, (_, i) => client.completions({ model: "m", prompt: `p${i}` })),
    );
    assertEquals(res.map((r) => r.choices[0].text), Array(7).fill("x"));
    assertEquals(most, 2);
    assertEquals(server.requests.length, 7);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiClient.completions() retries 503 after base, 2 x base ms and passes extra fields both ways", async () => {
  const at: number[] = [];
  const server = fakeVllm((_, i) => {
    at.push(performance.now());
    if (i < 2) return vllmError(503, "warming up");
    const reply = vllmReply(["ok"]);
    (reply.choices as Record<string, unknown>[])[0].prompt_logprobs = [null, {
      "9707": { logprob: -0.5, rank: 1, decoded_token: "Hello" },
    }];
    return Response.json(reply);
  });
  const log: string[] = [];
  try {
    const client = new OpenAiClient({
      baseUrl: server.url,
      retryBaseMs: 40,
      log: (s) => log.push(s),
    });
    const res = await client.completions({ model: "m", prompt: "p", prompt_logprobs: 1, top_k: 5 });
    assertEquals(res.choices[0].prompt_logprobs![1]!["9707"].logprob, -0.5);
    assertEquals(server.requests.length, 3);
    assertEquals([server.requests[0].prompt_logprobs, server.requests[0].top_k], [1, 5]);
    assertOk(
      at[1] - at[0] >= 35 && at[2] - at[1] >= 75,
      `waits ${at[1] - at[0]}, ${at[2] - at[1]} ms`,
    );
    assertEquals(log.length, 2);
    assertMatch(log[0], /HTTP 503: warming up; retrying in 40 ms/);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiClient.completions() ends with ServerUnavailableError after maxAttempts timeouts", async () => {
  const server = fakeVllm(async () => {
    await sleep(300);
    return Response.json(vllmReply(["late"]));
  });
  try {
    const client = new OpenAiClient({
      baseUrl: server.url,
      timeoutMs: 50,
      maxAttempts: 2,
      retryBaseMs: 1,
    });
    const err = await assertRejects(
      () => client.completions({ model: "m", prompt: "p" }),
      ServerUnavailableError,
    );
    assertMatch(err.message, /did not answer after 2 attempts \(last: no reply within 0\.05 s\)/);
    assertEquals(server.requests.length, 2);
    await sleep(300); // let the slow handlers finish before the server shuts down
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiClient.completions() rejects one request on 400 and stops at once on 404", async () => {
  const server = fakeVllm((body) =>
    body.model === "missing"
      ? vllmError(404, "The model `missing` does not exist.")
      : vllmError(400, "This model's maximum context length is 32 tokens.")
  );
  try {
    const client = new OpenAiClient({ baseUrl: server.url, retryBaseMs: 1 });
    const bad = await assertRejects(
      () => client.completions({ model: "m", prompt: "long" }),
      RequestRejectedError,
    );
    assertMatch(bad.message, /HTTP 400: This model's maximum context length/);
    const gone = await assertRejects(
      () => client.completions({ model: "missing", prompt: "p" }),
      ServerUnavailableError,
    );
    assertMatch(gone.message, /refused the request: HTTP 404: The model `missing` does not exist/);
    assertEquals(server.requests.length, 2);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiClient.completions() retries a refused connection and a reply without choices", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  const down = new OpenAiClient({ baseUrl: `http://127.0.0.1:${port}`, retryBaseMs: 1 });
  const err = await assertRejects(
    () => down.completions({ model: "m", prompt: "p" }),
    ServerUnavailableError,
  );
  assertMatch(err.message, /did not answer after 3 attempts/);
  const server = fakeVllm(() => Response.json({ object: "text_completion" }));
  try {
    const client = new OpenAiClient({ baseUrl: server.url, retryBaseMs: 1, maxAttempts: 2 });
    const e = await assertRejects(() => client.completions({ model: "m", prompt: "p" }));
    assertMatch(e.message, /the reply has no "choices" list/);
    assertEquals(server.requests.length, 2);
  } finally {
    await server.close();
  }
});

Deno.test("OpenAiClient fills options given as undefined with their defaults", async () => {
  const server = fakeVllm((_, i) =>
    i === 0 ? vllmError(502, "bad gateway") : Response.json(vllmReply(["x"]))
  );
  const log: string[] = [];
  try {
    const client = new OpenAiClient({
      baseUrl: server.url,
      concurrency: undefined,
      retryBaseMs: undefined,
      log: (s) => log.push(s),
    });
    assertEquals((await client.completions({ model: "m", prompt: "p" })).choices.length, 1);
    assertMatch(log[0], /retrying in 1000 ms/);
  } finally {
    await server.close();
  }
});
