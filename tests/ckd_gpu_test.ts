/**
 * The CKD backend on the engine (train/ckd_gpu.ts) against the float64 oracle of one
 * optimizer step (train/ckd_step_ref.ts) on a tiny teacher/student pair with the real
 * vocabulary: the step's loss and parts, the gradient norm, and the weights after AdamW.
 */
import { assertClose, assertEquals } from "./assert.ts";
import { join } from "node:path";
import { hasGpu } from "../engine/device.ts";
import { type ModelConfig, presetConfig } from "../model/config.ts";
import { loadRefModel, randomRefModel } from "../model/ref.ts";
import { saveModel } from "../model/save.ts";
import { writeModelDir } from "../train/checkpoint.ts";
import { type CkdSample, ckdStepRef } from "../train/ckd_step_ref.ts";
import { targetSpans } from "../train/ckd_batch.ts";
import { CkdGpuBackend } from "../train/ckd_gpu.ts";
import { refModelSource } from "../train/ckd_ref.ts";
import { SplitMix64 } from "../train/data_order.ts";
import type { KdKlType } from "../train/ckd_loss_ref.ts";

const ignore = !(await hasGpu());

const tiny: ModelConfig = { ...presetConfig("tiny"), num_hidden_layers: 1 };
const V = tiny.vocab_size;

/** Two micro-batches of two samples; ids spread over the whole vocabulary. */
function data(seed: number): CkdSample[][] {
  const rng = new SplitMix64(seed);
  const sample = (): CkdSample => {
    const len = 6 + rng.below(6);
    return {
      ids: Array.from({ length: len }, () => rng.below(V)),
      promptLength: 1 + rng.below(4),
    };
  };
  return [[sample(), sample()], [sample(), sample()]];
}

const adam = { betas: [0.9, 0.95] as const, eps: 1e-8, weightDecay: 1e-4 };

/** A seeded pair; the teacher is stored as BF16 when asked (and the oracle reads it back). */
async function pair(root: string, teacherDtype: "f32" | "bf16") {
  const student = randomRefModel(tiny, 11, { std: 0.3, normJitter: 0.1 });
  const teacher = randomRefModel(tiny, 12, { std: 0.6, normJitter: 0.1 });
  await writeModelDir(join(root, "student"), refModelSource(student));
  await saveModel(join(root, "teacher"), {
    config: tiny,
    dtype: teacherDtype,
    tensor: (spec) => Float32Array.from(teacher.params[spec.name]),
  });
  return { student, teacher: await loadRefModel(join(root, "teacher")) };
}

Deno.test("targetSpans() lists the contiguous target rows of packed samples", () => {
  const r = targetSpans([
    { ids: [1, 2, 3, 4], promptLength: 2 },
    { ids: [5, 6], promptLength: 2 },
    { ids: [7, 8, 9], promptLength: 1 },
  ]);
  assertEquals(r.spans, [{ start: 1, len: 2 }, { start: 6, len: 2 }]);
  assertEquals(r.targets, [3, 4, 8, 9]);
});

for (
  const [klType, kdRatio, l1Coef, teacherDtype, chunkCols] of [
    ["fkl", 1, 10, "f32"],
    ["akl", 0.7, 10, "f32"],
    ["rkl", 1, 2, "f32"],
    ["fkl", 0, 10, "f32"],
    ["fkl", 1, 10, "bf16", 40_000],
  ] as [KdKlType, number, number, "f32" | "bf16", number?][]
) {
  Deno.test({
    name: `CkdGpuBackend one step (${klType}, kd_ratio ${kdRatio}, ${teacherDtype} teacher${
      chunkCols ? `, vocabulary chunks of ${chunkCols}` : ""
    }) matches ckdStepRef(): loss 1e-4, grad norm 1e-3, weights after AdamW`,
    ignore,
    async fn() {
      const root = await Deno.makeTempDir();
      const { student, teacher } = await pair(root, teacherDtype);
      const ckd = { klType, l1Coef, topm: 20, kdRatio, topk: 16 };
      const mbs = data(kdRatio * 10 + l1Coef);
      const lr = 1e-3, maxNorm = 0.5;
      const ref = ckdStepRef({
        student,
        teacher,
        microBatches: mbs,
        ckd,
        optim: { lr, ...adam, maxNorm, step: 1 },
      });
      const b = await CkdGpuBackend.load({
        student: join(root, "student"),
        teacher: kdRatio > 0 ? join(root, "teacher") : undefined,
        ckd,
        adam: { ...adam, maxNorm },
        limits: { maxChunkRows: chunkCols },
      });
      try {
        for (const mb of mbs) await b.microStep(mb, { microBatches: mbs.length });
        const m = await b.stepMetrics();
        const { loss, gradNorm: norm } = m;
        const { kd_fkl: fkl, kd_tail: tail, kd_ce: ce } = m.parts;
        assertEquals(m.tokens, mbs.flat().reduce((a, s) => a + s.ids.length, 0));
        assertClose(loss, ref.loss, { rtol: 1e-4, atol: 1e-7 });
        if (kdRatio > 0) {
          assertClose(fkl, ref.fkl, { rtol: 1e-4, atol: 1e-7 });
          assertClose(tail, ref.tail, { rtol: 1e-4, atol: 1e-7 });
        }
        assertClose(ce, ref.ce, { rtol: 1e-4, atol: 1e-7 });
        assertClose(norm, ref.gradNorm, { rtol: 1e-3 });
        const g = await b.student.readGrad("model.layers.0.mlp.down_proj.weight");
        assertClose(g, ref.grads["model.layers.0.mlp.down_proj.weight"], {
          rtol: 1e-3,
          atol: 1e-3 * norm / Math.sqrt(g.length),
        });
        await b.applyUpdate({ lr, clipScale: ref.clipScale, adamStep: 1 });
        // AdamW's first step moves each weight by lr·g/(|g| + eps) (plus decay): on lr's scale.
        // Where |g| is near eps (1e-8) the step is ill-conditioned in g (f32 rounding of a
        // near-cancelled gradient flips it), so those elements are held to lr only.
        for (
          const name of [
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.mlp.gate_proj.weight",
            "model.embed_tokens.weight",
          ]
        ) {
          const w = await b.student.readWeight(name);
          const want = ref.params![name], g = ref.grads[name];
          let bad = -1;
          for (let i = 0; i < w.length; i++) {
            const tol = Math.abs(g[i]) * ref.clipScale > 1e-6 ? 1e-2 * lr : 1.01 * lr;
            if (!(Math.abs(w[i] - want[i]) <= tol + 1e-6 * Math.abs(want[i]))) bad = i;
          }
          assertEquals(bad, -1, `${name}: ${w[bad]} vs ${want[bad]} (grad ${g[bad]})`);
        }
      } finally {
        b.release();
      }
    },
  });
}
