/**
 * The loop budget the attention kernels size their passes by (engine/ops/_util.ts): a probe kernel
 * runs the attention backward's loop nest (rows, then heads, then two loops over head_dim) and
 * counts the rows it finished. Within LOOP_BUDGET by loopCost() every row finishes on any adapter;
 * on the software adapter the nest is cut short past 65535 iterations, the reason for the budget.
 */
import { createTensor, getGpu, kernel, readTensor } from "../engine/mod.ts";
import { LOOP_BUDGET, loopCost } from "../engine/ops/_util.ts";
import { NO_GPU, runGpu } from "./_ops.ts";
import { assertEquals, assertOk } from "./assert.ts";

const PROBE = `
struct Params { rows: u32, heads: u32, dim: u32, pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var done = 0u;
  var acc = 0.0;
  for (var i = 0u; i < params.rows; i++) {
    for (var h = 0u; h < params.heads; h++) {
      for (var e = 0u; e < params.dim; e++) {
        acc += f32(e + lid.x);
      }
      for (var e = 0u; e < params.dim; e++) {
        acc -= f32(e);
      }
    }
    done++;
  }
  out[lid.x] = done + select(0u, 1u, acc < -1.0);
}
`;

/** Rows the probe finishes (per invocation; all 8 agree) out of `rows`. */
async function probe(rows: number, heads: number, dim: number): Promise<number[]> {
  const gpu = await getGpu();
  const out = createTensor(gpu, { shape: [8], dtype: "u32", label: "probe.out" });
  const k = kernel(gpu, {
    file: "tests/ops_loop_budget_test.ts",
    code: PROBE,
    entryPoint: "main",
    bindings: [{ name: "params", kind: "uniform" }, { name: "out", kind: "storage" }],
  });
  await runGpu((rec) =>
    rec.dispatch(k, { params: rec.uniform(new Uint32Array([rows, heads, dim, 0])), out }, [1])
  );
  return [...await readTensor(gpu, out) as Uint32Array];
}

/** The probe's iterations per row by loopCost(), as attention.ts counts backward_dkv's. */
function perRow(heads: number, dim: number): number {
  return 1 + loopCost(heads) + heads * 2 * loopCost(dim);
}

for (const [heads, dim] of [[1, 1], [2, 4], [2, 16], [1, 128], [8, 32], [3, 5]]) {
  Deno.test({
    name: `loopCost() sizes a nest of ${heads} x 2 loops of ${dim} to finish under the loop guard`,
    ignore: NO_GPU,
    fn: async () => {
      const rows = Math.floor((LOOP_BUDGET - 2) / perRow(heads, dim));
      assertEquals(await probe(rows, heads, dim), new Array(8).fill(rows));
    },
  });
}

Deno.test({
  name: "the software adapter's loop guard cuts a loop nest 15% past 65535 iterations",
  ignore: NO_GPU || !(await getGpu()).isFallback,
  fn: async () => {
    for (const [heads, dim] of [[2, 16], [1, 128]]) {
      const rows = Math.ceil(1.15 * 65535 / perRow(heads, dim));
      const done = await probe(rows, heads, dim);
      assertOk(Math.max(...done) < rows, `${done[0]} of ${rows} rows finished`);
    }
  },
});
