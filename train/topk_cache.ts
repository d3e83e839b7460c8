/**
 * The offline teacher cache (`teacher_topk_cache: DIR`): the teacher's top-k ids and log-probs
 * at every target position of every trainset row, computed once and read back while training
 * without the teacher. DIR holds
 *   meta.json  {"format", "k", "vocab_size", "teacher", "data"}: what the cache was made from
 *   topk.bin   one record per row, rows in trainset order 0, 1, 2, ... (little-endian):
 *              u32 magic "TOPK", u32 row, u32 P target positions, P·k u32 ids, P·k f32 log-probs
 *              (each position's k entries descending, full-vocabulary log-probs)
 * Writing is append-only and resumable: opening scans the records, truncates a torn last one and
 * continues after the last complete row. Reading keeps only the record offsets in memory.
 * Not done: compression or f16 log-probs (a 0.6B-scale run stores 8·k bytes per target token).
 */
import { join } from "node:path";

export const TOPK_CACHE_FORMAT = "star-topk-v1";
const MAGIC = 0x4b504f54; // "TOPK" read as a little-endian u32
const HEADER = 12;

/** What a cache was made from; a mismatch with the run's config is an error. */
export interface TopkCacheMeta {
  k: number;
  vocab_size: number;
  /** The teacher model directory. */
  teacher: string;
  /** The trainset file. */
  data: string;
}

/** A problem with the cache folder: names it and the field. Exits 1. */
export class TopkCacheError extends Error {
  override name = "TopkCacheError";
  readonly exitCode = 1;
}

/** One row's top-k: P positions × k entries. */
export interface RowTopk {
  row: number;
  positions: number;
  ids: Uint32Array; // (P, k)
  logprobs: Float32Array; // (P, k)
}

async function readMeta(dir: string): Promise<(TopkCacheMeta & { format: string }) | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new TopkCacheError(
      `Cannot read the teacher top-k cache "${dir}": meta.json is unreadable (${
        (err as Error).message.split("\n")[0]
      })`,
    );
  }
}

function checkMeta(dir: string, have: TopkCacheMeta & { format: string }, want: TopkCacheMeta) {
  if (have.format !== TOPK_CACHE_FORMAT) {
    throw new TopkCacheError(
      `Cannot use the teacher top-k cache "${dir}": its format is "${have.format}", expected "${TOPK_CACHE_FORMAT}"`,
    );
  }
  const names: Record<keyof TopkCacheMeta, string> = {
    k: "kd_topk",
    vocab_size: "the vocabulary size",
    teacher: "teacher",
    data: "data",
  };
  for (const key of Object.keys(names) as (keyof TopkCacheMeta)[]) {
    if (have[key] !== want[key]) {
      throw new TopkCacheError(
        `Cannot use the teacher top-k cache "${dir}": it was made with ${names[key]} ${
          JSON.stringify(have[key])
        }, this run has ${JSON.stringify(want[key])}; use another folder or remove it`,
      );
    }
  }
}

/** Offsets of the complete records of topk.bin, and where the valid prefix ends. */
async function scan(
  file: Deno.FsFile,
  k: number,
): Promise<{ offsets: number[]; positions: number[]; end: number }> {
  const size = (await file.stat()).size;
  const offsets: number[] = [], positions: number[] = [];
  const head = new Uint8Array(HEADER);
  let off = 0;
  while (off + HEADER <= size) {
    await file.seek(off, Deno.SeekMode.Start);
    if (!(await readFull(file, head))) break;
    const v = new DataView(head.buffer);
    const magic = v.getUint32(0, true), row = v.getUint32(4, true), P = v.getUint32(8, true);
    const len = HEADER + 8 * P * k;
    if (magic !== MAGIC || row !== offsets.length || off + len > size) break;
    offsets.push(off);
    positions.push(P);
    off += len;
  }
  return { offsets, positions, end: off };
}

