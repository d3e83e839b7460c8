#!/usr/bin/env python3
"""Random messages rows that stress the chat template: tags, whitespace the template strips,
unicode, escapes, numbers of every kind, OpenAI-style and plain tool calls, string and
non-dict arguments. Usage: gen_prepare_fuzz.py SEED N > rows.jsonl"""
import json, random, sys
random.seed(int(sys.argv[1]))
PIECES = ["a", "b", " ", "\n", "\n\n", "\t", "<think>", "</think>", "<tool_response>", "</tool_response>", "<tool_call>", "é", "你好", "😀", "\u3000", "\x1c", "\u00a0", "\"", "\\", "{{ x }}", "{% if %}", "<|im_end|>", "\r\n", "\u2028", "1.0", "\x01", "\x7f", "\ufeff"]
def s(n=6):
    return "".join(random.choice(PIECES) for _ in range(random.randint(0, n)))
def num():
    return random.choice([0, 1, -1, 2**70, 1.0, -0.0, 1e-5, 1e16, 0.1, 3.14159, 1e300, 2.5e-7, 123456789.0, 7])
def val(d=0):
    r = random.random()
    if d > 2 or r < 0.4: return random.choice([s(4), num(), True, False, None])
    if r < 0.7: return [val(d+1) for _ in range(random.randint(0, 3))]
    return {random.choice(["a", "b", "10", "2", "ключ", s(2), "__proto__", "items"]): val(d+1) for _ in range(random.randint(0, 3))}
def call():
    args = random.choice([{"x": val()}, val(), json.dumps(val()), "{}", {}])
    if isinstance(args, (type(None),)): args = {}
    c = {"name": random.choice(["f", "get_x", s(3) or "g"]), "arguments": args}
    if random.random() < 0.2: c = {"type": "function", "function": c, **({"id": "c1"} if random.random() < .5 else {})}
    return c
def msg(role):
    m = {"role": role, "content": random.choice([s(), None, s(10)])}
    if role == "assistant":
        if random.random() < 0.5: m["tool_calls"] = [call() for _ in range(random.randint(0, 3))]
        if random.random() < 0.6: m["reasoning_content"] = random.choice([None, s(), "", "\n\nr\n\n"])
    if role == "tool" and m["content"] is None and random.random() < 0.5: m["content"] = json.dumps(val())
    return m
for i in range(int(sys.argv[2])):
    ms = []
    if random.random() < 0.3: ms.append(msg("system"))
    for _ in range(random.randint(1, 5)):
        ms.append(msg(random.choice(["user", "user", "assistant", "tool", "system"])))
    ms.append(msg("assistant"))
    tools = random.choice([None, [], [{"name": "f", "description": s(), "parameters": val()} for _ in range(random.randint(1, 3))]])
    row = {"id": f"fz-{i}", "messages": ms}
    if tools is not None or random.random() < 0.5: row["tools"] = tools
    print(json.dumps(row, ensure_ascii=random.random() < 0.5))
