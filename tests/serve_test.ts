/**
 * `star serve` as clients use it: the official `openai` npm client (completions and chat with
 * tools, streaming and not, logprobs, n > 1) against a server on a small random model, with
 * answers checked against independent computations: the engine's own generate() (itself tested
 * against float64 sampling) for the tokens, the float64 forward for prompt_logprobs and
 * logprobs, the chat template rendered here for the prompt. Raw-HTTP checks of the errors and
 * the SSE framing; 32 concurrent clients answered exactly as sequential ones; a client that
 * goes away frees its slot; SIGTERM lets a running request finish.
 */
import OpenAI from "openai";
import { join } from "node:path";
import { assertClose, assertEquals, assertMatch, assertOk } from "./assert.ts";
import { hasGpu } from "../engine/device.ts";
import { smallModel } from "./_small_model.ts";
import { type RunningServer, startServer } from "../serve/server.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { generate } from "../model/generate.ts";
import { forwardRef, type RefModel } from "../model/ref.ts";
import { logSoftmax } from "../model/sampling.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { splitReasoning } from "../serve/text.ts";

const ignore = !(await hasGpu());

const TEXTS = [
  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
  "What is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n<think>\nok\n</think>\n\n" +
  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
  "The quick brown fox jumps over the lazy dog. Hello world!",
  '# Tools\n<tools>\n{"type": "function", "function": {"name": "get_weather"}}\n</tools>',
];

interface Fixture {
  dir: string;
  ref: RefModel;
  tok: Tokenizer;
  server: RunningServer;
  client: OpenAI;
}

async function fixture(o: { apiKey?: string; maxBatch?: number } = {}): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "star-serve-" });
  const { ref, tok } = await smallModel(dir, TEXTS, { std: 0.4, seed: 3 });
  const server = await startServer({
    model: dir,
    port: 0,
    maxBatch: o.maxBatch ?? 8,
    maxModelLen: 512,
    servedModelName: "tiny",
    apiKey: o.apiKey,
  });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: o.apiKey ?? "none" });
  return { dir, ref, tok, server, client };
}

async function done(f: Fixture) {
  await f.server.shutdown();
  await Deno.remove(f.dir, { recursive: true });
}

/** Float64 log-softmax rows of a sequence under the reference model. */
function refLogprobs(f: Fixture, ids: number[]): Float64Array[] {
  const V = f.ref.config.vocab_size;
  const { logits } = forwardRef(f.ref, [ids]);
  return ids.map((_, t) => logSoftmax(logits.subarray(t * V, (t + 1) * V)));
}

const topIds = (row: Float64Array, k: number) =>
  Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b).slice(0, k);

