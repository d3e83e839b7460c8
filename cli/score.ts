/**
 * `star score`: Sim-RL rewards of (prompt, completion, label) rows, offline. Streams the input
 * (constant memory), writes one row per input row in order, an error row for a row that cannot
 * be scored, and a summary on stderr. Exit 1 when any row errored.
 *
 * Parallelism: lines are read on the main thread and scored in batches. A short input is scored
 * in place; once a first full batch exists, one worker per other core starts, each batch goes
 * to a worker with room in its queue or else is scored here, and results are written back in
 * input order with a bounded number of batches unwritten (so memory stays constant). If no
 * worker can start, all is done here.
 */
import type { CommandModule } from "./command.ts";
import type { CommandSpec } from "./args.ts";
import { JsonlWriter, readLines } from "../data/jsonl.ts";
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
 * Lines per batch; batches queued per worker at most; batches read but not yet written at
 * most (per thread), which bounds memory.
 */
const BATCH_LINES = 256;
const QUEUED_PER_WORKER = 2;
const UNWRITTEN_PER_THREAD = 4;

export const command: CommandModule<typeof spec.flags> = {
  spec,
  async run(flags) {
    const out = await JsonlWriter.open(flags.output);
    const s: ScoreSummary = { rows: 0, errors: 0, rewardSum: 0, formatValid: 0 };
    const pool = new Pool(flags.input, workerCount(), out, s);
    try {
      let lines: number[] = [];
      let texts: string[] = [];
      for await (const { line, text } of readLines(flags.input)) {
        if (isBlank(text)) continue;
        lines.push(line);
        texts.push(text);
        if (texts.length === BATCH_LINES) {
          await pool.submit(lines, texts);
          lines = [];
          texts = [];
        }
      }
      if (texts.length > 0) await pool.submit(lines, texts, true);
      await pool.drain();
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

/** Scores batches in place or on workers and writes results in submission order. */
class Pool {
  #workers: Worker[] = [];
  /** Batches posted to each worker and not yet answered. */
  #queued: number[] = [];
  #started = false;
  #nextSeq = 0;
  #nextWrite = 0;
  #done = new Map<number, BatchResult>();
  #waiters: (() => void)[] = [];
  #failure: Error | null = null;

  constructor(
    readonly file: string,
    readonly size: number,
    readonly out: JsonlWriter,
    readonly summary: ScoreSummary,
  ) {}

  /** `last`: no more batches follow (a single short batch is then scored in place). */
  async submit(lines: number[], texts: string[], last = false): Promise<void> {
    if (!this.#started && !(last && this.#nextSeq === 0)) await this.#start();
    const seq = this.#nextSeq++;
    const threads = this.#workers.length + 1;
    while (seq - this.#nextWrite >= threads * UNWRITTEN_PER_THREAD) await this.#wait();
    const batch: Batch = { seq, file: this.file, lines, texts };
    // The least busy worker takes the batch unless all have enough queued; then this thread
    // scores it. Busy cores (other processes) thus shift work here instead of stalling.
    let w = -1;
    for (let i = 0; i < this.#workers.length; i++) {
      if (w < 0 || this.#queued[i] < this.#queued[w]) w = i;
    }
    if (w >= 0 && this.#queued[w] < QUEUED_PER_WORKER) {
      this.#queued[w]++;
      this.#workers[w].postMessage(batch);
    } else {
      this.#accept(scoreBatch(batch));
      await this.#writeReady();
    }
  }

  async drain(): Promise<void> {
    while (this.#nextWrite < this.#nextSeq) await this.#wait();
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
        const w = new Worker(url.href, {
          type: "module",
        });
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
        this.#accept(e.data);
        this.#writeReady().catch((err) => this.#fail(err));
      };
      w.onerror = (e) => {
        e.preventDefault();
        this.#fail(new Error(`A scoring worker failed: ${e.message}`));
      };
    });
  }

  #accept(r: BatchResult): void {
    this.#done.set(r.seq, r);
  }

  #writing = false;
  async #writeReady(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      for (let r = this.#done.get(this.#nextWrite); r; r = this.#done.get(this.#nextWrite)) {
        this.#done.delete(this.#nextWrite);
        const s = this.summary;
        s.rows += r.rows;
        s.errors += r.errors;
        s.rewardSum += r.rewardSum;
        s.formatValid += r.formatValid;
        await this.out.writeText(r.text);
        this.#nextWrite++;
        this.#wake();
      }
    } finally {
      this.#writing = false;
    }
  }

  #wait(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiters.push(() => this.#failure ? reject(this.#failure) : resolve());
    });
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#wake();
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

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}
