import { assertClose, assertEquals } from "./assert.ts";
import { lcsLength } from "../reward/_lcs.ts";
import { porterStem, rougeL, rougeTokens } from "../reward/mod.ts";

/** The textbook O(n·m) table, the reference the bit-parallel LCS is judged against. */
function lcsTable(a: number[], b: number[]): number {
  const t: number[][] = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      t[i][j] = a[i - 1] === b[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
    }
  }
  return t[a.length][b.length];
}

/** Deterministic generator (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("lcsLength() gives the classic hand-computed lengths", () => {
  const ids = (s: string) => [...s].map((c) => c.charCodeAt(0));
  assertEquals(lcsLength(ids("ABCBDAB"), ids("BDCABA")), 4); // BCBA
  assertEquals(lcsLength(ids("AGGTAB"), ids("GXTXAYB")), 4); // GTAB
  assertEquals(lcsLength([], [1, 2, 3]), 0);
  assertEquals(lcsLength([1, 2, 3], []), 0);
  assertEquals(lcsLength([1, 2, 3], [4, 5, 6]), 0);
  assertEquals(lcsLength([7], [7]), 1);
});

Deno.test("lcsLength() matches the DP table on random id lists across the 32-bit word edges", () => {
  const r = rng(11);
  // Pattern lengths on both sides of each word boundary, and long lists (several words).
  const lengths = [1, 2, 3, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97, 128, 129, 200, 333];
  let n = 0;
  for (const m of lengths) {
    for (const k of [1, 5, 40, m, 2 * m + 7, 400]) {
      for (const alphabet of [2, 4, 30, 5000]) {
        const a = Array.from({ length: m }, () => Math.floor(r() * alphabet));
        const b = Array.from({ length: k }, () => Math.floor(r() * alphabet));
        const want = lcsTable(a, b);
        assertEquals(lcsLength(a, b), want, `m=${m} k=${k} alphabet=${alphabet}`);
        assertEquals(lcsLength(b, a), want, `swapped m=${m} k=${k} alphabet=${alphabet}`);
        n++;
      }
    }
  }
  assertEquals(n, lengths.length * 6 * 4);
});

Deno.test("lcsLength() is exact on equal, reversed and one-id lists longer than 64", () => {
  const up = Array.from({ length: 150 }, (_, i) => i);
  assertEquals(lcsLength(up, up), 150);
  assertEquals(lcsLength(up, [...up].reverse()), 1);
  assertEquals(lcsLength(new Array(100).fill(3), new Array(70).fill(3)), 70);
  // all ones in every word: the carry runs through every word boundary
  assertEquals(lcsLength(new Array(96).fill(0), new Array(200).fill(0)), 96);
  assertEquals(lcsLength([...up, ...up], up), 150);
});

// ---- the tokenizer: lookups from characters, ASCII table, the two non-ASCII letters --------

/**
 * rouge_score's rule written the plain way: lowercase, runs outside [a-z0-9] to spaces, split,
 * stem tokens longer than 3. JavaScript's toLowerCase() and Python's lower() agree on which
 * characters land in [a-z0-9] (A-Z, U+0130 and U+212A; checked over every code point).
 */
function refTokens(text: string): string[] {
  const plain = text.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  return plain === "" ? [] : plain.split(" ").map((t) => t.length > 3 ? porterStem(t) : t);
}

const PIECES = [
  "a",
  "B",
  "z",
  "Z",
  "0",
  "9",
  " ",
  "_",
  "-",
  "\n",
  "\u0130",
  "\u212a",
  "\u00e9",
  "\u00df",
  "\u03a3",
  "\ud83d\ude00",
  "\ud800",
  "\u0131",
  "\u017f",
  "\uff21",
  "Running",
  "DOGS",
  "flights",
  "the",
  "Booked",
  "generously",
  "K",
  "k",
  "caf\u00c9",
  "x_y",
  "42",
];

function randomText(r: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

Deno.test("rougeTokens() matches the lower-and-split rule on random ASCII and Unicode texts", () => {
  const r = rng(3);
  for (let k = 0; k < 3000; k++) {
    const text = randomText(r, Math.floor(r() * 60));
    assertEquals(rougeTokens(text), refTokens(text), JSON.stringify(text));
  }
});

Deno.test("rougeTokens() reads tokens longer than its buffer and letters that lower to ASCII", () => {
  const long = "Ab\u212a".repeat(3000); // 9,000 characters, one token
  for (const text of [long, `x ${long} y`, `${long}\u0130${long}`, "\u212aELVIN \u0130STANBUL"]) {
    assertEquals(rougeTokens(text), refTokens(text));
  }
  assertEquals(rougeTokens("\u212aELVIN \u0130STANBUL"), ["kelvin", "i", "stanbul"]);
  assertEquals(rougeTokens("\u0131 \u017f \uff21"), []); // dotless i, long s, fullwidth A: no
});

Deno.test("rougeTokens() stays right while its table grows past the bound and is reset", () => {
  // 220,000 distinct tokens over 220 texts: the table doubles many times, then starts over.
  for (let t = 0; t < 220; t++) {
    const words: string[] = [];
    for (let i = 0; i < 1000; i++) words.push(`w${(t * 1000 + i).toString(36)}ing`);
    const text = words.join(" ");
    if (t % 20 === 0 || t >= 195) assertEquals(rougeTokens(text), refTokens(text), `text ${t}`);
    else rougeTokens(text);
  }
  assertEquals(rougeTokens("Running dogs"), ["run", "dog"]);
});

Deno.test("rougeL() is the F-measure of the reference tokens' LCS on random texts", () => {
  const r = rng(8);
  for (let k = 0; k < 1500; k++) {
    // Short texts and long ones (over 64 tokens: several words in the bit-parallel LCS).
    const p = randomText(r, Math.floor(r() * (k % 3 === 0 ? 300 : 40)));
    const g = randomText(r, Math.floor(r() * (k % 5 === 0 ? 300 : 40)));
    const tp = refTokens(p);
    const tg = refTokens(g);
    const ids = new Map<string, number>();
    const id = (t: string) => ids.get(t) ?? (ids.set(t, ids.size), ids.size - 1);
    const lcs = lcsTable(tg.map(id), tp.map(id));
    const want = tp.length === 0 || tg.length === 0 || lcs === 0
      ? 0
      : 2 * (lcs / tp.length) * (lcs / tg.length) / (lcs / tp.length + lcs / tg.length);
    assertClose(rougeL(p, g), want, { atol: 1e-12 });
  }
});
