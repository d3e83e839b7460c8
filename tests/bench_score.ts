/**
 * Benchmark of `star score` end to end (process start-up, reading, parsing, scoring, writing):
 * writes N synthetic rows of about 2 KB (a Qwen3-style prompt with a tools block of 3 to 5
 * tools, a completion with a think block and either tool calls or a reply, a label), runs the
 * CLI on them and prints rows/s. Usage: deno run -A tests/bench_score.ts [N] [--compiled BIN]
 */

/** Deterministic generator (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  ("the a user wants to find weather forecast for city hotel flights cheap best rated " +
    "search results in paris london tokyo new york temperature celsius date tomorrow price range " +
    "booking review retrieves information about products from api using optional filtering")
    .split(" ");

export function* benchRows(n: number, seed = 1): Generator<string> {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const words = (k: number) => Array.from({ length: k }, () => pick(WORDS)).join(" ");
  const tools = Array.from({ length: 40 }, (_, i) => ({
    name: `tool_${i}_${pick(WORDS)}`,
    description: words(8),
    parameters: Object.fromEntries(
      Array.from({ length: 2 + (i % 3) }, (_, j) => [
        `arg_${j}_${pick(WORDS)}`,
        { description: words(5), type: pick(["str", "int", "float, optional"]), default: "" },
      ]),
    ),
  }));
  const prompts = Array.from({ length: 200 }, () => {
    const ts = Array.from({ length: 2 + Math.floor(r() * 2) }, () => pick(tools));
    const block = ts.map((t) => JSON.stringify(t)).join("\n");
    return {
      ts,
      text: "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with " +
        "the user query.\n\n<tools></tools> " +
        `XML tags:\n<tools>\n${block}\n</tools>\n\nFor each function call, return a json ` +
        "object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n' +
        `</tool_call><|im_end|>\n<|im_start|>user\n${words(25)}<|im_end|>\n` +
        "<|im_start|>assistant\n<think>",
    };
  });
  for (let i = 0; i < n; i++) {
    const p = pick(prompts);
    const think = `\n${words(14)}\n</think>\n\n`;
    let gold: string, pred: string;
    if (r() < 0.7) {
      const calls = Array.from({ length: 1 + Math.floor(r() * 2) }, () => {
        const t = pick(p.ts);
        const args = Object.fromEntries(
          Object.keys(t.parameters).map((k) => [k, r() < 0.5 ? words(3) : Math.floor(r() * 100)]),
        );
        return { name: t.name, arguments: args };
      });
      gold = calls.map((c) => `<tool_call>\n${JSON.stringify(c)}\n</tool_call>`).join("\n");
      const guess = calls.map((c) => {
        const args = Object.fromEntries(
          Object.entries(c.arguments).map(([k, v]) => [k, r() < 0.7 ? v : words(2)]),
        );
        return { name: c.name, arguments: args };
      });
      pred = guess.map((c) => `<tool_call>\n${JSON.stringify(c)}\n</tool_call>`).join("\n");
    } else {
      gold = words(30);
      pred = r() < 0.2 ? gold : words(30);
    }
    yield JSON.stringify({
      id: `bench-${i}`,
      prompt: p.text,
      completion: think + pred + "<|im_end|>",
      label: `</think>\n\n${gold}<|im_end|>\n`,
    });
  }
}

export interface ScoreBench {
  rows: number;
  kbPerRow: number;
  seconds: number;
  rowsPerSecond: number;
  summary: string;
}

/** Writes n rows to a temporary file and times `star score` on them, process start included. */
export async function benchScore(n: number, opts: { compiled?: string } = {}): Promise<ScoreBench> {
  const dir = await Deno.makeTempDir({ prefix: "star_bench_score_" });
  try {
    const input = `${dir}/rows.jsonl`;
    const file = await Deno.open(input, { write: true, create: true });
    const enc = new TextEncoder();
    let chunk: string[] = [];
    for (const row of benchRows(n)) {
      chunk.push(row);
      if (chunk.length === 1000) {
        await file.write(enc.encode(chunk.join("\n") + "\n"));
        chunk = [];
      }
    }
    if (chunk.length) await file.write(enc.encode(chunk.join("\n") + "\n"));
    file.close();
    const bytes = (await Deno.stat(input)).size;
    const root = new URL("..", import.meta.url).pathname;
    const flags = ["score", "--input", input, "--output", `${dir}/out.jsonl`];
    const [exe, args] = opts.compiled
      ? [opts.compiled, flags]
      : [Deno.execPath(), ["run", "-A", "main.ts", ...flags]];
    const t0 = performance.now();
    const res = await new Deno.Command(exe, { args, cwd: root, stderr: "piped" }).output();
    const seconds = (performance.now() - t0) / 1000;
    const summary = new TextDecoder().decode(res.stderr).trim();
    if (res.code !== 0) throw new Error(`star score exited ${res.code}: ${summary}`);
    return { rows: n, kbPerRow: bytes / n / 1024, seconds, rowsPerSecond: n / seconds, summary };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const n = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 200_000);
  const ci = Deno.args.indexOf("--compiled");
  const compiled = ci >= 0 ? Deno.args[ci + 1] : undefined;
  const b = await benchScore(n, { compiled });
  console.log(
    `score: ${n} rows (${b.kbPerRow.toFixed(2)} KB/row) in ${b.seconds.toFixed(2)} s = ` +
      `${Math.round(b.rowsPerSecond)} rows/s end to end${compiled ? " (compiled)" : ""}\n  ` +
      b.summary,
  );
}
