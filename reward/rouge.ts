/**
 * ROUGE-L as Google's rouge_score computes it with use_stemmer=True: lowercase, every run of
 * characters outside [a-z0-9] becomes a separator, tokens longer than 3 characters are Porter
 * stemmed (NLTK), then the F-measure of the longest common subsequence. Plus the reward's
 * wrapper `rouge(p, g)`: 1 on identical texts, 0 when either is blank.
 */
import { porterStem } from "./porter.ts";
import { pyStrip } from "../lib/py/text.ts";

/**
 * Stems are interned as small integers, so that the LCS compares numbers. `tokenToId` memoises
 * token -> stem id; both tables are reset between texts when they grow too big.
 */
let tokenToId = new Map<string, number>();
let stemToId = new Map<string, number>();
let idToStem: string[] = [];
const MEMO_MAX = 200_000;

function resetIfBig(): void {
  if (tokenToId.size < MEMO_MAX) return;
  tokenToId = new Map();
  stemToId = new Map();
  idToStem = [];
}

function tokenId(token: string): number {
  let id = tokenToId.get(token);
  if (id === undefined) {
    const stem = token.length > 3 ? porterStem(token) : token;
    id = stemToId.get(stem);
    if (id === undefined) {
      id = idToStem.length;
      idToStem.push(stem);
      stemToId.set(stem, id);
    }
    tokenToId.set(token, id);
  }
  return id;
}

function isAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a);
}

/**
 * rouge_score's tokenizer, giving stem ids. Python's lower() maps only three kinds of
 * characters into [a-z0-9]: ASCII letters, U+0130 (to "i" plus a combining dot, which then
 * separates) and the Kelvin sign U+212A (to "k"); every other character is a separator.
 */
function tokenIds(text: string): number[] {
  const ids: number[] = [];
  const n = text.length;
  let token = "";
  let start = -1; // start of the pending ASCII run
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : -1;
    if (isAlnum(c)) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) {
      token += text.slice(start, i);
      start = -1;
    }
    if (c === 0x212a) {
      token += "k"; // the Kelvin sign continues the token
      continue;
    }
    if (c === 0x130) token += "i"; // then a combining dot, a separator
    if (token !== "") {
      ids.push(tokenId(token.toLowerCase()));
      token = "";
    }
  }
  return ids;
}

/** The stemmed tokens of a text (rouge_score's tokenize with use_stemmer=True). */
export function rougeTokens(text: string): string[] {
  resetIfBig();
  return tokenIds(text).map((id) => idToStem[id]);
}

/** Length of the longest common subsequence of two id lists (one DP row, reused). */
let row = new Int32Array(256);
export function lcsLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length === 0 || b.length === 0) return 0;
  if (row.length < b.length + 1) row = new Int32Array(2 * b.length + 2);
  row.fill(0, 0, b.length + 1);
  for (let i = 0; i < a.length; i++) {
    let diag = 0; // row[j - 1] of the previous i
    const ai = a[i];
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = ai === b[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
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
