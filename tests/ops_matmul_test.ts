/**
 * Matmul (engine/ops/matmul.ts): every variant against the float64 reference on shapes that are
 * not multiples of any tile, for f32/f16/bf16 weights; the backward reference against central
 * finite differences; the LM-head path over row chunks; texture blocks past 16384 texels.
 */
import { assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { dot, expectClose, f32, finiteDiff, randn, TOL } from "./_ops.ts";
import {
  checkErrors,
  createTensor,
  getGpu,
  type Gpu,
  hasGpu,
  readTensor,
  Recorder,
  rowChunks,
  type Tensor,
} from "../engine/mod.ts";
import {
  MATMUL_VARIANTS,
  matmulBackward,
  matmulBackwardRef,
  matmulForward,
  matmulForwardRef,
  type MatmulShape,
  matmulVariant,
  packMatmulWeight,
} from "../engine/ops/matmul.ts";

const noGpu = !(await hasGpu());
const SHAPES: [number, number, number][] = [ // [M, K, N]
  [1, 3, 17],
  [3, 17, 5],
  [5, 1, 7],
  [17, 1000, 3],
  [1, 1024, 33],
  [40, 64, 130],
  [70, 33, 66],
  [64, 1024, 300],
];

/** |err| <= tol·(|ref| + max|ref|): relative to the output's scale, as matmul rounding is. */
function close(actual: ArrayLike<number>, ref: ArrayLike<number>, rel: number, what: string) {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  return expectClose(actual, ref, { atol: rel * scale, rtol: rel }, what);
}

function upload(
  gpu: Gpu,
  shape: number[],
  data: Float64Array,
  label: string,
  dtype: "f32" | "f16" | "bf16" = "f32",
) {
  return createTensor(gpu, { shape, dtype, label, data: Float32Array.from(data) });
}

async function stored(gpu: Gpu, t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await readTensor(gpu, t));
}

Deno.test("matmulBackwardRef() matches central finite differences of matmulForwardRef()", () => {
  const s: MatmulShape = { rows: 3, inDim: 4, outDim: 5 };
  const x = randn(12, 1), w = randn(20, 2), g = randn(15, 3);
  const { dx, dw } = matmulBackwardRef(g, x, w, s);
  expectClose(dx, finiteDiff((xx) => dot(matmulForwardRef(xx, w, s), g), x), {
    atol: 1e-8,
    rtol: 1e-6,
  }, "dx");
  expectClose(dw, finiteDiff((ww) => dot(matmulForwardRef(x, ww, s), g), w), {
    atol: 1e-8,
    rtol: 1e-6,
  }, "dw");
});

Deno.test("matmulForwardRef() computes a hand-checked 2x2 product with W stored [out, in]", () => {
  // x = [[1, 2], [3, 4]], w = [[1, 0], [1, 1]] -> y = x·wᵀ = [[1, 3], [3, 7]]
  assertEquals(
    [...matmulForwardRef([1, 2, 3, 4], [1, 0, 1, 1], { rows: 2, inDim: 2, outDim: 2 })],
    [1, 3, 3, 7],
  );
});

