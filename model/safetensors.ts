/**
 * safetensors files, read and written in the layout transformers, vLLM and the Rust crate use:
 * an 8-byte little-endian header length N, N bytes of compact JSON (`__metadata__` first, then
 * each tensor's {dtype, shape, data_offsets}, padded with spaces to a multiple of 8), then the
 * tensors' bytes back to back in header order. Sharded checkpoints add
 * `model.safetensors.index.json` ({metadata: {total_size}, weight_map: {name: file}}).
 * Reading never loads a whole file: the header is parsed, then each tensor's byte range is read
 * with a seek on an open file handle. Writing streams each tensor's bytes (in chunks) to disk.
 * Only F32, F16 and BF16 tensors can be read as numbers; other dtypes are listed but refused.
 */
import { basename, join } from "node:path";

export type StDtype = "F32" | "F16" | "BF16";

const BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A bad or mismatched checkpoint file. Exits 1. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
  readonly exitCode = 1;
}

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range of the data in `file`. */
  start: number;
  end: number;
  file: string;
}

export const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------
// dtype conversion (little-endian host assumed, as on every platform Deno runs on)

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bf16 bits -> f32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const o = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) o[i] = bits[i] << 16;
  return out;
}

/** f32 -> bf16 bits, round to nearest even (as torch's `.to(torch.bfloat16)`); NaN stays NaN. */
export function f32ToBf16(x: Float32Array, out = new Uint16Array(x.length)): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** f16 bits -> f32 (exact, subnormals included). */
export function f16ToF32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    out[i] = e === 0
      ? s * m * 2 ** -24
      : e === 31
      ? (m ? NaN : s * Infinity)
      : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** f32 -> f16 bits, round to nearest even; overflow becomes infinity. */
export function f32ToF16(x: Float32Array, out = new Uint16Array(x.length)): Uint16Array {
  for (let i = 0; i < x.length; i++) {
    f32Scratch[0] = x[i];
    const b = u32Scratch[0];
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    const man = b & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (man ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      // subnormal (or zero): shift the implicit-1 mantissa right, rounding to nearest even
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const full = man | 0x800000;
      const shift = 14 - e;
      let v = full >>> shift;
      const rem = full & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (v & 1))) v++;
      out[i] = sign | v;
    } else {
      let v = (e << 10) | (man >>> 13);
      const rem = man & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (v & 1))) v++; // may carry into the exponent: correct
      out[i] = sign | v;
    }
  }
  return out;
}

/** Raw little-endian bytes of `dtype` -> f32 values. */
export function bytesToF32(bytes: Uint8Array, dtype: string, name = "tensor"): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case "F32":
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    case "BF16":
      return bf16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case "F16":
      return f16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    default:
      throw new CheckpointError(
        `Tensor "${name}" has dtype ${dtype}; star reads F32, F16 and BF16`,
      );
  }
}

