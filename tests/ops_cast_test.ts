import { getGpu } from "../engine/device.ts";
import {
  bf16BitsToF32Ref,
  castBackward,
  castForward,
  f16BitsToF32Ref,
  f32ToBf16BitsRef,
  f32ToF16BitsRef,
  pack16,
  unpack16,
} from "../engine/ops/cast.ts";
import { createTensor, Tensor } from "../engine/tensor.ts";
import { download, expectClose, NO_GPU, randn, runGpu, TOL, upload, zeros } from "./_ops.ts";
import { assertEquals } from "./assert.ts";

const SPECIAL = [
  0,
  -0,
  1,
  -2.5,
  65504,
  65519,
  65520,
  1e6,
  -Infinity,
  NaN,
  2 ** -14,
  2 ** -24,
  2 ** -25,
  3 * 2 ** -26,
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  1e-40,
];

Deno.test("f32ToF16BitsRef() rounds to nearest even like Float16Array", () => {
  const xs = [...SPECIAL, ...randn(2000, 1, 70000), ...randn(500, 2, 1e-4)];
  const f16 = new Float16Array(xs.map((x) => Math.fround(x)));
  const bits = new Uint16Array(f16.buffer);
  for (let i = 0; i < xs.length; i++) {
    const ours = f32ToF16BitsRef(xs[i]);
    if (Number.isNaN(xs[i])) assertEquals((ours & 0x7c00) === 0x7c00 && (ours & 0x3ff) !== 0, true);
    else assertEquals(ours, bits[i], `x=${xs[i]}`);
  }
});

Deno.test("f16BitsToF32Ref() inverts f32ToF16BitsRef() on every finite f16", () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assertEquals(f32ToF16BitsRef(f16BitsToF32Ref(h)) === h || h === 0x8000, true, `h=${h}`);
  }
});

Deno.test("f32ToBf16BitsRef() rounds to nearest even on the dropped 16 bits", () => {
  const u = new Uint32Array(1), f = new Float32Array(u.buffer);
  const cases: [number, number][] = [
    [0x3f808000, 0x3f80], // tie, even stays
    [0x3f818000, 0x3f82], // tie, odd rounds up
    [0x3f808001, 0x3f81],
    [0x7f7fffff, 0x7f80], // rounds to +inf
  ];
  for (const [b, want] of cases) {
    u[0] = b;
    assertEquals(f32ToBf16BitsRef(f[0]), want);
  }
  assertEquals(bf16BitsToF32Ref(0x3f80), 1);
  assertEquals(Number.isNaN(bf16BitsToF32Ref(f32ToBf16BitsRef(NaN))), true);
});

Deno.test("pack16() puts element 2i in the low half and unpack16() inverts it", () => {
  const w = pack16([1, 2, 3]);
  assertEquals([...w], [0x20001, 3]);
  assertEquals([...unpack16(w, 3)], [1, 2, 3]);
});

/** The raw 16-bit patterns of an f16/bf16 tensor (read through a u32 view of its buffer). */
async function bits16(t: Tensor): Promise<Uint16Array> {
  const words = new Tensor([Math.ceil(t.numel / 2)], "u32", t.buffer, t.byteOffset, t.label);
  return unpack16(Uint32Array.from(await download(words)), t.numel);
}

for (const to of ["f16", "bf16"] as const) {
  const ref = to === "f16" ? f32ToF16BitsRef : f32ToBf16BitsRef;
  const back = to === "f16" ? f16BitsToF32Ref : bf16BitsToF32Ref;
  Deno.test({
    name: `castForward() f32 -> ${to} rounds to nearest even bit-exactly, and back exactly`,
    ignore: NO_GPU,
    fn: async () => {
      const gpu = await getGpu();
      const xs = Float32Array.from([...SPECIAL, ...randn(1001, 7, 70000), ...randn(300, 8, 1e-5)]);
      const src = await upload("x", xs);
      const half = createTensor(gpu, { shape: [xs.length], dtype: to, label: "half" });
      const wide = await zeros("wide", xs.length);
      await runGpu((rec) => {
        castForward(rec, { dst: half, src });
        castBackward(rec, { dSrc: wide, dDst: half });
      });
      const got = await bits16(half);
      const want = Uint16Array.from(xs, (x) => ref(x));
      for (let i = 0; i < xs.length; i++) {
        if (Number.isNaN(xs[i])) assertEquals(Number.isNaN(back(got[i])), true);
        else assertEquals(got[i], want[i], `x=${xs[i]} at ${i}`);
      }
      const w = await download(wide);
      for (let i = 0; i < xs.length; i++) {
        if (!Number.isNaN(xs[i])) assertEquals(w[i], back(want[i]), `x=${xs[i]} at ${i}`);
      }
      // And the round trip stays within the half-precision tolerance of the f32 input.
      const inRange = [...xs.keys()].filter((i) => Math.abs(xs[i]) < 6e4 && Math.abs(xs[i]) > 1e-4);
      expectClose(inRange.map((i) => w[i]), inRange.map((i) => xs[i]), TOL[to], "round trip");
    },
  });
}

for (const [from, to] of [["f16", "bf16"], ["bf16", "f16"]] as const) {
  Deno.test({
    name: `castForward() ${from} -> ${to} widens and rounds every one of the 65536 patterns`,
    ignore: NO_GPU,
    fn: async () => {
      const gpu = await getGpu();
      const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
      const src = createTensor(gpu, { shape: [65536], dtype: from, label: "src", data: all });
      const dst = createTensor(gpu, { shape: [65536], dtype: to, label: "dst" });
      const wide = await zeros("wide", 65536);
      await runGpu((rec) => {
        castForward(rec, { dst, src });
        castForward(rec, { dst: wide, src });
      });
      const widen = from === "f16" ? f16BitsToF32Ref : bf16BitsToF32Ref;
      const narrow = to === "f16" ? f32ToF16BitsRef : f32ToBf16BitsRef;
      const got = await bits16(dst), w = await download(wide);
      for (let h = 0; h < 65536; h++) {
        const v = widen(h);
        if (Number.isNaN(v)) {
          assertEquals(Number.isNaN(w[h]), true, `NaN pattern ${h}`);
          continue;
        }
        assertEquals(w[h], v, `${from} pattern ${h}`);
        assertEquals(got[h], narrow(v), `${from} pattern ${h} -> ${to}`);
      }
    },
  });
}

Deno.test({
  name: "castForward() casts a tensor larger than one storage binding in windows",
  ignore: NO_GPU,
  fn: async () => {
    const gpu = await getGpu();
    // 40 M f32 = 160 MB > 128 MiB on the software adapter (skipped where bindings are bigger).
    const n = 40_000_000;
    if (n * 4 <= gpu.limits.maxStorageBufferBindingSize) return;
    const x = new Float32Array(n);
    const probe = [...Array.from({ length: 4011 }, (_, j) => j * 9973)];
    for (let i = (1 << 25) - 3; i < (1 << 25) + 3; i++) probe.push(i); // around the window edge
    for (const i of probe) x[i] = i / 7 + 1;
    const src = createTensor(gpu, {
      shape: [n],
      dtype: "f32",
      label: "big",
      data: x,
      chunked: true,
    });
    const dst = createTensor(gpu, { shape: [n], dtype: "bf16", label: "big.bf16" });
    await runGpu((rec) => castForward(rec, { dst, src }));
    const got = await bits16(dst);
    for (const i of probe) assertEquals(got[i], f32ToBf16BitsRef(x[i]), `at ${i}`);
    assertEquals(got[n - 1], 0);
  },
});
