/**
 * Embedding gather out[t] = table[ids[t]] and its gradient dTable[ids[t]] += dOut[t], over a
 * table held as row shards (each within the binding limit). Ids must be < V: an id in no shard
 * leaves its output row unwritten. The gradient sums repeated ids in token order (deterministic).
 * Legend: T tokens, V vocab_size, D hidden_size.
 */
import code from "../../wgsl/embedding.wgsl" with { type: "text" };
import { grid, type Recorder } from "../recorder.ts";
import type { Tensor } from "../tensor.ts";
import { family, need, params } from "./_util.ts";

/** Float64 reference gather: out (T, D). */
export function embeddingForwardRef(
  table: ArrayLike<number>,
  ids: ArrayLike<number>,
  { dim }: { dim: number },
): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) {
    for (let d = 0; d < dim; d++) out[t * dim + d] = table[ids[t] * dim + d];
  }
  return out;
}

/** Float64 reference scatter-add: dTable (V, D), returned fresh (the kernel accumulates). */
export function embeddingBackwardRef(
  dOut: ArrayLike<number>,
  ids: ArrayLike<number>,
  { vocab, dim }: { vocab: number; dim: number },
): Float64Array {
  const dTable = new Float64Array(vocab * dim);
  for (let t = 0; t < ids.length; t++) {
    for (let d = 0; d < dim; d++) dTable[ids[t] * dim + d] += dOut[t * dim + d];
  }
  return dTable;
}

// ---- GPU kernels ----------------------------------------------------------------------------

const WG = 256;
const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
const embeddingKernel = family("wgsl/embedding.wgsl", code, {
  forward: ["params:uniform", "ids:read", "table:read", "out:storage"],
  backward_links: ["params:uniform", "ids:read", "links:storage"],
  backward: ["params:uniform", "ids:read", "links:storage", "dOut:read", "dTable:storage"],
});

/**
 * The table as row shards: either one tensor or a list (e.g. rowChunks() of a chunked
 * tensor), consecutive in vocabulary order. Each shard is (rows, D).
 */
export type Shards = Tensor | Tensor[];

function shardList(table: Shards, dim: number): { t: Tensor; start: number; rows: number }[] {
  const list = Array.isArray(table) ? table : [table];
  let start = 0;
  return list.map((t) => {
    const rows = t.numel / dim;
    if (!Number.isInteger(rows)) {
      throw new RangeError(`Embedding shard "${t.label}" [${t.shape}] is not a multiple of ${dim}`);
    }
    const s = { t, start, rows };
    start += rows;
    return s;
  });
}

/** out (T, D) = table[ids]; the table (V, D) in f32/f16/bf16, one dispatch per shard. */
export function embeddingForward(
  rec: Recorder,
  o: { out: Tensor; ids: Tensor; table: Shards; tokens: number; dim: number },
): void {
  need(o.ids, "Embedding ids", o.tokens, "u32");
  need(o.out, "Embedding output", o.tokens * o.dim);
  for (const s of shardList(o.table, o.dim)) {
    const dtype = s.t.dtype;
    if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16") {
      throw new TypeError(`Embedding table "${s.t.label}" must be f32, f16 or bf16`);
    }
    rec.dispatch(
      embeddingKernel(rec, "forward", { WG, TABLE_DTYPE: DTYPE_CODE[dtype] }),
      {
        params: params(rec, {
          tokens: o.tokens,
          dim: o.dim,
          shardStart: s.start,
          shardRows: s.rows,
        }),
        ids: o.ids,
        table: s.t,
        out: o.out,
      },
      grid(o.tokens * o.dim, WG),
    );
  }
}

/**
 * dTable (V, D, f32 shards) += scatter of dOut (T, D) by ids; `links` is a (T) u32 scratch
 * tensor. Tokens sharing an id are summed in token order by one invocation (deterministic).
 */
export function embeddingBackward(
  rec: Recorder,
  o: { dTable: Shards; dOut: Tensor; ids: Tensor; links: Tensor; tokens: number; dim: number },
): void {
  need(o.ids, "Embedding ids", o.tokens, "u32");
  need(o.links, "Embedding links scratch", o.tokens, "u32");
  need(o.dOut, "Embedding dOut", o.tokens * o.dim);
  const base = { tokens: o.tokens, dim: o.dim };
  rec.dispatch(
    embeddingKernel(rec, "backward_links", { WG }),
    {
      params: params(rec, { ...base, shardStart: 0, shardRows: 0 }),
      ids: o.ids,
      links: o.links,
    },
    grid(o.tokens, WG),
  );
  for (const s of shardList(o.dTable, o.dim)) {
    need(s.t, "Embedding dTable", s.rows * o.dim);
    rec.dispatch(
      embeddingKernel(rec, "backward", { WG }),
      {
        params: params(rec, { ...base, shardStart: s.start, shardRows: s.rows }),
        ids: o.ids,
        links: o.links,
        dOut: o.dOut,
        dTable: s.t,
      },
      grid(o.tokens * o.dim, WG),
    );
  }
}
