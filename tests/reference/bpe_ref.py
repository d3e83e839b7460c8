"""A byte-level BPE encoder in plain Python (stdlib only), for checking tokenizer.json files.

Reads a tokenizer.json of the Qwen2/Qwen3 kind: added tokens split out first (leftmost, longest),
an NFC normalizer, a Split(Regex, Isolated) + ByteLevel(use_regex=false) pre-tokenizer and a BPE
model (lowest-rank adjacent pair first, leftmost on ties). The regex's \\p{L}, \\p{N} and \\s are
rebuilt as explicit classes from unicodedata (Python's re knows no \\p{..}, and its \\s is wider
than Unicode White_Space). Other normalizers and pre-tokenizers are refused.

  python3 bpe_ref.py --full A/tokenizer.json --cut B/tokenizer.json --texts T.jsonl --output O.jsonl

writes one row per text of T.jsonl ({"text", "corpus"}) with the ids under both tokenizers and
whether decoding the cut ids gives the text back.
"""

import argparse
import json
import re
import sys
import unicodedata

WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
               (0x3000, 0x3000)]


def category_ranges(prefix):
    ranges, start = [], None
    for cp in range(0x110000):
        inside = unicodedata.category(chr(cp)).startswith(prefix)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return ranges


def class_body(ranges):
    esc = lambda cp: "\\U%08x" % cp
    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


def translate(pattern):
    """A Rust/Oniguruma-style pattern as a Python one: \\p{L}, \\p{N}, \\s, \\S spelled out."""
    body = {"L": class_body(category_ranges("L")), "N": class_body(category_ranges("N")),
            "s": class_body(WHITE_SPACE)}
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1]
            if nxt == "p" and pattern[i + 2] == "{":
                name = pattern[i + 3:pattern.index("}", i)]
                if name not in ("L", "N"):
                    sys.exit(f"unsupported class \\p{{{name}}}")
                out.append(body[name] if in_class else "[" + body[name] + "]")
                i = pattern.index("}", i) + 1
                continue
            if nxt == "s":
                out.append(body["s"] if in_class else "[" + body["s"] + "]")
            elif nxt == "S":
                if in_class:
                    sys.exit("unsupported \\S inside a class")
                out.append("[^" + body["s"] + "]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return re.compile("".join(out))


def byte_symbols():
    table, n = [], 0
    for b in range(256):
        if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174:
            table.append(chr(b))
        else:
            table.append(chr(256 + n))
            n += 1
    return table


BYTE_SYMBOL = byte_symbols()
SYMBOL_BYTE = {s: b for b, s in enumerate(BYTE_SYMBOL)}


class ByteLevelBpe:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        norm = tj.get("normalizer")
        if norm not in (None, {"type": "NFC"}):
            sys.exit(f"unsupported normalizer {norm}")
        pre = tj["pre_tokenizer"]
        steps = pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]
        if (len(steps) != 2 or steps[0]["type"] != "Split" or steps[0]["behavior"] != "Isolated"
                or steps[0].get("invert") or steps[1]["type"] != "ByteLevel"
                or steps[1].get("use_regex") or steps[1].get("add_prefix_space")):
            sys.exit(f"unsupported pre-tokenizer {pre}")
        self.nfc = norm is not None
        self.split = translate(steps[0]["pattern"]["Regex"])
        model = tj["model"]
        assert model["type"] == "BPE" and not model.get("ignore_merges")
        self.vocab = model["vocab"]
        self.ranks = {}
        for r, m in enumerate(model["merges"]):
            pair = tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))
            self.ranks.setdefault(pair, r)
        self.added = {t["content"]: t["id"] for t in tj["added_tokens"]}
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added.items()})
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = min(range(len(parts) - 1),
                       key=lambda i: (self.ranks.get((parts[i], parts[i + 1]), float("inf")), i))
            if (parts[best], parts[best + 1]) not in self.ranks:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        self.cache[word] = parts
        return parts

    def pieces(self, text):
        """Matches and the gaps between them (Isolated)."""
        out, pos = [], 0
        for m in self.split.finditer(text):
            if m.start() > pos:
                out.append(text[pos:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            pos = m.end()
        if pos < len(text):
            out.append(text[pos:])
        return out

    def encode(self, text):
        ids, i, start = [], 0, 0
        longest = sorted(self.added, key=len, reverse=True)
        segments = []
        while i < len(text):
            hit = next((t for t in longest if text.startswith(t, i)), None)
            if hit is None:
                i += 1
                continue
            segments.append((text[start:i], False))
            segments.append((hit, True))
            i += len(hit)
            start = i
        segments.append((text[start:], False))
        for seg, special in segments:
            if special:
                ids.append(self.added[seg])
                continue
            if self.nfc:
                seg = unicodedata.normalize("NFC", seg)
            for piece in self.pieces(seg):
                word = "".join(BYTE_SYMBOL[b] for b in piece.encode("utf-8"))
                ids.extend(self.vocab[t] for t in self.bpe(word))
        return ids

    def decode(self, ids):
        out, buf = [], bytearray()
        for i in ids:
            tok = self.id_to_token[i]
            if tok in self.added:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(tok)
            else:
                buf.extend(SYMBOL_BYTE[c] for c in tok)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", required=True)
    ap.add_argument("--cut", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    full, cut = ByteLevelBpe(a.full), ByteLevelBpe(a.cut)
    with open(a.texts, encoding="utf-8") as f, open(a.output, "w", encoding="utf-8") as out:
        for line in f:
            row = json.loads(line)
            ids = cut.encode(row["text"])
            out.write(json.dumps({
                "text": row["text"],
                "corpus": row["corpus"],
                "full": full.encode(row["text"]),
                "cut": ids,
                "round_trip": cut.decode(ids) == row["text"],
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
