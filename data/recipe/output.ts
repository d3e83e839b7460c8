/**
 * Output files written atomically: rows go to a hidden temporary file beside the target, which
 * is renamed over it only when everything was written, so a failed or interrupted run never
 * leaves a half-written file (nor clobbers an earlier good one). "-" writes stdout directly.
 */
import { JsonlWriter } from "../jsonl.ts";
import { UserError } from "../../lib/errors.ts";

function tempPath(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash + 1) : "";
  const base = path.slice(slash + 1);
  const tag = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  return `${dir}.${base}.${tag}.tmp`;
}

async function commit(tmp: string, path: string): Promise<void> {
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new UserError(`Cannot write "${path}": ${(err as Error).message}`);
  }
}

/** Runs `fill` with a JSONL writer whose rows appear at `path` only if it succeeds. */
export async function writeJsonlAtomically<T>(
  path: string,
  fill: (w: JsonlWriter) => Promise<T>,
): Promise<T> {
  if (path === "-") {
    const w = await JsonlWriter.open("-");
    try {
      return await fill(w);
    } finally {
      await w.close();
    }
  }
  const tmp = tempPath(path);
  const w = await JsonlWriter.open(tmp).catch(() => {
    throw new UserError(`Cannot write "${path}": cannot create a file in its folder`);
  });
  let result: T;
  try {
    result = await fill(w);
    await w.close();
  } catch (err) {
    await w.close().catch(() => {});
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await commit(tmp, path);
  return result;
}

/** Writes a text file atomically ("-": stdout). */
export async function writeTextAtomically(path: string, text: string): Promise<void> {
  if (path === "-") {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    return;
  }
  const tmp = tempPath(path);
  try {
    await Deno.writeTextFile(tmp, text);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new UserError(`Cannot write "${path}": ${(err as Error).message}`);
  }
  await commit(tmp, path);
}