for (const variant of MATMUL_VARIANTS) {
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    Deno.test({
      name:
        `matmulForward() ${variant} with ${dtype} weights matches the float64 reference on awkward shapes`,
      ignore: noGpu,
      async fn() {
        const gpu = await getGpu();
        const rec = new Recorder(gpu);
        for (const [M, K, N] of SHAPES) {
          const s = { rows: M, inDim: K, outDim: N };
          const x = f32(randn(M * K, M * 7 + K)), w = randn(N * K, N * 13 + K);
          const tx = upload(gpu, [M, K], x, "x"), tw = upload(gpu, [N, K], w, "w", dtype);
          const ty = createTensor(gpu, { shape: [M, N], dtype: "f32", label: "y" });
          matmulForward(rec, { y: ty, x: tx, w: tw, ...s, variant });
          await rec.flush();
          const y = await readTensor(gpu, ty);
          const what = `${variant} ${dtype} [${M}, ${K}, ${N}]`;
          // exact to f32 rounding against the weights as stored ...
          close(y, matmulForwardRef(x, await stored(gpu, tw), s), 1e-5, what);
          // ... and within the storage precision against the unrounded weights
          close(
            y,
            matmulForwardRef(x, w, s),
            dtype === "f32" ? 1e-5 : 1e-2,
            `${what} vs f64 weights`,
          );
        }
      },
    });
  }

  Deno.test({
    name:
      `matmulBackward() ${variant} gives dX = dY·W and accumulates dW += dYᵀ·X on awkward shapes`,
    ignore: noGpu,
    async fn() {
      const gpu = await getGpu();
      const rec = new Recorder(gpu);
      for (const [M, K, N] of SHAPES) {
        const s = { rows: M, inDim: K, outDim: N };
        const x = f32(randn(M * K, 1 + M)),
          w = f32(randn(N * K, 2 + N)),
          dy = f32(randn(M * N, 3 + K));
        const dw0 = f32(randn(N * K, 4));
        const tdw = upload(gpu, [N, K], dw0, "dw");
        const tdx = upload(gpu, [M, K], f32(randn(M * K, 5)), "dx"); // overwritten
        matmulBackward(rec, {
          dx: tdx,
          dw: tdw,
          dy: upload(gpu, [M, N], dy, "dy"),
          x: upload(gpu, [M, K], x, "x"),
          w: upload(gpu, [N, K], w, "w"),
          ...s,
          variant,
        });
        await rec.flush();
        const ref = matmulBackwardRef(dy, x, w, s);
        const what = `${variant} [${M}, ${K}, ${N}]`;
        close(await readTensor(gpu, tdx), ref.dx, 1e-5, `dx ${what}`);
        close(await readTensor(gpu, tdw), ref.dw.map((v, i) => v + dw0[i]), 1e-5, `dw ${what}`);
      }
    },
  });

  Deno.test({
    name: `matmulForward()/matmulBackward() ${variant} run an LM head over weight row chunks`,
    ignore: noGpu,
    async fn() {
      // a 1000-row vocabulary bound in chunks of at most 24 KiB stands in for 151936 rows in
      // 128 MiB bindings: one forward per chunk into its logits block, dX accumulated
      const gpu = await getGpu();
      const rec = new Recorder(gpu);
      const M = 9, K = 24, V = 1000;
      const x = f32(randn(M * K, 11)), w = f32(randn(V * K, 12)), dy = f32(randn(M * V, 13));
      const tx = upload(gpu, [M, K], x, "x");
      const tw = createTensor(gpu, {
        shape: [V, K],
        dtype: "bf16",
        label: "lm_head",
        data: Float32Array.from(w),
      });
      const wq = await stored(gpu, tw);
      const chunks = rowChunks(gpu, tw, 24 * 1024);
      assertEquals(chunks.length > 1, true);
      const tdx = createTensor(gpu, { shape: [M, K], dtype: "f32", label: "dx" });
      rec.clear(tdx);
      const tdw = createTensor(gpu, {
        shape: [V, K],
        dtype: "f32",
        label: "dw",
        data: new Float32Array(V * K),
      });
      const dwChunks = rowChunks(gpu, tdw, 24 * 1024 * 2);
      let row = 0;
      const logits = new Float64Array(M * V);
      for (const wc of chunks) {
        const Vc = wc.shape[0];
        const s = { rows: M, inDim: K, outDim: Vc };
        const ty = createTensor(gpu, { shape: [M, Vc], dtype: "f32", label: "logits.chunk" });
        matmulForward(rec, { y: ty, x: tx, w: wc, ...s, variant });
        const dyc = new Float64Array(M * Vc);
        for (let m = 0; m < M; m++) {
          for (let v = 0; v < Vc; v++) dyc[m * Vc + v] = dy[m * V + row + v];
        }
        const dwc = tdw.rows(row, Vc);
        assertEquals(dwChunks.some((c) => c.byteOffset <= dwc.byteOffset), true);
        matmulBackward(rec, {
          dy: upload(gpu, [M, Vc], dyc, "dy.chunk"),
          x: tx,
          w: wc,
          dx: tdx,
          dw: dwc,
          accumulateDx: true,
          ...s,
          variant,
        });
        await rec.flush();
        const y = await readTensor(gpu, ty);
        for (let m = 0; m < M; m++) {
          for (let v = 0; v < Vc; v++) logits[m * V + row + v] = y[m * Vc + v];
        }
        row += Vc;
      }
      const s = { rows: M, inDim: K, outDim: V };
      close(logits, matmulForwardRef(x, wq, s), 1e-5, "logits");
      const ref = matmulBackwardRef(dy, x, wq, s);
      close(await readTensor(gpu, tdx), ref.dx, 1e-5, "dx over chunks");
      close(await readTensor(gpu, tdw), ref.dw, 1e-5, "dw per chunk");
    },
  });
}

