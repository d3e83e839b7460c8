/**
 * ROUGE-L as Google's rouge_score computes it with use_stemmer=True: lowercase, every run of
 * characters outside [a-z0-9] becomes a separator, tokens longer than 3 characters are Porter
 * stemmed (NLTK), then the F-measure of the longest common subsequence. Plus the reward's
 * wrapper `rouge(p, g)`: 1 on identical texts, 0 when either is blank. Tokens are looked up
 * from their characters (no string per token once seen) and the LCS is bit-parallel.
 */
import { lcsLength } from "./_lcs.ts";
import { porterStem } from "./porter.ts";
import { pyStrip } from "../lib/py/text.ts";

/**
 * Stems are interned as small integers, so that the LCS compares numbers. A hash table maps a
 * lowercased token, read straight from the text's characters, to its stem id: open addressing
 * over `slots` (entry index + 1, 0 when empty) with the entries in parallel arrays. All tables
 * are reset between texts once they hold MEMO_MAX tokens, which bounds memory.
 */
const MEMO_MAX = 200_000;
let slots = new Int32Array(1 << 12);
let entryText: string[] = [];
let entryHash: number[] = [];
let entryStem: number[] = [];
let stemToId = new Map<string, number>();
let idToStem: string[] = [];

/** The pending token's characters, lowercased (grown for long tokens). */
let buf = new Uint16Array(256);

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * What each ASCII character adds to a token: A-Z lowercased, a-z and 0-9 as they are, 0 for a
 * separator. Python's lower() maps only two other characters into [a-z0-9]: U+0130 (to "i"
 * plus a combining dot, which then separates) and the Kelvin sign U+212A (to "k"); every other
 * character is a separator.
 */
const ASCII_TOKEN = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ASCII_TOKEN[c] = c;
for (let c = 0x61; c <= 0x7a; c++) ASCII_TOKEN[c] = c;
for (let c = 0x41; c <= 0x5a; c++) ASCII_TOKEN[c] = c + 0x20;

function resetIfBig(): void {
  if (entryText.length < MEMO_MAX) return;
  slots = new Int32Array(1 << 12);
  entryText = [];
  entryHash = [];
  entryStem = [];
  stemToId = new Map();
  idToStem = [];
}

/** The stem id of the token in buf[0, len) whose FNV-1a hash is `h`. */
function tokenId(len: number, h: number): number {
  const mask = slots.length - 1;
  for (let s = h & mask;; s = (s + 1) & mask) {
    const e = slots[s] - 1;
    if (e < 0) return addToken(len, h, s);
    if (entryHash[e] !== h) continue;
    const t = entryText[e];
    if (t.length !== len) continue;
    let k = 0;
    while (k < len && t.charCodeAt(k) === buf[k]) k++;
    if (k === len) return entryStem[e];
  }
}

function addToken(len: number, h: number, slot: number): number {
  let token = "";
  for (let k = 0; k < len; k += 4096) {
    // apply() with a typed array: several times faster than spreading it
    const part = buf.subarray(k, Math.min(len, k + 4096)) as unknown as number[];
    token += String.fromCharCode.apply(null, part);
  }
  const stem = len > 3 ? porterStem(token) : token;
  let id = stemToId.get(stem);
  if (id === undefined) {
    id = idToStem.length;
    idToStem.push(stem);
    stemToId.set(stem, id);
  }
  slots[slot] = entryText.length + 1;
  entryText.push(token);
  entryHash.push(h);
  entryStem.push(id);
  if (2 * entryText.length > slots.length) rehash(2 * slots.length);
  return id;
}

function rehash(size: number): void {
  slots = new Int32Array(size);
  const mask = size - 1;
  for (let e = 0; e < entryHash.length; e++) {
    let s = entryHash[e] & mask;
    while (slots[s] !== 0) s = (s + 1) & mask;
    slots[s] = e + 1;
  }
}

/** rouge_score's tokenizer, giving stem ids. */
function tokenIds(text: string): number[] {
  const ids: number[] = [];
  let len = 0;
  let h = FNV_OFFSET;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i);
    let t = c < 128 ? ASCII_TOKEN[c] : c === 0x212a ? 0x6b : 0;
    if (t === 0 && c === 0x130) t = 0x69; // "i", then the combining dot ends the token
    if (t !== 0) {
      if (len === buf.length) {
        const grown = new Uint16Array(2 * len);
        grown.set(buf);
        buf = grown;
      }
      buf[len++] = t;
      h = Math.imul(h ^ t, FNV_PRIME);
      if (c !== 0x130) continue;
    }
    if (len > 0) {
      ids.push(tokenId(len, h));
      len = 0;
      h = FNV_OFFSET;
    }
  }
  if (len > 0) ids.push(tokenId(len, h));
  return ids;
}

/** The stemmed tokens of a text (rouge_score's tokenize with use_stemmer=True). */
export function rougeTokens(text: string): string[] {
  resetIfBig();
  return tokenIds(text).map((id) => idToStem[id]);
}

/** ROUGE-L F-measure of prediction tokens against target tokens (rouge_score's `_score_lcs`). */
export function rougeLTokens(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  if (pred.length === 0 || target.length === 0) return 0;
  const lcs = lcsLength(target, pred);
  const precision = lcs / pred.length;
  const recall = lcs / target.length;
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
}

/** ROUGE-L F-measure of `pred` against `target` texts. */
export function rougeL(pred: string, target: string): number {
  resetIfBig();
  return rougeLTokens(tokenIds(pred), tokenIds(target));
}

/** The reward's text similarity: exact match 1, blank 0, else ROUGE-L F. */
export function rouge(p: string, g: string): number {
  if (p === g) return 1;
  if (pyStrip(p) === "" || pyStrip(g) === "") return 0;
  return rougeL(p, g);
}
