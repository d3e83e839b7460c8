/**
 * ROUGE-L as Google's rouge_score computes it with use_stemmer=True: lowercase, every run of
 * characters outside [a-z0-9] becomes a separator, tokens longer than 3 characters are Porter
 * stemmed (NLTK), then the F-measure of the longest common subsequence. Plus the reward's
 * wrapper `rouge(p, g)`: 1 on identical texts, 0 when either is blank.
 */
import { porterStem } from "./porter.ts";
import { pyStrip } from "./_text.ts";

/** Stems are memoised: reply and argument vocabularies repeat a lot. Bounded. */
const stemCache = new Map<string, string>();
const STEM_CACHE_MAX = 100_000;

function stemCached(token: string): string {
  let s = stemCache.get(token);
  if (s === undefined) {
    s = porterStem(token);
    if (stemCache.size >= STEM_CACHE_MAX) stemCache.clear();
    stemCache.set(token, s);
  }
  return s;
}

/**
 * rouge_score's tokenizer. Python's lower() maps only three kinds of characters into [a-z0-9]:
 * ASCII letters, U+0130 (to "i" plus a combining dot, which then separates) and the Kelvin
 * sign U+212A (to "k"); every other character ends up a separator.
 */
export function rougeTokens(text: string): string[] {
  const tokens: string[] = [];
  let cur = "";
  const flush = () => {
    if (cur !== "") {
      tokens.push(cur.length > 3 ? stemCached(cur) : cur);
      cur = "";
    }
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) cur += text[i];
    else if (c >= 0x41 && c <= 0x5a) cur += String.fromCharCode(c + 32);
    else if (c === 0x130) {
      cur += "i";
      flush();
    } else if (c === 0x212a) cur += "k";
    else flush();
  }
  flush();
  return tokens;
}

/** Length of the longest common subsequence of two token lists (one DP row). */
export function lcsLength(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const row = new Int32Array(b.length + 1);
  for (let i = 0; i < a.length; i++) {
    let diag = 0; // row[j] of the previous i, before it was overwritten
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
export function rougeLTokens(pred: string[], target: string[]): number {
  if (pred.length === 0 || target.length === 0) return 0;
  const lcs = lcsLength(target, pred);
  const precision = lcs / pred.length;
  const recall = lcs / target.length;
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
}

/** ROUGE-L F-measure of `pred` against `target` texts. */
export function rougeL(pred: string, target: string): number {
  return rougeLTokens(rougeTokens(pred), rougeTokens(target));
}

/** The reward's text similarity: exact match 1, blank 0, else ROUGE-L F. */
export function rouge(p: string, g: string): number {
  if (p === g) return 1;
  if (pyStrip(p) === "" || pyStrip(g) === "") return 0;
  return rougeL(p, g);
}
