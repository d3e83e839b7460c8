/**
 * Engine core: tensors round-trip through the GPU in every dtype, the pool reuses buffers,
 * row chunks respect the binding limit, grids fold, uniforms and many dispatches share one
 * submit, and GPU errors (bad WGSL, invalid use) are reported instead of passing silently.
 */
import {
  assertClose,
  assertEquals,
  assertMatch,
  assertOk,
  assertRejects,
  assertThrows,
} from "./assert.ts";
import {
  checkErrors,
  createTensor,
  getGpu,
  grid,
  hasGpu,
  kernel,
  readTensor,
  Recorder,
  releaseTensor,
  rowChunks,
} from "../engine/mod.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../engine/_half.ts";

const noGpu = !(await hasGpu());

// y[i] = a[i] * p.scale + b[i] over a folded 2-D grid; flat id rebuilt as grid() documents.
const AXPY = `
struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
override WG: u32 = 64;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) { return; }
  y[i] = a[i] * p.scale + b[i];
}`;
const AXPY_BINDINGS = [
  { name: "y", kind: "storage" as const },
  { name: "a", kind: "read" as const },
  { name: "b", kind: "read" as const },
  { name: "p", kind: "uniform" as const },
];

function params(n: number, scale: number): Uint32Array {
  const u = new Uint32Array(2);
  u[0] = n;
  new Float32Array(u.buffer)[1] = scale;
  return u;
}

Deno.test("grid() folds more than 65535 workgroups into two dimensions", () => {
  assertEquals(grid(1000, 64), [16, 1]);
  const [x, y] = grid(65536 * 64 * 3 + 5, 64);
  assertOk(x <= 65535 && y <= 65535);
  assertOk(x * y * 64 >= 65536 * 64 * 3 + 5);
  assertEquals(grid(10, 1, 4), [4, 3]);
});

Deno.test("f32ToF16Bits()/f32ToBf16Bits() round to nearest even and invert", () => {
  assertEquals(f32ToF16Bits(1), 0x3c00);
  assertEquals(f32ToF16Bits(-2), 0xc000);
  assertEquals(f32ToF16Bits(65504), 0x7bff);
  assertEquals(f32ToF16Bits(1e6), 0x7c00);
  assertEquals(f32ToF16Bits(2 ** -24), 1);
  assertEquals(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
  assertEquals(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assertEquals(f16BitsToF32(0x3555), 0.333251953125);
  assertEquals(f32ToBf16Bits(1), 0x3f80);
  assertEquals(bf16BitsToF32(f32ToBf16Bits(3.140625)), 3.140625);
  assertEquals(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assertEquals(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
});

Deno.test({
  name: "createTensor()/readTensor() round-trip f32, f16, bf16, u32 and i32 data",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const vals = [0, 1, -2.5, 3.140625, 1e-3, 65504, -7];
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const t = createTensor(gpu, {
        shape: [7],
        dtype,
        label: `rt.${dtype}`,
        data: new Float32Array(vals),
      });
      const back = await readTensor(gpu, t);
      const tol = dtype === "f32" ? 1e-7 : dtype === "f16" ? 1e-3 : 8e-3;
      assertClose(back, vals, { rtol: tol, atol: 0, msg: dtype });
      releaseTensor(gpu, t);
    }
    const u = createTensor(gpu, {
      shape: [3],
      dtype: "u32",
      label: "rt.u32",
      data: new Uint32Array([1, 2 ** 32 - 1, 7]),
    });
    assertEquals([...await readTensor(gpu, u)], [1, 2 ** 32 - 1, 7]);
    const i = createTensor(gpu, { shape: [2], dtype: "i32", label: "rt.i32", data: [-5, 9] });
    assertEquals([...await readTensor(gpu, i)], [-5, 9]);
    await checkErrors(gpu);
  },
});

Deno.test({
  name: "BufferPool reuses a released buffer of the same size",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const a = createTensor(gpu, { shape: [1000], dtype: "f32", label: "pool.a" });
    const buf = a.buffer;
    releaseTensor(gpu, a);
    const before = gpu.pool.allocations;
    const b = createTensor(gpu, { shape: [999], dtype: "f32", label: "pool.b" }); // same 256-rounded size
    assertEquals(gpu.pool.allocations, before);
    assertOk(b.buffer === buf);
    releaseTensor(gpu, b);
    assertThrows(() => releaseTensor(gpu, b.rows(0, 10)), /is a view/);
  },
});

Deno.test({
  name:
    "createTensor() refuses a tensor over the binding limit unless chunked; rowChunks() splits it",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    assertThrows(
      () => createTensor(gpu, { shape: [1e9], dtype: "f32", label: "huge" }),
      /over the \d+-byte storage binding limit/,
    );
    // a small "limit" of 1000 bytes exercises the same code as 128 MiB on a 151936-row table
    const t = createTensor(gpu, {
      shape: [37, 5],
      dtype: "f32",
      label: "chunky",
      data: new Float32Array(185).map((_, i) => i),
    });
    const chunks = rowChunks(gpu, t, 1000);
    assertEquals(chunks.reduce((s, c) => s + c.shape[0], 0), 37);
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    for (const c of chunks) {
      assertOk(c.byteSize <= 1000);
      assertEquals(c.byteOffset % align, 0);
    }
    const last = chunks[chunks.length - 1];
    const back = await readTensor(gpu, last);
    const first = 185 - last.numel;
    assertEquals([...back], Array.from({ length: last.numel }, (_, i) => first + i));
  },
});

