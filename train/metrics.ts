/**
 * `output_dir/metrics.jsonl`: one JSON row per optimizer step (CONTRACT.md), appended and
 * flushed as each step ends so a killed run loses at most the row being written. Opening for a
 * resume from the checkpoint of step S keeps the complete rows with step ≤ S and drops the rest
 * (steps run after that checkpoint, and a torn last line); a fresh run starts an empty file.
 * Fields: `step` (1-based count of optimizer steps done), `loss`, `lr` (the rate that step used),
 * `grad_norm` (before clipping), `tokens` (tokens the step processed), `seconds` (its wall time),
 * `tokens_per_second`, plus the loss's parts (`kd_fkl`, `kd_tail`, `kd_ce`, ...). Non-finite
 * numbers are written as null (JSON has no NaN).
 */

/** One row of metrics.jsonl. */
export interface MetricsRow {
  step: number;
  loss: number | null;
  lr: number;
  grad_norm: number | null;
  tokens: number;
  seconds: number;
  [part: string]: number | boolean | string | null;
}

export const METRICS_FILE = "metrics.jsonl";

const encoder = new TextEncoder();

/** Appends metrics rows to one file. */
export class MetricsWriter {
  #file: Deno.FsFile;

  private constructor(readonly path: string, file: Deno.FsFile, readonly rowsKept: number) {
    this.#file = file;
  }

  /**
   * Opens `path` for appending. `resumeStep`: keep the rows with step ≤ resumeStep (undefined:
   * a fresh run, the file is emptied).
   */
  static async open(path: string, opts: { resumeStep?: number } = {}): Promise<MetricsWriter> {
    let kept: string[] = [];
    if (opts.resumeStep !== undefined) {
      let text = "";
      try {
        text = await Deno.readTextFile(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      kept = keptLines(text, opts.resumeStep);
    }
    // rewrite the kept rows atomically, then append to the new file
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, kept.map((l) => `${l}\n`).join(""));
    await Deno.rename(tmp, path);
    const file = await Deno.open(path, { append: true });
    return new MetricsWriter(path, file, kept.length);
  }

  /** Appends one row (one write of one line). */
  async write(row: MetricsRow): Promise<void> {
    const bytes = encoder.encode(`${formatRow(row)}\n`);
    let off = 0;
    while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
  }

  close(): void {
    this.#file.close();
  }
}

/** The row as one JSON line; NaN and ±Infinity become null. */
export function formatRow(row: MetricsRow): string {
  return JSON.stringify(row, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}

/** Complete, parseable lines whose step is at most `maxStep`, in order. */
function keptLines(text: string, maxStep: number): string[] {
  const lines = text.split("\n");
  // a last line without its newline was torn by a crash
  if (!text.endsWith("\n")) lines.pop();
  const out: string[] = [];
  for (const line of lines) {
    if (line.trim() === "") continue;
    let step: unknown;
    try {
      step = (JSON.parse(line) as { step?: unknown }).step;
    } catch {
      continue;
    }
    if (typeof step === "number" && step <= maxStep) out.push(line);
  }
  return out;
}

/** Reads all rows of a metrics file (for tests, `star demo` and comparisons). */
export async function readMetrics(path: string): Promise<MetricsRow[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}
