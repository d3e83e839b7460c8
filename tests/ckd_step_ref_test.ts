import { assertClose, assertEquals } from "./assert.ts";
import type { ModelConfig } from "../model/config.ts";
import { presetConfig } from "../model/config.ts";
import {
  backwardRef,
  crossEntropyRef,
  forwardRef,
  randomRefModel,
  type RefModel,
} from "../model/ref.ts";
import { type CkdSample, ckdStepRef, targetRowsRef } from "../train/ckd_step_ref.ts";
import { globalGradNormRef } from "../train/optimizer_ref.ts";

const small: ModelConfig = {
  ...presetConfig("tiny"),
  vocab_size: 97,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  tie_word_embeddings: false,
};

const batches: CkdSample[][] = [
  [{ ids: [5, 17, 3, 90, 41, 7], promptLength: 3 }, { ids: [1, 2, 60, 61, 62], promptLength: 2 }],
  [{ ids: [88, 12, 33, 4, 4, 19, 50], promptLength: 4 }],
];

function withParam(m: RefModel, name: string, i: number, v: number): RefModel {
  const p = Float64Array.from(m.params[name]);
  p[i] = v;
  return { config: m.config, params: { ...m.params, [name]: p } };
}

Deno.test("targetRowsRef() picks the rows whose next token is a target, across packed samples", () => {
  assertEquals(targetRowsRef(batches[0]), [
    { row: 2, target: 90 },
    { row: 3, target: 41 },
    { row: 4, target: 7 },
    { row: 7, target: 60 },
    { row: 8, target: 61 },
    { row: 9, target: 62 },
  ]);
});

for (const klType of ["fkl", "akl"] as const) {
  Deno.test(`ckdStepRef() ${klType}: parameter gradients match finite differences of the step loss`, () => {
    const student = randomRefModel(small, 1, { std: 0.4, normJitter: 0.1 });
    const teacher = randomRefModel(small, 2, { std: 0.6 });
    const ckd = { klType, l1Coef: 10, topm: 6, kdRatio: 0.8, topk: 8 };
    const base = ckdStepRef({ student, teacher, microBatches: batches, ckd });
    assertEquals(base.tokens, 6 + 3);
    assertEquals(base.tail > 0, true, "the tail term is exercised");
    const h = 1e-5;
    const probes: [string, number][] = [
      ["lm_head.weight", 5 * 16 + 3],
      ["lm_head.weight", 90 * 16 + 7],
      ["model.embed_tokens.weight", 17 * 16 + 2],
      ["model.layers.0.self_attn.q_proj.weight", 11],
      ["model.layers.0.self_attn.k_norm.weight", 3],
      ["model.layers.0.mlp.down_proj.weight", 40],
      ["model.norm.weight", 9],
    ];
    for (const [name, i] of probes) {
      const x = student.params[name][i];
      const lp = ckdStepRef({
        student: withParam(student, name, i, x + h),
        teacher,
        microBatches: batches,
        ckd,
      });
      const lm = ckdStepRef({
        student: withParam(student, name, i, x - h),
        teacher,
        microBatches: batches,
        ckd,
      });
      const fd = (lp.loss - lm.loss) / (2 * h);
      assertClose(base.grads[name][i], fd, { atol: 1e-7, rtol: 1e-5, msg: `${name}[${i}]` });
    }
  });
}

Deno.test("ckdStepRef() of a student against itself with k = V: zero loss and zero gradient", () => {
  const m = randomRefModel(small, 3, { std: 0.5 });
  const r = ckdStepRef({
    student: m,
    teacher: m,
    microBatches: batches,
    ckd: { klType: "fkl", l1Coef: 10, topm: 20, kdRatio: 1, topk: 97 },
  });
  assertClose(r.loss, 0, { atol: 1e-13 });
  assertClose(r.tail, 0, { atol: 0 });
  assertClose(r.gradNorm, 0, { atol: 1e-12 });
});