Deno.test({
  name:
    "Recorder runs 50 dispatches with their own uniforms in one submit over a folded grid, then replays them",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const k = kernel(gpu, {
      file: "test/axpy.wgsl",
      code: AXPY,
      entryPoint: "main",
      bindings: AXPY_BINDINGS,
    });
    assertOk(
      kernel(gpu, {
        file: "test/axpy.wgsl",
        code: AXPY,
        entryPoint: "main",
        bindings: AXPY_BINDINGS,
      }) === k,
    );
    const n = 3001;
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const ta = createTensor(gpu, { shape: [n], dtype: "f32", label: "a", data: a });
    const ys = [0, 1].map((j) =>
      createTensor(gpu, { shape: [n], dtype: "f32", label: `y${j}`, data: new Float32Array(n) })
    );
    const rec = new Recorder(gpu, "test");
    // y <- a*scale + y, fifty times, ping-ponging between two buffers (a dispatch may not read
    // and write one buffer), with a grid forced to fold (at most 7 groups per dimension)
    for (let s = 0; s < 50; s++) {
      const p = rec.uniform(params(n, s % 2 ? 1 : 2));
      rec.dispatch(k, { y: ys[(s + 1) % 2], a: ta, b: ys[s % 2], p }, grid(n, 64, 7));
    }
    assertEquals(rec.dispatches, 50);
    await rec.flush();
    // replaying the same step (same tensors, same uniform slots) creates no bind group
    const created = rec.bindGroupsCreated;
    for (let s = 0; s < 50; s++) {
      const p = rec.uniform(params(n, 0));
      rec.dispatch(k, { y: ys[(s + 1) % 2], a: ta, b: ys[s % 2], p }, grid(n, 64, 7));
    }
    assertEquals(rec.bindGroupsCreated, created);
    await rec.flush();
    const y = await readTensor(gpu, ys[0]);
    assertClose(y, Array.from(a, (v) => 75 * v), { rtol: 1e-5, atol: 1e-5 });
  },
});

Deno.test({
  name: "kernel() reports a WGSL compile error with file:line:col via checkErrors()",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    kernel(gpu, {
      file: "test/broken.wgsl",
      code: "@compute @workgroup_size(1)\nfn main() {\n  let x: u32 = 1.5;\n}",
      entryPoint: "main",
      bindings: [],
    });
    const err = await assertRejects(() => checkErrors(gpu));
    assertMatch(err.message, /test\/broken\.wgsl:3:\d+: .*u32/);
    await checkErrors(gpu); // reported once
  },
});

Deno.test({
  name: "Recorder.dispatch() refuses an over-limit grid and an unbound or over-limit tensor",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const k = kernel(gpu, {
      file: "test/axpy.wgsl",
      code: AXPY,
      entryPoint: "main",
      bindings: AXPY_BINDINGS,
    });
    const t = createTensor(gpu, { shape: [4], dtype: "f32", label: "t" });
    const rec = new Recorder(gpu);
    const p = rec.uniform(params(4, 1));
    assertThrows(() => rec.dispatch(k, { y: t, a: t, b: t, p }, [70000]), /exceeds 65535/);
    assertThrows(() => rec.dispatch(k, { y: t, a: t, p }, [1]), /needs binding "b"/);
    assertThrows(() => rec.dispatch(k, { y: t, a: t, b: t, p, q: t }, [1]), /no binding named "q"/);
    const big = createTensor(gpu, {
      shape: [gpu.limits.maxStorageBufferBindingSize / 4 + 64],
      dtype: "f32",
      label: "big",
      chunked: true,
    });
    assertThrows(() => rec.dispatch(k, { y: big, a: t, b: t, p }, [1]), /bind it by rowChunks/);
    releaseTensor(gpu, big);
    gpu.pool.trim();
    rec.submit();
    await checkErrors(gpu);
  },
});

Deno.test({
  name: "checkErrors() turns a GPU validation error into a rejection",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const t = createTensor(gpu, { shape: [4], dtype: "f32", label: "small" });
    const enc = gpu.device.createCommandEncoder();
    enc.copyBufferToBuffer(t.buffer, 0, t.buffer, 0, 1 << 20); // out of range
    gpu.device.queue.submit([enc.finish()]);
    await assertRejects(() => checkErrors(gpu), /GPU|[Cc]opy|range|size/);
  },
});
