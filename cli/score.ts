/**
 * `star score`: Sim-RL rewards of (prompt, completion, label) rows, offline. Streams the input
 * (constant memory), writes one row per input row in order, an error row for a row that cannot
 * be scored, and a summary on stderr. Exit 1 when any row errored.
 *
 * Parallelism: the row pipeline (cli/_rows.ts, runLineBytes) reads the input as bytes, cuts it
 * into batches of whole lines and writes results back in input order with a bounded number of
 * batches in flight (so memory stays constant); decoding, parsing and scoring happen where a
 * batch is scored. A short input is scored in place; once a first full batch exists, one
 * worker per other core starts, and each batch goes (transferred, not copied) to a worker with
 * room in its queue or else is scored here. If no worker can start, all is done here.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { JsonlWriter } from "../data/jsonl.ts";
import { runLineBytes } from "./_rows.ts";
import { type Batch, type BatchResult, scoreBatch } from "./_score_rows.ts";

const spec = {
  name: "score",
  summary: "Sim-RL rewards of generations, offline (no GPU needed)",
  details: `Input rows: {"id"?, "prompt" | "inputs", "completion", "label" | "targets"}.
Output rows, one per input row and in the same order: {"id"?, "reward", "format", "answer"},
or {"id"?, "line", "error"} for a row that cannot be scored (a malformed label or tools block).
The reward is defined in SIMRL_REWARD.md. The summary goes to stderr. Exit status 1 when any
row errored. STAR_SCORE_WORKERS=N sets the number of worker threads (0: none).`,
  flags: {
    input: {
      type: "string",
      value: "FILE",
      required: true,
      description: "Rows to score (- for stdin)",
    },
    output: {
      type: "string",
      value: "FILE",
      default: "-",
      description: "Where to write (- for stdout)",
    },
  },
} satisfies CommandSpec;

export interface ScoreSummary {
  rows: number;
  errors: number;
  rewardSum: number;
  formatValid: number;
}

/**
 * Bytes per batch (whole lines; a longer line makes a larger batch); batches queued per worker
 * at most; batches read but not yet written at most (per thread), which bounds memory.
 */
const BATCH_BYTES = 1 << 19;
const QUEUED_PER_WORKER = 2;
const UNWRITTEN_PER_THREAD = 4;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    const out = await JsonlWriter.open(flags.output);
    const s: ScoreSummary = { rows: 0, errors: 0, rewardSum: 0, formatValid: 0 };
    const pool = new Pool(flags.input, workerCount());
    let seq = 0;
    try {
      await runLineBytes({
        input: flags.input,
        out,
        budget: BATCH_BYTES,
        inFlight: (pool.size + 1) * UNWRITTEN_PER_THREAD,
        process: async (lines) => {
          const r = await pool.score({ seq: seq++, file: flags.input, lines });
          s.rows += r.rows;
          s.errors += r.errors;
          s.rewardSum += r.rewardSum;
          s.formatValid += r.formatValid;
          return r.text;
        },
      });
    } finally {
      pool.close();
      await out.close();
    }
    console.error(summaryLine(s));
    return s.errors > 0 ? 1 : 0;
  },
};

function workerCount(): number {
  const env = Deno.env.get("STAR_SCORE_WORKERS");
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  // This thread reads, writes and scores its share: one worker per other core.
  return Math.max(0, Math.min((navigator.hardwareConcurrency ?? 1) - 1, 7));
}

/** Scores batches on worker threads, or in place when every worker has enough queued. */
class Pool {
  #workers: Worker[] = [];
  /** Batches posted to each worker and not yet answered. */
  #queued: number[] = [];
  #started = false;
  #pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();

  constructor(readonly file: string, readonly size: number) {}

  /** An input that is a single batch is scored in place, without starting the workers. */
  async score(batch: Batch): Promise<BatchResult> {
    if (!this.#started && !(batch.lines.first && batch.lines.last)) await this.#start();
    // The least busy worker takes the batch unless all have enough queued; then this thread
    // scores it. Busy cores (other processes) thus shift work here instead of stalling.
    let w = -1;
    for (let i = 0; i < this.#workers.length; i++) {
      if (w < 0 || this.#queued[i] < this.#queued[w]) w = i;
    }
    if (w < 0 || this.#queued[w] >= QUEUED_PER_WORKER) return scoreBatch(batch);
    this.#queued[w]++;
    const done = new Promise<BatchResult>((resolve, reject) => {
      this.#pending.set(batch.seq, { resolve, reject });
    });
    this.#workers[w].postMessage(batch, [batch.lines.bytes.buffer]);
    return await done;
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }

  /**
   * Starts the workers and waits until each has loaded (it posts "ready"). A worker that cannot
   * load (a compiled binary built without the worker module, a restricted runtime) means none
   * are used.
   */
  async #start(): Promise<void> {
    this.#started = true;
    const url = new URL("./_score_worker.ts", import.meta.url);
    if (this.size === 0 || !moduleExists(url)) return;
    const loading: Promise<void>[] = [];
    try {
      for (let i = 0; i < this.size; i++) {
        const w = new Worker(url.href, { type: "module" });
        this.#workers.push(w);
        loading.push(
          new Promise((resolve, reject) => {
            w.onmessage = () => resolve();
            w.onerror = (e) => {
              e.preventDefault();
              reject(new Error(e.message));
            };
          }),
        );
      }
      await Promise.all(loading);
    } catch {
      this.close();
      return;
    }
    this.#queued = this.#workers.map(() => 0);
    this.#workers.forEach((w, i) => {
      w.onmessage = (e: MessageEvent<BatchResult>) => {
        this.#queued[i]--;
        const p = this.#pending.get(e.data.seq);
        this.#pending.delete(e.data.seq);
        p?.resolve(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        const err = new Error(`A scoring worker failed: ${e.message}`);
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
      };
    });
  }
}

/** False when a local module file is missing (a compiled binary built without it). */
function moduleExists(url: URL): boolean {
  if (url.protocol !== "file:") return true;
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

export function summaryLine(s: ScoreSummary): string {
  const scored = s.rows - s.errors;
  const mean = scored > 0 ? (s.rewardSum / scored).toFixed(4) : "n/a";
  const valid = scored > 0 ? `${(100 * s.formatValid / scored).toFixed(1)}%` : "n/a";
  return `star score: ${s.rows} rows, mean reward ${mean}, format-valid ${valid}, ` +
    `${s.errors} errors`;
}
