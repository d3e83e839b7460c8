/**
 * Load benchmark of `star serve`: a tiny random model (the tiny preset on a cut vocabulary)
 * served on loopback, C concurrent clients sending completions for S seconds. Every answer is
 * at temperature 0 and compared with the answer the same prompt got when sent alone; prints
 * requests/s, generated tokens/s, failed and mismatched requests, and the process's resident
 * memory after warm-up and at the end.
 * Usage: deno run -A tests/bench_serve.ts [--seconds 60] [--clients 32] [--max-tokens 16]
 */
import { parseArgs } from "node:util";
import { smallModel } from "./_small_model.ts";
import { startServer } from "../serve/server.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "60" },
    clients: { type: "string", default: "32" },
    "max-tokens": { type: "string", default: "16" },
  },
});
const seconds = Number(args.values.seconds);
const clients = Number(args.values.clients);
const maxTokens = Number(args.values["max-tokens"]);

const WORDS = "the weather in paris london tokyo hotel flight book a table for two tomorrow at noon"
  .split(" ");
const prompts = Array.from(
  { length: 64 },
  (_, i) =>
    Array.from({ length: 4 + (i % 13) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(" "),
);

const dir = await Deno.makeTempDir({ prefix: "star-bench-serve-" });
await smallModel(dir, prompts, { std: 0.4 });
const server = await startServer({ model: dir, port: 0, maxBatch: clients, maxModelLen: 256 });
const ask = async (prompt: string) => {
  const r = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  const b = await r.json();
  return { text: b.choices[0].text as string, tokens: b.usage.completion_tokens as number };
};

const alone: string[] = [];
for (const p of prompts) alone.push((await ask(p)).text);

let requests = 0, tokens = 0, failed = 0, mismatched = 0, next = 0;
const rss = () => Math.round(Deno.memoryUsage().rss / 2 ** 20);
const start = performance.now();
const warmup = Math.min(10, seconds / 4) * 1000;
let rssWarm = 0, reqWarm = 0, tokWarm = 0, tWarm = start;
const series: number[] = []; // resident MiB every 10 s
const sampler = setInterval(() => series.push(rss()), 10_000);
const timer = setTimeout(() => {
  rssWarm = rss();
  reqWarm = requests;
  tokWarm = tokens;
  tWarm = performance.now();
}, warmup);
await Promise.all(Array.from({ length: clients }, async () => {
  while (performance.now() - start < seconds * 1000) {
    const i = next++ % prompts.length;
    try {
      const r = await ask(prompts[i]);
      requests++;
      tokens += r.tokens;
      if (r.text !== alone[i]) mismatched++;
    } catch (err) {
      failed++;
      console.error((err as Error).message);
    }
  }
}));
clearTimeout(timer);
clearInterval(sampler);
const wall = (performance.now() - tWarm) / 1000;
console.log(JSON.stringify({
  clients,
  seconds,
  max_tokens: maxTokens,
  requests,
  failed,
  mismatched,
  requests_per_s: +((requests - reqWarm) / wall).toFixed(2),
  tokens_per_s: +((tokens - tokWarm) / wall).toFixed(1),
  rss_mb_after_warmup: rssWarm,
  rss_mb_end: rss(),
  rss_mb_every_10s: series,
  heap_mb_end: Math.round(Deno.memoryUsage().heapUsed / 2 ** 20),
}));
await server.shutdown();
await Deno.remove(dir, { recursive: true });
