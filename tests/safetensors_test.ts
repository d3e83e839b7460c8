import { assertEquals, assertMatch, assertOk, assertRejects } from "./assert.ts";
import { join } from "node:path";
import {
  bf16ToF32,
  Checkpoint,
  CheckpointError,
  f16ToF32,
  f32ToBf16,
  f32ToBytes,
  f32ToF16,
  INDEX_FILE,
  SafetensorsFile,
  type StDtype,
  writeCheckpoint,
  writeSafetensors,
} from "../model/safetensors.ts";

const FIXTURE = new URL("./testdata/safetensors/", import.meta.url).pathname;

interface Expected {
  order: string[];
  metadata: Record<string, string>;
  tensors: Record<
    string,
    { dtype: string; shape: number[]; source: Num[]; values: Num[]; bits?: number[] }
  >;
}
type Num = number | "inf" | "-inf";
const num = (v: Num) => v === "inf" ? Infinity : v === "-inf" ? -Infinity : v;
const expected: Expected = JSON.parse(await Deno.readTextFile(join(FIXTURE, "mixed.json")));

Deno.test("SafetensorsFile.open() reads a file written by the safetensors package", async () => {
  // written by tests/reference/safetensors_crate_check.py with safetensors.torch.save_file
  const f = await SafetensorsFile.open(join(FIXTURE, "crate_written.safetensors"));
  try {
    // the crate orders tensors by dtype size, then name
    assertEquals(f.names(), [
      "model.layers.0.mlp.down_proj.weight",
      "model.norm.weight",
      "lm_head.weight",
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.q_norm.weight",
    ]);
    assertEquals([...await f.readF32("model.norm.weight")], [1, 1, 1, 1]);
    assertEquals(f.info("model.layers.0.mlp.down_proj.weight").shape, [3, 2, 2]);
    assertEquals(f.info("lm_head.weight").dtype, "BF16");
  } finally {
    f.close();
  }
});

Deno.test("SafetensorsFile.open() reads the header and values of a file written by torch", async () => {
  const f = await SafetensorsFile.open(join(FIXTURE, "mixed.safetensors"));
  try {
    assertEquals(f.names(), expected.order);
    assertEquals(f.metadata, expected.metadata);
    for (const [name, e] of Object.entries(expected.tensors)) {
      assertEquals(f.info(name).dtype, e.dtype, name);
      assertEquals(f.info(name).shape, e.shape, name);
      assertEquals([...await f.readF32(name)], e.values.map(num), name);
    }
  } finally {
    f.close();
  }
});

Deno.test("f32ToBf16() and f32ToF16() round to nearest even exactly like torch", () => {
  for (const e of Object.values(expected.tensors)) {
    if (!e.bits) continue;
    const src = Float32Array.from(e.source.map(num));
    const bits = e.dtype === "BF16" ? f32ToBf16(src) : f32ToF16(src);
    assertEquals([...bits], e.bits, e.dtype);
    const back = e.dtype === "BF16"
      ? bf16ToF32(Uint16Array.from(e.bits))
      : f16ToF32(Uint16Array.from(e.bits));
    assertEquals([...back], e.values.map(num), e.dtype);
  }
});

Deno.test("f16ToF32() then f32ToF16() gives back every non-NaN f16 bit pattern", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = f32ToF16(f16ToF32(all));
  for (let i = 0; i < 65536; i++) {
    const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (!isNaN && back[i] !== i) throw new Error(`f16 bits ${i} came back as ${back[i]}`);
  }
});

