"""Writes tests/testdata/py_json_cases.jsonl: what CPython's json.loads, json.dumps, repr() and
str() give for a set of hand-picked and random inputs. Each line is one case:
  {"kind": "loads", "text": T, "ok": true, "repr": R, "str": S, "ascii": A, "utf8": U, "indent": I}
  {"kind": "loads", "text": T, "ok": false, "error": MESSAGE}
  {"kind": "float", "bits": B, "repr": R}         (B: the IEEE-754 bits, 16 hex digits)
  {"kind": "strrepr", "s": S, "repr": R}
"""
import json
import random
import struct
import sys

rng = random.Random(1234)
out = open(sys.argv[1], "w")


def emit(row):
    out.write(json.dumps(row, ensure_ascii=True) + "\n")


texts = [
    "1", "-1", "0", "-0", "1.0", "-0.0", "1e2", "1E2", "1e-5", "1.5e+300", "1e400", "-1e400",
    "123456789012345678901234567890", "-123456789012345678901234567890", "9007199254740993",
    "9007199254740993.0", "0.1", "100.0", "1e16", "1e15", "123456789012345680", "0.0001",
    "0.00001", "NaN", "Infinity", "-Infinity", "nan", "inf", "-", "- 1", "01", "1.", "1.e5",
    ".5", "+1", "1e", "1e+", "1.5e+", "00", "-01", "1" * 4300, "1" * 4301, "-" + "1" * 4300,
    "-" + "1" * 4301, "1" * 4300 + ".5", "true", "false", "null", "True", "None", "tru",
    '"a"', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud800x"',
    '"\\u12"', '"\\u12g4"', '"\\q"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '"\x01"', '"\x1f"', '"\x7f"',
    '"a\tb"', '"unterminated', '"ends with backslash\\', '"\u00e9\u4e2d\U0001f600"', "",
    " ", " 1 ", "\t\n\r1\r\n\t", "\x0b1", "\x0c1", "\u00a01", "1\u00a0", "\ufeff1", "[]", "{}",
    "[1, 2.0, true, null, \"x\"]", "[1,]", "[,1]", "[1 2]", "[", "]", "{\"a\":1,}", "{1:2}",
    "{\"a\" 1}", "{\"a\":}", "{'a': 1}", "{\"a\": 1, \"b\": 2, \"a\": 3}",
    "{\"b\": 1, \"a\": {\"c\": [1, 1.0, \"1\"], \"b\": {}}}", "{\"\": \"\"}", "[[[[]]]]",
    "{\"name\": \"f\", \"arguments\": {\"x\": NaN, \"y\": -Infinity, \"z\": 1e-7}}",
    "[1e22, 1e21, 1e-4, 1e-5, 5e-324, 1.7976931348623157e308, 2.5, 0.30000000000000004]",
    "{\"q\": \"it's\", \"d\": \"say \\\"hi\\\"\", \"both\": \"'\\\"\", \"bs\": \"a\\\\b\"}",
    "[\"\\u0000\\u0007\\u001b\\u007f\\u0080\\u009f\\u00a0\\u00ad\\u2028\\u200b\\ufeff\\ue000\"]",
    "[\"\\u0378\\u0888\\U0001f600\"]".replace("\\U0001f600", "\\ud83d\\ude00"),
    "[1]  x", "1 1", "[\"a\"]]", "{\"a\": [1, {\"b\": null}]}x", "\"\\ud83d\\ude00\"",
    "[" * 50 + "]" * 50, "[-0, -0.0, 0e0, 0E+0, -0e-0]",
]
# random valid documents
def rand_value(depth):
    t = rng.randrange(9 if depth < 3 else 6)
    if t == 0:
        return rng.choice([None, True, False])
    if t == 1:
        return rng.randrange(-10**rng.randrange(1, 30), 10**rng.randrange(1, 30))
    if t == 2:
        return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
    if t == 3:
        return rng.choice([0.5, 1.0, 100.0, 1e-5, 1e16, 1e15, -0.0, 3.14, float("nan"), float("inf")])
    if t in (4, 5):
        return rand_str()
    if t in (6, 7):
        return [rand_value(depth + 1) for _ in range(rng.randrange(4))]
    return {rand_str(): rand_value(depth + 1) for _ in range(rng.randrange(4))}


def rand_cp():
    r = rng.random()
    if r < 0.5:
        return rng.randrange(0x20, 0x7f)
    if r < 0.6:
        return rng.randrange(0, 0x20)
    if r < 0.75:
        return rng.randrange(0x7f, 0x800)
    if r < 0.9:
        return rng.randrange(0x800, 0x10000)
    return rng.randrange(0x10000, 0x110000)


def rand_str():
    return "".join(chr(rand_cp()) for _ in range(rng.randrange(8)))


for _ in range(400):
    v = rand_value(0)
    texts.append(json.dumps(v, ensure_ascii=rng.random() < 0.5))

for t in texts:
    try:
        v = json.loads(t)
    except (ValueError, RecursionError) as e:
        emit({"kind": "loads", "text": t, "ok": False, "error": str(e)})
        continue
    emit({"kind": "loads", "text": t, "ok": True, "repr": repr(v), "str": str(v),
          "ascii": json.dumps(v), "utf8": json.dumps(v, ensure_ascii=False),
          "indent": json.dumps(v, indent=2)})

floats = [0.0, -0.0, 1.0, -1.0, 0.1, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 0.00012345,
          1.5e300, 5e-324, 1.7976931348623157e308, 123456789.123, 2.0 ** 53, 2.0 ** 60,
          float("inf"), float("-inf"), float("nan"), 1e22, 1e21, 123e-20]
for _ in range(3000):
    floats.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
for _ in range(2000):
    floats.append(round(rng.uniform(-1e6, 1e6), rng.randrange(0, 8)) * 10.0 ** rng.randrange(-25, 25))
for x in floats:
    emit({"kind": "float", "bits": "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0], "repr": repr(x)})

strings = ["", "'", '"', "'\"", "it's", "\\", "a\nb\tc\rd", "\x00\x7f\x80\x9f\xa0\xad",
           "\u2028\u2029\u200b\ufeff\ue000\U000f0000", "\u0378", "\U0001f600", "\ud800", "\udfff"]
lo = 0x80
# every boundary of CPython's printable table, and random strings
for cp in range(0x80, 0x110000):
    if chr(cp).isprintable() != chr(cp - 1).isprintable():
        strings.append(chr(cp - 1) + chr(cp))
for _ in range(500):
    strings.append(rand_str())
for s in strings:
    emit({"kind": "strrepr", "s": s, "repr": repr(s)})
