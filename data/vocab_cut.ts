/**
 * A byte-level BPE tokenizer cut down to a corpus, so a tiny model's embedding and LM head shrink
 * from 151,936 rows to about a thousand. Kept: the 256 byte symbols (any text still encodes), the
 * added tokens, and each corpus token with the intermediate symbols of its merges (BPE replayed on
 * the token alone builds it as it did inside its word); merges whose parts and result are kept
 * stay in order, so corpus texts tokenize as before. New ids follow the old ids' order (Qwen3:
 * bytes first, added tokens last). Not handled: non-BPE models, byte fallback, affixes, dropout.
 */
import { UserError } from "../lib/errors.ts";
import { dumpsPyJson, isPyDict, parsePyJson, type PyValue } from "../lib/py/json.ts";
import { Tokenizer, type TokenizerFiles } from "./tokenizer.ts";

export interface VocabCut {
  /** The cut tokenizer.json and tokenizer_config.json (source: "<old source>, cut"). */
  files: TokenizerFiles;
  /** (V_old) the new id of each old id; -1 for a dropped token. */
  idMap: Int32Array;
  /** (V_new) the old id of each new id, increasing. */
  oldIds: Int32Array;
  /** V_new: entries of the cut vocabulary, added tokens included (ids 0..V_new-1). */
  vocabSize: number;
  /** Merges kept, out of how many. */
  merges: { kept: number; total: number };
}

/** GPT-2's byte-to-symbol table: printable Latin-1 bytes stand for themselves, the rest 256+. */
export const BYTE_SYMBOLS: readonly string[] = (() => {
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    out.push(String.fromCharCode(printable ? b : 256 + n++));
  }
  return out;
})();

type Json = Record<string, unknown>;
interface AddedToken extends Json {
  id: number;
  content: string;
}

/**
 * Cuts `files` (a byte-level BPE tokenizer) down to the tokens that encoding `corpus` needs.
 * Throws UserError when the tokenizer is not of the supported kind.
 */
export function cutVocab(files: TokenizerFiles, corpus: Iterable<string>): VocabCut {
  const { model, addedTokens } = checkByteLevelBpe(files);
  const vocab = model.vocab as Record<string, number>;
  const merges = (model.merges as (string | [string, string])[]).map(mergePair);
  const ranks = new Map<string, number>();
  merges.forEach(([a, b], i) => {
    const key = `${a} ${b}`;
    if (!ranks.has(key)) ranks.set(key, i);
  });

  const has = (t: string) => Object.hasOwn(vocab, t);
  const kept = new Set<string>();
  for (const [b, s] of BYTE_SYMBOLS.entries()) {
    if (!has(s)) {
      throw new UserError(
        `The tokenizer from ${files.source} has no symbol for byte ${b} ("${s}"): not byte-level`,
      );
    }
    kept.add(s);
  }
  const added = new Set(addedTokens.map((t) => t.content));
  const full = Tokenizer.fromFiles(files);
  const seen = new Set<string>();
  for (const text of corpus) {
    for (const t of full.tokenize(text)) {
      if (seen.has(t) || added.has(t)) continue;
      seen.add(t);
      const { symbols, made } = replayBpe(t, ranks);
      if (symbols.length === 1 && symbols[0] === t) {
        for (const m of made) kept.add(m);
      } else if (model.ignore_merges === true && has(t)) {
        kept.add(t); // looked up whole, not built by merges
      } else {
        throw new Error(`BPE on the symbols of token "${t}" gives [${symbols.join(", ")}]`);
      }
    }
  }

  // New ids: kept vocabulary entries and added tokens, in the order of their old ids.
  const old: { id: number; content: string }[] = [...kept].map((t) => ({
    id: vocab[t],
    content: t,
  }));
  for (const t of addedTokens) if (!kept.has(t.content)) old.push(t);
  old.sort((x, y) => x.id - y.id);
  let vOld = 0;
  for (const id of Object.values(vocab)) vOld = Math.max(vOld, id + 1);
  for (const t of addedTokens) vOld = Math.max(vOld, t.id + 1);
  const idMap = new Int32Array(vOld).fill(-1);
  const oldIds = Int32Array.from(old, (t) => t.id);
  const newId = new Map<string, number>();
  old.forEach((t, i) => {
    idMap[t.id] = i;
    newId.set(t.content, i);
  });

  const newVocab: Record<string, number> = {};
  for (const t of old) if (kept.has(t.content)) newVocab[t.content] = newId.get(t.content)!;
  const newMerges = (model.merges as unknown[]).filter((_, i) => {
    const [a, b] = merges[i];
    return kept.has(a) && kept.has(b) && kept.has(a + b);
  });
  const tokenizer: Json = {
    ...files.tokenizer,
    added_tokens: addedTokens.map((t) => ({ ...t, id: newId.get(t.content)! }))
      .sort((x, y) => x.id - y.id),
    post_processor: remapPostProcessor(files.tokenizer.post_processor, idMap),
    model: { ...model, vocab: newVocab, merges: newMerges },
  };
  const padding = files.tokenizer.padding as Json | null | undefined;
  if (padding && typeof padding.pad_token === "string" && newId.has(padding.pad_token)) {
    tokenizer.padding = { ...padding, pad_id: newId.get(padding.pad_token) };
  }
  return {
    files: {
      tokenizer,
      config: remapConfig(files, newId),
      source: `${files.source}, cut`,
    },
    idMap,
    oldIds,
    vocabSize: old.length,
    merges: { kept: newMerges.length, total: merges.length },
  };
}

