import { assertEquals, assertRejects } from "./assert.ts";
import { join } from "node:path";
import { TopkCacheError, TopkCacheReader, TopkCacheWriter } from "../train/topk_cache.ts";

const meta = { k: 2, vocab_size: 50, teacher: "/models/teacher", data: "/data/train.jsonl" };
// row r has r + 1 positions; ids and log-probs derived from (r, position, entry)
const rowIds = (r: number) => Array.from({ length: (r + 1) * 2 }, (_, i) => (r * 7 + i) % 50);
const rowLps = (r: number) => Array.from({ length: (r + 1) * 2 }, (_, i) => -0.1 * (r + i) - 0.3);

Deno.test("TopkCacheWriter/Reader round-trip rows, resuming after the last complete row", async () => {
  const dir = join(await Deno.makeTempDir(), "cache");
  const w = await TopkCacheWriter.open(dir, meta);
  assertEquals(w.rows, 0);
  for (let r = 0; r < 3; r++) await w.append(rowIds(r), rowLps(r));
  w.close();
  const w2 = await TopkCacheWriter.open(dir, meta);
  assertEquals(w2.rows, 3);
  await w2.append([], []); // a row without target positions
  await w2.append(rowIds(4), rowLps(4));
  w2.close();
  const rd = await TopkCacheReader.open(dir, meta);
  assertEquals(rd.rows, 5);
  for (const r of [0, 1, 2, 4]) {
    const got = await rd.read(r);
    assertEquals(got.positions, r + 1);
    assertEquals(Array.from(got.ids), rowIds(r));
    assertEquals(Array.from(got.logprobs), rowLps(r).map(Math.fround));
  }
  assertEquals((await rd.read(3)).positions, 0);
  assertEquals(rd.positionsOf(2), 3);
  await assertRejects(() => rd.read(5), /holds rows 0\.\.4/);
  rd.close();
});

Deno.test("TopkCacheWriter.open() truncates a torn last record and rewrites that row", async () => {
  const dir = join(await Deno.makeTempDir(), "cache");
  const w = await TopkCacheWriter.open(dir, meta);
  await w.append(rowIds(0), rowLps(0));
  await w.append(rowIds(1), rowLps(1));
  w.close();
  const path = join(dir, "topk.bin");
  const full = await Deno.readFile(path);
  await Deno.writeFile(path, full.subarray(0, full.length - 5)); // crash inside row 1
  const w2 = await TopkCacheWriter.open(dir, meta);
  assertEquals(w2.rows, 1);
  await w2.append(rowIds(1), rowLps(1));
  w2.close();
  assertEquals(await Deno.readFile(path), full);
});

Deno.test("TopkCacheWriter/Reader refuse a cache made with another kd_topk, teacher or data", async () => {
  const dir = join(await Deno.makeTempDir(), "cache");
  (await TopkCacheWriter.open(dir, meta)).close();
  await assertRejects(
    () => TopkCacheWriter.open(dir, { ...meta, k: 100 }),
    /made with kd_topk 2, this run has 100/,
  );
  await assertRejects(
    () => TopkCacheReader.open(dir, { ...meta, teacher: "/other" }),
    /made with teacher "\/models\/teacher", this run has "\/other"/,
  );
  await assertRejects(
    () => TopkCacheReader.open(join(dir, "missing"), meta),
    TopkCacheError,
  );
});

Deno.test("TopkCacheWriter.append() rejects ids that are not P·k long", async () => {
  const w = await TopkCacheWriter.open(join(await Deno.makeTempDir(), "c"), meta);
  await assertRejects(() => w.append([1, 2, 3], [0, 0, 0]), /needs P·2 ids/);
  w.close();
});