Deno.test({
  name:
    "serve: completions through the openai client equal generate() on the engine (n = 3, seeded)",
  ignore,
  async fn() {
    const f = await fixture();
    try {
      const prompt = f.tok.encode("The quick brown fox");
      const r = await f.client.completions.create({
        model: "tiny",
        prompt,
        n: 3,
        max_tokens: 12,
        temperature: 0.9,
        top_p: 0.95,
        seed: 7,
        logprobs: 0,
        // @ts-ignore vLLM's sampling extension, sent as is
        top_k: 20,
      });
      // loaded as the server loads it, so the log-probs round the same way
      const model = await GpuModel.load(f.dir, { precision: "checkpoint" });
      await model.packWeights();
      try {
        const want = await generate(
          model,
          [0, 1, 2].map((s) => ({ prompt, example: 0, sample: s })),
          { maxNewTokens: 12, temperature: 0.9, topP: 0.95, topK: 20, seed: 7 },
        );
        assertEquals(r.choices.length, 3);
        for (const c of r.choices) {
          const g = want[c.index];
          assertEquals(
            c.text,
            f.tok.decode(g.ids, { skipSpecialTokens: true }),
            `choice ${c.index}`,
          );
          assertEquals(c.finish_reason, g.finishReason === "length" ? "length" : "stop");
          const lp = c.logprobs!.token_logprobs!;
          assertEquals(lp.length, g.ids.length);
          lp.forEach((x, i) => assertClose(x!, g.logprobs[i], { atol: 1e-6 }));
        }
        assertEquals(r.usage!.prompt_tokens, prompt.length);
        assertEquals(r.usage!.completion_tokens, want.reduce((s, g) => s + g.ids.length, 0));
        // a second request with the same seed draws the same tokens; another seed does not
        const again = await f.client.completions.create({
          model: "tiny",
          prompt,
          n: 3,
          max_tokens: 12,
          temperature: 0.9,
          top_p: 0.95,
          seed: 7,
          // @ts-ignore vLLM's sampling extension
          top_k: 20,
        });
        assertEquals(again.choices.map((c) => c.text), r.choices.map((c) => c.text));
      } finally {
        model.release();
      }
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name: "serve: prompt_logprobs (vLLM's shape), echo and logprobs agree with the float64 forward",
  ignore,
  async fn() {
    const f = await fixture();
    try {
      const text = "Hello world! The quick brown fox";
      const ids = f.tok.encode(text);
      const res = await fetch(`${f.server.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "tiny",
          prompt: text,
          max_tokens: 4,
          temperature: 0,
          prompt_logprobs: 5,
          logprobs: 3,
          echo: true,
        }),
      });
      assertEquals(res.status, 200);
      const body = await res.json();
      const c = body.choices[0];
      const rows = refLogprobs(f, ids);
      // prompt_logprobs: null, then per position the top 5 (ranks 1..5) and the actual token
      assertEquals(c.prompt_logprobs.length, ids.length);
      assertEquals(c.prompt_logprobs[0], null);
      for (let t = 1; t < ids.length; t++) {
        const m = c.prompt_logprobs[t] as Record<string, { logprob: number; rank: number | null }>;
        const row = rows[t - 1];
        const top = topIds(row, 5);
        assertOk(String(ids[t]) in m, `position ${t} lacks the actual token`);
        assertClose(m[ids[t]].logprob, row[ids[t]], { atol: 1e-4 });
        top.forEach((id, j) => {
          assertEquals(m[id]?.rank, j + 1, `position ${t}, rank ${j + 1}`);
          assertClose(m[id].logprob, row[id], { atol: 1e-4 });
        });
        assertEquals(Object.keys(m).length, top.includes(ids[t]) ? 5 : 6);
      }
      // greedy: each generated token is the argmax of the float64 forward over what came before
      const gen: number[] = [];
      const lp = c.logprobs;
      assertEquals(lp.tokens.length, ids.length + 4);
      assertEquals(lp.token_logprobs[0], null);
      let seq = [...ids];
      for (let i = 0; i < 4; i++) {
        const row = refLogprobs(f, seq).at(-1)!;
        const best = topIds(row, 1)[0];
        assertClose(lp.token_logprobs[ids.length + i], row[best], { atol: 1e-4 });
        gen.push(best);
        seq = [...seq, best];
      }
      assertEquals(c.text, text + f.tok.decode(gen, { skipSpecialTokens: true }));
      // text offsets run through the echoed prompt and the completion
      assertEquals(lp.text_offset[0], 0);
      assertEquals(lp.text_offset[ids.length], lp.tokens.slice(0, ids.length).join("").length);
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name:
    "serve: chat with tools renders the template, streams the same reply, and splits it as vLLM",
  ignore,
  async fn() {
    const f = await fixture();
    try {
      const tools = [{
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      }];
      const messages = [
        { role: "system" as const, content: "You are a helpful assistant." },
        { role: "user" as const, content: "What is the weather in Paris?" },
      ];
      const r = await f.client.chat.completions.create({
        model: "tiny",
        messages,
        tools,
        max_tokens: 16,
        seed: 11,
        temperature: 0.7,
        logprobs: true,
        top_logprobs: 2,
        n: 2,
      });
      // the prompt is the chat template over the messages and tools, as rendered here
      const rendered = f.tok.chatTemplate(true).render({
        messages: parsePyJson(JSON.stringify(messages)),
        tools: parsePyJson(JSON.stringify(tools)),
        add_generation_prompt: true,
      });
      assertEquals(r.usage!.prompt_tokens, f.tok.encode(rendered).length);
      // the same seed on /v1/completions over that text gives the raw replies the chat parsed
      const raw = await f.client.completions.create({
        model: "tiny",
        prompt: f.tok.encode(rendered),
        max_tokens: 16,
        seed: 11,
        temperature: 0.7,
        n: 2,
      });
      for (const c of r.choices) {
        const want = splitReasoning(raw.choices[c.index].text);
        const m = c.message as typeof c.message & { reasoning_content: string | null };
        assertEquals(m.reasoning_content, want.reasoning);
        assertEquals(m.content, want.content);
        assertEquals(c.logprobs!.content!.length, r.usage!.completion_tokens / 2);
        for (const t of c.logprobs!.content!) assertEquals(t.top_logprobs.length, 2);
      }
      // streamed: the deltas add up to the same message
      const stream = await f.client.chat.completions.create({
        model: "tiny",
        messages,
        tools,
        max_tokens: 16,
        seed: 11,
        temperature: 0.7,
        stream: true,
      });
      let content = "", reasoning = "", finish: string | null = null;
      for await (const chunk of stream) {
        const d = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string };
        content += d?.content ?? "";
        reasoning += d?.reasoning_content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      const first = r.choices[0].message as unknown as {
        content: string | null;
        reasoning_content: string | null;
      };
      // a reply without </think> is content when whole, think text while it streams
      assertEquals(content + reasoning, (first.content ?? "") + (first.reasoning_content ?? ""));
      assertEquals(finish, r.choices[0].finish_reason);
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name: "serve: errors are OpenAI-style JSON with 400/401/404/405/413, and the server goes on",
  ignore,
  async fn() {
    const f = await fixture({ apiKey: "sekret" });
    try {
      const call = async (path: string, init: RequestInit & { key?: string | null } = {}) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (init.key !== null) headers.authorization = `Bearer ${init.key ?? "sekret"}`;
        const res = await fetch(`${f.server.url}${path}`, { method: "POST", headers, ...init });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      };
      const cases: [string, RequestInit & { key?: string | null }, number, RegExp][] = [
        ["/v1/completions", { body: "{not json" }, 400, /not valid JSON/],
        ["/v1/completions", { body: JSON.stringify({ prompt: "hi", n: 0 }) }, 400, /^n:/],
        ["/v1/completions", { body: JSON.stringify({ prompt: [99999999] }) }, 400, /token id/],
        [
          "/v1/completions",
          { body: JSON.stringify({ prompt: "hi", max_tokens: 1000 }) },
          400,
          /maximum context length is 512/,
        ],
        [
          "/v1/completions",
          { body: JSON.stringify({ prompt: "hi", logprobs: 1000 }) },
          400,
          /max allowed: 128/,
        ],
        [
          "/v1/completions",
          { body: JSON.stringify({ model: "other", prompt: "hi" }) },
          404,
          /does not exist/,
        ],
        [
          "/v1/completions",
          { body: JSON.stringify({ prompt: "hi" }), key: "wrong" },
          401,
          /API key/,
        ],
        ["/v1/completions", { body: JSON.stringify({ prompt: "hi" }), key: null }, 401, /API key/],
        ["/v1/chat/completions", { body: JSON.stringify({ messages: [] }) }, 400, /messages/],
        [
          "/v1/chat/completions",
          {
            body: JSON.stringify({
              messages: [{ role: "user", content: "hi" }],
              tool_choice: "required",
            }),
          },
          400,
          /tool_choice/,
        ],
        ["/v1/nothing", { body: "{}" }, 404, /No route/],
        ["/v1/models", { body: "{}" }, 405, /not allowed/],
        [
          "/v1/completions",
          { body: JSON.stringify({ prompt: "x".repeat(17 << 20) }) },
          413,
          /over/,
        ],
      ];
      for (const [path, init, status, msg] of cases) {
        const r = await call(path, init);
        assertEquals(r.status, status, `${path} ${String(init.body).slice(0, 60)}`);
        assertMatch(r.body.error.message, msg);
        assertEquals(r.body.error.code, status);
        assertEquals(typeof r.body.error.type, "string");
      }
      // the openai client sees them as its APIError with the status
      const bad = await f.client.completions.create({
        model: "tiny",
        prompt: "hi",
        max_tokens: 999,
      })
        .then(() => undefined, (e) => e);
      assertOk(bad instanceof OpenAI.APIError && bad.status === 400, String(bad));
      // /health needs no key; the server still answers
      assertEquals((await fetch(`${f.server.url}/health`)).status, 200);
      const models = await f.client.models.list();
      assertEquals(models.data.map((m) => m.id), ["tiny"]);
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name: "serve: SSE framing of a streamed completion (data: lines, usage, [DONE])",
  ignore,
  async fn() {
    const f = await fixture();
    try {
      const res = await fetch(`${f.server.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({
          prompt: "Hello world",
          max_tokens: 6,
          n: 2,
          seed: 3,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      assertEquals(res.headers.get("content-type"), "text/event-stream");
      const text = await res.text();
      assertOk(text.endsWith("data: [DONE]\n\n"), JSON.stringify(text.slice(-40)));
      const events = text.split("\n\n").filter((e) => e !== "");
      for (const e of events) assertMatch(e, /^data: /);
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
      const usage = chunks.at(-1);
      assertEquals(usage.choices, []);
      const texts = ["", ""], ends: (string | null)[] = [null, null];
      for (const c of chunks.slice(0, -1)) {
        assertEquals(c.object, "text_completion");
        for (const ch of c.choices) {
          assertEquals(ends[ch.index], null, "a chunk after the choice finished");
          texts[ch.index] += ch.text;
          ends[ch.index] = ch.finish_reason;
        }
      }
      // the same request unstreamed
      const whole = await f.client.completions.create({
        model: "tiny",
        prompt: "Hello world",
        max_tokens: 6,
        n: 2,
        seed: 3,
      });
      assertEquals(texts, whole.choices.map((c) => c.text));
      assertEquals(ends, whole.choices.map((c) => c.finish_reason));
      assertEquals(usage.usage, whole.usage);
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name:
    "serve: 32 concurrent clients get exactly the sequential answers; a client that leaves frees its slot",
  ignore,
  async fn() {
    const f = await fixture({ maxBatch: 8 });
    try {
      const prompts = Array.from({ length: 32 }, (_, i) => `${TEXTS[i % 2].slice(0, 10 + i)} ${i}`);
      const ask = (p: string, i: number) =>
        f.client.completions.create({
          model: "tiny",
          prompt: p,
          max_tokens: 6 + (i % 5),
          temperature: i % 2 ? 0 : 0.8,
          seed: i,
        }).then((r) => r.choices[0].text);
      const sequential: string[] = [];
      for (const [i, p] of prompts.entries()) sequential.push(await ask(p, i));
      const concurrent = await Promise.all(prompts.map(ask));
      assertEquals(concurrent, sequential);

      // a streaming client that reads one chunk and leaves
      const ctrl = new AbortController();
      const res = await fetch(`${f.server.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: "Hello", max_tokens: 200, stream: true, n: 4 }),
        signal: ctrl.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      assertEquals(f.server.engine.load.running, 4);
      ctrl.abort();
      await reader.cancel().catch(() => {});
      const t0 = Date.now();
      while (f.server.engine.load.running > 0 && Date.now() - t0 < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assertEquals(f.server.engine.load, { running: 0, waiting: 0 });
      assertOk(f.server.engine.generatedTokens < 4 * 200, "the abandoned sequences ran on");
    } finally {
      await done(f);
    }
  },
});

Deno.test({
  name:
    "star serve: binds loopback, answers, and on SIGTERM finishes a running request before exiting",
  ignore: ignore || Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "star-serve-" });
    await smallModel(dir, TEXTS, { std: 0.4, seed: 3 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "main.ts",
        "serve",
        "--model",
        dir,
        "--port",
        "0",
        "--max-model-len",
        "300",
      ],
      cwd: join(import.meta.dirname!, ".."),
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!/on (http:\S+)\/v1/.test(err)) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`star serve stopped: ${err}`);
      err += value;
    }
    const url = err.match(/on (http:\S+)\/v1/)![1];
    assertMatch(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const running = fetch(`${url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "Hello", max_tokens: 40, temperature: 0 }),
    }).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGTERM");
    const body = await running;
    assertEquals(
      body.choices[0].finish_reason === "length" || body.choices[0].finish_reason === "stop",
      true,
    );
    assertEquals(body.usage.completion_tokens > 0, true);
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      err += value;
    }
    const status = await child.status;
    assertEquals(status.code, 0, err);
    assertMatch(err, /SIGTERM/);
    await Deno.remove(dir, { recursive: true });
  },
});