/** A config vocab_size for `vocabSize` entries: rounded up to a multiple of `multiple`. */
export function paddedVocabSize(vocabSize: number, multiple = 64): number {
  if (
    !Number.isInteger(vocabSize) || vocabSize < 1 || !Number.isInteger(multiple) || multiple < 1
  ) {
    throw new RangeError(`paddedVocabSize(${vocabSize}, ${multiple}): need positive integers`);
  }
  return Math.ceil(vocabSize / multiple) * multiple;
}

/** Writes the cut's tokenizer.json and tokenizer_config.json into `dir` (each atomically). */
export async function writeVocabCut(dir: string, cut: VocabCut): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ["tokenizer.json", JSON.stringify(cut.files.tokenizer, null, 2) + "\n"],
    ["tokenizer_config.json", cut.files.config],
  ];
  for (const [name, text] of files) {
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(`${path}.tmp`, text);
    await Deno.rename(`${path}.tmp`, path);
  }
}

/**
 * BPE on the symbols of `token` alone: repeatedly merge the adjacent pair of lowest rank
 * (leftmost on ties), as the full tokenizer does inside a word. Inside a final token's span
 * the merges never involve symbols outside it, so this replays exactly how it was built.
 */
function replayBpe(
  token: string,
  ranks: Map<string, number>,
): { symbols: string[]; made: string[] } {
  const symbols = Array.from(token);
  const made = [...symbols];
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const r = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return { symbols, made };
    const m = symbols[best] + symbols[best + 1];
    symbols.splice(best, 2, m);
    made.push(m);
  }
}

function mergePair(m: string | [string, string]): [string, string] {
  if (Array.isArray(m)) return m;
  const i = m.indexOf(" ");
  return [m.slice(0, i), m.slice(i + 1)];
}

function checkByteLevelBpe(files: TokenizerFiles): { model: Json; addedTokens: AddedToken[] } {
  const fail = (what: string): never => {
    throw new UserError(`Cannot cut the tokenizer from ${files.source}: ${what}`);
  };
  const model = files.tokenizer.model as Json | undefined;
  if (model?.type !== "BPE") fail(`its model is ${JSON.stringify(model?.type)}, not "BPE"`);
  const m = model as Json;
  if (typeof m.vocab !== "object" || m.vocab === null || !Array.isArray(m.merges)) {
    fail("its BPE model has no vocab or no merges list");
  }
  if (m.byte_fallback === true) fail('"byte_fallback" is not supported');
  if (m.dropout !== null && m.dropout !== undefined) fail('"dropout" is not supported');
  for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (m[k] !== null && m[k] !== undefined && m[k] !== "") fail(`"${k}" is not supported`);
  }
  const byteLevel = (p: unknown): boolean => {
    const x = p as Json | null | undefined;
    if (x?.type === "ByteLevel") return true;
    return x?.type === "Sequence" && Array.isArray(x.pretokenizers) &&
      x.pretokenizers.some(byteLevel);
  };
  if (!byteLevel(files.tokenizer.pre_tokenizer)) fail("its pre-tokenizer is not byte-level");
  const addedTokens = (files.tokenizer.added_tokens ?? []) as AddedToken[];
  return { model: m, addedTokens };
}

/** Post-processors that name ids (TemplateProcessing, Bert, Roberta) get them re-mapped. */
function remapPostProcessor(p: unknown, idMap: Int32Array): unknown {
  const x = p as Json | null | undefined;
  if (!x || typeof x !== "object") return p;
  const map = (id: number) => idMap[id] ?? -1;
  switch (x.type) {
    case "Sequence":
      return {
        ...x,
        processors: (x.processors as unknown[]).map((q) => remapPostProcessor(q, idMap)),
      };
    case "TemplateProcessing": {
      const special: Json = {};
      for (const [k, v] of Object.entries(x.special_tokens as Record<string, Json>)) {
        special[k] = { ...v, ids: (v.ids as number[]).map(map) };
      }
      return { ...x, special_tokens: special };
    }
    case "BertProcessing":
    case "RobertaProcessing": {
      const pair = (v: unknown) => [(v as [string, number])[0], map((v as [string, number])[1])];
      return { ...x, sep: pair(x.sep), cls: pair(x.cls) };
    }
    default:
      return p;
  }
}

/** tokenizer_config.json with added_tokens_decoder keyed by the new ids (by each content). */
function remapConfig(files: TokenizerFiles, newId: Map<string, number>): string {
  const cfg = parsePyJson(files.config);
  if (!isPyDict(cfg)) return files.config;
  const dec = cfg.get("added_tokens_decoder");
  if (dec !== undefined && isPyDict(dec)) {
    const entries: [number, PyValue][] = [];
    for (const [k, v] of dec) {
      const content = isPyDict(v) ? v.get("content") : undefined;
      const id = typeof content === "string" ? newId.get(content) : undefined;
      if (id === undefined) {
        throw new UserError(
          `Cannot cut the tokenizer from ${files.source}: added_tokens_decoder "${k}" names no added token`,
        );
      }
      entries.push([id, v]);
    }
    entries.sort((a, b) => a[0] - b[0]);
    cfg.set("added_tokens_decoder", new Map(entries.map(([id, v]) => [String(id), v])));
  }
  return dumpsPyJson(cfg, { indent: 2, ensureAscii: false }) + "\n";
}
