/**
 * `deno task bench`: times the engine's kernels on this machine's adapter and prints a table,
 * or with --json one object per line: {"name", "shape", "ms", "gflops" | "gbps" | "per_s"}.
 * Cases live in tests/bench/<name>.ts (each exports `cases: BenchCase[]`, see _types.ts) and are
 * found by listing that folder, so a new case is one new file. Each case: one warm-up run
 * (compiles pipelines), then 3 timed submits of several runs each; the median per run is shown.
 * A submit-and-wait costs ~11 ms on the software adapter, hence several runs per submit.
 * cpu_ms is this process's CPU time per run divided by the core count: on the software adapter
 * (whose workers run in this process) it estimates the time on an idle machine when other
 * processes compete for the cores; it means nothing on a real GPU.
 * Every row carries the run's own baselines, timed first whatever the filter: matmul_gflops (the
 * 512x1024x3072 matmul) and gemv_gbps (the 1x1024x3072 GEMV's f32 weight bandwidth); a case with
 * `relativeTo` also gets "fraction", its rate over that baseline (the "vs" column).
 *
 *   deno task bench [--json] [--filter matmul] [--runs 3]
 */
import { parseArgs } from "node:util";
import process from "node:process";
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

/** The software adapter runs one worker per core: CPU time / cores is the idle-machine time. */
const CORES = navigator.hardwareConcurrency || 1;

interface Timing {
  ms: number; // median wall time per run
  cpuMs: number; // process CPU time per run / cores, at the same run
}

async function time(gpu: Awaited<ReturnType<typeof getGpu>>, c: BenchCase): Promise<Timing> {
  const run = await c.setup(gpu);
  const rec = new Recorder(gpu, `bench.${c.name}`);
  let cpuMs = 0;
  const once = async (n: number) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run.record(rec);
    rec.submit();
    await gpu.device.queue.onSubmittedWorkDone();
    const dc = process.cpuUsage(c0);
    cpuMs = (dc.user + dc.system) / 1e3 / CORES / n;
    return (performance.now() - t0) / n;
  };
  const first = await once(1); // compiles pipelines, packs weights
  await checkErrors(gpu);
  const est = Math.min(first, await once(1));
  const perSubmit = run.perSubmit ?? Math.max(1, Math.min(50, Math.round(300 / Math.max(est, 1))));
  const times: Timing[] = [];
  for (let r = 0; r < runs; r++) times.push({ ms: await once(perSubmit), cpuMs });
  await checkErrors(gpu);
  run.dispose?.();
  return times.sort((a, b) => a.ms - b.ms)[Math.floor(times.length / 2)];
}

const gpu = await getGpu();
const all = await loadCases();
const cases = all.filter((c) =>
  !args.values.filter || `${c.name} ${c.shape.join("x")}`.includes(args.values.filter)
);
const fmt = (x: number) => +x.toPrecision(4);

/** The baselines every row is shown beside, timed before the cases. */
async function baseline(name: string, shape: string): Promise<number> {
  const c = all.find((b) => b.name === name && b.shape.join("x") === shape);
  if (!c?.flops) throw new Error(`Bench baseline "${name} ${shape}" is missing`);
  return c.flops / (await time(gpu, c)).ms / 1e6;
}
const matmulGflops = fmt(await baseline("matmul", "512x1024x3072"));
// f32 weights: 4 bytes per multiply-add, i.e. 2 bytes per FLOP
const gemvGbps = fmt(2 * await baseline("gemv", "1x1024x3072"));

const header = `adapter: ${gpu.info.description || gpu.info.device} (${gpu.info.vendor})` +
  `${gpu.isFallback ? ", software" : ""}; load average at start: ${loadAvg()}\n` +
  `baselines of this run: matmul 512x1024x3072 ${matmulGflops} GFLOP/s, ` +
  `gemv 1x1024x3072 ${gemvGbps} GB/s of weights`;
if (args.values.json) console.error(header);
else {
  console.log(header);
  console.log(
    `${"name".padEnd(24)}${"shape".padEnd(20)}${"ms".padStart(12)}${"rate".padStart(18)}${
      "vs".padStart(14)
    }${"cpu_ms".padStart(12)}${"cpu rate".padStart(10)}`,
  );
}
for (const c of cases) {
  const { ms, cpuMs } = await time(gpu, c);
  const row: Record<string, unknown> = { name: c.name, shape: c.shape, ms: +ms.toFixed(4) };
  let rate = "", cpuRate = "", value = 0;
  if (c.flops) {
    rate = `${(row.gflops = value = fmt(c.flops / ms / 1e6))} GFLOP/s`;
    cpuRate = `${fmt(c.flops / cpuMs / 1e6)}`;
  } else if (c.bytes) {
    rate = `${(row.gbps = value = fmt(c.bytes / ms / 1e6))} GB/s`;
    cpuRate = `${fmt(c.bytes / cpuMs / 1e6)}`;
  } else if (c.items) {
    rate = `${(row.per_s = fmt(c.items / ms * 1e3))} /s`;
    cpuRate = `${fmt(c.items / cpuMs * 1e3)}`;
  }
  row.cpu_ms = fmt(cpuMs);
  row.matmul_gflops = matmulGflops;
  row.gemv_gbps = gemvGbps;
  let vs = "";
  if (c.relativeTo && value) {
    row.fraction = fmt(value / (c.relativeTo === "gemv" ? gemvGbps : matmulGflops));
    vs = `${(100 * (row.fraction as number)).toFixed(1)}% ${c.relativeTo}`;
  }
  if (args.values.json) console.log(JSON.stringify(row));
  else {
    console.log(
      `${c.name.padEnd(24)}${c.shape.join("x").padEnd(20)}${ms.toFixed(3).padStart(12)}${
        rate.padStart(18)
      }${vs.padStart(14)}${cpuMs.toFixed(3).padStart(12)}${cpuRate.padStart(10)}`,
    );
  }
}
const tail = `load average at end: ${loadAvg()}`;
if (args.values.json) console.error(tail);
else console.log(tail);
