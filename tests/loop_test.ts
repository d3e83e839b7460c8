/**
 * The training loop on the float64 CKD backend: a run killed mid-way and re-run resumes from
 * its last checkpoint and writes the same metrics as an uninterrupted run; non-finite steps are
 * skipped and counted; a finished run re-run only rewrites final/.
 */
import { assertClose, assertEquals } from "./assert.ts";
import { join } from "node:path";
import { type ModelConfig, presetConfig } from "../model/config.ts";
import { loadRefModel, randomRefModel } from "../model/ref.ts";
import { writeModelDir } from "../train/checkpoint.ts";
import type { CkdSample } from "../train/ckd_step_ref.ts";
import { latestCheckpoint as resumePoint } from "../train/checkpoint.ts";
import { type LoopConfig, trainLoop } from "../train/loop.ts";
import { type MetricsRow, readMetrics } from "../train/metrics.ts";
import { CkdRefBackend, refModelSource } from "../train/ckd_ref.ts";
import { Run } from "../train/run.ts";
import type { StepMetrics, TrainBackend } from "../train/step.ts";
import { SplitMix64 } from "../train/data_order.ts";

const small: ModelConfig = {
  ...presetConfig("tiny"),
  vocab_size: 61,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  tie_word_embeddings: true,
};

const rng = new SplitMix64(5);
const DATA: CkdSample[] = Array.from({ length: 10 }, () => {
  const len = 5 + rng.below(4);
  return { ids: Array.from({ length: len }, () => rng.below(61)), promptLength: 2 + rng.below(2) };
});

const ckd = { klType: "fkl" as const, l1Coef: 10, topm: 5, kdRatio: 0.9, topk: 8 };
const adam = { betas: [0.9, 0.95] as const, eps: 1e-8, weightDecay: 1e-4 };

async function setup() {
  const root = await Deno.makeTempDir();
  const student = join(root, "student"), teacher = join(root, "teacher");
  await writeModelDir(student, refModelSource(randomRefModel(small, 1, { std: 0.3 })));
  await writeModelDir(teacher, refModelSource(randomRefModel(small, 2, { std: 1.0 })));
  return { root, student, teacher };
}

/** The run skeleton as a trainer opens it, silent. */
function openRun(
  c: LoopConfig,
  model: string,
  onStep?: (row: MetricsRow) => void,
): Promise<Run> {
  return Run.open(c, { name: "test", model, progress: false, log: () => {}, onStep });
}

const cfg = (output_dir: string): LoopConfig => ({
  output_dir,
  seed: 3,
  max_epochs: 3,
  micro_train_batch_size: 2,
  train_batch_size: 4,
  learning_rate: 3e-2,
  lr_scheduler: "cosine_with_min_lr",
  lr_warmup_ratio: 0.2,
  min_lr_ratio: 0.1,
  max_norm: 1.0,
  save_steps: 2,
});

/** Runs (or resumes) the loop as `star ckd` would: from the latest checkpoint when there is one. */
async function run(p: { student: string; teacher: string }, out: string, stopAt?: number) {
  const r = await openRun(cfg(out), p.student, (row) => {
    if (row.step === stopAt) throw new Error("killed");
  });
  const backend = await CkdRefBackend.load({
    student: r.startDir,
    teacher: p.teacher,
    optimizerFile: r.optimizerFile,
    ckd,
    adam,
  });
  return trainLoop({
    cfg: cfg(out),
    run: r,
    rows: DATA.length,
    makeBatch: (rows) => rows.map((r) => DATA[r]),
    backend,
  });
}

const strip = (rows: Record<string, unknown>[]) =>
  rows.map(({ seconds: _s, tokens_per_second: _t, ...r }) => r);

