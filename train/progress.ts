/**
 * The progress line on stderr: step, loss, lr, tokens/s and ETA. On a terminal it is redrawn in
 * place (carriage return + clear to end of line) and finished with a newline; otherwise (a log
 * file, CI) each update is its own line. The ETA is the remaining steps times the mean wall time
 * of the steps this process has run (a resumed run does not count the steps before it).
 */

export interface ProgressUpdate {
  /** Optimizer steps done (1-based). */
  step: number;
  loss: number;
  lr: number;
  /** Tokens processed per second over the last step. */
  tokensPerSecond: number;
}

export interface ProgressOptions {
  totalSteps: number;
  /** Steps already done when this process started (a resume). */
  startStep?: number;
  /** Redraw in place; default: stderr is a terminal. */
  tty?: boolean;
  /** Where the text goes; default: stderr. */
  write?: (text: string) => void;
  /** Milliseconds clock; default: performance.now. */
  now?: () => number;
  /** Words in front of the line, e.g. "ckd". */
  label?: string;
}

const encoder = new TextEncoder();

export class Progress {
  readonly #o: Required<Omit<ProgressOptions, "label">> & { label: string };
  readonly #t0: number;
  #drawn = false;

  constructor(opts: ProgressOptions) {
    this.#o = {
      startStep: 0,
      tty: Deno.stderr.isTerminal(),
      write: (t) => Deno.stderr.writeSync(encoder.encode(t)),
      now: () => performance.now(),
      label: "",
      ...opts,
    };
    this.#t0 = this.#o.now();
  }

  /** The line for an update, without control characters. */
  line(u: ProgressUpdate): string {
    const { totalSteps, startStep, label } = this.#o;
    const done = u.step - startStep;
    const elapsed = (this.#o.now() - this.#t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * Math.max(0, totalSteps - u.step) : NaN;
    const parts = [
      `step ${u.step}/${totalSteps}`,
      `loss ${formatNumber(u.loss, 4)}`,
      `lr ${u.lr.toExponential(2)}`,
      `${formatNumber(u.tokensPerSecond, 0)} tok/s`,
      `ETA ${formatDuration(eta)}`,
    ];
    return (label ? `${label} ` : "") + parts.join(" | ");
  }

  update(u: ProgressUpdate): void {
    const text = this.line(u);
    if (this.#o.tty) {
      this.#o.write(`\r${text}\x1b[K`);
      this.#drawn = true;
    } else {
      this.#o.write(`${text}\n`);
    }
  }

  /** Ends the in-place line so later output starts on a fresh line. */
  done(): void {
    if (this.#drawn) this.#o.write("\n");
    this.#drawn = false;
  }
}

function formatNumber(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** Seconds as "42s", "3m05s" or "2h07m"; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
