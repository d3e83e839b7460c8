/**
 * Python string helpers: `str.strip()` with CPython's whitespace set (which differs from
 * JavaScript's trim(): it includes \x1c-\x1f and \x85 but not \ufeff), strip/lstrip/rstrip
 * with a set of characters, and non-overlapping lazy `<open>(.*?)<close>` matching with
 * dot-all, as `re.findall` does it.
 */

/** True for the code points where CPython's str.isspace() is true. */
export function isPySpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isPySpace(s.charCodeAt(a))) a++;
  while (b > a && isPySpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Where `s.slice(start, end).strip()` lies in s, as [from, to). */
export function pyStripBounds(s: string, start: number, end: number): [number, number] {
  let a = start;
  let b = end;
  while (a < b && isPySpace(s.charCodeAt(a))) a++;
  while (b > a && isPySpace(s.charCodeAt(b - 1))) b--;
  return [a, b];
}

/**
 * Python's `str.strip(chars)` / `lstrip` / `rstrip` (`left`, `right`); `chars` null means
 * whitespace. Works on code points, so a surrogate pair is one character.
 */
export function pyStripChars(
  s: string,
  chars: string | null,
  left: boolean,
  right: boolean,
): string {
  const set = chars === null ? null : new Set(Array.from(chars));
  const strips = (ch: string) => set ? set.has(ch) : isPySpace(ch.codePointAt(0)!);
  const cps = Array.from(s);
  let a = 0;
  let b = cps.length;
  if (left) { while (a < b && strips(cps[a])) a++; }
  if (right) { while (b > a && strips(cps[b - 1])) b--; }
  return a === 0 && b === cps.length ? s : cps.slice(a, b).join("");
}

/**
 * The groups of `re.findall(open + "(.*?)" + close, text, re.DOTALL)`: each match starts at
 * the next `open` and ends at the first `close` after it; scanning resumes after that close.
 */
export function findAllBetween(text: string, open: string, close: string): string[] {
  const r = rangesBetween(text, open, close, 0, text.length);
  const out: string[] = new Array(r.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = text.slice(r[2 * k], r[2 * k + 1]);
  return out;
}

/**
 * findAllBetween over text.slice(from, to), without copying: the groups' bounds in text, as
 * [start0, end0, start1, end1, ...].
 */
export function rangesBetween(
  text: string,
  open: string,
  close: string,
  from: number,
  to: number,
): number[] {
  const out: number[] = [];
  for (;;) {
    const a = text.indexOf(open, from);
    if (a < 0 || a + open.length > to) return out;
    const b = text.indexOf(close, a + open.length);
    if (b < 0 || b + close.length > to) return out;
    out.push(a + open.length, b);
    from = b + close.length;
  }
}

/** Non-overlapping occurrences of `needle` (Python `str.count`), needle non-empty. */
export function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}
