/**
 * The Porter stemmer as NLTK runs it by default (mode NLTK_EXTENSIONS): Porter's five steps
 * plus NLTK's documented changes (a table of irregular forms, words of one or two letters left
 * alone, `ies`/`ied` on four-letter words, y -> i only after a consonant that is not the first
 * letter, `alli` handled first in step 2, the extra `fulli` and `logi` rules, and cvc allowed
 * for two-letter stems). Input is expected in lowercase, as the ROUGE tokeniser gives it.
 */

const IRREGULAR: Record<string, string> = {
  sky: "sky",
  skies: "sky",
  dying: "die",
  lying: "lie",
  tying: "tie",
  news: "news",
  innings: "inning",
  inning: "inning",
  outings: "outing",
  outing: "outing",
  cannings: "canning",
  canning: "canning",
  howe: "howe",
  proceed: "proceed",
  exceed: "exceed",
  succeed: "succeed",
};

function isVowelLetter(c: string): boolean {
  return c === "a" || c === "e" || c === "i" || c === "o" || c === "u";
}

function isVowelCode(c: number): boolean {
  return c === 0x61 || c === 0x65 || c === 0x69 || c === 0x6f || c === 0x75;
}

/**
 * Porter's consonant: not a vowel letter, and `y` only when it follows a vowel (or starts the
 * word). A run of y's alternates, so the answer comes from the letter before the run.
 */
function isConsonant(w: string, i: number): boolean {
  const c = w[i];
  if (isVowelLetter(c)) return false;
  if (c !== "y") return true;
  let j = i;
  while (j > 0 && w[j - 1] === "y") j--;
  // w[j] is the first y of the run: a consonant at the start or after a vowel.
  const first = j === 0 || isVowelLetter(w[j - 1]);
  return (i - j) % 2 === 0 ? first : !first;
}

/**
 * m in [C](VC)^m[V]: the number of vowel-run to consonant-run transitions. Letters are
 * classified left to right: a y is a consonant at the start or after a vowel.
 */
function measure(stem: string): number {
  let m = 0;
  let prev = false; // was the previous letter a consonant
  for (let i = 0; i < stem.length; i++) {
    const c = stem.charCodeAt(i);
    const cons: boolean = isVowelCode(c) ? false : c === 0x79 ? (i === 0 || !prev) : true;
    if (cons && i > 0 && !prev) m++;
    prev = cons;
  }
  return m;
}

function hasVowel(stem: string): boolean {
  let prev = false;
  for (let i = 0; i < stem.length; i++) {
    const c = stem.charCodeAt(i);
    const cons: boolean = isVowelCode(c) ? false : c === 0x79 ? (i === 0 || !prev) : true;
    if (!cons) return true;
    prev = cons;
  }
  return false;
}

function endsDoubleConsonant(w: string): boolean {
  const n = w.length;
  return n >= 2 && w[n - 1] === w[n - 2] && isConsonant(w, n - 1);
}

/** *o: ends consonant-vowel-consonant, the last not w, x or y; or a two-letter vowel-consonant. */
function endsCvc(w: string): boolean {
  const n = w.length;
  if (n >= 3) {
    return isConsonant(w, n - 3) && !isConsonant(w, n - 2) && isConsonant(w, n - 1) &&
      w[n - 1] !== "w" && w[n - 1] !== "x" && w[n - 1] !== "y";
  }
  return n === 2 && !isConsonant(w, 0) && isConsonant(w, 1);
}

/** A rule's condition sees the stem (the word less the suffix) and the whole word. */
type Cond = ((stem: string, word: string) => boolean) | null;
type Rule = readonly [suffix: string, replacement: string, cond: Cond];

/** The first rule whose suffix matches decides: applied if its condition holds, else nothing. */
function applyRules(w: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, cond] of rules) {
    if (w.endsWith(suffix)) {
      const stem = w.slice(0, w.length - suffix.length);
      return cond === null || cond(stem, w) ? stem + replacement : w;
    }
  }
  return w;
}

const mPositive = (s: string) => measure(s) > 0;
const mAbove1 = (s: string) => measure(s) > 1;

const STEP1A: readonly Rule[] = [
  ["sses", "ss", null],
  ["ies", "i", null],
  ["ss", "ss", null],
  ["s", "", null],
];

function step1a(w: string): string {
  if (w.length === 4 && w.endsWith("ies")) return w.slice(0, -3) + "ie";
  return applyRules(w, STEP1A);
}