async function readFull(file: Deno.FsFile, buf: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

/** Appends rows to a cache, resuming after its last complete row. */
export class TopkCacheWriter {
  private constructor(
    readonly dir: string,
    readonly k: number,
    private file: Deno.FsFile,
    /** Rows already in the cache: the next row to write. */
    public rows: number,
  ) {}

  /** Opens (creating) the cache; a cache made from something else is an error. */
  static async open(dir: string, meta: TopkCacheMeta): Promise<TopkCacheWriter> {
    await Deno.mkdir(dir, { recursive: true });
    const have = await readMeta(dir);
    if (have) checkMeta(dir, have, meta);
    else {
      const tmp = join(dir, "meta.json.tmp");
      await Deno.writeTextFile(
        tmp,
        JSON.stringify({ format: TOPK_CACHE_FORMAT, ...meta }, null, 2) + "\n",
      );
      await Deno.rename(tmp, join(dir, "meta.json"));
    }
    const file = await Deno.open(join(dir, "topk.bin"), { read: true, write: true, create: true });
    const { offsets, end } = await scan(file, meta.k);
    await file.truncate(end);
    await file.seek(end, Deno.SeekMode.Start);
    return new TopkCacheWriter(dir, meta.k, file, offsets.length);
  }

  /** Appends row `this.rows`: ids and log-probs of its P target positions, (P, k) each. */
  async append(ids: ArrayLike<number>, logprobs: ArrayLike<number>): Promise<void> {
    const n = ids.length;
    if (n % this.k !== 0 || logprobs.length !== n) {
      throw new RangeError(
        `A cache row needs P·${this.k} ids and as many log-probs, got ${n} and ${logprobs.length}`,
      );
    }
    const P = n / this.k;
    const buf = new ArrayBuffer(HEADER + 8 * n);
    const v = new DataView(buf);
    v.setUint32(0, MAGIC, true);
    v.setUint32(4, this.rows, true);
    v.setUint32(8, P, true);
    new Uint32Array(buf, HEADER, n).set(ids);
    new Float32Array(buf, HEADER + 4 * n, n).set(logprobs);
    const bytes = new Uint8Array(buf);
    let off = 0;
    while (off < bytes.length) off += await this.file.write(bytes.subarray(off));
    this.rows++;
  }

  close(): void {
    this.file.close();
  }
}

/** Random access to the rows of a complete (or partial) cache. */
export class TopkCacheReader {
  private constructor(
    readonly dir: string,
    readonly k: number,
    private file: Deno.FsFile,
    private offsets: number[],
    private positions: number[],
  ) {}

  /** Opens a cache for reading; its meta must match `meta`. */
  static async open(dir: string, meta: TopkCacheMeta): Promise<TopkCacheReader> {
    const have = await readMeta(dir);
    if (!have) {
      throw new TopkCacheError(
        `Cannot read the teacher top-k cache "${dir}": meta.json is missing`,
      );
    }
    checkMeta(dir, have, meta);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(join(dir, "topk.bin"), { read: true });
    } catch (err) {
      throw new TopkCacheError(
        `Cannot read the teacher top-k cache "${dir}": ${(err as Error).message.split("\n")[0]}`,
      );
    }
    const { offsets, positions } = await scan(file, meta.k);
    return new TopkCacheReader(dir, meta.k, file, offsets, positions);
  }

  /** Complete rows in the cache. */
  get rows(): number {
    return this.offsets.length;
  }

  /** Target positions of a row, without reading it. */
  positionsOf(row: number): number {
    this.check(row);
    return this.positions[row];
  }

  private check(row: number): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.offsets.length) {
      throw new TopkCacheError(
        `Cannot read row ${row} of the teacher top-k cache "${this.dir}": it holds rows 0..${
          this.offsets.length - 1
        }`,
      );
    }
  }

  async read(row: number): Promise<RowTopk> {
    this.check(row);
    const P = this.positions[row], n = P * this.k;
    const buf = new Uint8Array(8 * n);
    await this.file.seek(this.offsets[row] + HEADER, Deno.SeekMode.Start);
    if (!(await readFull(this.file, buf))) {
      throw new TopkCacheError(`Cannot read row ${row} of "${this.dir}": the file is short`);
    }
    return {
      row,
      positions: P,
      ids: new Uint32Array(buf.buffer, 0, n),
      logprobs: new Float32Array(buf.buffer, 4 * n, n),
    };
  }

  close(): void {
    this.file.close();
  }
}