Deno.test({
  name: "matmulForward() texture variant splits blocks past the 16384-texel texture side",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const rec = new Recorder(gpu);
    const T = gpu.limits.maxTextureDimension2D;
    const cases: [number, number, number][] = [
      [2, T + 6, 3], // contraction split, accumulated
      [1, 3, 4 * T + 5], // columns split
    ];
    for (const [M, K, N] of cases) {
      const s = { rows: M, inDim: K, outDim: N };
      const x = f32(randn(M * K, 21)), w = f32(randn(N * K, 22));
      const ty = createTensor(gpu, { shape: [M, N], dtype: "f32", label: "y" });
      matmulForward(rec, {
        y: ty,
        x: upload(gpu, [M, K], x, "x"),
        w: upload(gpu, [N, K], w, "w"),
        ...s,
        variant: "texture",
      });
      await rec.flush();
      close(await readTensor(gpu, ty), matmulForwardRef(x, w, s), 1e-5, `[${M}, ${K}, ${N}]`);
    }
    // rows split: dW of an (T + 20)-row weight
    const M = 3, K = 4, N = T + 20;
    const x = f32(randn(M * K, 23)), dy = f32(randn(M * N, 24));
    const tdw = createTensor(gpu, {
      shape: [N, K],
      dtype: "f32",
      label: "dw",
      data: new Float32Array(N * K),
    });
    matmulBackward(rec, {
      dw: tdw,
      dy: upload(gpu, [M, N], dy, "dy"),
      x: upload(gpu, [M, K], x, "x"),
      w: tdw,
      rows: M,
      inDim: K,
      outDim: N,
      variant: "texture",
    });
    await rec.flush();
    close(
      await readTensor(gpu, tdw),
      matmulBackwardRef(dy, x, new Float64Array(N * K), { rows: M, inDim: K, outDim: N }).dw,
      1e-5,
      "dw rows split",
    );
  },
});

Deno.test({
  name: "matmulForward() with a packed weight (decode GEMV) and accumulate matches the reference",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const rec = new Recorder(gpu);
    const M = 1, K = 100, N = 37;
    const s = { rows: M, inDim: K, outDim: N };
    const x = f32(randn(K, 31)), w = f32(randn(N * K, 32)), y0 = f32(randn(N, 33));
    const tw = upload(gpu, [N, K], w, "w", "f16");
    const packed = packMatmulWeight(rec, { w: tw, inDim: K, outDim: N });
    const ty = upload(gpu, [M, N], y0, "y");
    matmulForward(rec, {
      y: ty,
      x: upload(gpu, [M, K], x, "x"),
      w: tw,
      ...s,
      packed,
      accumulate: true,
      variant: "texture",
    });
    await rec.flush();
    const ref = matmulForwardRef(x, await stored(gpu, tw), s).map((v, i) => v + y0[i]);
    close(await readTensor(gpu, ty), ref, 1e-5, "packed gemv");
  },
});

