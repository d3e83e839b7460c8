#!/usr/bin/env python3
"""Writes the inputs of the data-recipe fixtures: hand-made and fuzzed (seeded) call lists,
conversations to label and labelled rows to mix. recipe_ref.py then computes the expected
outputs (see make_recipe_fixtures.sh).

  gen_recipe_cases.py OUTDIR
"""
import json
import os
import random
import sys

HAND_CALLS = [
    '[f(a=1, b="x")]',
    '[ls(a=False), sort(file_name="yzjcq.py"), echo(content="def __init__(self):")]',
    '[get_weather(city="Paris, France", days=3)]',
    '[f(a="x, y", b=\'it\\\'s\')]',
    '[f(a=(1, 2), b=((3)))]',
    '[f(a=[1, 2, 3])]',
    '[f(a={"k": 1, "j": 2})]',
    '[f(a={"k": [1, 2]})]',
    '[f(a=None, b=True, c=false, d=null)]',
    '[f(a=-1, b=+2.5, c=1e3, d=0x1F, e=1_000, f=01, g=.5, h=5.)]',
    '[f(a=1+2j)]',
    '[f(a={1, 2})]',
    '[f(a=set())]',
    '[f(a=b"bytes")]',
    '[f(a=...)]',
    '[f(a=f"x{y}")]',
    '[f(a=r"\\d+\\.")]',
    '[f(a="""triple "quoted" text""")]',
    '[f(a="unterminated)]',
    '[f(a=1]',
    '[f(a=1), g(]',
    '[f a=1)]',
    '[f(a=1) g(b=2)]',
    '[f(a=1)x]',
    '[]',
    '[ ]',
    'f(a=1)',
    '  [f(a=1)]  ',
    '[namespace.tool_v2(x="a=b", y=2)]',
    '[f(positional, a=1)]',
    '[f(a=1, a=2)]',
    '[f(a = "spaced" , b= 3 )]',
    '[f(a="\\u00e9\\n\\t")]',
    '[f(a=\'\\x41\\101\')]',
    '[f(a="é", b=\'日本\')]',
    '[f(a={(1, 2): 3})]',
    '[f(a={[1]: 2})]',
    '[f(a={1: "x", 1.0: "y", True: "z"})]',
    '[f(a={2.5: "x", None: 1, False: 0})]',
    '[f(a=-(1), b=--1, c=~1, d=-True)]',
    '[f(a=1 if x else 2, b=x.y, c=g(1))]',
    '[f(a=[1,\n 2])]',
    '[f(a=(1,\n 2))]',
    '[f(a=(1, # note\n 2))]',
    '[f(a="a" "b", b=\'c\' u"d")]',
    '[f(a="a" b"b")]',
    '[f(a=1e999, b=-1e999)]',
    '[f(a=12345678901234567890123456789)]',
    '[f(a=\\"x\\")]',
    '[f(a="x\\\\")]',
    '[名前(値="x")]',
    '[f(a=((((((((((1))))))))))]',
    '[f(a=' + '(' * 201 + '1' + ')' * 201 + ')]',
    '[f(a=' + '(' * 200 + '1' + ')' * 200 + ')]',
]

ATOMS = [
    "1", "-1", "+2", "0", "00", "01", "1_000", "1__0", "0x1F", "0o17", "0b101", "0b12", "1.5", ".5",
    "5.", "1e5", "1E-3", "-0.0", "1e999", "2j", "1+2j", "-1-2j", "1+2", "True", "False", "None",
    "true", "null", "nan", "inf", "...", '"s"', "'s'", '"a, b"', '"a(b"', '"q\\"q"', "'it''s'",
    'r"\\d"', 'b"x"', 'f"x"', 'u"x"', "ur'x'", '"""t"""', '"é"', "'\\x41'", '"\\u0041"', "[1, 2]",
    "[]", "()", "(1,)", "(1)", "((2))", "{}", '{"a": 1}', "{'a': (1, 2)}", "{1, 2}", "set()",
    "{1: 2, 1: 3}", "{[1]: 2}", "{(1,): 2}", "hello", "hello world", "a=b", "x.y", "f(1)",
    '"unterminated', "(1, 2", "1)", "-True", "--1", "~1", "1 if 2 else 3", "[x for x in y]",
    "{**a}", "[*a]", "'a' 'b'", "'a' b'b'", "lambda: 1", "not 1", "1 # c", "(1,\n2)",
]
NAMES = ["f", "get_weather", "a.b", "tool_v2", "x1", "_", "ß", "", "名前", "T"]
KEYS = ["a", "b", "city", "k", "x_1", "", " spaced ", "é"]
SPECIALS = list('()[]{}"\'\\,= \n') + ["j", "e", "_", "."]


def fuzz_value(r, depth=0):
    pick = r.random()
    if depth < 2 and pick < 0.15:
        inner = ", ".join(fuzz_value(r, depth + 1) for _ in range(r.randint(0, 3)))
        return r.choice(["(%s)", "[%s]", "{%s}", "(%s,)"]) % inner
    if depth < 2 and pick < 0.22:
        items = ", ".join(f"{fuzz_value(r, depth + 1)}: {fuzz_value(r, depth + 1)}"
                          for _ in range(r.randint(0, 2)))
        return "{%s}" % items
    return r.choice(ATOMS)