Deno.test("ckdStepRef() with kd_ratio 0 is the masked cross-entropy of the CPU Qwen3, micro-batches averaged", () => {
  const student = randomRefModel(small, 4, { std: 0.4 });
  const r = ckdStepRef({
    student,
    microBatches: batches,
    ckd: { klType: "fkl", l1Coef: 10, topm: 5, kdRatio: 0, topk: 8 },
  });
  // the same through crossEntropyRef with prompt labels ignored, one micro-batch at a time
  let loss = 0;
  const grads = Object.fromEntries(
    Object.entries(student.params).map(([n, p]) => [n, new Float64Array(p.length)]),
  );
  for (const mb of batches) {
    const f = forwardRef(student, mb.map((s) => s.ids));
    const labels = mb.map((s) => s.ids.map((id, t) => (t < s.promptLength ? -100 : id)));
    const ce = crossEntropyRef(f, small.vocab_size, labels);
    loss += ce.loss / batches.length;
    backwardRef(student, f, ce.dlogits.map((x) => x / batches.length), grads);
  }
  assertClose(r.loss, loss, { rtol: 1e-13 });
  assertClose(r.ce, loss, { rtol: 1e-13 });
  for (const n of Object.keys(grads)) {
    assertClose(r.grads[n], grads[n], { rtol: 1e-10, atol: 1e-15, msg: n });
  }
});

Deno.test("ckdStepRef() clips to max_norm and applies AdamW without decay on norm weights", () => {
  const student = randomRefModel(small, 5, { std: 0.4 });
  const teacher = randomRefModel(small, 6, { std: 0.6 });
  const r = ckdStepRef({
    student,
    teacher,
    microBatches: batches,
    ckd: { klType: "fkl", l1Coef: 10, topm: 6, kdRatio: 1, topk: 8 },
    optim: { lr: 1e-3, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.5, maxNorm: 0.01, step: 1 },
  });
  const norm = globalGradNormRef(Object.values(r.grads));
  assertClose(r.gradNorm, norm, { rtol: 1e-14 });
  assertEquals(norm > 0.01, true, "the step clips");
  assertClose(r.clipScale, 0.01 / (norm + 1e-6), { rtol: 1e-14 });
  // first AdamW step: p·(1 − lr·wd) − lr·g/(|g| + eps), the clip scale cancels except near eps
  const name = "model.layers.0.mlp.up_proj.weight", i = 7;
  const g = r.grads[name][i] * r.clipScale, p = student.params[name][i];
  assertClose(r.params![name][i], p * (1 - 1e-3 * 0.5) - 1e-3 * g / (Math.abs(g) + 1e-8), {
    rtol: 1e-12,
  });
  const nn = "model.norm.weight", gn = r.grads[nn][2] * r.clipScale;
  assertClose(r.params![nn][2], student.params[nn][2] - 1e-3 * gn / (Math.abs(gn) + 1e-8), {
    rtol: 1e-12,
  });
});

Deno.test("ckdStepRef() on the real vocabulary: the tiny preset pair, gradient spot-checked", () => {
  const cfg = presetConfig("tiny");
  const student = randomRefModel({ ...cfg, num_hidden_layers: 1 }, 7, { std: 0.1 });
  const teacher = randomRefModel({ ...cfg, num_hidden_layers: 1 }, 8, { std: 0.2 });
  const mb: CkdSample[][] = [[{
    ids: [151644, 872, 198, 9707, 151645, 198, 151644],
    promptLength: 3,
  }]];
  const ckd = { klType: "fkl" as const, l1Coef: 10, topm: 100, kdRatio: 1, topk: 100 };
  const r = ckdStepRef({ student, teacher, microBatches: mb, ckd });
  assertEquals(r.tokens, 4);
  assertEquals(Number.isFinite(r.loss) && r.loss > 0, true);
  const name = "model.embed_tokens.weight", i = 9707 * 64 + 5, h = 1e-5;
  const x = student.params[name][i];
  const lp = ckdStepRef({
    student: withParam(student, name, i, x + h),
    teacher,
    microBatches: mb,
    ckd,
  });
  const lm = ckdStepRef({
    student: withParam(student, name, i, x - h),
    teacher,
    microBatches: mb,
    ckd,
  });
  assertClose(r.grads[name][i], (lp.loss - lm.loss) / (2 * h), { atol: 1e-7, rtol: 1e-5 });
});
