import {
  bf16BitsToF32Ref,
  f16BitsToF32Ref,
  f32ToBf16BitsRef,
  f32ToF16BitsRef,
  pack16,
  unpack16,
} from "../engine/ops/cast.ts";
import { randn } from "./_ops.ts";
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
