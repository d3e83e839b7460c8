/**
 * Streaming JSONL in and out with constant memory.
 *
 * readLines decodes the byte stream chunk by chunk (TextDecoderStream) and splits each decoded
 * chunk on "\n" with indexOf, so the per-character work happens in native code; only a partial
 * line is carried between chunks. A UTF-8 BOM on line 1 and a "\r" before each "\n" are
 * removed. readLineBytes cuts the raw bytes into pieces of whole lines instead, which
 * decodeLines turns into the same lines wherever the piece is handed (a worker thread).
 * JsonlWriter buffers rows and writes them in large pieces; on resume it drops a
 * partial last line (a crash in the middle of a write) and counts the complete rows.
 */
import { DataError, UserError } from "../lib/errors.ts";

export interface Line {
  /** 1-based line number. */
  line: number;
  /** The line without its "\n" / "\r\n" (and without a BOM on line 1). */
  text: string;
  /** Set on a last line that has no "\n" after it (a truncated or hand-written file). */
  unterminated?: true;
}

/** A file to read, or stdin for "-"; a file that cannot be opened is a UserError. */
export async function openInput(path: string): Promise<Deno.FsFile | typeof Deno.stdin> {
  if (path === "-") return Deno.stdin;
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    throw new UserError(`Cannot open "${path}": ${reason(err)}`);
  }
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "it is a directory";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Streams the lines of a file, or of stdin for "-". Blank lines are yielded too (callers skip
 * them); a last line without "\n" is yielded with `unterminated: true`; an empty file yields
 * nothing. Breaking out of the loop closes the file.
 */
export async function* readLines(path: string): AsyncGenerator<Line> {
  const stream = (await openInput(path)).readable.pipeThrough(new TextDecoderStream());
  const reader = stream.getReader();
  let carry = "";
  let lineNo = 0;
  let first = true;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      let chunk = value;
      if (first && chunk.length > 0) {
        first = false;
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      }
      let start = 0;
      let nl = chunk.indexOf("\n");
      while (nl !== -1) {
        let text = start === 0 && carry !== ""
          ? carry + chunk.slice(0, nl)
          : chunk.slice(start, nl);
        if (start === 0) carry = "";
        if (text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
        yield { line: ++lineNo, text };
        start = nl + 1;
        nl = chunk.indexOf("\n", start);
      }
      if (start < chunk.length) carry = start === 0 ? carry + chunk : chunk.slice(start);
    }
    if (carry !== "") {
      const text = carry.charCodeAt(carry.length - 1) === 13 ? carry.slice(0, -1) : carry;
      yield { line: ++lineNo, text, unterminated: true };
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Whole lines of an input as bytes: a piece from readLineBytes. */
export interface LineBytes {
  /** Whole lines, each ending in "\n" except perhaps the input's last; owns its buffer. */
  bytes: Uint8Array<ArrayBuffer>;
  /** The 1-based number of the piece's first line. */
  firstLine: number;
  /** The piece starts the input (where a byte order mark is dropped). */
  first: boolean;
  /** No piece follows. */
  last: boolean;
}

/**
 * Streams a file, or stdin for "-", as pieces of about `size` bytes that end just after a "\n"
 * (the last may end without one; a line longer than `size` comes whole in a larger piece). Each
 * piece owns its buffer, so that it can be transferred to a worker. A piece is yielded once the
 * next read shows whether it is the last (so a slow pipe is read a full piece at a time: this
 * is for batch work). An empty input yields nothing.
 */
export async function* readLineBytes(path: string, size = 1 << 19): AsyncGenerator<LineBytes> {
  const file = await openInput(path);
  try {
    let held: LineBytes | null = null;
    let line = 1;
    let pieces = 0;
    const piece = (bytes: Uint8Array<ArrayBuffer>): LineBytes => {
      const p = { bytes, firstLine: line, first: pieces++ === 0, last: false };
      for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) line++;
      return p;
    };
    let buf = new Uint8Array(size);
    let filled = 0;
    for (;;) {
      const n = await file.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
      if (filled < buf.length) continue;
      const cut = buf.lastIndexOf(10) + 1;
      if (cut === 0) { // one line longer than the buffer: grow it
        const grown = new Uint8Array(2 * buf.length);
        grown.set(buf);
        buf = grown;
        continue;
      }
      const next = new Uint8Array(Math.max(size, 2 * (filled - cut)));
      next.set(buf.subarray(cut, filled));
      const p = piece(buf.subarray(0, cut));
      if (held !== null) yield held;
      held = p;
      buf = next;
      filled -= cut;
    }
    if (filled > 0) {
      const p = piece(buf.subarray(0, filled));
      if (held !== null) yield held;
      held = p;
    }
    if (held !== null) yield { ...held, last: true };
  } finally {
    if (file !== Deno.stdin) file.close();
  }
}

/** Keeps a leading U+FEFF: decodeLines drops one only at the input's start. */
const bomKeepingDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The lines of a piece from readLineBytes, by readLines' rules: bad UTF-8 becomes U+FFFD as the
 * streaming decoder gives it (a cut just after a "\n" never splits a character), the input's
 * start drops a BOM and one more U+FEFF, a "\r" before each "\n" is dropped, blank lines are
 * yielded too, and the input's last line without "\n" is `unterminated`.
 */
export function* decodeLines(b: LineBytes): Generator<Line> {
  let text = bomKeepingDecoder.decode(b.bytes);
  if (b.first) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  }
  let line = b.firstLine;
  for (let start = 0; start < text.length; line++) {
    let end = text.indexOf("\n", start);
    const unterminated = end < 0;
    if (unterminated) end = text.length;
    const next = end + 1;
    if (end > start && text.charCodeAt(end - 1) === 13) end--; // "\r\n"
    const l: Line = { line, text: text.slice(start, end) };
    if (unterminated && b.last) l.unterminated = true;
    yield l;
    start = next;
  }
}

