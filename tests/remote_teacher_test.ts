/**
 * CKD with a teacher on an inference server. The client reads a vLLM /v1/completions reply
 * with prompt_logprobs written from vLLM's documented schema (not only our own server's), checks
 * the server's vocabulary, and refuses a server that caps the top-k; and `star ckd` with
 * `teacher: <star serve URL>` trains exactly as with the same teacher loaded locally, online
 * and through the top-k cache.
 */
import { join } from "node:path";
import { assertClose, assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";
import { hasGpu } from "../engine/device.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { readMetrics } from "../train/metrics.ts";
import { RemoteTeacher, topEntries, VOCAB_PROBE } from "../train/remote_teacher.ts";
import { ConfigError } from "../train/config.ts";
import { startServer } from "../serve/server.ts";
import { star } from "./_star.ts";
import { ckdPair } from "./_ckd_pair.ts";

/**
 * A vLLM reply to {"prompt": [9707, 11, 1879], "max_tokens": 1, "prompt_logprobs": 3}
 * ("Hello, world" in the Qwen3 vocabulary), in the shape vLLM documents: the first position
 * null, then per position the top 3 with ranks 1..3 and the prompt's own token with its rank
 * (here 57 at position 1; at position 2 it is the top-2 token and listed once).
 */
const VLLM_REPLY: {
  choices: { prompt_logprobs: unknown[]; [k: string]: unknown }[];
  [k: string]: unknown;
} = {
  id: "cmpl-5b1d6c0a2f8e4f0e9d3a7c21b4e6f809",
  object: "text_completion",
  created: 1764547200,
  model: "Qwen/Qwen3-8B",
  choices: [{
    index: 0,
    text: "!",
    logprobs: null,
    finish_reason: "length",
    stop_reason: null,
    prompt_logprobs: [
      null,
      {
        "11": { logprob: -7.3125, rank: 57, decoded_token: "," },
        "0": { logprob: -0.8125, rank: 1, decoded_token: "!" },
        "3837": { logprob: -1.5625, rank: 2, decoded_token: "，" },
        "13": { logprob: -2.0625, rank: 3, decoded_token: "." },
      },
      {
        "1879": { logprob: -1.25, rank: 2, decoded_token: " world" },
        "358": { logprob: -0.5, rank: 1, decoded_token: " I" },
        "1052": { logprob: -2.75, rank: 3, decoded_token: " there" },
      },
    ],
    prompt_token_ids: null,
  }],
  usage: { prompt_tokens: 3, total_tokens: 4, completion_tokens: 1, prompt_tokens_details: null },
};

Deno.test("topEntries() reads vLLM's prompt_logprobs: the ranked top k, without the prompt's token past k", () => {
  type Position = Record<string, { logprob: number; rank?: number | null }>;
  const [, p1, p2] = VLLM_REPLY.choices[0].prompt_logprobs as (Position | null)[];
  assertEquals(topEntries(p1, 3), [
    { id: 0, logprob: -0.8125 },
    { id: 3837, logprob: -1.5625 },
    { id: 13, logprob: -2.0625 },
  ]);
  assertEquals(topEntries(p2, 3).map((e) => e.id), [358, 1879, 1052]);
  assertEquals(topEntries(p2, 2).map((e) => e.id), [358, 1879]);
  // without ranks (SGLang-style maps), by log-prob
  const bare = { "5": { logprob: -3 }, "7": { logprob: -1 }, "2": { logprob: -2 } };
  assertEquals(topEntries(bare, 2).map((e) => e.id), [7, 2]);
  // fewer entries than k come back short (the caller refuses them)
  assertEquals(topEntries(p2, 5).length, 3);
});

/** A stand-in vLLM server: the probe answered from `tok`'s ids (shifted when `skew`). */
function fakeServer(
  tok: Tokenizer,
  o: { reply?: unknown; status?: number; skew?: boolean; failFirst?: number } = {},
) {
  const seen: Record<string, unknown>[] = [];
  let failures = o.failFirst ?? 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    seen.push(body);
    if (typeof body.prompt === "string") {
      const ids = tok.encode(body.prompt).map((id) => (o.skew ? id + 1 : id));
      return Response.json({
        ...VLLM_REPLY,
        choices: [{
          ...VLLM_REPLY.choices[0],
          prompt_logprobs: [
            null,
            ...ids.slice(1).map((id) => ({ [id]: { logprob: -1, rank: 1, decoded_token: "" } })),
          ],
        }],
        usage: { prompt_tokens: ids.length, completion_tokens: 1, total_tokens: ids.length + 1 },
      });
    }
    if (failures > 0) {
      failures--; // a server restarting: refuses, then comes back
      return new Response("starting up", { status: 503 });
    }
    if (o.status) {
      return Response.json({
        object: "error",
        message: "Requested prompt logprobs of 100, which is greater than max allowed: 20",
        type: "BadRequestError",
        param: null,
        code: 400,
      }, { status: o.status });
    }
    return Response.json(o.reply ?? VLLM_REPLY);
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/v1`;
  return { url, seen, close: () => server.shutdown() };
}

Deno.test("RemoteTeacher turns a vLLM reply into the top-k at each target position", async () => {
  const tok = await Tokenizer.load();
  const s = fakeServer(tok);
  try {
    const t = await RemoteTeacher.connect({
      url: s.url,
      model: "Qwen/Qwen3-8B",
      k: 3,
      concurrency: 2,
    }, tok);
    // the probe went first, as text, asking for the prompt's own tokens only
    assertEquals(s.seen[0].prompt, VOCAB_PROBE);
    assertEquals(s.seen[0].prompt_logprobs, 0);
    // prompt "Hello," (2 tokens) + target " world": positions 1 and 2 are the targets
    const [r] = await t.topk([{ ids: [9707, 11, 1879], promptLength: 1 }]);
    assertEquals(Array.from(r.ids), [0, 3837, 13, 358, 1879, 1052]);
    assertEquals(Array.from(r.logprobs), [-0.8125, -1.5625, -2.0625, -0.5, -1.25, -2.75]);
    assertEquals(s.seen[1], {
      model: "Qwen/Qwen3-8B",
      max_tokens: 1,
      temperature: 0,
      prompt: [9707, 11, 1879],
      prompt_logprobs: 3,
    });
    // a prompt of two tokens: only the last position is a target
    const [r2] = await t.topk([{ ids: [9707, 11, 1879], promptLength: 2 }]);
    assertEquals(Array.from(r2.ids), [358, 1879, 1052]);
    // asking for more than the server returned is refused, naming vLLM's setting
    const t4 = await RemoteTeacher.connect({ url: s.url, model: "m", k: 4, concurrency: 1 }, tok);
    const e = await assertRejects(
      () => t4.topk([{ ids: [9707, 11, 1879], promptLength: 1 }]),
      ConfigError,
    );
    assertMatch(e.message, /returned 3 top log-probs.*kd_topk is 4.*--max-logprobs 4/);
  } finally {
    await s.close();
  }
});

Deno.test("RemoteTeacher waits out a server that is down for a while (retries with backoff)", async () => {
  const tok = await Tokenizer.load();
  const s = fakeServer(tok, { failFirst: 3 });
  const lines: string[] = [];
  try {
    const t = await RemoteTeacher.connect({
      url: s.url,
      model: "m",
      k: 3,
      concurrency: 1,
      retryBaseMs: 5,
      log: (l) => lines.push(l),
    }, tok);
    const [r] = await t.topk([{ ids: [9707, 11, 1879], promptLength: 1 }]);
    assertEquals(Array.from(r.ids), [0, 3837, 13, 358, 1879, 1052]);
    assertEquals(lines.length, 3);
    assertMatch(lines[0], /HTTP 503.*retrying in 5 ms/);
    assertMatch(lines[2], /retrying in 20 ms/);
  } finally {
    await s.close();
  }
});

Deno.test("RemoteTeacher refuses a server with another vocabulary, and one that caps prompt_logprobs", async () => {
  const tok = await Tokenizer.load();
  const skewed = fakeServer(tok, { skew: true });
  try {
    const e = await assertRejects(
      () => RemoteTeacher.connect({ url: skewed.url, model: "m", k: 3, concurrency: 1 }, tok),
      ConfigError,
    );
    assertMatch(e.message, /does not share the student's vocabulary: token 1 of a probe text/);
  } finally {
    await skewed.close();
  }
  const capped = fakeServer(tok, { status: 400 });
  try {
    const t = await RemoteTeacher.connect(
      { url: capped.url, model: "m", k: 100, concurrency: 1 },
      tok,
    );
    const e = await assertRejects(() => t.topk([{ ids: [1, 2, 3], promptLength: 1 }]), ConfigError);
    assertMatch(e.message, /max allowed: 20.*--max-logprobs 100/);
  } finally {
    await capped.close();
  }
});

const setup = () => ckdPair(8);

function config(root: string, out: string, teacher: string, extra = ""): string {
  const path = join(root, `${out}.yaml`);
  Deno.writeTextFileSync(
    path,
    `student: student
teacher: ${teacher}
data: train.jsonl
output_dir: ${out}
train_batch_size: 4
micro_train_batch_size: 2
max_epochs: 2
learning_rate: 0.01
lr_warmup_ratio: 0.2
kd_topk: 8
kd_student_topm: 8
${extra}`,
  );
  return path;
}

Deno.test({
  name:
    "star ckd with teacher: <star serve URL> trains as with the teacher loaded locally (online and cached)",
  ignore: !(await hasGpu()),
  async fn() {
    const root = await setup();
    const server = await startServer({
      model: join(root, "teacher"),
      port: 0,
      servedModelName: "teacher-8b",
      maxModelLen: 512,
    });
    try {
      const url = `${server.url}/v1`;
      const local = await star(["ckd", "--config", config(root, "local", "teacher")]);
      assertEquals(local.code, 0, local.stderr);
      const remote = await star([
        "ckd",
        "--config",
        config(root, "remote", url, "teacher_model: teacher-8b\nteacher_concurrency: 4\n"),
      ]);
      assertEquals(remote.code, 0, remote.stderr);
      assertMatch(remote.stderr, /teacher "teacher-8b" served at/);
      const cached = await star([
        "ckd",
        "--config",
        config(root, "cached", url, "teacher_model: teacher-8b\nteacher_topk_cache: cache\n"),
      ]);
      assertEquals(cached.code, 0, cached.stderr);
      assertMatch(cached.stderr, /cache complete/);
      const a = await readMetrics(join(root, "local", "metrics.jsonl"));
      assertEquals(a.length, 4);
      for (const other of ["remote", "cached"]) {
        const b = await readMetrics(join(root, other, "metrics.jsonl"));
        assertEquals(b.length, a.length, other);
        for (let i = 0; i < a.length; i++) {
          assertClose(b[i].loss!, a[i].loss!, { rtol: 1e-5, msg: `${other} step ${i + 1} loss` });
          assertClose(b[i].grad_norm!, a[i].grad_norm!, {
            rtol: 1e-4,
            msg: `${other} step ${i + 1}`,
          });
        }
      }
      const meta = JSON.parse(await Deno.readTextFile(join(root, "cache", "meta.json")));
      assertEquals(meta.teacher, url);
      // a URL without the served name, and a wrong served name, are one-line errors
      const noName = await star(["ckd", "--config", config(root, "x", url)]);
      assertEquals(noName.code, 1);
      assertMatch(noName.stderr, /set "teacher_model"/);
      const wrong = await star([
        "ckd",
        "--config",
        config(root, "y", url, "teacher_model: nope\n"),
      ]);
      assertEquals(wrong.code, 1);
      assertMatch(wrong.stderr, /does not exist/);
      assertOk(wrong.stderr.trim().split("\n").length <= 3, wrong.stderr);
    } finally {
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
