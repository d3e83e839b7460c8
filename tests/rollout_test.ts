/**
 * `star rollout` end to end. Against an in-test server answering with recorded vLLM replies
 * (tests/testdata/rollout/, made by tests/reference/make_rollout_fixtures.sh) it writes exactly
 * the rows of tests/reference/rollout_e2e_ref.py (STAR's rollout in Python, jinja2 rendering),
 * with and without min_reward; killed with SIGKILL and re-run, or stopped by a server that
 * stays down and re-run, it writes the same file. On the engine, a tiny teacher whose LM head
 * favours a few tokens ("</think>", "ok", " yes", "<tool_call>", "<|im_end|>") gives completions
 * that pass and fail the check; served back through the server, the same completions give the
 * same rows. The output goes through `star prepare --add-reasoning-content` and `star ckd`.
 */
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { presetConfig } from "../model/config.ts";
import { builtinTokenizerTexts } from "../data/builtin_tokenizer.ts";
import { saveModel } from "../model/save.ts";
import { randomWeightF32 } from "../model/weights.ts";
import { ConfigError, rolloutConfigSchema } from "../train/config.ts";
import { readMetrics } from "../train/metrics.ts";
import { ServerUnavailableError } from "../train/openai_client.ts";
import { progressPath, runRollout } from "../train/rollout.ts";
import { type Body, fakeVllm, fromRecorded, vllmError, vllmReply } from "./_vllm_server.ts";
import { assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";
import { star } from "./_star.ts";

const testdata = new URL("./testdata/rollout/", import.meta.url).pathname;
const MESSAGES = join(testdata, "server_messages.jsonl");
const EXPECTED = join(testdata, "server_expected.jsonl");
const root = new URL("..", import.meta.url).pathname;
const quiet = { progress: false as const, log: () => {} };

async function recorded(): Promise<Map<string, Body>> {
  const out = new Map<string, Body>();
  for (
    const line of (await Deno.readTextFile(join(testdata, "vllm_responses.jsonl"))).split("\n")
  ) {
    if (line.trim() === "") continue;
    const rec = JSON.parse(line);
    out.set(rec.prompt, rec.response);
  }
  return out;
}

const read = (p: string) => Deno.readTextFile(p);

Deno.test("star rollout --server writes the rows rollout_e2e_ref.py makes of recorded vLLM replies", async () => {
  const server = fakeVllm(fromRecorded(await recorded()));
  try {
    const dir = await Deno.makeTempDir();
    // some keys from a config (relative paths against its folder), the rest from flags
    const yaml = join(dir, "rollout.yaml");
    await Deno.writeTextFile(
      yaml,
      `input: ${MESSAGES}\noutput: out.jsonl\nrollout_n: 2\nbatch_size: 3\nconcurrency: 2\n`,
    );
    const r = await star(
      [
        "rollout",
        "--config",
        yaml,
        "--server",
        server.url,
        "--model",
        "teacher",
        "--rollout-n",
        "4",
      ],
    );
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await read(join(dir, "out.jsonl")), await read(EXPECTED));
    assertEquals(server.requests.length, 6);
    for (const q of server.requests) {
      assertEquals(
        [q.model, q.n, q.max_tokens, q.temperature, q.top_p, "top_k" in q],
        ["teacher", 4, 2048, 1, 1, false],
      );
      assertOk(Number.isSafeInteger(q.seed));
    }
    assertEquals(new Set(server.requests.map((q) => q.seed)).size, 6);
    for (
      const line of [
        /Total input conversations: 8\n/,
        /Successfully processed inputs: 7 \(2 passed through\)\n/,
        /Discarded inputs: 1 \(1 no valid completion, 0 below min_reward, 0 refused by the teacher, 0 unreadable\)\n/,
        /Total output samples: 15\n/,
        /Average rollout count: 2\.14\n/,
        /Input success rate: 87\.50%\n/,
        /Completions: 24 sampled, 7 failed the format check \(think 3, tool_call 1, tools 0, name 1, arguments 2\), 0 below min_reward, 4 duplicates/,
      ]
    ) assertMatch(r.stderr, line);

    // min_reward 0.5: the conversation with OpenAI-wrapped tools cannot be scored (STAR's
    // reward reads plain tools only): reported, skipped, exit 1
    const mr = await star([
      "rollout",
      "--config",
      yaml,
      "--server",
      server.url,
      "--model",
      "teacher",
      "--rollout-n",
      "4",
      "--output",
      join(dir, "mr.jsonl"),
      "--min-reward",
      "0.5",
    ]);
    assertEquals(mr.code, 1, mr.stderr);
    assertMatch(mr.stderr, /server_messages\.jsonl" line 3: cannot be scored for min_reward/);
    assertEquals(
      await read(join(dir, "mr.jsonl")),
      await read(join(testdata, "server_expected_min_reward.jsonl")),
    );
    assertMatch(
      mr.stderr,
      /Discarded inputs: 2 \(1 no valid completion, 0 below min_reward, 0 refused by the teacher, 1 unreadable\)/,
    );
    assertMatch(
      mr.stderr,
      /Completions: 20 sampled, 6 failed .*, 6 below min_reward, 4 duplicates/,
    );
  } finally {
    await server.close();
  }
});

Deno.test("star rollout killed with SIGKILL mid-run and re-run writes the file of an uninterrupted run", async () => {
  const replies = await recorded();
  let release = () => {};
  const gate = new Promise<void>((r) => release = r);
  let blocked = () => {};
  const reached = new Promise<void>((r) => blocked = r);
  const K = 3; // answer three requests, then hold the fourth until the process is killed
  let held = true;
  const server = fakeVllm(async (body, i) => {
    if (i >= K && held) {
      blocked();
      await gate;
    }
    return Response.json(replies.get(body.prompt as string));
  });
  try {
    const dir = await Deno.makeTempDir();
    const yaml = join(dir, "r.yaml");
    await Deno.writeTextFile(
      yaml,
      `input: ${MESSAGES}\noutput: out.jsonl\nserver: ${server.url}\nmodel: teacher\nrollout_n: 4\nbatch_size: 1\nconcurrency: 1\nsave_interval: 1\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "rollout", "--config", yaml],
      cwd: root,
      stdout: "null",
      stderr: "null",
    }).spawn();
    await reached;
    child.kill("SIGKILL");
    await child.status;
    const out = join(dir, "out.jsonl");
    const progress = JSON.parse(await read(progressPath(out)));
    assertEquals(progress.inputs_done, 3); // three batches of one conversation each were saved
    const before = await read(out);
    assertEquals(before, (await read(EXPECTED)).split("\n").slice(0, 7).join("\n") + "\n");
    await Deno.writeTextFile(out, '{"id": "torn', { append: true }); // a write cut short
    held = false;
    release();
    const again = await star(["rollout", "--config", yaml]);
    assertEquals(again.code, 0, again.stderr);
    assertMatch(again.stderr, /resuming ".*out\.jsonl" after 3 inputs \(7 rows\)/);
    assertEquals(await read(out), await read(EXPECTED));
    assertMatch(again.stderr, /Total input conversations: 8\n/);
    assertMatch(again.stderr, /Total output samples: 15\n/);
  } finally {
    release();
    await server.close();
  }
});

Deno.test("runRollout() stops with ServerUnavailableError when the server stays down, keeps what it wrote, and resumes", async () => {
  const replies = await recorded();
  const dir = await Deno.makeTempDir();
  const cfg = rolloutConfigSchema.parse({
    input: MESSAGES,
    output: join(dir, "out.jsonl"),
    server: "http://127.0.0.1:1",
    model: "teacher",
    rollout_n: 4,
    batch_size: 2,
  });
  const down = fakeVllm((body, i) =>
    i < 2
      ? Response.json(replies.get(body.prompt as string))
      : vllmError(503, "down for maintenance")
  );
  try {
    const err = await assertRejects(
      () => runRollout({ ...cfg, server: down.url }, { ...quiet, retryBaseMs: 1 }),
      ServerUnavailableError,
    );
    assertMatch(
      err.message,
      /did not answer after 3 attempts \(last: HTTP 503: down for maintenance\)/,
    );
    // batch 1 (weather-1, hello-2) answered; batch 2's two prompts tried three times each
    assertEquals(down.requests.length, 2 + 2 * 3);
  } finally {
    await down.close();
  }
  const progress = JSON.parse(await read(progressPath(cfg.output)));
  assertEquals(progress.inputs_done, 2);
  assertEquals(
    await read(cfg.output),
    (await read(EXPECTED)).split("\n").slice(0, 4).join("\n") + "\n",
  );
  const up = fakeVllm(fromRecorded(replies));
  try {
    const r = await runRollout({ ...cfg, server: up.url }, quiet);
    assertEquals(r.resumedAt, 2);
    assertEquals(await read(cfg.output), await read(EXPECTED));
    assertEquals([r.counts.inputs, r.counts.outputs, r.counts.processed], [8, 15, 7]);
    assertEquals(up.requests.length, 4);
  } finally {
    await up.close();
  }
});

Deno.test("runRollout() reports unreadable rows with their line, refuses a mixed resume and starts over on overwrite", async () => {
  const replies = await recorded();
  const dir = await Deno.makeTempDir();
  const input = join(dir, "in.jsonl");
  const good = (await read(MESSAGES)).split("\n")[0];
  await Deno.writeTextFile(
    input,
    `{"messages": [oops\n\n{"messages": {"role": "user"}}\n{"id": "e", "messages": ""}\n${good}\n`,
  );
  const server = fakeVllm(fromRecorded(replies));
  try {
    const cfg = rolloutConfigSchema.parse({
      input,
      output: join(dir, "out.jsonl"),
      server: server.url,
      model: "teacher",
      rollout_n: 4,
    });
    const log: string[] = [];
    const r = await runRollout(cfg, { progress: false, log: (s) => log.push(s) });
    assertEquals([r.counts.inputs, r.counts.bad_rows, r.counts.outputs], [4, 2, 3]);
    assertMatch(log[0], /^star: Cannot read ".*in\.jsonl" line 1: invalid JSON/);
    assertMatch(log[1], /line 3: field "messages" must be a list, not an object/);
    // a row whose messages are falsy passes through, as STAR's `not messages` lets it
    assertEquals(
      await read(cfg.output),
      '{"id": "e", "messages": ""}\n' +
        (await read(EXPECTED)).split("\n").slice(0, 2).join("\n") + "\n",
    );

    const changed = await assertRejects(
      () => runRollout({ ...cfg, rollout_n: 2 }, quiet),
      ConfigError,
    );
    assertMatch(changed.message, /was started with rollout_n 4, not 2; .*--overwrite/);
    await Deno.remove(progressPath(cfg.output));
    const exists = await assertRejects(() => runRollout(cfg, quiet), ConfigError);
    assertMatch(exists.message, /already exists and has no ".*progress\.json" to resume from/);
    const over = await runRollout({ ...cfg, rollout_n: 2, overwrite: true }, quiet);
    assertEquals(over.resumedAt, 0);
    assertEquals(server.requests.at(-1)!.n, 2);
  } finally {
    await server.close();
  }
});

Deno.test("star rollout names a bad key, a bad flag, a missing input and a missing teacher", async () => {
  const dir = await Deno.makeTempDir();
  const yaml = join(dir, "r.yaml");
  await Deno.writeTextFile(yaml, "input: in.jsonl\noutput: out.jsonl\nrollout_nn: 4\n");
  const key = await star(["rollout", "--config", yaml]);
  assertEquals(key.code, 1);
  assertMatch(key.stderr, /unknown key "rollout_nn" \(did you mean "rollout_n"\?\)/);
  const flag = await star([
    "rollout",
    "--input",
    MESSAGES,
    "--output",
    join(dir, "o"),
    "--rollout-n",
    "0",
  ]);
  assertEquals(flag.code, 2);
  assertMatch(flag.stderr, /Flag "--rollout-n": .*("star rollout")/);
  const missing = await star(["rollout", "--output", join(dir, "o"), "--teacher", dir]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /Missing "input": pass --input \("star rollout"\)/);
  const none = await star(["rollout", "--input", MESSAGES, "--output", join(dir, "o")]);
  assertEquals(none.code, 1);
  assertMatch(none.stderr, /Give the teacher: "teacher" .* or "server"/);
  const noModel = await star([
    "rollout",
    "--input",
    MESSAGES,
    "--output",
    join(dir, "o"),
    "--server",
    "http://127.0.0.1:1",
  ]);
  assertEquals(noModel.code, 1);
  assertMatch(noModel.stderr, /"server" needs "model"/);
});

/**
 * A one-layer tiny teacher that mostly writes a few tokens: the residual stream carries a
 * constant +1 in dimension 0 (every embedding row starts with 1, the layer's weights are small),
 * so after the final norm that dimension is large and positive at every position, and the LM
 * head reads only dimension 0 of a handful of rows. Sampling at temperature 1 then strings
 * those tokens together; the rest of the vocabulary shares well under 1% of the mass.
 */
async function forcedTeacher(dir: string): Promise<void> {
  const config = { ...presetConfig("tiny"), num_hidden_layers: 1, tie_word_embeddings: false };
  const D = config.hidden_size;
  const favoured = new Map([
    [151668, 2.6], // </think>
    [562, 2.5], // ok
    [9834, 2.5], // " yes"
    [151645, 2.5], // <|im_end|>
    [151657, 2.1], // <tool_call>
  ]);
  await saveModel(dir, {
    config,
    dtype: "f32",
    tokenizerFiles: await builtinTokenizerTexts(),
    tensor: (spec) => {
      if (spec.kind === "norm") return new Float32Array(spec.shape[0]).fill(1);
      const w = randomWeightF32(spec, { seed: 11, std: 0.02 });
      if (spec.name === "model.embed_tokens.weight") {
        for (let r = 0; r < config.vocab_size; r++) w[r * D] = 1;
      } else if (spec.name === "lm_head.weight") {
        w.fill(0);
        for (const [id, a] of favoured) w[id * D] = a;
      }
      return w;
    },
  });
}

Deno.test({
  name:
    "runRollout() on the engine and star rollout --server on the same completions write the same rows",
  ignore: !(await hasGpu()),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await forcedTeacher(join(dir, "teacher"));
    const sampled = new Map<string, string[]>();
    const cfg = rolloutConfigSchema.parse({
      input: MESSAGES,
      output: join(dir, "engine.jsonl"),
      teacher: join(dir, "teacher"),
      rollout_n: 4,
      max_tokens: 8,
      batch_size: 3,
      seed: 5,
    });
    const r = await runRollout(cfg, { ...quiet, onSamples: (_, p, c) => sampled.set(p, c) });
    const all = [...sampled.values()].flat();
    assertEquals([sampled.size, all.length, r.counts.completions], [6, 24, 24]);
    const forced = all.filter((c) => /^(ok| yes|<\/think>|<tool_call>)*$/.test(c));
    assertOk(forced.length >= 20, `the teacher wrote ${JSON.stringify(all)}`);
    const rejected = Object.values(r.counts.rejected).reduce((a, b) => a + b, 0);
    assertOk(rejected > 0 && r.counts.outputs > r.counts.passed_through, JSON.stringify(r.counts));

    const server = fakeVllm((body) =>
      Response.json(vllmReply(sampled.get(body.prompt as string)!))
    );
    try {
      const s = await star([
        "rollout",
        "--server",
        server.url,
        "--model",
        "teacher",
        "--input",
        MESSAGES,
        "--output",
        join(dir, "server.jsonl"),
        "--rollout-n",
        "4",
        "--max-tokens",
        "8",
        "--batch-size",
        "3",
        "--seed",
        "5",
      ]);
      assertEquals(s.code, 0, s.stderr);
      assertEquals(await read(join(dir, "server.jsonl")), await read(cfg.output));
    } finally {
      await server.close();
    }
  },
});

Deno.test("star rollout output goes through star prepare --add-reasoning-content and star ckd", async () => {
  const dir = await Deno.makeTempDir();
  // the conversations that end with the assistant (rows passed through are no trainset rows)
  const input = join(dir, "messages.jsonl");
  await Deno.writeTextFile(
    input,
    (await read(MESSAGES)).split("\n").filter((l) =>
      l && !l.includes("pass-4") && !l.includes('"note"')
    )
      .join("\n") + "\n",
  );
  const server = fakeVllm(fromRecorded(await recorded()));
  try {
    const r = await star([
      "rollout",
      "--server",
      server.url,
      "--model",
      "teacher",
      "--input",
      input,
      "--output",
      join(dir, "rollout.jsonl"),
      "--rollout-n",
      "4",
    ]);
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await server.close();
  }
  const p = await star([
    "prepare",
    "--input",
    join(dir, "rollout.jsonl"),
    "--output",
    join(dir, "train.jsonl"),
    "--add-reasoning-content",
  ]);
  assertEquals(p.code, 0, p.stderr);
  const train = (await read(join(dir, "train.jsonl"))).trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(train.length, 13);
  assertEquals(train[0].id, "weather-1");
  assertOk(
    train[0].targets.startsWith(
      'The user wants the weather in Paris in celsius.</think><tool_call>\n{"name": "get_weather"',
    ),
    train[0].targets,
  );
  await saveModel(join(dir, "student"), {
    config: { ...presetConfig("tiny"), num_hidden_layers: 1 },
    dtype: "f32",
    tokenizerFiles: await builtinTokenizerTexts(),
    tensor: (spec) => randomWeightF32(spec, { seed: 3, std: spec.kind === "norm" ? 0 : 0.05 }),
  });
  const yaml = join(dir, "ckd.yaml");
  await Deno.writeTextFile(
    yaml,
    "student: student\ndata: train.jsonl\noutput_dir: ckd\nkd_ratio: 0\nmax_steps: 2\n" +
      "train_batch_size: 2\nmicro_train_batch_size: 1\nlearning_rate: 0.001\n",
  );
  const device = (await hasGpu()) ? "gpu" : "cpu";
  const c = await star(["ckd", "--config", yaml, "--device", device]);
  assertEquals(c.code, 0, c.stderr);
  const metrics = await readMetrics(join(dir, "ckd", "metrics.jsonl"));
  assertEquals(metrics.map((m) => m.step), [1, 2]);
  assertOk(metrics.every((m) => Number.isFinite(m.loss) && m.loss! > 0));
});

Deno.test("star rollout --help names every config key", async () => {
  const r = await star(["rollout", "--help"]);
  assertEquals(r.code, 0);
  for (const key of Object.keys(rolloutConfigSchema.shape)) {
    assertMatch(r.stdout, new RegExp(`\\b${key}\\b`), key);
  }
});

Deno.test("runRollout() that fails before its first batch leaves no progress to resume from", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = rolloutConfigSchema.parse({
    input: MESSAGES,
    output: join(dir, "out.jsonl"),
    teacher: join(dir, "no-such-teacher"),
  });
  await assertRejects(() => runRollout(cfg, quiet));
  await assertRejects(() => Deno.stat(progressPath(cfg.output)), Deno.errors.NotFound);
});
