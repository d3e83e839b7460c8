/**
 * `star info` and the self-test harness: the adapter and limits are printed, every registered
 * kernel family passes here, and a failing or throwing self-test makes the command exit 1.
 */
import { assertEquals, assertMatch } from "./assert.ts";
import { star } from "./_star.ts";
import { getGpu, hasGpu } from "../engine/mod.ts";
import { runSelfTests, SELF_TESTS } from "../engine/self_test.ts";

const noGpu = !(await hasGpu());
const root = new URL("..", import.meta.url);

Deno.test({
  name: "star info prints the adapter, limits and a passing self-test for every kernel family",
  ignore: noGpu,
  async fn() {
    const r = await star(["info"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^adapter: {6}\S/m);
    assertMatch(r.stdout, /^backend: {6}\w+/m);
    assertMatch(r.stdout, /^ {2}maxStorageBufferBindingSize +\d+$/m);
    for (const t of SELF_TESTS) assertMatch(r.stdout, new RegExp(`^  ${t.name} +ok `, "m"));
  },
});

Deno.test({
  name: "star info --json --skip-self-test prints the adapter's features and limits as JSON",
  ignore: noGpu,
  async fn() {
    const r = await star(["info", "--json", "--skip-self-test"]);
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const gpu = await getGpu();
    assertEquals(j.adapter.limits.maxBufferSize, gpu.adapter.limits.maxBufferSize);
    assertEquals(j.adapter.fallback, gpu.isFallback);
    assertEquals(j.selfTest, []);
  },
});

Deno.test({
  name: "star info exits 1 and prints FAIL when a kernel self-test fails",
  ignore: noGpu,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "info"],
      cwd: root,
      env: { STAR_MATMUL: "no-such-variant", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 1);
    assertMatch(stdout, /^ {2}matmul +FAIL .*STAR_MATMUL must be one of/m);
  },
});

Deno.test({
  name: "runSelfTests() fails a test over its tolerance or throwing, and passes one within it",
  ignore: noGpu,
  async fn() {
    const gpu = await getGpu();
    const reports = await runSelfTests(gpu, [
      { name: "within", run: () => Promise.resolve({ maxRelErr: 1e-7, tolerance: 1e-5 }) },
      { name: "over", run: () => Promise.resolve({ maxRelErr: 1e-3, tolerance: 1e-5 }) },
      { name: "nan", run: () => Promise.resolve({ maxRelErr: NaN, tolerance: 1e-5 }) },
      { name: "throws", run: () => Promise.reject(new Error("boom")) },
    ]);
    assertEquals(reports.map((r) => [r.name, r.ok]), [
      ["within", true],
      ["over", false],
      ["nan", false],
      ["throws", false],
    ]);
    assertEquals(reports[3].error, "boom");
  },
});

Deno.test({
  name: "star info without an adapter exits 1 with one line saying what to install",
  ignore: Deno.build.os !== "linux", // asking for Metal on Linux yields no adapter
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "info"],
      cwd: root,
      env: { DENO_WEBGPU_BACKEND: "metal", NO_COLOR: "1", STAR_DEBUG: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assertEquals(out.code, 1);
    assertMatch(stderr, /^star: No GPU adapter was found; .*mesa-vulkan-drivers$/);
  },
});
