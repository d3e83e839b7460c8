/**
 * Kernel self-tests for `star info`: each kernel family contributes one quick case (small
 * awkward shapes, compared with its float64 reference) to SELF_TESTS, so a user sees at once
 * whether this adapter computes correctly. Adding a family is one entry in the table.
 */
import { checkErrors, type Gpu } from "./device.ts";
import { kdLossSelfTest } from "./ops/kd_loss.ts";
import { matmulSelfTest } from "./ops/matmul.ts";
import { OPS_SELF_TESTS } from "./ops/self_tests.ts";
export { relErr } from "./ops/_util.ts";

export interface SelfTestResult {
  /** Largest error relative to the output's scale, over everything compared. */
  maxRelErr: number;
  tolerance: number;
  detail?: string;
}

export interface SelfTest {
  name: string;
  run(gpu: Gpu): Promise<SelfTestResult>;
}

/** One entry per kernel family, run in this order. */
export const SELF_TESTS: SelfTest[] = [
  matmulSelfTest,
  ...OPS_SELF_TESTS,
  kdLossSelfTest,
];

export interface SelfTestReport {
  name: string;
  ok: boolean;
  ms: number;
  result?: SelfTestResult;
  error?: string;
}

/** Runs every self-test; a thrown error or a GPU validation error fails that test only. */
export async function runSelfTests(gpu: Gpu, tests = SELF_TESTS): Promise<SelfTestReport[]> {
  const out: SelfTestReport[] = [];
  for (const t of tests) {
    const t0 = performance.now();
    try {
      const result = await t.run(gpu);
      await checkErrors(gpu);
      const ok = result.maxRelErr <= result.tolerance;
      out.push({ name: t.name, ok, ms: performance.now() - t0, result });
    } catch (err) {
      await checkErrors(gpu).catch(() => {}); // do not blame the next test for this one's errors
      const error = err instanceof Error
        ? err.message.split("\n").slice(0, 3).join(" / ")
        : String(err);
      out.push({ name: t.name, ok: false, ms: performance.now() - t0, error });
    }
  }
  return out;
}
