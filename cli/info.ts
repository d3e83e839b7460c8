/**
 * `star info`: what star would run on here. Prints the WebGPU adapter (name, backend, software
 * or not), its features and limits, then runs each kernel family's self-test (a few seconds)
 * and prints pass/fail per family. Exits 1 when there is no adapter or a self-test fails.
 */
import type { CommandModule } from "./command.ts";
import { writeOut } from "./command.ts";

const spec = {
  name: "info",
  summary: "Show the GPU adapter, its limits, and self-test the kernels on it",
  flags: {
    "skip-self-test": {
      type: "boolean",
      description: "Only print the adapter, features and limits",
    },
    json: { type: "boolean", description: "Print one JSON object instead of text" },
  },
  details:
    "Exit status: 0 when every kernel self-test passes, 1 when one fails or no adapter exists.\n" +
    "DENO_WEBGPU_BACKEND=vulkan|metal|dx12|gl picks the backend; STAR_DEBUG=1 logs device set-up.",
} as const;

function backendName(): string {
  let env: string | undefined;
  try {
    env = Deno.env.get("DENO_WEBGPU_BACKEND");
  } catch { /* no env permission */ }
  if (env) return `${env} (DENO_WEBGPU_BACKEND)`;
  const byOs: Record<string, string> = { darwin: "metal", windows: "dx12" };
  return `${byOs[Deno.build.os] ?? "vulkan"} (platform default)`;
}

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    const { getGpu } = await import("../engine/device.ts");
    const gpu = await getGpu();
    const info = gpu.info;
    const limits: Record<string, number> = {};
    for (const k in gpu.adapter.limits) {
      limits[k] = (gpu.adapter.limits as unknown as Record<string, number>)[k];
    }
    const adapter = {
      name: info.description || info.device || "(unnamed)",
      vendor: info.vendor,
      architecture: info.architecture,
      backend: backendName(),
      fallback: gpu.isFallback,
      features: [...gpu.adapter.features].sort(),
      limits,
    };
    let reports: Awaited<ReturnType<typeof import("../engine/self_test.ts").runSelfTests>> = [];
    if (!flags["skip-self-test"]) {
      const { runSelfTests } = await import("../engine/self_test.ts");
      reports = await runSelfTests(gpu);
    }
    const failed = reports.filter((r) => !r.ok);
    if (flags.json) {
      await writeOut(JSON.stringify({ adapter, selfTest: reports }) + "\n");
      return failed.length ? 1 : 0;
    }
    const width = Math.max(...Object.keys(limits).map((k) => k.length)) + 2;
    const lines = [
      `adapter:      ${adapter.name}`,
      `vendor:       ${adapter.vendor || "-"}${
        adapter.architecture ? ` (${adapter.architecture})` : ""
      }`,
      `backend:      ${adapter.backend}`,
      `software:     ${adapter.fallback ? "yes (CPU fallback adapter: works, but slowly)" : "no"}`,
      `shader-f16:   ${gpu.hasF16 ? "yes" : "no"}`,
      `features:     ${adapter.features.join(", ") || "-"}`,
      "limits:",
      ...Object.entries(limits).map(([k, v]) => `  ${k.padEnd(width)}${v}`),
    ];
    if (reports.length) {
      lines.push("self-test:");
      const nameWidth = Math.max(16, ...reports.map((r) => r.name.length + 2));
      for (const r of reports) {
        const res = r.result
          ? `max rel err ${r.result.maxRelErr.toExponential(1)} (tol ${r.result.tolerance})` +
            (r.result.detail ? `, ${r.result.detail}` : "")
          : r.error ?? "";
        lines.push(
          `  ${r.name.padEnd(nameWidth)}${r.ok ? "ok  " : "FAIL"}  ${res}, ${Math.round(r.ms)} ms`,
        );
      }
      lines.push(
        failed.length
          ? `${failed.length} of ${reports.length} kernel families failed: star will not compute correctly on this adapter`
          : `all ${reports.length} kernel families passed`,
      );
    }
    await writeOut(lines.join("\n") + "\n");
    return failed.length ? 1 : 0;
  },
};