function step1b(w: string): string {
  if (w.endsWith("ied")) return w.slice(0, -3) + (w.length === 4 ? "ie" : "i");
  if (w.endsWith("eed")) {
    const stem = w.slice(0, -3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  let stem: string | null = null;
  for (const suffix of ["ed", "ing"]) {
    if (w.endsWith(suffix)) {
      const s = w.slice(0, w.length - suffix.length);
      if (hasVowel(s)) {
        stem = s;
        break;
      }
    }
  }
  if (stem === null) return w;
  // at -> ate, bl -> ble, iz -> ize
  if (stem.endsWith("at") || stem.endsWith("bl") || stem.endsWith("iz")) return stem + "e";
  if (endsDoubleConsonant(stem)) {
    const last = stem[stem.length - 1];
    return last !== "l" && last !== "s" && last !== "z" ? stem.slice(0, -1) : stem;
  }
  return measure(stem) === 1 && endsCvc(stem) ? stem + "e" : stem;
}

const STEP1C: readonly Rule[] = [["y", "i", (s) => s.length > 1 && isConsonant(s, s.length - 1)]];

function step1c(w: string): string {
  return applyRules(w, STEP1C);
}

const STEP2: readonly Rule[] = [
  ["ational", "ate", mPositive],
  ["tional", "tion", mPositive],
  ["enci", "ence", mPositive],
  ["anci", "ance", mPositive],
  ["izer", "ize", mPositive],
  ["bli", "ble", mPositive],
  ["alli", "al", mPositive],
  ["entli", "ent", mPositive],
  ["eli", "e", mPositive],
  ["ousli", "ous", mPositive],
  ["ization", "ize", mPositive],
  ["ation", "ate", mPositive],
  ["ator", "ate", mPositive],
  ["alism", "al", mPositive],
  ["iveness", "ive", mPositive],
  ["fulness", "ful", mPositive],
  ["ousness", "ous", mPositive],
  ["aliti", "al", mPositive],
  ["iviti", "ive", mPositive],
  ["biliti", "ble", mPositive],
  ["fulli", "ful", mPositive],
  // The l of "logi" counts as part of the stem, so short stems such as "geo" qualify.
  ["logi", "log", (_s, w) => mPositive(w.slice(0, -3))],
];

function step2(w: string): string {
  if (w.endsWith("alli") && mPositive(w.slice(0, -4))) return step2(w.slice(0, -4) + "al");
  return applyRules(w, STEP2);
}

const STEP3: readonly Rule[] = [
  ["icate", "ic", mPositive],
  ["ative", "", mPositive],
  ["alize", "al", mPositive],
  ["iciti", "ic", mPositive],
  ["ical", "ic", mPositive],
  ["ful", "", mPositive],
  ["ness", "", mPositive],
];

function step3(w: string): string {
  return applyRules(w, STEP3);
}

const STEP4: readonly Rule[] = [
  ["al", "", mAbove1],
  ["ance", "", mAbove1],
  ["ence", "", mAbove1],
  ["er", "", mAbove1],
  ["ic", "", mAbove1],
  ["able", "", mAbove1],
  ["ible", "", mAbove1],
  ["ant", "", mAbove1],
  ["ement", "", mAbove1],
  ["ment", "", mAbove1],
  ["ent", "", mAbove1],
  ["ion", "", (s) => mAbove1(s) && (s.endsWith("s") || s.endsWith("t"))],
  ["ou", "", mAbove1],
  ["ism", "", mAbove1],
  ["ate", "", mAbove1],
  ["iti", "", mAbove1],
  ["ous", "", mAbove1],
  ["ive", "", mAbove1],
  ["ize", "", mAbove1],
];

function step4(w: string): string {
  return applyRules(w, STEP4);
}

function step5a(w: string): string {
  if (!w.endsWith("e")) return w;
  const stem = w.slice(0, -1);
  const m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : w;
}

const STEP5B: readonly Rule[] = [["ll", "l", (_s, w) => measure(w.slice(0, -1)) > 1]];

function step5b(w: string): string {
  return applyRules(w, STEP5B);
}

/** NLTK `PorterStemmer().stem(word)` for a lowercase word. */
export function porterStem(word: string): string {
  const irregular = IRREGULAR[word];
  if (irregular !== undefined && Object.hasOwn(IRREGULAR, word)) return irregular;
  if (word.length <= 2) return word;
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(word))))))));
}
