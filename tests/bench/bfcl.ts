/**
 * `star eval --bench bfcl --generations` end to end as a user runs it (process start-up,
 * loading the BFCL data folder, reading, decoding, judging, writing rows and the summary) on
 * 10,000 completions of all 13 categories (the checked fixture cases, cycled), in rows/s.
 * CPU only: each run spawns the CLI; the Recorder is not used.
 */
import type { BenchCase } from "./_types.ts";

const ROWS = 10_000;
const FIXTURE = new URL("../testdata/bfcl/", import.meta.url).pathname;

export const cases: BenchCase[] = [{
  name: "bfcl_judge",
  shape: [ROWS],
  items: ROWS,
  async setup() {
    const dir = await Deno.makeTempDir({ prefix: "star_bench_bfcl_" });
    const file = await Deno.open(`${FIXTURE}checker_cases.jsonl.gz`);
    const text = await new Response(file.readable.pipeThrough(new DecompressionStream("gzip")))
      .text();
    const lines = text.trim().split("\n").map((l) => {
      const { id, completion } = JSON.parse(l);
      return JSON.stringify({ id, completion });
    });
    const rows = Array.from({ length: ROWS }, (_, i) => lines[i % lines.length]);
    const input = `${dir}/generations.jsonl`;
    await Deno.writeTextFile(input, rows.join("\n") + "\n");
    const root = new URL("../..", import.meta.url).pathname;
    return {
      perSubmit: 1,
      async record() {
        const res = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "main.ts",
            "eval",
            "--bench",
            "bfcl",
            "--bfcl-data",
            `${FIXTURE}data`,
            "--generations",
            input,
            "--output",
            `${dir}/out.jsonl`,
            "--summary",
            `${dir}/summary.json`,
          ],
          cwd: root,
          stdout: "null",
          stderr: "piped",
        }).output();
        if (res.code !== 0) {
          throw new Error(`star eval exited ${res.code}: ${new TextDecoder().decode(res.stderr)}`);
        }
      },
      dispose() {
        Deno.removeSync(dir, { recursive: true });
      },
    };
  },
}];