def fuzz_call_text(r):
    calls = []
    for _ in range(r.randint(0, 3)):
        args = []
        for _ in range(r.randint(0, 3)):
            v = fuzz_value(r)
            if r.random() < 0.15:
                args.append(v)
            else:
                args.append(f"{r.choice(KEYS)}{r.choice(['=', ' = ', '='])}{v}")
        sep = r.choice([", ", ",", " , "])
        calls.append(f"{r.choice(NAMES)}({sep.join(args)})")
    text = "[" + r.choice([", ", ",", " "]).join(calls) + "]"
    # A few random edits: the parser must agree on broken texts too.
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        i = r.randint(0, len(text))
        if r.random() < 0.5 and i < len(text):
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + r.choice(SPECIALS) + text[i:]
    if r.random() < 0.05:
        text = " " + text + "\n"
    return text


def call_cases(r, n):
    cases = [{"text": t} for t in HAND_CALLS]
    cases += [{"text": fuzz_call_text(r)} for _ in range(n)]
    return cases


# --- conversations ----------------------------------------------------------------------------

def call(r, k):
    return {"name": f"t{k}", "arguments": {"x": r.randint(0, 9)}}


def fuzz_message(r, role):
    m = {"role": role}
    if role == "assistant":
        c = r.choice(["content", "calls", "both", "empty", "none"])
        if c in ("content", "both"):
            m["content"] = r.choice(["ok", "done", "é"])
        elif c == "empty":
            m["content"] = ""
        elif c == "none" or r.random() < 0.5:
            m["content"] = None
        if c in ("calls", "both"):
            m["tool_calls"] = [call(r, k) for k in range(r.choice([0, 1, 1, 2, 3]))]
        elif r.random() < 0.3:
            m["tool_calls"] = r.choice([None, []])
        if r.random() < 0.2:
            m["reasoning_content"] = "think"
    else:
        m["content"] = r.choice(["q", "", "result", "x"])
    return m


def fuzz_conversation(r, i, max_len):
    roles = []
    for _ in range(r.randint(0, max_len)):
        prev = roles[-1] if roles else None
        if prev == "assistant" and r.random() < 0.5:
            roles.append("tool")
        else:
            roles.append(r.choice(["user", "assistant", "assistant", "tool", "system"]))
    if roles and r.random() < 0.7 and roles[-1] != "assistant":
        roles.append("assistant")
    row = {"id": f"c{i}", "messages": [fuzz_message(r, role) for role in roles]}
    if r.random() < 0.05:
        del row["messages"]
    if r.random() < 0.3:
        row["tools"] = [{"name": "t0", "parameters": {}}]
    if r.random() < 0.1:
        row = {"extra": 1, **row}
    return row


HAND_CONVERSATIONS = [
    {"id": "plain", "messages": [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "hello"}]},
    {"id": "single", "messages": [{"role": "user", "content": "q"},
                                  {"role": "assistant", "content": None,
                                   "tool_calls": [{"name": "a", "arguments": {}}]}]},
    {"id": "parallel+multi-step", "messages": [
        {"role": "system", "content": "s"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "a", "arguments": {}}]},
        {"role": "tool", "content": "r"},
        {"role": "assistant", "content": "both", "tool_calls": [
            {"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]}]},
    {"id": "ends-on-tool", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"name": "a", "arguments": {}}]},
        {"role": "tool", "content": "r"}]},
    {"id": "no-messages"},
    {"id": "empty", "messages": []},
    {"id": "two-assistants", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"}]},
]


def label_cases(r, n):
    return HAND_CONVERSATIONS + [fuzz_conversation(r, i, 8) for i in range(n)]


def mix_rows(r, n):
    """Labelled rows (labels computed here as labeling_messages.py does) with prompt lengths."""
    rows = []
    for i in range(n):
        row = fuzz_conversation(r, i, 26)
        row.pop("tools", None)
        msgs = row.get("messages", [])
        for j, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            calls = m.get("tool_calls")
            k = len(calls) if calls else 0
            tags = []
            if m.get("content") not in (None, ""):
                tags.append("response")
            if k == 1:
                tags.append("single")
            elif k > 1:
                tags.append("parallel")
            if j > 0 and k > 0 and msgs[j - 1]["role"] == "tool":
                tags.append("multi-step")
            m["tag"], m["turns"], m["tool_call_num"] = tags, (j + 1) // 2, k
        row["_tokens"] = r.choice([r.randint(10, 3000), r.randint(3000, 12000)])
        rows.append(row)
    return rows


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    r = random.Random(20260514)
    write(os.path.join(out, "calls_cases.jsonl"), call_cases(r, 3000))
    write(os.path.join(out, "label_cases.jsonl"), label_cases(r, 400))
    rows = mix_rows(r, 3000)
    write(os.path.join(out, "mix_cases_a.jsonl"), rows[:1800])
    write(os.path.join(out, "mix_cases_b.jsonl"), rows[1800:])


if __name__ == "__main__":
    main()
