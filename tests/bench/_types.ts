/**
 * What a benchmark case is. Every `tests/bench/<name>.ts` (no leading underscore) exports
 * `cases: BenchCase[]`; tests/bench.ts finds the files itself, so adding a case is adding or
 * editing one file.
 */
import type { Gpu } from "../../engine/mod.ts";
import type { Recorder } from "../../engine/mod.ts";

export interface BenchCase {
  /** JSON "name", e.g. "matmul"; cases of one kernel share it and differ by shape. */
  name: string;
  shape: number[];
  /** Work per run, for the rate column: FLOPs (gflops) or bytes moved (gbps) or items (per_s). */
  flops?: number;
  bytes?: number;
  items?: number;
  /**
   * Print the rate as a fraction of this run's baseline: "matmul" (GFLOP/s of the 512x1024x3072
   * matmul) or "gemv" (weight GB/s of the 1x1024x3072 decode GEMV, for memory-bound cases).
   */
  relativeTo?: "matmul" | "gemv";
  /** Allocates inputs once; returns what one run records (timed many times). */
  setup(gpu: Gpu): Promise<BenchRun> | BenchRun;
}

export interface BenchRun {
  /** Records one run into `rec` (GPU work), or does the work itself when it is CPU-only. */
  record(rec: Recorder): void | Promise<void>;
  /** Runs recorded per submit (default: chosen so a submit takes ~0.3 s, at most 50). */
  perSubmit?: number;
  dispose?(): void;
}
