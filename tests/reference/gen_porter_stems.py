"""Writes tests/testdata/porter_stems.txt: NLTK's PorterStemmer (default NLTK_EXTENSIONS mode)
on a large word list. Run with Debian's /usr/bin/python3 and python3-nltk (3.8).
Inputs: the tokens of /usr/share/dict/words and of the score cases (lowercased, split on
characters outside [a-z0-9], as ROUGE tokenises), plus random stems joined to every suffix the
algorithm knows. One line per word: "word" when the stem is the word itself, else "word stem"."""
import json
import random
import re
import sys

from nltk.stem.porter import PorterStemmer

stemmer = PorterStemmer()
words = set()
split = re.compile(r"[^a-z0-9]+")
for line in open("/usr/share/dict/words", encoding="utf-8"):
    words.update(t for t in split.split(line.lower()) if t)
for path in sys.argv[2:]:
    for line in open(path, encoding="utf-8"):
        for v in json.loads(line).values():
            if isinstance(v, str):
                words.update(t for t in split.split(v.lower()) if t)
suffixes = """sses ies ss s eed ed ing ied at bl iz y ational tional enci anci izer bli abli alli
entli eli ousli ization ation ator alism iveness fulness ousness aliti iviti biliti fulli logi
icate ative alize iciti ical ful ness al ance ence er ic able ible ant ement ment ent ion ou ism
ate iti ous ive ize e ll sky skies dying lying tying news innings inning outings outing cannings
canning howe proceed exceed succeed""".split()
rng = random.Random(7)
letters = "abcdefghijklmnopqrstuvwxyz"
for _ in range(20000):
    stem = "".join(rng.choice(letters if rng.random() < 0.8 else "aeiouy") for _ in range(rng.randrange(0, 7)))
    w = stem + rng.choice(suffixes) + (rng.choice(suffixes) if rng.random() < 0.3 else "")
    words.add(w)
for _ in range(2000):
    words.add("".join(rng.choice(letters + "0123456789") for _ in range(rng.randrange(1, 12))))
with open(sys.argv[1], "w") as out:
    for w in sorted(words):
        s = stemmer.stem(w)
        out.write(w + "\n" if s == w else f"{w} {s}\n")
