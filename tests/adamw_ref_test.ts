import { assertClose, assertEquals } from "./assert.ts";
import {
  adamwMoments,
  adamwStepRef,
  clipGradNormRef,
  decaysWeight,
  globalGradNormRef,
} from "../train/optimizer_ref.ts";

interface Fixture {
  betas: [number, number];
  eps: number;
  max_norm: number;
  weight_decay: Record<string, number>;
  init: Record<string, number[]>;
  steps: {
    lr: number;
    grads: Record<string, number[]>;
    norm: number;
    params: Record<string, number[]>;
  }[];
}

Deno.test("adamwStepRef() + clipGradNormRef() match torch AdamW and clip_grad_norm_ over 6 steps", async () => {
  const fx: Fixture = JSON.parse(
    await Deno.readTextFile(new URL("./testdata/adamw/adamw_torch.json", import.meta.url)),
  );
  const names = Object.keys(fx.init);
  const params = names.map((n) => Float64Array.from(fx.init[n]));
  const moments = params.map((p) => adamwMoments(p.length));
  let clipped = 0;
  fx.steps.forEach((s, i) => {
    const grads = names.map((n) => Float64Array.from(s.grads[n]));
    const { norm, scale } = clipGradNormRef(grads, fx.max_norm);
    if (scale < 1) clipped++;
    assertClose(norm, s.norm, { rtol: 1e-13, msg: `norm at step ${i + 1}` });
    names.forEach((n, j) => {
      adamwStepRef(params[j], {
        lr: s.lr,
        betas: fx.betas,
        eps: fx.eps,
        weightDecay: fx.weight_decay[n],
        grad: grads[j],
        moments: moments[j],
        step: i + 1,
      });
      assertClose(params[j], s.params[n], { rtol: 1e-12, atol: 1e-15, msg: `${n} step ${i + 1}` });
    });
  });
  assertEquals(clipped >= 2, true, "the fixture exercises clipping");
});

Deno.test("adamwStepRef() first step by hand: decay, then m̂/(√v̂ + eps)", () => {
  const p = Float64Array.of(1, -2);
  const moments = adamwMoments(2);
  adamwStepRef(p, {
    lr: 0.1,
    betas: [0.9, 0.95],
    eps: 1e-8,
    weightDecay: 0.01,
    grad: [0.5, -4],
    moments,
    step: 1,
  });
  // m̂ = g and √v̂ = |g| on the first step, so the update is lr · g / (|g| + eps)
  assertClose(p[0], 1 * 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), { rtol: 1e-15 });
  assertClose(p[1], -2 * 0.999 + 0.1 * 4 / (4 + 1e-8), { rtol: 1e-15 });
  assertClose(moments.m, [0.05, -0.4], { rtol: 1e-15 });
  assertClose(moments.v, [0.0125, 0.8], { rtol: 1e-14 });
});

Deno.test("clipGradNormRef() scales by max_norm / (norm + 1e-6) only above max_norm", () => {
  const g = [Float64Array.of(3), Float64Array.of(4)];
  const r = clipGradNormRef(g, 1);
  assertEquals(r.norm, 5);
  assertClose(r.scale, 1 / (5 + 1e-6), { rtol: 1e-15 });
  assertClose(globalGradNormRef(g), 5 / (5 + 1e-6), { rtol: 1e-15 });
  const small = [Float64Array.of(0.3, 0.4)];
  assertEquals(clipGradNormRef(small, 1), { norm: 0.5, scale: 1, finite: true });
  assertEquals(Array.from(small[0]), [0.3, 0.4]);
  const bad = [Float64Array.of(1, NaN)];
  const rb = clipGradNormRef(bad, 1);
  assertEquals([rb.finite, rb.scale, bad[0][0]], [false, 1, 1]);
});

Deno.test("decaysWeight() exempts every Qwen3 norm weight and decays projections", () => {
  for (
    const n of [
      "model.layers.3.input_layernorm.weight",
      "model.layers.3.post_attention_layernorm.weight",
      "model.layers.3.self_attn.q_norm.weight",
      "model.layers.3.self_attn.k_norm.weight",
      "model.norm.weight",
      "model.layers.0.self_attn.q_proj.bias",
    ]
  ) assertEquals(decaysWeight(n), false, n);
  for (
    const n of [
      "model.embed_tokens.weight",
      "model.layers.3.self_attn.q_proj.weight",
      "model.layers.3.mlp.down_proj.weight",
      "lm_head.weight",
    ]
  ) assertEquals(decaysWeight(n), true, n);
});