for (const file of ["mixed.safetensors", "crate_written.safetensors"]) {
  Deno.test(`writeSafetensors() rewrites ${file} byte for byte`, async () => {
    const src = join(FIXTURE, file);
    const f = await SafetensorsFile.open(src);
    const dir = await Deno.makeTempDir();
    try {
      const out = join(dir, "copy.safetensors");
      const specs = f.names().map((n) => ({
        name: n,
        dtype: f.info(n).dtype,
        shape: f.info(n).shape,
      }));
      await writeSafetensors(out, specs, (s) => f.readBytes(s.name), { metadata: f.metadata });
      assertEquals(await Deno.readFile(out), await Deno.readFile(src));
    } finally {
      f.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

function randomF32(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 8;
  });
}

Deno.test("writeCheckpoint() then Checkpoint.open() round-trips F32, BF16 and F16 tensors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data: Record<string, { dtype: StDtype; shape: number[]; x: Float32Array }> = {
      "a": { dtype: "F32", shape: [7, 3], x: randomF32(21, 1) },
      "b": { dtype: "BF16", shape: [5], x: randomF32(5, 2) },
      "c": { dtype: "F16", shape: [2, 2, 3], x: randomF32(12, 3) },
    };
    const specs = Object.entries(data).map(([name, d]) => ({
      name,
      dtype: d.dtype,
      shape: d.shape,
    }));
    // chunked producer: bytes arrive in two parts
    const files = await writeCheckpoint(dir, specs, function* (s) {
      const b = f32ToBytes(data[s.name].x, s.dtype as StDtype).slice();
      yield b.subarray(0, 2);
      yield b.subarray(2);
    });
    assertEquals(files, ["model.safetensors"]);
    const ck = await Checkpoint.open(dir);
    try {
      assertEquals([...await ck.readF32("a")], [...data.a.x]);
      assertEquals([...await ck.readF32("b")], [...bf16ToF32(f32ToBf16(data.b.x))]);
      assertEquals([...await ck.readF32("c")], [...f16ToF32(f32ToF16(data.c.x))]);
      assertEquals(ck.info("c").shape, [2, 2, 3]);
      // a row block of a tensor, read without the rest
      assertEquals([...await ck.readF32Range("a", 6, 9)], [...data.a.x.subarray(6, 15)]);
      assertEquals(
        [...await ck.readF32Range("b", 2, 3)],
        [...bf16ToF32(f32ToBf16(data.b.x))].slice(2),
      );
      await assertRejects(() => ck.readF32Range("c", 10, 3), /elements \[10, 13\) of tensor "c"/);
    } finally {
      ck.close();
    }
    const bytes = await Deno.readFile(join(dir, "model.safetensors"));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assertEquals(n % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    assertEquals(Object.keys(header), ["__metadata__", "a", "b", "c"]);
    assertEquals(header.__metadata__, { format: "pt" });
    assertEquals(header.b.data_offsets, [84, 94]);
    assertEquals(bytes.length, 8 + n + 84 + 10 + 24);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeCheckpoint() shards by size and Checkpoint.open() loads the shards via the index", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const xs = Array.from({ length: 5 }, (_, i) => randomF32(10 + i, 10 + i));
    const specs = xs.map((x, i) => ({ name: `t.${i}`, dtype: "F32", shape: [x.length] }));
    // 100-byte shards: 40+44 | 48+52 | 56
    const files = await writeCheckpoint(
      dir,
      specs,
      (s) => f32ToBytes(xs[Number(s.name.slice(2))], "F32"),
      { maxShardBytes: 100 },
    );
    assertEquals(files, [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
      INDEX_FILE,
    ]);
    const index = JSON.parse(await Deno.readTextFile(join(dir, INDEX_FILE)));
    assertEquals(index.metadata.total_size, 4 * (10 + 11 + 12 + 13 + 14));
    assertEquals(index.weight_map["t.1"], "model-00001-of-00003.safetensors");
    assertEquals(index.weight_map["t.3"], "model-00002-of-00003.safetensors");
    assertEquals(index.weight_map["t.4"], "model-00003-of-00003.safetensors");
    const ck = await Checkpoint.open(dir);
    try {
      for (let i = 0; i < 5; i++) assertEquals([...await ck.readF32(`t.${i}`)], [...xs[i]]);
    } finally {
      ck.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Checkpoint.open() names the tensor an index maps to a shard that lacks it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSafetensors(
      join(dir, "s1.safetensors"),
      [{ name: "x", dtype: "F32", shape: [1] }],
      () => new Uint8Array(4),
    );
    await Deno.writeTextFile(
      join(dir, INDEX_FILE),
      JSON.stringify({ weight_map: { x: "s1.safetensors", y: "s1.safetensors" } }),
    );
    await assertRejects(
      () => Checkpoint.open(dir),
      /tensor "y" is not in its shard "s1\.safetensors"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SafetensorsFile.open() rejects a truncated file and bad data_offsets, naming them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = join(dir, "good.safetensors");
    await writeSafetensors(
      good,
      [{ name: "w", dtype: "F32", shape: [4] }],
      () => new Uint8Array(16),
    );
    const bytes = await Deno.readFile(good);
    const cut = join(dir, "cut.safetensors");
    await Deno.writeFile(cut, bytes.subarray(0, bytes.length - 4));
    const e1 = await assertRejects(() => SafetensorsFile.open(cut), CheckpointError);
    assertMatch(e1.message, /cut\.safetensors.*tensor "w" data_offsets \[0, 16\]/);
    const text = new TextDecoder().decode(bytes).replace('"shape":[4]', '"shape":[5]');
    const bad = join(dir, "bad.safetensors");
    await Deno.writeFile(bad, new TextEncoder().encode(text));
    const e2 = await assertRejects(() => SafetensorsFile.open(bad), CheckpointError);
    assertMatch(e2.message, /bad\.safetensors.*"w".*F32 shape \[5\]/);
    await Deno.writeFile(join(dir, "tiny.safetensors"), new Uint8Array(3));
    await assertRejects(() => SafetensorsFile.open(join(dir, "tiny.safetensors")), /too short/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSafetensors() refuses a tensor whose bytes do not match its shape and leaves no file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "x.safetensors");
    await assertRejects(
      () =>
        writeSafetensors(out, [{ name: "w", dtype: "BF16", shape: [3] }], () => new Uint8Array(4)),
      /tensor "w" got 4 bytes, its BF16 shape \[3\] needs 6/,
    );
    assertOk(!(await Deno.stat(out).then(() => true, () => false)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