Deno.test({
  name:
    "matmulForward() refuses mismatched shapes and a non-float weight; matmulVariant() picks by adapter",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const rec = new Recorder(gpu);
    const x = createTensor(gpu, { shape: [2, 3], dtype: "f32", label: "x" });
    const w = createTensor(gpu, { shape: [4, 3], dtype: "f32", label: "w" });
    const y = createTensor(gpu, { shape: [2, 5], dtype: "f32", label: "y" });
    assertThrows(
      () => matmulForward(rec, { y, x, w, rows: 2, inDim: 3, outDim: 4 }),
      /"y" \(y\) has shape \[2,5\], expected \[2,4\]/,
    );
    const wi = createTensor(gpu, { shape: [5, 3], dtype: "i32", label: "wi" });
    assertThrows(
      () => matmulForward(rec, { y, x, w: wi, rows: 2, inDim: 3, outDim: 5 }),
      /dtype i32/,
    );
    if (!Deno.env.get("STAR_MATMUL")) {
      assertEquals(matmulVariant(gpu), gpu.isFallback ? "texture" : "tiled");
    }
    rec.submit();
    await checkErrors(gpu);
    await assertRejects(async () => {
      const r = new Recorder(gpu);
      matmulForward(r, { y, x, w: wi, rows: 2, inDim: 3, outDim: 5, variant: "tiled" });
      await r.flush();
    }, /dtype i32/);
  },
});

Deno.test({
  name:
    "matmulForward() runs over the row chunks of a full 151936 x 1024 vocabulary table past the binding limit",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const rec = new Recorder(gpu);
    const V = 151936, K = 1024, M = 2;
    // bf16 halves the host memory; the table (311 MB) still exceeds a 128 MiB binding
    const w = new Float32Array(V * K);
    for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
    const tw = createTensor(gpu, {
      shape: [V, K],
      dtype: "bf16",
      label: "lm_head",
      data: w,
      chunked: true,
    });
    const limit = gpu.limits.maxStorageBufferBindingSize;
    assertEquals(tw.byteSize > limit || limit > 2 ** 30, true);
    const x = f32(randn(M * K, 41));
    const tx = upload(gpu, [M, K], x, "x");
    const wq = await stored(gpu, tw);
    let row = 0;
    for (const wc of rowChunks(gpu, tw)) {
      const Vc = wc.shape[0];
      const s = { rows: M, inDim: K, outDim: Vc };
      const ty = createTensor(gpu, { shape: [M, Vc], dtype: "f32", label: "logits.chunk" });
      matmulForward(rec, { y: ty, x: tx, w: wc, ...s });
      await rec.flush();
      const ref = matmulForwardRef(x, wq.subarray(row * K, (row + Vc) * K), s);
      close(await readTensor(gpu, ty), ref, 1e-5, `rows ${row}..${row + Vc}`);
      row += Vc;
    }
    assertEquals(row, V);
  },
});

for (const [M, K, N] of [[1, 5, 3], [17, 33, 70], [300, 16, 257]]) {
  for (const variant of MATMUL_VARIANTS) {
    Deno.test({
      name:
        `matmulForward()/matmulBackward() with a bias match the reference (${variant}, ${M}x${K}x${N})`,
      ignore: !(await hasGpu()),
      async fn() {
        const gpu = await getGpu();
        const s = { rows: M, inDim: K, outDim: N };
        const x = f32(randn(M * K, 91)), w = f32(randn(N * K, 92)), b = f32(randn(N, 93));
        const dy = f32(randn(M * N, 94)), db0 = f32(randn(N, 95));
        const t = (data: ArrayLike<number>, shape: number[], label: string) =>
          createTensor(gpu, { shape, dtype: "f32", label, data: Float32Array.from(data) });
        const tx = t(x, [M, K], "x"), tw = t(w, [N, K], "w"), tb = t(b, [N], "b");
        const ty = t(new Float64Array(M * N), [M, N], "y");
        const tdb = t(db0, [N], "dBias"); // accumulated onto what is there
        const rec = new Recorder(gpu);
        matmulForward(rec, { y: ty, x: tx, w: tw, bias: tb, ...s, variant });
        matmulBackward(rec, { dy: t(dy, [M, N], "dy"), x: tx, w: tw, dBias: tdb, ...s, variant });
        rec.submit();
        expectClose(await readTensor(gpu, ty), matmulForwardRef(x, w, s, b), TOL.f32, "y");
        const { dBias } = matmulBackwardRef(dy, x, w, s);
        expectClose(await readTensor(gpu, tdb), dBias.map((v, i) => v + db0[i]), TOL.f32, "dBias");
        await checkErrors(gpu);
      },
    });
  }
}
