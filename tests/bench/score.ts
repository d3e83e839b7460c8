/**
 * `star score` end to end as a user runs it (process start-up, reading, parsing, scoring,
 * writing) on 200,000 rows of ~2.3 KB (tests/bench_score.ts makes them), in rows/s. CPU only:
 * each run spawns the CLI; the Recorder is not used.
 */
import type { BenchCase } from "./_types.ts";
import { benchRows } from "../bench_score.ts";

const ROWS = 200_000;

export const cases: BenchCase[] = [{
  name: "score",
  shape: [ROWS],
  items: ROWS,
  async setup() {
    const dir = await Deno.makeTempDir({ prefix: "star_bench_score_" });
    const input = `${dir}/rows.jsonl`;
    const file = await Deno.open(input, { write: true, create: true });
    const enc = new TextEncoder();
    let chunk: string[] = [];
    for (const row of benchRows(ROWS)) {
      chunk.push(row);
      if (chunk.length === 1000) {
        await file.write(enc.encode(chunk.join("\n") + "\n"));
        chunk = [];
      }
    }
    file.close();
    const root = new URL("../..", import.meta.url).pathname;
    return {
      perSubmit: 1,
      async record() {
        const res = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "main.ts", "score", "--input", input, "--output", `${dir}/out.jsonl`],
          cwd: root,
          stderr: "piped",
        }).output();
        if (res.code !== 0) {
          throw new Error(`star score exited ${res.code}: ${new TextDecoder().decode(res.stderr)}`);
        }
      },
      dispose() {
        Deno.removeSync(dir, { recursive: true });
      },
    };
  },
}];
