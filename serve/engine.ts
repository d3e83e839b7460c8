/**
 * The serving engine: one model, a KV cache of `slots` sequences of up to `maxLen` tokens each,
 * and one loop that owns the device. Each turn of the loop runs queued jobs (prompt log-probs),
 * admits waiting sequences into free slots (prefilled together; sequences with the same prompt
 * admitted together share its prefill), then advances every running sequence one token:
 * continuous batching, so a request that arrives joins the running decode batch at the next
 * step and a finished or abandoned one frees its slot at once.
 *
 * Tokens are drawn as model/generate.ts draws them (the same rule on the device and on the
 * host; model/sampling.ts): sequences are grouped by sampling settings, each group sampled on
 * the device in one submit; sequences that want the top log-probs of every token, and top-p
 * alone, are drawn on the host from read-back logits. A sequence's tokens depend only on its
 * prompt, settings and random stream, never on what it was batched with.
 */
import type { GpuModel } from "../model/gpu_model.ts";
import type { KvCache } from "../model/kv_cache.ts";
import { onDevice, prefillShared } from "../model/generate.ts";
import { drawToken, logSoftmax, type SamplingParams, topK } from "../model/sampling.ts";
import type { SampleTokens } from "../model/objectives.ts";

/** A token and its log-prob under the full softmax at temperature 1. */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** One generated token; `top`: the most likely tokens at its position, when asked for. */
export interface TokenEvent extends TokenLogprob {
  top?: TokenLogprob[];
}

export type EndReason = "stop" | "length" | "abort" | "error";

export interface SequenceRequest {
  prompt: number[];
  maxTokens: number;
  params: SamplingParams;
  /** The random stream (model/sampling.ts sampleSeed). */
  stream: number;
  /** Top log-probs wanted per token (0: none). */
  topLogprobs?: number;
  /** Called for each token, an end token included; returning true ends the sequence ("stop"). */
  onToken(t: TokenEvent): boolean | void;
  /** Called once when the sequence ends; `error` with reason "error". */
  onEnd(reason: EndReason, error?: Error): void;
  /** Aborting frees the sequence's slot (or its place in the queue) before the next step. */
  signal?: AbortSignal;
}

export interface ServeEngineOptions {
  /** Sequences decoded together at most. */
  slots: number;
  /** Prompt + generated tokens of one sequence at most. */
  maxLen: number;
  /** Token ids that end a sequence. */
  stopIds: number[];
}

interface Seq {
  req: SequenceRequest;
  generated: number;
  last: number;
  slot: number;
}

/** Distinct sampling settings with a device sampler kept ready, at most. */
const MAX_SAMPLERS = 8;

export class ServeEngine {
  readonly slots: number;
  readonly maxLen: number;
  #model: GpuModel;
  #cache: KvCache;
  #stop: Set<number>;
  #running: (Seq | undefined)[];
  #waiting: Seq[] = [];
  #jobs: (() => Promise<void>)[] = [];
  #samplers = new Map<string, SampleTokens>();
  #wake: (() => void) | undefined;
  #closed = false;
  #loop: Promise<void>;
  /** Tokens generated since the engine started (prefill first tokens included). */
  generatedTokens = 0;

  constructor(model: GpuModel, opts: ServeEngineOptions) {
    const fit = model.maxCacheSlots(opts.maxLen);
    if (fit < 1) {
      throw new RangeError(`A sequence of ${opts.maxLen} tokens does not fit the KV cache`);
    }
    this.#model = model;
    this.slots = Math.max(1, Math.min(opts.slots, fit));
    this.maxLen = opts.maxLen;
    this.#cache = model.newCache(this.slots, opts.maxLen);
    this.#stop = new Set(opts.stopIds);
    this.#running = new Array(this.slots).fill(undefined);
    this.#loop = this.#run();
  }

  /** Sequences running and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.#running.filter((s) => s).length, waiting: this.#waiting.length };
  }

  /**
   * Queues a sequence. Throws RangeError when it cannot fit a slot (prompt + maxTokens over
   * maxLen) or is empty, and Error once the engine is closed.
   */
  submit(req: SequenceRequest): void {
    if (this.#closed) throw new Error("The engine is shutting down");
    if (req.prompt.length === 0) throw new RangeError("The prompt is empty");
    if (req.prompt.length + req.maxTokens > this.maxLen) {
      throw new RangeError(
        `This model's maximum context length is ${this.maxLen} tokens; the prompt has ` +
          `${req.prompt.length} and ${req.maxTokens} more were asked for`,
      );
    }
    if (req.maxTokens < 1) throw new RangeError("max_tokens must be at least 1");
    this.#waiting.push({ req, generated: 0, last: -1, slot: -1 });
    this.#wake?.();
  }

  /** Runs `job` on the engine's loop, between decode steps (device work never interleaves). */
  run<T>(job: (model: GpuModel) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("The engine is shutting down"));
    return new Promise<T>((resolve, reject) => {
      this.#jobs.push(() => job(this.#model).then(resolve, reject));
      this.#wake?.();
    });
  }

