/**
 * `deno task bench`: times the engine's kernels on this machine's adapter and prints a table,
 * or with --json one object per line: {"name", "shape", "ms", "gflops" | "gbps" | "per_s"}.
 * Cases live in tests/bench/<name>.ts (each exports `cases: BenchCase[]`, see _types.ts) and are
 * found by listing that folder, so a new case is one new file. Each case: one warm-up run
 * (compiles pipelines), then 3 timed submits of several runs each; the median per run is shown.
 * A submit-and-wait costs ~11 ms on the software adapter, hence several runs per submit.
 *
 *   deno task bench [--json] [--filter matmul] [--runs 3]
 */
import { parseArgs } from "node:util";
import { checkErrors, getGpu, Recorder } from "../engine/mod.ts";
import type { BenchCase } from "./bench/_types.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    filter: { type: "string" },
    runs: { type: "string", default: "3" },
  },
});
const runs = Math.max(1, Number(args.values.runs));

async function loadCases(): Promise<BenchCase[]> {
  const dir = new URL("./bench/", import.meta.url);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_")) files.push(e.name);
  }
  files.sort();
  const out: BenchCase[] = [];
  for (const f of files) {
    const mod = await import(new URL(f, dir).href) as { cases?: BenchCase[] };
    if (!Array.isArray(mod.cases)) throw new Error(`tests/bench/${f} exports no "cases" array`);
    out.push(...mod.cases);
  }
  return out;
}

function loadAvg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function time(gpu: Awaited<ReturnType<typeof getGpu>>, c: BenchCase): Promise<number> {
  const run = await c.setup(gpu);
  const rec = new Recorder(gpu, `bench.${c.name}`);
  const once = async (n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run.record(rec);
    rec.submit();
    await gpu.device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / n;
  };
  const first = await once(1); // compiles pipelines, packs weights
  await checkErrors(gpu);
  const est = Math.min(first, await once(1));
  const perSubmit = run.perSubmit ?? Math.max(1, Math.min(50, Math.round(300 / Math.max(est, 1))));
  const times: number[] = [];
  for (let r = 0; r < runs; r++) times.push(await once(perSubmit));
  await checkErrors(gpu);
  run.dispose?.();
  return median(times);
}

const gpu = await getGpu();
const cases = (await loadCases()).filter((c) =>
  !args.values.filter || `${c.name} ${c.shape.join("x")}`.includes(args.values.filter)
);
const header = `adapter: ${gpu.info.description || gpu.info.device} (${gpu.info.vendor})` +
  `${gpu.isFallback ? ", software" : ""}; load average at start: ${loadAvg()}`;
if (args.values.json) console.error(header);
else {
  console.log(header);
  console.log(
    `${"name".padEnd(16)}${"shape".padEnd(20)}${"ms".padStart(12)}${"rate".padStart(16)}`,
  );
}
for (const c of cases) {
  const ms = await time(gpu, c);
  const row: Record<string, unknown> = { name: c.name, shape: c.shape, ms: +ms.toFixed(4) };
  let rate = "";
  if (c.flops) rate = `${(row.gflops = +(c.flops / ms / 1e6).toFixed(3))} GFLOP/s`;
  else if (c.bytes) rate = `${(row.gbps = +(c.bytes / ms / 1e6).toFixed(3))} GB/s`;
  else if (c.items) rate = `${(row.per_s = +(c.items / ms * 1e3).toFixed(1))} /s`;
  if (args.values.json) console.log(JSON.stringify(row));
  else {
    console.log(
      `${c.name.padEnd(16)}${c.shape.join("x").padEnd(20)}${ms.toFixed(3).padStart(12)}${
        rate.padStart(16)
      }`,
    );
  }
}
const tail = `load average at end: ${loadAvg()}`;
if (args.values.json) console.error(tail);
else console.log(tail);
