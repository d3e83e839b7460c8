import { assertEquals } from "./assert.ts";
import { join } from "node:path";
import { formatRow, MetricsWriter, readMetrics } from "../train/metrics.ts";

const row = (step: number, loss: number) => ({
  step,
  loss,
  lr: 1e-5,
  grad_norm: 0.5,
  tokens: 100,
  seconds: 0.25,
  kd_fkl: loss / 2,
});

Deno.test("MetricsWriter appends one JSON row per step and starts empty on a fresh run", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(path, '{"step":9,"loss":1}\n');
  const w = await MetricsWriter.open(path);
  await w.write(row(1, 2.5));
  await w.write(row(2, 2.25));
  w.close();
  assertEquals(
    await Deno.readTextFile(path),
    '{"step":1,"loss":2.5,"lr":0.00001,"grad_norm":0.5,"tokens":100,"seconds":0.25,"kd_fkl":1.25}\n' +
      '{"step":2,"loss":2.25,"lr":0.00001,"grad_norm":0.5,"tokens":100,"seconds":0.25,"kd_fkl":1.125}\n',
  );
});

Deno.test("MetricsWriter on resume keeps rows up to the checkpoint's step and drops a torn line", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "metrics.jsonl");
  const w = await MetricsWriter.open(path);
  for (let s = 1; s <= 5; s++) await w.write(row(s, 3 - s / 10));
  w.close();
  await Deno.writeTextFile(path, '{"step":6,"lo', { append: true });
  const r = await MetricsWriter.open(path, { resumeStep: 3 });
  assertEquals(r.rowsKept, 3);
  await r.write(row(4, 7));
  r.close();
  const rows = await readMetrics(path);
  assertEquals(rows.map((x) => [x.step, x.loss]), [[1, 2.9], [2, 2.8], [3, 2.7], [4, 7]]);
});

Deno.test("MetricsWriter resume with no file yet starts an empty one", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "metrics.jsonl");
  const w = await MetricsWriter.open(path, { resumeStep: 10 });
  assertEquals(w.rowsKept, 0);
  w.close();
  assertEquals(await Deno.readTextFile(path), "");
});

Deno.test("formatRow() writes non-finite numbers as null", () => {
  assertEquals(
    formatRow({ step: 1, loss: NaN, lr: 0, grad_norm: Infinity, tokens: 0, seconds: 1 }),
    '{"step":1,"loss":null,"lr":0,"grad_norm":null,"tokens":0,"seconds":1}',
  );
});
