import { assertEquals } from "./assert.ts";
import { porterStem } from "../reward/porter.ts";

Deno.test("porterStem() gives NLTK 3.8's stem for every word of the fixture", async () => {
  const text = await Deno.readTextFile(new URL("./testdata/porter_stems.txt", import.meta.url));
  const bad: string[] = [];
  let n = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [word, stem = word] = line.split(" ");
    const got = porterStem(word);
    if (got !== stem) bad.push(`${word}: ${got} (NLTK ${stem})`);
    n++;
  }
  assertEquals(bad.slice(0, 20), []);
  assertEquals(n > 100_000, true);
});

Deno.test("porterStem() applies NLTK's extensions (hand-checked cases)", () => {
  assertEquals(porterStem("skies"), "sky"); // irregular form table
  assertEquals(porterStem("dying"), "die");
  assertEquals(porterStem("ties"), "tie"); // four-letter "ies"
  assertEquals(porterStem("happy"), "happi"); // y -> i after a consonant
  assertEquals(porterStem("enjoy"), "enjoy"); // not after a vowel
  assertEquals(porterStem("fly"), "fli");
  assertEquals(porterStem("running"), "run"); // double consonant undone
  assertEquals(porterStem("is"), "is"); // two letters untouched
  assertEquals(porterStem("geology"), "geolog"); // logi rule with the l in the stem
  assertEquals(porterStem("generously"), "gener");
  // runs of y alternate consonant / vowel (NLTK 3.8 gives these stems)
  assertEquals(porterStem("ayyyyed"), "ayyyi");
  assertEquals(porterStem("byyyyying"), "byyyyi");
  assertEquals(porterStem("sayyying"), "sayi");
  assertEquals(porterStem("y".repeat(100_000)).length, 100_000); // no deep recursion
});
