/**
 * `output_dir/rollouts.jsonl`: one row per sample of every rollout batch of a Sim-RL run (kept
 * by the dynamic filter or not), appended whole when the batch's optimizer steps are done, so
 * people can read what their policy writes. Opening for a resume keeps the rows of the rollout
 * batches up to the checkpoint's and drops the rest and a torn last line (rewritten to a
 * temporary file and renamed); a fresh run starts an empty file.
 */
import { readLines } from "../data/jsonl.ts";

/** One sample of a rollout batch, as written. */
export interface RolloutRow {
  /** 1-based number of the rollout batch. */
  rollout_batch: number;
  /** The trainset row's id (its line number when it has none). */
  id: unknown;
  sample: number;
  /** Decoded, special tokens kept. */
  completion: string;
  /** As trained, an appended EOS included. */
  completion_ids: number[];
  finish_reason: "stop" | "length";
  reward: number;
  score: number;
  format: 1 | -1;
  answer: number;
  kept: boolean;
  advantage: number | null;
  /** The 1-based optimizer step that trained it (the first one, with max_epochs > 1). */
  step: number | null;
  /** 0-based micro-batch within that step. */
  micro_batch: number | null;
}

export const ROLLOUTS_FILE = "rollouts.jsonl";

const encoder = new TextEncoder();

export class RolloutLog {
  private constructor(readonly path: string, private file: Deno.FsFile) {}

  /**
   * Opens `path` for appending; `keepBatches`: keep the rows of rollout batches 1..keepBatches
   * (undefined: a fresh run, the file is emptied).
   */
  static async open(path: string, opts: { keepBatches?: number } = {}): Promise<RolloutLog> {
    const tmp = `${path}.tmp`;
    const out = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      if (opts.keepBatches !== undefined && opts.keepBatches > 0) {
        const keep = opts.keepBatches;
        let exists = true;
        try {
          await Deno.stat(path);
        } catch {
          exists = false;
        }
        if (exists) {
          for await (const { text, unterminated } of readLines(path)) {
            if (unterminated || text.trim() === "") continue;
            let batch: unknown;
            try {
              batch = (JSON.parse(text) as { rollout_batch?: unknown }).rollout_batch;
            } catch {
              continue;
            }
            if (typeof batch === "number" && batch <= keep) {
              await writeAll(out, encoder.encode(`${text}\n`));
            }
          }
        }
      }
    } finally {
      out.close();
    }
    await Deno.rename(tmp, path);
    return new RolloutLog(path, await Deno.open(path, { append: true }));
  }

  /** Appends the rows of one rollout batch (one write). */
  async write(rows: RolloutRow[]): Promise<void> {
    await writeAll(this.file, encoder.encode(rows.map((r) => `${JSON.stringify(r)}\n`).join("")));
  }

  close(): void {
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await f.write(bytes.subarray(off));
}