  /** Stops taking work, lets every queued and running sequence finish, and frees the cache. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        while (this.#jobs.length) await this.#jobs.shift()!();
        this.#dropAborted();
        const admitted = this.#admit();
        if (admitted.length) {
          await this.#guard(admitted, () => this.#prefill(admitted));
          continue; // slots freed by one-token answers take the next sequences first
        }
        const active = this.#running.filter((s): s is Seq => s !== undefined);
        if (active.length === 0) {
          if (this.#closed && this.#waiting.length === 0 && this.#jobs.length === 0) break;
          await new Promise<void>((r) => (this.#wake = r));
          this.#wake = undefined;
          continue;
        }
        for (const group of this.#groups(active)) {
          await this.#guard(group.seqs, () => this.#decode(group.seqs, group.device));
        }
      }
    } finally {
      this.#cache.release();
      for (const s of this.#samplers.values()) s.release();
    }
  }

  /** Ends aborted sequences, waiting or running. */
  #dropAborted(): void {
    this.#waiting = this.#waiting.filter((s) => {
      if (!s.req.signal?.aborted) return true;
      s.req.onEnd("abort");
      return false;
    });
    for (const s of this.#running) if (s?.req.signal?.aborted) this.#end(s, "abort");
  }

  #admit(): Seq[] {
    const out: Seq[] = [];
    for (let slot = 0; slot < this.slots && this.#waiting.length; slot++) {
      if (this.#running[slot]) continue;
      const s = this.#waiting.shift()!;
      s.slot = slot;
      this.#cache.lengths[slot] = 0;
      this.#running[slot] = s;
      out.push(s);
    }
    return out;
  }

  /** A failure of a device step ends the sequences in it (with the error), not the engine. */
  async #guard(seqs: Seq[], step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const s of seqs) if (this.#running[s.slot] === s) this.#end(s, "error", e);
    }
  }

  async #prefill(seqs: Seq[]): Promise<void> {
    const rows = await prefillShared(
      this.#model,
      this.#cache,
      seqs.map((s) => ({ slot: s.slot, prompt: s.req.prompt })),
    );
    seqs.forEach((s, i) => this.#take(s, this.#hostDraw(s, rows[i])));
  }

  /** Running sequences grouped by how their next token is drawn: one group per device setting. */
  #groups(active: Seq[]): { seqs: Seq[]; device?: SamplingParams }[] {
    const byKey = new Map<string, { seqs: Seq[]; device?: SamplingParams }>();
    const vocab = this.#model.config.vocab_size;
    for (const s of active) {
      const dev = !(s.req.topLogprobs ?? 0) && onDevice(s.req.params, vocab);
      const key = dev ? paramsKey(s.req.params) : "host";
      let g = byKey.get(key);
      if (!g) byKey.set(key, g = { seqs: [], device: dev ? s.req.params : undefined });
      g.seqs.push(s);
    }
    return [...byKey.values()];
  }

  async #decode(seqs: Seq[], device: SamplingParams | undefined): Promise<void> {
    const steps = seqs.map((s) => ({ slot: s.slot, ids: [s.last] }));
    if (device) {
      const sampler = this.#sampler(device);
      const info = new Uint32Array(2 * seqs.length);
      seqs.forEach((s, i) => info.set([s.req.stream >>> 0, s.generated], 2 * i));
      const r = await this.#model.sampleNext(this.#cache, steps, sampler, info);
      seqs.forEach((s, i) => this.#take(s, { id: r.ids[i], logprob: r.logprobs[i] }));
      return;
    }
    const rows = await this.#model.lastLogits(this.#cache, steps);
    seqs.forEach((s, i) => this.#take(s, this.#hostDraw(s, rows[i])));
  }

  #hostDraw(s: Seq, logits: Float32Array): TokenEvent {
    const t: TokenEvent = drawToken(logits, s.req.params, s.req.stream, s.generated);
    const k = s.req.topLogprobs ?? 0;
    if (k > 0) t.top = topLogprobs(logits, k);
    return t;
  }

  #take(s: Seq, t: TokenEvent): void {
    if (this.#running[s.slot] !== s) return;
    s.generated++;
    s.last = t.id;
    this.generatedTokens++;
    let stop: boolean | void;
    try {
      stop = s.req.onToken(t);
    } catch (err) {
      this.#end(s, "error", err as Error);
      return;
    }
    if (this.#stop.has(t.id) || stop === true) this.#end(s, "stop");
    else if (s.generated >= s.req.maxTokens) this.#end(s, "length");
  }

  #end(s: Seq, reason: EndReason, error?: Error): void {
    this.#running[s.slot] = undefined;
    s.req.onEnd(reason, error);
  }

  #sampler(p: SamplingParams): SampleTokens {
    const key = paramsKey(p);
    let s = this.#samplers.get(key);
    if (s) {
      this.#samplers.delete(key); // kept in last-use order
    } else {
      if (this.#samplers.size >= MAX_SAMPLERS) {
        const [oldKey, old] = this.#samplers.entries().next().value!;
        old.release();
        this.#samplers.delete(oldKey);
      }
      s = this.#model.sampler(this.slots, p);
    }
    this.#samplers.set(key, s);
    return s;
  }
}

function paramsKey(p: SamplingParams): string {
  return `${p.temperature}/${p.topP}/${p.topK}`;
}

/** The k most likely tokens of a logits row with their full-softmax log-probs, descending. */
export function topLogprobs(logits: ArrayLike<number>, k: number): TokenLogprob[] {
  const lp = logSoftmax(logits);
  return topK(lp, Math.min(k, lp.length)).map((id) => ({ id, logprob: lp[id] }));
}
