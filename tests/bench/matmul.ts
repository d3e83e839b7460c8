/**
 * Matmul cases of one Qwen3-0.6B training step at 512 tokens (D 1024, F 3072, q/k/v/o
 * projections 1024->2048/1024, the LM head over a 151936/8 vocabulary chunk), forward and both
 * backward products, plus decode GEMV with a pre-packed weight. Shapes are [M, K, N].
 */
import { createTensor, type Gpu } from "../../engine/mod.ts";
import {
  matmulBackward,
  matmulForward,
  matmulVariant,
  type PackedWeight,
  packMatmulWeight,
} from "../../engine/ops/matmul.ts";
import type { BenchCase } from "./_types.ts";

const STEP: [number, number, number][] = [
  [512, 1024, 2048], // q_proj (16 heads x 128)
  [512, 1024, 1024], // k_proj + v_proj (8 kv heads x 128)
  [512, 1024, 3072], // gate_proj / up_proj
  [512, 3072, 1024], // down_proj
  [512, 1024, 18992], // lm_head over a vocabulary chunk (151936 / 8)
];

function inputs(gpu: Gpu, M: number, K: number, N: number, wDtype: "f32" | "bf16" = "f32") {
  const fill = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  return {
    x: createTensor(gpu, { shape: [M, K], dtype: "f32", label: "x", data: fill(M * K, 1) }),
    w: createTensor(gpu, { shape: [N, K], dtype: wDtype, label: "w", data: fill(N * K, 2) }),
    y: createTensor(gpu, { shape: [M, N], dtype: "f32", label: "y" }),
    dy: createTensor(gpu, { shape: [M, N], dtype: "f32", label: "dy", data: fill(M * N, 3) }),
    dx: createTensor(gpu, { shape: [M, K], dtype: "f32", label: "dx" }),
    dw: createTensor(gpu, {
      shape: [N, K],
      dtype: "f32",
      label: "dw",
      data: new Float32Array(N * K),
    }),
  };
}

export const cases: BenchCase[] = [
  ...STEP.flatMap(([M, K, N]): BenchCase[] => {
    const s = { rows: M, inDim: K, outDim: N };
    const flops = 2 * M * K * N;
    return [
      {
        name: "matmul",
        shape: [M, K, N],
        flops,
        setup(gpu) {
          const t = inputs(gpu, M, K, N);
          return { record: (rec) => matmulForward(rec, { y: t.y, x: t.x, w: t.w, ...s }) };
        },
      },
      {
        name: "matmul_dx",
        shape: [M, K, N],
        flops,
        setup(gpu) {
          const t = inputs(gpu, M, K, N);
          return {
            record: (rec) => matmulBackward(rec, { dx: t.dx, dy: t.dy, x: t.x, w: t.w, ...s }),
          };
        },
      },
      {
        name: "matmul_dw",
        shape: [M, K, N],
        flops,
        setup(gpu) {
          const t = inputs(gpu, M, K, N);
          return {
            record: (rec) => matmulBackward(rec, { dw: t.dw, dy: t.dy, x: t.x, w: t.w, ...s }),
          };
        },
      },
    ];
  }),
  {
    // a frozen teacher/reference layer: bf16 weights, unpacked on the fly
    name: "matmul_bf16",
    shape: [512, 1024, 3072],
    flops: 2 * 512 * 1024 * 3072,
    setup(gpu) {
      const t = inputs(gpu, 512, 1024, 3072, "bf16");
      const s = { rows: 512, inDim: 1024, outDim: 3072 };
      return { record: (rec) => matmulForward(rec, { y: t.y, x: t.x, w: t.w, ...s }) };
    },
  },
  {
    // one decode step through a plain forward call (the weight copied into a texture each time)
    name: "matmul",
    shape: [1, 1024, 3072],
    flops: 2 * 1024 * 3072,
    setup(gpu) {
      const t = inputs(gpu, 1, 1024, 3072);
      const s = { rows: 1, inDim: 1024, outDim: 3072 };
      return {
        record: (rec) => matmulForward(rec, { y: t.y, x: t.x, w: t.w, ...s }),
        perSubmit: 50,
      };
    },
  },
  {
    name: "gemv",
    shape: [1, 1024, 3072],
    flops: 2 * 1024 * 3072,
    setup(gpu) {
      const t = inputs(gpu, 1, 1024, 3072);
      const s = { rows: 1, inDim: 1024, outDim: 3072 };
      let packed: PackedWeight | undefined;
      return {
        record: (rec) => {
          // decode: the weight is packed once per optimizer step, not per token
          if (matmulVariant(gpu) === "texture") {
            packed ??= packMatmulWeight(rec, { w: t.w, ...s });
            matmulForward(rec, { y: t.y, x: t.x, w: t.w, ...s, packed, variant: "texture" });
          } else matmulForward(rec, { y: t.y, x: t.x, w: t.w, ...s });
        },
        perSubmit: 50,
      };
    },
  },
];