export interface ReadJsonlOptions {
  /** Called with each bad line's error; reading goes on. Without it the first error throws. */
  onError?: (e: DataError) => void;
  /** The JSON parser; JSON.parse unless given (e.g. a parser that keeps number lexemes). */
  parse?: (text: string) => unknown;
}

/**
 * readLines + a JSON parser. Lines that are empty or only whitespace are skipped. A line that
 * is not valid JSON becomes a DataError naming the file and line (and says when the line is an
 * unterminated last line, the usual trace of a crashed writer).
 */
export async function* readJsonl(
  path: string,
  opts: ReadJsonlOptions = {},
): AsyncGenerator<{ line: number; value: unknown }> {
  const parse = opts.parse ?? JSON.parse;
  for await (const { line, text, unterminated } of readLines(path)) {
    if (isBlank(text)) continue;
    let value: unknown;
    try {
      value = parse(text);
    } catch (err) {
      const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
      const e = new DataError(
        path,
        line,
        `invalid JSON (${why})${unterminated ? "; the file ends in the middle of this line" : ""}`,
      );
      if (opts.onError) {
        opts.onError(e);
        continue;
      }
      throw e;
    }
    yield { line, value };
  }
}

/** Only spaces, tabs and "\r" (or nothing): a line that readers skip. */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

const FLUSH_BYTES = 1 << 16;
const encoder = new TextEncoder();

/**
 * Writes JSONL rows with buffering. `append` keeps what is there; `resume` also truncates a
 * partial last line and counts the complete rows already present (`rowsOnOpen`). Path "-" is
 * stdout. Call close() (or at least flush()) at the end.
 */
export class JsonlWriter {
  /** Complete rows already in the file when it was opened (non-blank lines). */
  rowsOnOpen = 0;
  /** Bytes of a partial last line dropped on resume (0 when the file ended cleanly). */
  droppedBytes = 0;
  #file: Deno.FsFile | null;
  #parts: string[] = [];
  #pending = 0;
  #closed = false;
  readonly path: string;

  private constructor(path: string, file: Deno.FsFile | null) {
    this.path = path;
    this.#file = file;
  }

  static async open(
    path: string,
    opts: { append?: boolean; resume?: boolean } = {},
  ): Promise<JsonlWriter> {
    if (path === "-") return new JsonlWriter(path, null);
    const keep = opts.append || opts.resume;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, {
        read: true,
        write: true,
        create: true,
        truncate: !keep,
      });
    } catch (err) {
      throw new UserError(`Cannot open "${path}" for writing: ${reason(err)}`);
    }
    const w = new JsonlWriter(path, file);
    if (keep) {
      const { rows, cleanEnd, size } = await scanRows(file);
      if (opts.resume && cleanEnd < size) {
        await file.truncate(cleanEnd);
        w.droppedBytes = size - cleanEnd;
      }
      w.rowsOnOpen = rows;
      await file.seek(0, Deno.SeekMode.End);
    }
    return w;
  }

  /** Serialises a row with JSON.stringify and adds it as one line. */
  write(row: unknown): Promise<void> {
    return this.writeText(JSON.stringify(row));
  }

  /** Adds rows that are already serialised (one or more lines, no trailing newline). */
  writeText(line: string): Promise<void> {
    if (this.#closed) throw new Error(`JsonlWriter for "${this.path}" is closed`);
    this.#parts.push(line, "\n");
    this.#pending += line.length + 1;
    return this.#pending >= FLUSH_BYTES ? this.flush() : Promise.resolve();
  }

  /** Writes the buffered rows to the file (whole rows only). */
  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const bytes = encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#pending = 0;
    const sink = this.#file ?? Deno.stdout;
    let off = 0;
    while (off < bytes.length) off += await sink.write(bytes.subarray(off));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    this.#file?.close();
  }
}

/** Counts complete non-blank rows and finds the byte offset just after the last "\n". */
async function scanRows(
  file: Deno.FsFile,
): Promise<{ rows: number; cleanEnd: number; size: number }> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(1 << 16);
  let pos = 0;
  let cleanEnd = 0;
  let rows = 0;
  let lineHasContent = false;
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) {
      const b = buf[i];
      if (b === 10) {
        if (lineHasContent) rows++;
        lineHasContent = false;
        cleanEnd = pos + i + 1;
      } else if (b !== 32 && b !== 9 && b !== 13) lineHasContent = true;
    }
    pos += n;
  }
  return { rows, cleanEnd, size: pos };
}