/** f32 values -> raw little-endian bytes of `dtype`. */
export function f32ToBytes(x: Float32Array, dtype: StDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const bits = dtype === "BF16" ? f32ToBf16(x) : f32ToF16(x);
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

// ---------------------------------------------------------------------------------------------
// reading

/** One open .safetensors file: its header, and tensor bytes read on demand by seek. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string> | null,
    /** Byte length of the header JSON (padding included). */
    readonly headerLength: number,
    private fh: Deno.FsFile,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let fh: Deno.FsFile;
    try {
      fh = await Deno.open(path, { read: true });
    } catch (err) {
      throw new CheckpointError(`Cannot read "${path}": ${(err as Error).message.split("\n")[0]}`);
    }
    try {
      const size = (await fh.stat()).size;
      const bad = (why: string) => new CheckpointError(`Cannot read "${path}": ${why}`);
      if (size < 8) throw bad("the file is too short to be safetensors");
      const lenBytes = await readAt(fh, 0, 8);
      const n = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
      if (n > 100_000_000 || 8 + n > size) {
        throw bad(`header length ${n} does not fit the file (${size} bytes)`);
      }
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(
          new TextDecoder("utf-8", { fatal: true }).decode(await readAt(fh, 8, n)),
        );
      } catch (err) {
        throw bad(`the header is not valid JSON (${(err as Error).message})`);
      }
      if (header === null || typeof header !== "object" || Array.isArray(header)) {
        throw bad("the header is not a JSON object");
      }
      const base = 8 + n;
      const tensors = new Map<string, TensorInfo>();
      let metadata: Record<string, string> | null = null;
      const ranges: [number, number, string][] = [];
      for (const [name, v] of Object.entries(header)) {
        if (name === "__metadata__") {
          metadata = v as Record<string, string>;
          continue;
        }
        const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        const off = t?.data_offsets;
        if (
          typeof t?.dtype !== "string" || !Array.isArray(t.shape) ||
          !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
          !Array.isArray(off) || off.length !== 2 || !off.every(Number.isSafeInteger)
        ) {
          throw bad(`tensor "${name}" has a malformed header entry`);
        }
        const [s, e] = off as number[];
        const width = BYTES[t.dtype];
        if (width === undefined) throw bad(`tensor "${name}" has unknown dtype ${t.dtype}`);
        if (e < s || e - s !== numelOf(t.shape as number[]) * width || base + e > size) {
          throw bad(
            `tensor "${name}" data_offsets [${s}, ${e}] do not match its ${t.dtype} shape ` +
              `[${t.shape}] or the file size`,
          );
        }
        tensors.set(name, {
          name,
          dtype: t.dtype,
          shape: t.shape as number[],
          start: base + s,
          end: base + e,
          file: path,
        });
        ranges.push([s, e, name]);
      }
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) {
        if (ranges[i][0] < ranges[i - 1][1]) {
          throw bad(`tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
        }
      }
      return new SafetensorsFile(path, tensors, metadata, n, fh);
    } catch (err) {
      fh.close();
      throw err;
    }
  }

  /** Tensor names in data order (the order of their bytes in the file). */
  names(): string[] {
    return [...this.tensors.values()].sort((a, b) => a.start - b.start).map((t) => t.name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`Tensor "${name}" is not in "${this.path}"`);
    return t;
  }

  /** The raw bytes of one tensor (or of a byte sub-range of it, relative to its start). */
  async readBytes(name: string, range?: { start: number; end: number }): Promise<Uint8Array> {
    const t = this.info(name);
    const s = t.start + (range?.start ?? 0);
    const e = range ? t.start + range.end : t.end;
    return await readAt(this.fh, s, e - s);
  }

  /** One tensor as f32 values, converted from its stored dtype. */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    return bytesToF32(await this.readBytes(name), t.dtype, name);
  }

  close(): void {
    this.fh.close();
  }
}

async function readAt(fh: Deno.FsFile, pos: number, len: number): Promise<Uint8Array> {
  const buf = new Uint8Array(len);
  await fh.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = await fh.read(buf.subarray(got));
    if (n === null) throw new CheckpointError(`Unexpected end of file at byte ${pos + got}`);
    got += n;
  }
  return buf;
}

export const INDEX_FILE = "model.safetensors.index.json";
export const SINGLE_FILE = "model.safetensors";

/**
 * The tensors of a model directory: `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`. Files open lazily and stay open until close().
 */
export class Checkpoint {
  private files = new Map<string, SafetensorsFile>();
  private constructor(
    readonly dir: string,
    readonly tensors: Map<string, TensorInfo>,
    opened: SafetensorsFile[],
  ) {
    for (const f of opened) this.files.set(f.path, f);
  }

  static async open(dir: string): Promise<Checkpoint> {
    const indexPath = join(dir, INDEX_FILE);
    const single = join(dir, SINGLE_FILE);
    if (await exists(indexPath)) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(await Deno.readTextFile(indexPath));
      } catch (err) {
        throw new CheckpointError(`Cannot read "${indexPath}": ${(err as Error).message}`);
      }
      const map = index?.weight_map;
      if (!map || typeof map !== "object") {
        throw new CheckpointError(`Cannot read "${indexPath}": field "weight_map" is missing`);
      }
      const tensors = new Map<string, TensorInfo>();
      const opened: SafetensorsFile[] = [];
      for (const shard of [...new Set(Object.values(map))]) {
        const f = await SafetensorsFile.open(join(dir, shard));
        opened.push(f);
        for (const [name, t] of f.tensors) {
          if (map[name] === shard) tensors.set(name, t);
        }
      }
      for (const [name, shard] of Object.entries(map)) {
        if (!tensors.has(name)) {
          throw new CheckpointError(
            `Cannot read "${indexPath}": tensor "${name}" is not in its shard "${shard}"`,
          );
        }
      }
      return new Checkpoint(dir, tensors, opened);
    }
    if (await exists(single)) {
      const f = await SafetensorsFile.open(single);
      return new Checkpoint(dir, f.tensors, [f]);
    }
    throw new CheckpointError(
      `Cannot read the model in "${dir}": neither "${SINGLE_FILE}" nor "${INDEX_FILE}" is there`,
    );
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`Tensor "${name}" is not in the checkpoint "${this.dir}"`);
    return t;
  }

  private file(name: string): SafetensorsFile {
    return this.files.get(this.info(name).file)!;
  }

  readBytes(name: string, range?: { start: number; end: number }): Promise<Uint8Array> {
    return this.file(name).readBytes(name, range);
  }

  readF32(name: string): Promise<Float32Array> {
    return this.file(name).readF32(name);
  }

  /**
   * Elements [start, start + count) of a tensor (flat, row-major) as f32: lets a caller move a
   * table larger than a GPU binding (the 151936-row embedding) in row blocks.
   */
  async readF32Range(name: string, start: number, count: number): Promise<Float32Array> {
    const t = this.info(name);
    const width = BYTES[t.dtype];
    if (start < 0 || count < 0 || start + count > numelOf(t.shape)) {
      throw new CheckpointError(
        `Cannot read elements [${start}, ${
          start + count
        }) of tensor "${name}" with shape [${t.shape}]`,
      );
    }
    const bytes = await this.readBytes(name, {
      start: start * width,
      end: (start + count) * width,
    });
    return bytesToF32(bytes, t.dtype, name);
  }

  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// writing

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: readonly number[];
}

/** A tensor's bytes: all at once, or in chunks (concatenated in order). */
export type TensorBytes = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** The header bytes (length prefix included) for tensors laid out back to back in this order. */
export function encodeHeader(
  specs: readonly TensorSpec[],
  metadata: Record<string, string> | null = { format: "pt" },
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const s of specs) {
    const width = BYTES[s.dtype];
    if (width === undefined) throw new CheckpointError(`Cannot write dtype ${s.dtype}`);
    if (s.name === "__metadata__" || Object.hasOwn(header, s.name)) {
      throw new CheckpointError(`Cannot write tensor "${s.name}" twice`);
    }
    const n = numelOf(s.shape) * width;
    header[s.name] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [off, off + n] };
    off += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes one .safetensors file: the header for `specs`, then each tensor's bytes from
 * `produce(spec)`, checked against its declared size. Writes to `path.tmp` and renames, so a
 * crash never leaves a truncated file under the real name.
 */
export async function writeSafetensors(
  path: string,
  specs: readonly TensorSpec[],
  produce: (spec: TensorSpec) => TensorBytes | Promise<TensorBytes>,
  opts: { metadata?: Record<string, string> | null } = {},
): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await writeAll(
      fh,
      encodeHeader(specs, opts.metadata === undefined ? { format: "pt" } : opts.metadata),
    );
    for (const s of specs) {
      const want = numelOf(s.shape) * BYTES[s.dtype];
      let got = 0;
      const data = await produce(s);
      const chunks = data instanceof Uint8Array ? [data] : data;
      for await (const c of chunks) {
        got += c.byteLength;
        if (got > want) break;
        await writeAll(fh, c);
      }
      if (got !== want) {
        throw new CheckpointError(
          `Cannot write "${basename(path)}": tensor "${s.name}" got ${got} bytes, its ${s.dtype} ` +
            `shape [${s.shape}] needs ${want}`,
        );
      }
    }
  } catch (err) {
    fh.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  fh.close();
  await Deno.rename(tmp, path);
}

async function writeAll(fh: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await fh.write(bytes.subarray(off));
}

/** HF's default for new checkpoints is 5 GB shards; star uses 2 GB so files stay easy to move. */
export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;

/**
 * Writes a model's tensors into `dir`: one `model.safetensors` when they fit in
 * `maxShardBytes`, else `model-0000i-of-0000n.safetensors` shards (greedy, in order, a tensor
 * larger than the limit alone in its shard) plus `model.safetensors.index.json`.
 * Returns the files written.
 */
export async function writeCheckpoint(
  dir: string,
  specs: readonly TensorSpec[],
  produce: (spec: TensorSpec) => TensorBytes | Promise<TensorBytes>,
  opts: { maxShardBytes?: number; metadata?: Record<string, string> } = {},
): Promise<string[]> {
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const shards: TensorSpec[][] = [];
  let cur: TensorSpec[] = [];
  let curBytes = 0;
  let total = 0;
  for (const s of specs) {
    const n = numelOf(s.shape) * (BYTES[s.dtype] ?? 0);
    if (cur.length > 0 && curBytes + n > max) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(s);
    curBytes += n;
    total += n;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  await Deno.mkdir(dir, { recursive: true });
  const metadata = { format: "pt", ...opts.metadata };
  // a previous layout of the other kind would shadow this one: remove it
  if (shards.length === 1) {
    await Deno.remove(join(dir, INDEX_FILE)).catch(() => {});
    await writeSafetensors(join(dir, SINGLE_FILE), shards[0], produce, { metadata });
    return [SINGLE_FILE];
  }
  await Deno.remove(join(dir, SINGLE_FILE)).catch(() => {});
  const pad = (i: number) => String(i).padStart(5, "0");
  const names = shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    await writeSafetensors(join(dir, names[i]), shards[i], produce, { metadata });
    for (const s of shards[i]) weightMap[s.name] = names[i];
  }
  const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const index = { metadata: { total_size: total }, weight_map: sorted };
  await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify(index, null, 2) + "\n");
  return [...names, INDEX_FILE];
}
