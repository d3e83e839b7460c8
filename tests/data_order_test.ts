import { assertEquals, assertNotEquals, assertThrows } from "./assert.ts";
import { DataOrder, epochOrder, SplitMix64 } from "../train/data_order.ts";

Deno.test("SplitMix64 reproduces the reference outputs for seed 1234567", () => {
  // the published test vector of the reference C implementation
  const r = new SplitMix64(1234567);
  assertEquals([r.next(), r.next(), r.next(), r.next(), r.next()], [
    6457827717110365317n,
    3203168211198807973n,
    9817491932198370423n,
    4593380528125082431n,
    16408922859458223821n,
  ]);
});

Deno.test("SplitMix64 state round-trips through its hex form mid-stream", () => {
  const a = new SplitMix64(42);
  a.next();
  a.next();
  const b = SplitMix64.fromState(a.state);
  assertEquals([b.next(), b.next()], [a.next(), a.next()]);
  assertThrows(() => SplitMix64.fromState("xyz"), /Bad generator state "xyz"/);
});

Deno.test("SplitMix64.below() stays in range and is close to uniform", () => {
  const r = new SplitMix64(7);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[r.below(6)]++;
  for (const c of counts) assertEquals(c > 880 && c < 1120, true, `count ${c}`);
  assertThrows(() => r.below(0), /Cannot draw below 0/);
});

Deno.test("epochOrder() is a seeded permutation that changes with the epoch and the seed", () => {
  const a = epochOrder(1000, 42, 0);
  assertEquals([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assertEquals(epochOrder(1000, 42, 0), a);
  assertNotEquals(epochOrder(1000, 42, 1), a);
  assertNotEquals(epochOrder(1000, 43, 0), a);
  assertEquals(epochOrder(1, 42, 3), Uint32Array.of(0));
  assertEquals(epochOrder(0, 42, 3).length, 0);
});

Deno.test("DataOrder.batch() covers each epoch once, dropping the partial batch", () => {
  const d = new DataOrder(10, { seed: 1, trainBatchSize: 4, microBatchSize: 2 });
  assertEquals(d.stepsPerEpoch, 2);
  const seen = [...d.batch(0), ...d.batch(1)].flat();
  assertEquals(new Set(seen).size, 8);
  assertEquals(d.batch(0).map((m) => m.length), [2, 2]);
  // step 2 starts epoch 1 with a new order
  assertEquals(d.position(2), { epoch: 1, index: 0 });
  assertEquals(d.batch(2).flat(), Array.from(epochOrder(10, 1, 1).subarray(0, 4)));
});

Deno.test("DataOrder resumes exactly: a fresh instance from a position gives the same batches", () => {
  const opts = { seed: 9, trainBatchSize: 6, microBatchSize: 3 };
  const full = new DataOrder(40, opts);
  const straight = Array.from({ length: 20 }, (_, s) => full.batch(s));
  const pos = full.position(13);
  assertEquals(pos, { epoch: 2, index: 6 });
  const resumed = new DataOrder(40, opts);
  const from = resumed.stepAt(pos);
  assertEquals(from, 13);
  assertEquals(Array.from({ length: 7 }, (_, i) => resumed.batch(from + i)), straight.slice(13));
});

Deno.test("DataOrder rejects a batch that is not a multiple of the micro-batch, and tiny data", () => {
  assertThrows(
    () => new DataOrder(10, { seed: 1, trainBatchSize: 4, microBatchSize: 3 }),
    /not a multiple/,
  );
  assertThrows(
    () => new DataOrder(3, { seed: 1, trainBatchSize: 4, microBatchSize: 1 }),
    /3 rows, fewer than one batch of 4/,
  );
});

Deno.test("epochOrder() matches an independent Python rendering of the same shuffle", () => {
  // splitmix64(seed ^ epoch·φ64) seeds the stream; Fisher-Yates from the end, rejection draws
  assertEquals(Array.from(epochOrder(10, 42, 0)), [1, 9, 3, 5, 2, 6, 7, 0, 4, 8]);
  assertEquals(Array.from(epochOrder(10, 42, 1)), [7, 0, 9, 3, 1, 6, 8, 5, 2, 4]);
  assertEquals(Array.from(epochOrder(7, -5, 3)), [2, 3, 4, 1, 6, 0, 5]);
});
