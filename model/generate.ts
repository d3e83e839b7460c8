/**
 * Generation with the KV cache and continuous batching: prompts (different lengths) are
 * prefilled in packed forwards as slots free up, and every unfinished sequence advances one
 * token per step. A sequence stops when it samples a stop id (<|im_end|>, <|endoftext|>; the id
 * is kept) or after maxNewTokens.
 * Each decode step draws every row's token on the device and reads back only the ids and
 * log-probs (engine/ops/sample.ts); the first token, and every token under top-p alone, is drawn
 * on the host from read-back logits by the same rule (model/sampling.ts), so the tokens do not
 * depend on where they were drawn. The reported log-prob of a token is under the full softmax
 * at temperature 1.
 * Samples of one prompt admitted together share its prefill (the cache rows are copied).
 */
import type { CachedStep, GpuModel } from "./gpu_model.ts";
import type { KvCache } from "./kv_cache.ts";
import { drawToken, sampleSeed, type SamplingParams } from "./sampling.ts";
import { samplePlan } from "../engine/ops/sample.ts";

/** <|im_end|> and <|endoftext|> of the Qwen3 vocabulary. */
export const DEFAULT_STOP_IDS = [151645, 151643];

export interface GenerateRequest {
  prompt: number[];
  /** Row index and sample number: the random stream is seeded by (seed, example, sample). */
  example?: number;
  sample?: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stopIds?: number[];
  /** Most sequences per batch (the cache may allow fewer). */
  maxBatch?: number;
  /** Most prompt tokens per prefill forward (default: what one forward holds). */
  prefillTokens?: number;
  /** Seconds spent prefilling and decoding are added here (wall time, readback included). */
  timing?: GenerateTiming;
}

export interface GenerateTiming {
  prefillSeconds: number;
  decodeSeconds: number;
}

export interface Generation {
  ids: number[];
  logprobs: number[];
  finishReason: "stop" | "length";
}

/**
 * Generates for every request with continuous batching: up to `maxBatch` sequences (as many as
 * the KV cache holds at the longest prompt + maxNewTokens) decode together, one submit a step;
 * a sequence that finishes frees its slot and the next waiting request is prefilled into it
 * (requests admitted together that share a prompt share its prefill). `onDone(i, g)` is called
 * once per request, in request order, as soon as it and every request before it have finished.
 * Returns all results in order. Each sequence's tokens depend only on its own prompt and random
 * stream, never on what it was batched with.
 */
