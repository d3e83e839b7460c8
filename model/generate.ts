/**
 * Generation with the KV cache: the prompts of a batch (different lengths) are prefilled in one
 * packed forward, then every unfinished sequence advances one token per step. A sequence stops
 * when it samples a stop id (<|im_end|>, <|endoftext|>; the id is kept) or after maxNewTokens.
 * Each step reads back the last rows' logits and picks tokens on the CPU (model/sampling.ts);
 * the reported log-prob of a token is under the full softmax at temperature 1.
 * Samples of one prompt share its prefill (the cache rows are copied).
 * Legend: B sequences in a batch, S cache length per sequence.
 */
import type { CachedStep, GpuModel } from "./gpu_model.ts";
import type { KvCache } from "./kv_cache.ts";
import { chooseToken, logSoftmax, SampleRng, sampleSeed } from "./sampling.ts";

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
}

export interface Generation {
  ids: number[];
  logprobs: number[];
  finishReason: "stop" | "length";
}

/**
 * Generates for every request, in batches; `onDone(i, g)` is called once per request as soon as
 * its batch has finished (in request order within a batch). Returns all results in order.
 */
export async function generate(
  model: GpuModel,
  reqs: GenerateRequest[],
  opts: GenerateOptions,
  onDone?: (index: number, g: Generation) => void | Promise<void>,
): Promise<Generation[]> {
  const out: Generation[] = [];
  let i = 0;
  while (i < reqs.length) {
    // grow the batch while the cache of all its sequences fits one binding
    let n = 0, maxLen = 0;
    while (i + n < reqs.length && n < (opts.maxBatch ?? 16)) {
      const len = Math.max(maxLen, reqs[i + n].prompt.length + opts.maxNewTokens);
      if (n > 0 && model.maxCacheSlots(len) < n + 1) break;
      maxLen = len;
      n++;
    }
    if (model.maxCacheSlots(maxLen) < 1) {
      throw new RangeError(`A sequence of ${maxLen} tokens does not fit the KV cache`);
    }
    const batch = reqs.slice(i, i + n);
    const res = await generateBatch(model, batch, opts, maxLen);
    for (let j = 0; j < n; j++) {
      out.push(res[j]);
      await onDone?.(i + j, res[j]);
    }
    i += n;
  }
  return out;
}

async function generateBatch(
  model: GpuModel,
  reqs: GenerateRequest[],
  opts: GenerateOptions,
  maxLen: number,
): Promise<Generation[]> {
  const params = {
    temperature: opts.temperature ?? 1,
    topP: opts.topP ?? 1,
    topK: opts.topK ?? 0,
  };
  const stop = new Set(opts.stopIds ?? DEFAULT_STOP_IDS);
  const res: Generation[] = reqs.map(() => ({ ids: [], logprobs: [], finishReason: "length" }));
  const rngs = reqs.map((r, j) =>
    new SampleRng(sampleSeed(opts.seed ?? 0, r.example ?? j, r.sample ?? 0))
  );
  for (const r of reqs) {
    if (r.prompt.length === 0) throw new RangeError("A prompt needs at least one token");
  }
  if (opts.maxNewTokens <= 0) return res;
  const cache = model.newCache(reqs.length, maxLen);
  try {
    let active = reqs.map((_, j) => j);
    let rows = await prefillShared(model, cache, reqs, opts.prefillTokens);
    while (active.length > 0) {
      const next: number[] = [];
      active.forEach((j, a) => {
        const tok = chooseToken(rows[a], params, rngs[j]);
        res[j].ids.push(tok);
        res[j].logprobs.push(logSoftmax(rows[a])[tok]);
        if (stop.has(tok)) res[j].finishReason = "stop";
        else if (res[j].ids.length < opts.maxNewTokens) next.push(j);
      });
      active = next;
      if (active.length === 0) break;
      rows = await model.lastLogits(
        cache,
        active.map((j) => ({ slot: j, ids: [res[j].ids.at(-1)!] })),
      );
    }
  } finally {
    cache.release();
  }
  return res;
}

/**
 * Prefills the cache: each distinct prompt is run once, and the slots of its other samples get
 * a copy of its keys and values (so --n samples cost one prefill). Returns the logits of every
 * slot's last prompt token.
 */
async function prefillShared(
  model: GpuModel,
  cache: KvCache,
  reqs: GenerateRequest[],
  prefillTokens = Infinity,
): Promise<Float32Array[]> {
  const firstOf = new Map<string, number>();
  const source = reqs.map((r, j) => {
    const key = r.prompt.join(",");
    const src = firstOf.get(key);
    if (src === undefined) firstOf.set(key, j);
    return src ?? j;
  });
  const runs = reqs.flatMap((r, j) => (source[j] === j ? [{ slot: j, ids: r.prompt }] : []));
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
  const copies = source.flatMap((src, j) => (src !== j ? [{ from: src, to: j }] : []));
  if (copies.length) cache.copySlots(copies);
  return source.map((src) => bySlot.get(src)!);
}
