/**
 * Fixed costs: one tiny dispatch inside a batch of 1000 in one pass and one submit
 * ("dispatch", ms per dispatch), and one empty submit plus the wait for it ("sync").
 */
import { createTensor, kernel } from "../../engine/mod.ts";
import type { BenchCase } from "./_types.ts";

// y = a + b over 1024 floats: the smallest useful kernel
const ADD = `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < arrayLength(&y)) { y[gid.x] = a[gid.x] + b[gid.x]; }
}`;

export const cases: BenchCase[] = [
  {
    name: "dispatch",
    shape: [1024],
    setup(gpu) {
      const k = kernel(gpu, {
        file: "bench/add.wgsl",
        code: ADD,
        entryPoint: "main",
        bindings: [
          { name: "y", kind: "storage" },
          { name: "a", kind: "read" },
          { name: "b", kind: "read" },
        ],
      });
      const t = (label: string) =>
        createTensor(gpu, { shape: [1024], dtype: "f32", label, data: new Float32Array(1024) });
      const y = t("y"), a = t("a"), b = t("b");
      return { record: (rec) => rec.dispatch(k, { y, a, b }, [4]), perSubmit: 1000 };
    },
  },
  {
    name: "sync",
    shape: [0],
    setup: () => ({ record: () => {}, perSubmit: 1 }),
  },
];