export async function generate(
  model: GpuModel,
  reqs: GenerateRequest[],
  opts: GenerateOptions,
  onDone?: (index: number, g: Generation) => void | Promise<void>,
): Promise<Generation[]> {
  const params = {
    temperature: opts.temperature ?? 1,
    topP: opts.topP ?? 1,
    topK: opts.topK ?? 0,
  };
  const stop = new Set(opts.stopIds ?? DEFAULT_STOP_IDS);
  const res: Generation[] = reqs.map(() => ({ ids: [], logprobs: [], finishReason: "length" }));
  for (const r of reqs) {
    if (r.prompt.length === 0) throw new RangeError("A prompt needs at least one token");
  }
  let emitted = 0;
  const finished = new Array<boolean>(reqs.length).fill(false);
  const emit = async () => {
    while (emitted < reqs.length && finished[emitted]) {
      await onDone?.(emitted, res[emitted]);
      emitted++;
    }
  };
  if (opts.maxNewTokens <= 0 || reqs.length === 0) {
    finished.fill(true);
    await emit();
    return res;
  }
  const maxLen = Math.max(...reqs.map((r) => r.prompt.length)) + opts.maxNewTokens;
  const fit = model.maxCacheSlots(maxLen);
  if (fit < 1) throw new RangeError(`A sequence of ${maxLen} tokens does not fit the KV cache`);
  const slots = Math.min(opts.maxBatch ?? 16, reqs.length, fit);
  const streams = reqs.map((r, j) => sampleSeed(opts.seed ?? 0, r.example ?? j, r.sample ?? 0));
  const cache = model.newCache(slots, maxLen);
  const sampler = onDevice(params, model.config.vocab_size)
    ? model.sampler(slots, params)
    : undefined;
  const owner = new Array<number>(slots).fill(-1); // request in each slot, -1 when free
  /** Takes each request's next token; a finished request frees its slot. */
  const take = async (js: number[], picks: { id: number; logprob: number }[]) => {
    js.forEach((j, a) => {
      res[j].ids.push(picks[a].id);
      res[j].logprobs.push(picks[a].logprob);
      if (stop.has(picks[a].id)) res[j].finishReason = "stop";
      else if (res[j].ids.length < opts.maxNewTokens) return;
      finished[j] = true;
      owner[owner.indexOf(j)] = -1;
    });
    await emit();
  };
  try {
    let next = 0;
    for (;;) {
      // admit waiting requests into free slots; their first token comes from the prefill
      const admitted: { slot: number; req: number }[] = [];
      for (let slot = 0; slot < slots && next < reqs.length; slot++) {
        if (owner[slot] !== -1) continue;
        owner[slot] = next;
        cache.lengths[slot] = 0;
        admitted.push({ slot, req: next++ });
      }
      if (admitted.length > 0) {
        const t0 = performance.now();
        const rows = await prefillShared(
          model,
          cache,
          admitted.map((a) => ({ slot: a.slot, prompt: reqs[a.req].prompt })),
          opts.prefillTokens,
        );
        const js = admitted.map((a) => a.req);
        const picks = js.map((j, a) => drawToken(rows[a], params, streams[j], 0));
        if (opts.timing) opts.timing.prefillSeconds += (performance.now() - t0) / 1000;
        await take(js, picks);
        continue; // slots freed by a one-token answer take the next requests first
      }
      const active = owner.flatMap((j, slot) => (j === -1 ? [] : [{ slot, j }]));
      if (active.length === 0) break;
      const steps = active.map(({ slot, j }) => ({ slot, ids: [res[j].ids.at(-1)!] }));
      const js = active.map((a) => a.j);
      const t0 = performance.now();
      const spent = () => {
        if (opts.timing) opts.timing.decodeSeconds += (performance.now() - t0) / 1000;
      };
      if (sampler) {
        const rowInfo = new Uint32Array(2 * js.length);
        js.forEach((j, a) => rowInfo.set([streams[j], res[j].ids.length], 2 * a));
        const r = await model.sampleNext(cache, steps, sampler, rowInfo);
        spent();
        await take(js, js.map((_, a) => ({ id: r.ids[a], logprob: r.logprobs[a] })));
      } else {
        const rows = await model.lastLogits(cache, steps);
        const picks = js.map((j, a) => drawToken(rows[a], params, streams[j], res[j].ids.length));
        spent();
        await take(js, picks);
      }
    }
  } finally {
    cache.release();
    sampler?.release();
  }
  return res;
}

/**
 * Whether the device draws exactly what the host would: always, except top-p alone, whose
 * nucleus may hold more tokens than the device keeps as candidates (then the host draws from
 * the read-back logits).
 */
export function onDevice(p: SamplingParams, vocab: number): boolean {
  const plan = samplePlan(p, vocab);
  return plan.mode !== "candidates" || plan.topK > 0;
}

/**
 * Prefills the given slots with their prompts: each distinct prompt is run once, and the slots
 * of its other copies get its keys and values (so n samples of a prompt cost one prefill).
 * Returns the logits of every entry's last prompt token, in entry order.
 */
export async function prefillShared(
  model: GpuModel,
  cache: KvCache,
  entries: { slot: number; prompt: number[] }[],
  prefillTokens = Infinity,
): Promise<Float32Array[]> {
  const firstOf = new Map<string, number>();
  const source = entries.map((e, i) => {
    const key = e.prompt.join(",");
    const src = firstOf.get(key);
    if (src === undefined) firstOf.set(key, i);
    return src ?? i;
  });
  const runs = entries.flatMap((
    e,
    i,
  ) => (source[i] === i ? [{ slot: e.slot, ids: e.prompt }] : []));
  // forwards of at most maxT tokens; a longer prompt goes in pieces, one per forward
  const maxT = Math.min(model.maxTokens(), prefillTokens);
  const bySlot = new Map<number, Float32Array>();
  let group: CachedStep[] = [], n = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const rows = await model.lastLogits(cache, group);
    group.forEach((g, i) => bySlot.set(g.slot, rows[i]));
    group = [];
    n = 0;
  };
  for (const run of runs) {
    if (run.ids.length > maxT) {
      await flush();
      for (let off = 0; off < run.ids.length; off += maxT) {
        group = [{ slot: run.slot, ids: run.ids.slice(off, off + maxT) }];
        await flush();
      }
      continue;
    }
    if (n + run.ids.length > maxT) await flush();
    group.push(run);
    n += run.ids.length;
  }
  await flush();
  const copies = source.flatMap((src, i) =>
    src !== i ? [{ from: entries[src].slot, to: entries[i].slot }] : []
  );
  if (copies.length) cache.copySlots(copies);
  return source.map((src) => bySlot.get(entries[src].slot)!);
}
