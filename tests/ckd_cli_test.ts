/**
 * `star ckd` end to end as a user runs it: a process killed (SIGKILL) after a checkpoint and
 * run again resumes and writes the same metrics as an uninterrupted run; the offline top-k
 * cache gives the same run as the online teacher; config errors are one line. Runs on the
 * engine when there is an adapter, else on the float64 reference (`--device cpu`).
 */
import { assertClose, assertEquals, assertMatch } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { readMetrics } from "../train/metrics.ts";
import { star } from "./_star.ts";
import { ckdPair, tiny } from "./_ckd_pair.ts";

const device = (await hasGpu()) ? "gpu" : "cpu";
const setup = () => ckdPair(12);

function config(root: string, out: string, extra = ""): string {
  const path = join(root, `${out}.yaml`);
  Deno.writeTextFileSync(
    path,
    `student: student
teacher: teacher
data: train.jsonl
output_dir: ${out}
train_batch_size: 4
micro_train_batch_size: 2
max_epochs: 2
learning_rate: 0.01
lr_warmup_ratio: 0.2
save_steps: 2
kd_topk: 8
kd_student_topm: 8
${extra}`,
  );
  return path;
}

const strip = (rows: Record<string, unknown>[]) =>
  rows.map(({ seconds: _s, tokens_per_second: _t, ...r }) => r);

Deno.test(`star ckd (${device}) killed with SIGKILL after a checkpoint and re-run matches an uninterrupted run`, async () => {
  const root = await setup();
  const full = await star(["ckd", "--config", config(root, "a"), "--device", device]);
  assertEquals(full.code, 0, full.stderr);
  const a = await readMetrics(join(root, "a", "metrics.jsonl"));
  assertEquals(a.map((r) => r.step), [1, 2, 3, 4, 5, 6]); // 12 rows / 4 = 3 steps × 2 epochs

  // the same run, killed as soon as checkpoint-2 is complete
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "ckd", "--config", config(root, "b"), "--device", device],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const state = join(root, "b", "checkpoint-2", "trainer_state.json");
  for (;;) {
    try {
      await Deno.stat(state);
      break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.status;
  const exists = async (p: string) => await Deno.stat(p).then(() => true, () => false);
  assertEquals(await exists(join(root, "b", "final")), false, "the run ended before the kill");

  const again = await star(["ckd", "--config", config(root, "b"), "--device", device]);
  assertEquals(again.code, 0, again.stderr);
  assertMatch(again.stderr, /resuming from .*checkpoint-\d+.* \(step \d+\)/);
  const b = await readMetrics(join(root, "b", "metrics.jsonl"));
  assertEquals(strip(b), strip(a));
  // the final weights are the same bytes
  const wa = await Deno.readFile(join(root, "a", "final", "model.safetensors"));
  const wb = await Deno.readFile(join(root, "b", "final", "model.safetensors"));
  assertEquals(wb.length, wa.length);
  assertEquals(wb.every((x, i) => x === wa[i]), true, "final weights differ");
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
    assertEquals(await exists(join(root, "b", "final", f)), true, f);
  }
});

Deno.test(`star ckd (${device}) with teacher_topk_cache trains like the online teacher`, async () => {
  const root = await setup();
  const online = await star(["ckd", "--config", config(root, "on"), "--device", device]);
  assertEquals(online.code, 0, online.stderr);
  const cached = await star([
    "ckd",
    "--config",
    config(root, "off", "teacher_topk_cache: cache\n"),
    "--device",
    device,
  ]);
  assertEquals(cached.code, 0, cached.stderr);
  assertMatch(cached.stderr, /cache complete/);
  const on = await readMetrics(join(root, "on", "metrics.jsonl"));
  const off = await readMetrics(join(root, "off", "metrics.jsonl"));
  assertEquals(off.length, on.length);
  for (let i = 0; i < on.length; i++) {
    // the cache stores f32 log-probs, as the GPU computes them: equal up to rounding
    assertClose(off[i].loss!, on[i].loss!, { rtol: 1e-5 });
    assertClose(off[i].grad_norm!, on[i].grad_norm!, { rtol: 1e-4 });
  }
  // a second run finds the cache complete and does not need the teacher to fill it
  const meta = JSON.parse(await Deno.readTextFile(join(root, "cache", "meta.json")));
  assertEquals([meta.k, meta.vocab_size], [8, tiny.vocab_size]);
});

Deno.test("star ckd reports a missing teacher and an unknown key as one line, exit 1", async () => {
  const root = await setup();
  const p = join(root, "bad.yaml");
  await Deno.writeTextFile(p, "student: student\ndata: train.jsonl\noutput_dir: o\nkd_ratio: 1\n");
  const r = await star(["ckd", "--config", p]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /kd_ratio 1 but no "teacher"/);
  await Deno.writeTextFile(p, "student: student\ndata: train.jsonl\noutput_dir: o\nkd_topkk: 3\n");
  const u = await star(["ckd", "--config", p]);
  assertEquals(u.code, 1);
  assertMatch(u.stderr, /unknown key "kd_topkk" \(did you mean "kd_topk"\?\)/);
  const d = await star(["ckd", "--config", p, "--device", "tpu"]);
  assertEquals(d.code, 2);
});