Deno.test("trainLoop() killed after step 5 and re-run matches the uninterrupted run's metrics", async () => {
  const p = await setup();
  const a = join(p.root, "a"), b = join(p.root, "b");
  const ra = await run(p, a);
  assertEquals(ra.steps, 6); // 10 rows / 4 = 2 steps per epoch, 3 epochs
  const full = await readMetrics(join(a, "metrics.jsonl"));
  assertEquals(full.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  let killed = false;
  try {
    await run(p, b, 5);
  } catch (err) {
    killed = (err as Error).message === "killed";
  }
  assertEquals(killed, true);
  assertEquals((await readMetrics(join(b, "metrics.jsonl"))).length, 5);
  assertEquals((await resumePoint(b))?.state.step, 4);
  await run(p, b);
  const resumed = await readMetrics(join(b, "metrics.jsonl"));
  assertEquals(strip(resumed), strip(full));
  // learning: the distillation loss falls over the run
  assertEquals(full[5].loss! < full[0].loss!, true, `${full[0].loss} -> ${full[5].loss}`);
  // the final models are identical
  const fa = await loadRefModel(join(a, "final")), fb = await loadRefModel(join(b, "final"));
  for (const n of Object.keys(fa.params)) assertEquals(fb.params[n], fa.params[n], n);
});

Deno.test("trainLoop() re-run after the end writes no new metrics and keeps final/", async () => {
  const p = await setup();
  const out = join(p.root, "c");
  await run(p, out);
  const before = await Deno.readTextFile(join(out, "metrics.jsonl"));
  const r = await run(p, out);
  assertEquals(r.steps, 6);
  assertEquals(await Deno.readTextFile(join(out, "metrics.jsonl")), before);
  const names = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
  assertEquals(names, [
    "checkpoint-2",
    "checkpoint-4",
    "checkpoint-6",
    "config.yaml",
    "final",
    "metrics.jsonl",
  ]);
});

/** A one-parameter model: loss = (w − 3)², NaN on chosen steps. */
class Toy implements TrainBackend<number[]> {
  w = 0;
  g = 0;
  calls = 0;
  adamSteps: number[] = [];
  loss = 0;
  tokens = 0;
  constructor(readonly nanOnCall: Set<number>) {}
  microStep(_rows: number[], o: { microBatches: number }): Promise<void> {
    this.calls++;
    const bad = this.nanOnCall.has(this.calls);
    this.g += bad ? NaN : 2 * (this.w - 3) / o.microBatches;
    this.loss += (bad ? NaN : (this.w - 3) ** 2) / o.microBatches;
    this.tokens++;
    return Promise.resolve();
  }
  stepMetrics(): Promise<StepMetrics> {
    const m = { loss: this.loss, parts: {}, tokens: this.tokens, gradNorm: Math.abs(this.g) };
    this.loss = this.tokens = 0;
    return Promise.resolve(m);
  }
  applyUpdate(o: { lr: number; clipScale: number; adamStep: number }) {
    this.adamSteps.push(o.adamStep);
    this.w -= o.lr * this.g * o.clipScale;
    this.g = 0;
    return Promise.resolve();
  }
  zeroGrads() {
    this.g = 0;
    return Promise.resolve();
  }
  model() {
    return {
      config: {},
      specs: [{ name: "w", dtype: "F32", shape: [1] }],
      bytes: () => new Uint8Array(Float32Array.of(this.w).buffer),
    };
  }
  optimizer(step: number) {
    return { step, tensors: [], read: () => new Float32Array(0) };
  }
}

Deno.test("trainLoop() skips and counts a step whose loss is not finite", async () => {
  const out = await Deno.makeTempDir();
  const toy = new Toy(new Set([3])); // step 2's first micro-batch
  const c: LoopConfig = {
    ...cfg(out),
    max_epochs: 1,
    save_steps: -1,
    lr_scheduler: "constant",
    max_norm: 100,
  };
  const model = (await setup()).student;
  const r = await trainLoop({
    cfg: c,
    run: await openRun(c, model),
    rows: 16,
    makeBatch: (rows) => rows,
    backend: toy,
  });
  assertEquals([r.steps, r.skipped], [4, 1]);
  assertEquals(toy.adamSteps, [1, 2, 3]);
  const rows = await readMetrics(join(out, "metrics.jsonl"));
  assertEquals(rows.map((x) => [x.step, x.loss === null, x.skipped ?? false]), [
    [1, false, false],
    [2, true, true],
    [3, false, false],
    [4, false, false],
  ]);
  assertEquals((await resumePoint(out))?.state.skipped_steps, 1);
});

interface TorchRun {
  config: Record<string, unknown> & { kd_kl_type: "fkl" | "akl"; kd_ratio: number };
  data: CkdSample[];
  metrics: Record<string, number>[];
}

for (const kind of ["akl", "fkl"]) {
  Deno.test(`trainLoop() + CkdRefBackend reproduce a torch CKD run step by step (${kind})`, async () => {
    const here = new URL("./testdata/", import.meta.url).pathname;
    const fx: TorchRun = JSON.parse(
      await Deno.readTextFile(join(here, `ckd/train_${kind}.torch.json`)),
    );
    const c = fx.config as unknown as LoopConfig & {
      adam_betas: [number, number];
      adam_eps: number;
      weight_decay: number;
      kd_topk: number;
      kd_student_topm: number;
      kd_kl_l1_coef: number;
    };
    const out = await Deno.makeTempDir();
    const loopCfg = { ...c, output_dir: out, save_steps: -1 };
    const backend = await CkdRefBackend.load({
      student: join(here, "ckd/student"),
      teacher: join(here, "qwen3/toy_untied_bf16"),
      ckd: {
        klType: fx.config.kd_kl_type,
        kdRatio: fx.config.kd_ratio,
        l1Coef: c.kd_kl_l1_coef,
        topm: c.kd_student_topm,
        topk: c.kd_topk,
      },
      adam: { betas: c.adam_betas, eps: c.adam_eps, weightDecay: c.weight_decay },
    });
    await trainLoop({
      cfg: loopCfg,
      run: await openRun(loopCfg, join(here, "ckd/student")),
      rows: fx.data.length,
      makeBatch: (rows) => rows.map((r) => fx.data[r]),
      backend,
    });
    const got = await readMetrics(join(out, "metrics.jsonl"));
    assertEquals(got.length, fx.metrics.length);
    got.forEach((row, i) => {
      const want = fx.metrics[i];
      assertEquals([row.step, row.tokens], [want.step, want.tokens]);
      for (const k of ["loss", "lr", "grad_norm", "kd_fkl", "kd_tail", "kd_ce"]) {
        assertClose(row[k] as number, want[k], {
          rtol: 1e-9,
          atol: 1e-12,
          msg: `step ${row.step} ${k}`,
        });
      }
    });
  });
}

Deno.test("LoopConfig is satisfied by a parsed CKD config and a parsed Sim-RL config", async () => {
  const { ckdConfigSchema, parseConfig, simrlConfigSchema } = await import("../train/config.ts");
  const ckdCfg: LoopConfig = parseConfig(
    "student: s\nteacher: t\ndata: d.jsonl\noutput_dir: o\n",
    ckdConfigSchema,
    "/x/ckd.yaml",
  );
  const simCfg: LoopConfig = parseConfig(
    "pretrain: p\ndata: d.jsonl\noutput_dir: o\n",
    simrlConfigSchema,
    "/x/simrl.yaml",
  );
  assertEquals([ckdCfg.lr_scheduler, ckdCfg.save_steps, simCfg.train_batch_size], [
    "cosine_with_min_lr",
    -1,
    128,
  ]);
});
