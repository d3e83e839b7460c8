import { assertClose, assertEquals, assertMatch } from "./assert.ts";
import { star } from "./_star.ts";
import { benchRows } from "./bench_score.ts";
import { readLines } from "../data/jsonl.ts";
import { scoreLine } from "../cli/_score_rows.ts";

const PROMPT = "<|im_start|>system\n<tools>\n" +
  '{"name": "f", "parameters": {"type": "object", "properties": {"x": {}}}}\n' +
  "</tools><|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>";
const call = (x: string) => `<tool_call>\n{"name": "f", "arguments": {"x": ${x}}}\n</tool_call>`;

const GOOD = [
  { id: "a", prompt: PROMPT, completion: `t</think>${call("1")}`, label: `</think>${call("1")}` },
  // half the arguments match... here 0 of 1: the answer is 0
  { id: 7, inputs: PROMPT, completion: `t</think>${call("2")}`, targets: `</think>${call("1")}` },
  // no think block: format -1
  { prompt: PROMPT, completion: `${call("1")}`, label: `</think>${call("1")}` },
];

async function withFile(text: string, fn: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "star_score_test_" });
  try {
    await Deno.writeTextFile(`${dir}/in.jsonl`, text);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const parseOut = (s: string) => s.trim().split("\n").map((l) => JSON.parse(l));

Deno.test("star score writes one reward row per input row, in order, and exits 0", async () => {
  await withFile(jsonl(GOOD), async (dir) => {
    const r = await star(["score", "--input", `${dir}/in.jsonl`, "--output", `${dir}/out.jsonl`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, "");
    assertEquals(parseOut(await Deno.readTextFile(`${dir}/out.jsonl`)), [
      { id: "a", reward: 1, format: 1, answer: 1 },
      { id: 7, reward: 0, format: 1, answer: 0 },
      { reward: -1, format: -1, answer: 0 },
    ]);
    assertMatch(
      r.stderr,
      /3 rows, mean reward 0\.0000, format-valid 66\.7%, 0 errors/,
    );
  });
});

Deno.test("star score writes an error row for a malformed row, scores the rest, exits 1", async () => {
  const bad = { id: "bad", prompt: PROMPT, completion: "x</think>hi", label: "no think tag" };
  const text = jsonl([GOOD[0], bad]) + "\n" + "{not json\n" + jsonl([GOOD[1]]);
  await withFile(text, async (dir) => {
    const r = await star(["score", "--input", `${dir}/in.jsonl`]);
    assertEquals(r.code, 1, r.stderr);
    const rows = parseOut(r.stdout);
    assertEquals(rows.length, 4);
    assertEquals(rows[0], { id: "a", reward: 1, format: 1, answer: 1 });
    assertEquals(rows[1].id, "bad");
    assertEquals(rows[1].line, 2);
    assertMatch(rows[1].error, /line 2: field "label"/);
    assertEquals(rows[2].line, 4); // line 3 is blank: no row for it
    assertMatch(rows[2].error, /line 4: invalid JSON/);
    assertEquals(rows[3], { id: 7, reward: 0, format: 1, answer: 0 });
    assertMatch(r.stderr, /4 rows, mean reward 0\.5000, format-valid 100\.0%, 2 errors/);
  });
});

Deno.test("star score reads stdin with --input -", async () => {
  const r = await star(["score", "--input", "-"], jsonl(GOOD.slice(0, 1)));
  assertEquals(r.code, 0, r.stderr);
  assertEquals(parseOut(r.stdout), [{ id: "a", reward: 1, format: 1, answer: 1 }]);
});

Deno.test("star score names an unknown flag in one stderr line and exits 2", async () => {
  const r = await star(["score", "--input", "-", "--bogus"], "");
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /--bogus/);
  assertEquals(r.stderr.trim().split("\n").length, 1);
  const missing = await star(["score"]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /--input/);
});

Deno.test("star score keeps order and totals across worker batches", async () => {
  // 2,000 rows: several batches, dealt to this thread and the workers
  const rows = [...benchRows(2000, 5)];
  await withFile(rows.join("\n") + "\n", async (dir) => {
    const inp = `${dir}/in.jsonl`;
    const par = await star(["score", "--input", inp, "--output", `${dir}/par.jsonl`]);
    assertEquals(par.code, 0, par.stderr);
    const one = await starEnv(["score", "--input", inp, "--output", `${dir}/one.jsonl`]);
    assertEquals(one.code, 0);
    const a = parseOut(await Deno.readTextFile(`${dir}/par.jsonl`));
    const b = parseOut(await Deno.readTextFile(`${dir}/one.jsonl`));
    assertEquals(a.length, 2000);
    assertEquals(a.map((r) => r.id), rows.map((r) => JSON.parse(r).id));
    assertEquals(a, b);
    const mean = a.reduce((s, r) => s + r.reward, 0) / a.length;
    const m = par.stderr.match(/mean reward ([0-9.]+)/);
    assertClose(Number(m?.[1]), mean, { atol: 5e-5 });
  });
});

/** Runs star with STAR_SCORE_WORKERS=0 (everything on the main thread). */
async function starEnv(args: string[]) {
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    env: { STAR_SCORE_WORKERS: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code };
}

Deno.test({
  name: "star score streams 1,000,000 rows from stdin with bounded memory",
  async fn() {
    const root = new URL("..", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "score", "--input", "-", "--output", "/dev/null"],
      cwd: root,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Peak resident memory of the scorer, sampled while the rows stream in.
    const rss: number[] = [];
    const poll = setInterval(() => {
      try {
        const m = Deno.readTextFileSync(`/proc/${child.pid}/status`).match(/VmRSS:\s+(\d+)/);
        if (m) rss.push(Number(m[1]) / 1024);
      } catch { /* exited */ }
    }, 100);
    const w = child.stdin.getWriter();
    const enc = new TextEncoder();
    let chunk: string[] = [];
    for (const row of benchRows(1_000_000, 9)) {
      chunk.push(row);
      if (chunk.length === 1000) {
        await w.write(enc.encode(chunk.join("\n") + "\n"));
        chunk = [];
      }
    }
    await w.close();
    const out = await child.output();
    clearInterval(poll);
    assertEquals(out.code, 0);
    assertMatch(new TextDecoder().decode(out.stderr), /1000000 rows/);
    // 2.3 GB of input went through; memory stays at the level of the first tenth of the run.
    const early = Math.max(...rss.slice(0, Math.ceil(rss.length / 10)));
    const peak = Math.max(...rss);
    assertEquals(peak < 400 && peak < 2 * early, true, `peak ${peak} MB, early ${early} MB`);
  },
});

Deno.test("star score reads bytes as the line reader does: BOM, CRLF, blanks, bad UTF-8, long lines", async () => {
  const enc = new TextEncoder();
  const rows = [...benchRows(1500, 3)];
  const parts: Uint8Array[] = [new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf])]; // two BOMs
  const long = JSON.stringify({ ...GOOD[0], id: "long", completion: "x".repeat(1_300_000) });
  rows.forEach((row, i) => {
    if (i === 700) parts.push(enc.encode(long + "\n")); // longer than two read buffers
    if (i % 97 === 5) parts.push(enc.encode("  \t\r\n\n")); // blank lines
    if (i % 101 === 7) parts.push(enc.encode(`{"id": "bad${i}"}\n`)); // an error row
    if (i % 107 === 8) parts.push(enc.encode(`{"id": ${i},\r\n`)); // its message counts columns
    if (i % 103 === 9) parts.push(enc.encode("\ufeff" + row + "\n")); // U+FEFF inside the file
    if (i % 89 === 3) {
      // invalid UTF-8 in a string, then a truncated sequence right before the line end
      parts.push(new Uint8Array([...enc.encode('{"id": "u'), 0xff, 0xe2, 0x82]));
      parts.push(enc.encode('"}\r\n'), new Uint8Array([0xe2, 0x0a]));
    }
    parts.push(enc.encode(row + (i % 2 ? "\r\n" : "\n")));
  });
  parts.push(enc.encode(JSON.stringify(GOOD[1]) + "\r")); // unterminated last line
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((off, p) => (bytes.set(p, off), off + p.length), 0);

  const dir = await Deno.makeTempDir({ prefix: "star_score_test_" });
  try {
    const inp = `${dir}/in.jsonl`;
    await Deno.writeFile(inp, bytes);
    // The reference: the streaming line reader, one line at a time, on the main thread.
    const want: string[] = [];
    for await (const { line, text } of readLines(inp)) {
      if (text.replace(/[ \t\r]/g, "") !== "") {
        want.push(scoreLine(text, line, inp).text);
      }
    }
    assertEquals(want.length > 1500, true);
    for (const workers of ["1", "0"]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "score", "--input", inp, "--output", `${dir}/out.jsonl`],
        cwd: new URL("..", import.meta.url).pathname,
        env: { STAR_SCORE_WORKERS: workers },
        stderr: "piped",
      }).output();
      assertEquals(out.code, 1); // the error rows
      const got = (await Deno.readTextFile(`${dir}/out.jsonl`)).split("\n").filter((l) => l);
      assertEquals(got.length, want.length);
      for (let i = 0; i < want.length; i++) assertEquals(got[i], want[i], `row ${i}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
