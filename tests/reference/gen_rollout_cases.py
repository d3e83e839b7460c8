#!/usr/bin/env python3
"""Cases for reward/rollout_format.ts and tests/reference/rollout_ref.py: prompts with a tools
block (or none, or a broken one) and completions to judge. `hand` writes deliberate cases, one
per rule of STAR's teacher_rollout.py; `fuzz SEED N` writes random ones built from the pieces
those rules look at (tags, whitespace Python strips, JSON of every shape, names and parameters
of every type). Usage: gen_rollout_cases.py hand > cases.jsonl
                       gen_rollout_cases.py fuzz SEED N > fuzz.jsonl"""
import json
import random
import sys


def prompt_for(tool_lines, user="What now?", system=None):
    """A Qwen3-style rendered prompt whose tools block holds the given lines verbatim."""
    head = "<|im_start|>system\n"
    if system:
        head += system + "\n\n"
    if tool_lines is None:
        text = (head + "<|im_end|>\n") if system else ""
    else:
        text = (head + "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
                + "".join("\n" + l for l in tool_lines) + "\n</tools>\n\nFor each function call, return a "
                "json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
                "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
    return text + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"


def dumps(v):
    return json.dumps(v, ensure_ascii=False)


WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                          "required": ["city"]}}
SEARCH = {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {}}}}}
RAW = {"name": "raw", "parameters": {"a": 1, "b": 2}}
TYPENULL = {"name": "typenull", "parameters": {"type": None, "properties": {"x": {}}}}
NOARGS = {"name": "noargs", "parameters": {}}
STD = prompt_for([dumps(t) for t in [WEATHER, SEARCH, RAW, TYPENULL, NOARGS]])


def call(name, args, pad="\n"):
    return f"<tool_call>{pad}{dumps({'name': name, 'arguments': args})}{pad}</tool_call>"


def hand():
    cases = []
    std = [
        "<think>\nI should check the weather.\n</think>\n\n" + call("get_weather", {"city": "Paris"}),
        "<think>I should check the weather.</think>" + call("get_weather", {"city": "Paris"}, "  "),
        "reasoning without an opening tag</think>\n\nHello there",
        "<think></think>Hi",
        "<think>only thinking</think>",
        "<think>\n\n</think>\n\n",
        "<think>a</think><think>b</think>c",
        "no tags at all",
        "",
        "<think>a<think>b</think>c",
        "<think>x</think>y</think>z",
        "<think>unclosed",
        "<think>t</think>" + "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>",
        "<think>t</think>" + "<tool_call>{\"name\": \"get_weather\"}</tool_call>",
        "<think>t</think>" + "<tool_call>[\"get_weather\", {}]</tool_call>",
        "<think>t</think>" + "<tool_call>\"get_weather\"</tool_call>",
        "<think>t</think>" + call("get_wether", {"city": "Paris"}),
        "<think>t</think>" + call("get_weather", {"town": "Paris"}),
        "<think>t</think>" + call("get_weather", ["city", "unit"]),
        "<think>t</think>" + call("get_weather", ["city", "town"]),
        "<think>t</think>" + call("get_weather", "cu"),
        "<think>t</think>" + call("get_weather", ""),
        "<think>t</think>" + call("get_weather", None),
        "<think>t</think>" + call("get_weather", 3),
        "<think>t</think>" + call("get_weather", True),
        "<think>t</think>" + call("get_weather", {}),
        "<think>s</think>" + call("search", {"q": "x"}),
        "<think>s</think>" + call("search", {"type": "x"}),
        "<think>r</think>" + call("raw", {"a": 1, "b": [1.0, 1e2, 10**30]}),
        "<think>r</think>" + call("raw", {"type": 1}),
        "<think>n</think>" + call("typenull", {"properties": 1, "type": None}),
        "<think>n</think>" + call("typenull", {"x": 1}),
        "<think>n</think>" + call("noargs", {}),
        "<think>n</think>" + call("noargs", []),
        "<think>n</think>" + call("noargs", {"z": 0}),
        "<think>u</think>" + "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P",
        "<think>u</think>text before " + call("get_weather", {"city": "Paris"}) + " text after",
        "<think>two</think>" + call("get_weather", {"city": "A"}) + call("search", {"q": "b"}),
        "<think>two</think>" + call("search", {"q": "b"}) + "\n" + call("get_weather", {"city": "A"}),
        "<think>two</think>" + call("get_weather", {"city": "A"}) + call("nope", {}),
        "\u3000<think> spaced \u00a0</think>\u2003reply\u2028",
        "<think>\x1c t \x1f</think>\x85 reply \ufeff",
        "<think>nan</think>" + "<tool_call>{\"name\": \"raw\", \"arguments\": {\"a\": NaN, \"b\": -Infinity}}</tool_call>",
        "<think>dup</think>" + "<tool_call>{\"name\": \"raw\", \"arguments\": {\"a\": 1, \"a\": 2}}</tool_call>",
        "<think>unicode</think>" + call("get_weather", {"city": "Zürich 你好 😀"}),
        "<think>t</think><tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\"}}</tool_call><tool_call>oops</tool_call>",
        "<think>t</think>reply mentioning </tool_call> only",
    ]
    row = {"source": "hand", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What now?"},
                                          {"role": "assistant", "content": "original", "reasoning_content": "r"}],
           "tools": [WEATHER, SEARCH], "id": "h1", "extra": {"n": 1.0, "big": 10**20}}
    cases.append({"prompt": STD, "completions": std, "row": row})
    # no tools block: calls are rejected, replies kept
    cases.append({"prompt": prompt_for(None), "completions": [
        "<think>a</think>hello", "<think>a</think>" + call("get_weather", {}), "<think>a</think>" + call([1], {})]})
    # a broken tools block rejects every completion, replies too
    for bad in ["{not json", "[1, 2]", "3", "null", dumps({"name": "f"}), dumps({"parameters": {}}),
                dumps({"name": [1], "parameters": {}}), dumps({"name": "f", "parameters": 3}),
                dumps({"name": "f", "parameters": None}), dumps({"name": "f", "parameters": ["properties"]}),
                dumps({"name": "f", "parameters": "has properties"}), dumps({"type": "function", "function": "f"}),
                dumps({"type": "function", "function": {"parameters": {}}})]:
        cases.append({"prompt": prompt_for([dumps(WEATHER), bad]),
                      "completions": ["<think>a</think>hello", "<think>a</think>" + call("get_weather", {"city": "x"})]})
    # the last tools block counts; blank lines and stripped whitespace are fine
    two = prompt_for([dumps(WEATHER)]) + "<|im_start|>user\nsee <tools>\n" + dumps(NOARGS) + "\n</tools><|im_end|>\n<|im_start|>assistant\n"
    cases.append({"prompt": two, "completions": [
        "<think>a</think>" + call("noargs", {}), "<think>a</think>" + call("get_weather", {"city": "x"})]})
    cases.append({"prompt": prompt_for(["", " \t" + dumps(WEATHER) + "\r", "\u3000", dumps(NOARGS)]), "completions": [
        "<think>a</think>" + call("noargs", {}), "<think>a</think>" + call("get_weather", {"city": "x"})]})
    # names of other types, list and string parameters, later tools replace earlier ones
    odd = [dumps({"name": 1, "parameters": {"a": 0}}), dumps({"name": None, "parameters": ["a", 1, [2.0], {"k": True}, float("nan")]}),
           dumps({"name": "s", "parameters": "abc😀"}), dumps({"name": float("nan"), "parameters": {}}),
           dumps({"name": "dup", "parameters": {"first": 0}}), dumps({"name": "dup", "parameters": {"second": 0}}),
           dumps({"name": 2.5, "parameters": {"type": "object", "properties": []}})]
    cases.append({"prompt": prompt_for(odd), "completions": [
        "<think>a</think>" + call(1, {"a": 1}), "<think>a</think>" + call(1.0, {"a": 1}), "<think>a</think>" + call(True, {"a": 1}),
        "<think>a</think>" + call(None, ["a"]), "<think>a</think>" + call(None, [1.0]), "<think>a</think>" + call(None, [True]),
        "<think>a</think>" + call(None, [[2]]), "<think>a</think>" + call(None, [{"k": 1}]), "<think>a</think>" + call(None, [{"k": 2}]),
        "<think>a</think>" + call(None, "a"), "<think>a</think>" + call(None, ["b"]),
        "<think>a</think>" + call(None, [float("nan")]), "<think>a</think>" + call(None, [[float("nan")]]),
        "<think>a</think>" + call("s", "ab"), "<think>a</think>" + call("s", ["bc"]), "<think>a</think>" + call("s", ["ac"]),
        "<think>a</think>" + call("s", [""]), "<think>a</think>" + call("s", [1]), "<think>a</think>" + call("s", "😀"),
        "<think>a</think>" + "<tool_call>{\"name\": \"s\", \"arguments\": [\"\\ud83d\"]}</tool_call>",
        "<think>a</think>" + "<tool_call>{\"name\": NaN, \"arguments\": {}}</tool_call>",
        "<think>a</think>" + call("dup", {"second": 1}), "<think>a</think>" + call("dup", {"first": 1}),
        "<think>a</think>" + call(2.5, {"type": 1, "properties": 1}), "<think>a</think>" + call(2.5, {"x": 1}),
        "<think>a</think>" + call({"n": 1}, {}), "<think>a</think>" + call([1], {}),
    ]})
    for c in cases:
        print(json.dumps(c))


PIECES = ["a", "b", " ", "\n", "\n\n", "\t", "<think>", "</think>", "<tool_call>", "</tool_call>", "<tools>",
          "é", "你好", "😀", "\u3000", "\x1c", "\u00a0", "\u2028", "\x85", "\"", "\\", "{", "}", "1.0", "properties"]


def s(n=5):
    return "".join(random.choice(PIECES) for _ in range(random.randint(0, n)))


def scalar():
    return random.choice([0, 1, -1, 2**70, 1.0, -0.0, 1e-5, 1e16, 0.1, 1e300, True, False, None, "", "a", "x", "city",
                          s(2), float("nan"), float("inf")])


def val(d=0):
    r = random.random()
    if d > 2 or r < 0.5:
        return scalar()
    if r < 0.75:
        return [val(d + 1) for _ in range(random.randint(0, 3))]
    return {random.choice(["a", "b", "x", "city", "q", "type", "properties", s(2)]): val(d + 1)
            for _ in range(random.randint(0, 3))}


NAMES = ["f", "g", "get_x", 1, 1.0, True, None, "F", ""]
KEYS = ["a", "b", "x", "city", "q", "type", "properties", "", "é"]


def params():
    r = random.random()
    keys = random.sample(KEYS, random.randint(0, 4))
    if r < 0.4:
        return {"type": random.choice(["object", None, "x", 0]), "properties": {k: val(1) for k in keys}}
    if r < 0.55:
        return {"type": "object", "properties": random.choice([[], "p", None, {k: {} for k in keys}])}
    if r < 0.7:
        return {k: val(1) for k in keys}
    if r < 0.8:
        return random.choice([keys, keys + [1, 1.0, [2], {"k": 1}], "abcxy", "properties", s(3)])
    return random.choice([{}, {"properties": {"a": 1}}, {}, {"properties": {"a": 1}}, 5, None])


def tool_line():
    r = random.random()
    t = {"name": random.choice(NAMES), "description": s(3), "parameters": params()}
    if random.random() < 0.03:
        del t[random.choice(["name", "parameters"])]
    if random.random() < 0.3:
        t = {"type": "function", "function": t}
    if r < 0.03:
        return "{bad json"
    if r < 0.05:
        return random.choice(["[]", "1", "\"s\"", "null"])
    line = json.dumps(t, ensure_ascii=random.random() < 0.5)
    return random.choice(["", " ", "\t", "\u3000"]) + line + random.choice(["", " ", "\r"])


def body(names):
    r = random.random()
    if r < 0.05:
        return random.choice(["{", "[]", "1", "\"x\"", "{\"name\": \"f\"}", "{\"arguments\": {}}"])
    args = random.choice([
        {k: val(1) for k in random.sample(KEYS, random.randint(0, 3))},
        {k: val(1) for k in random.sample(KEYS, random.randint(0, 2))},
        random.sample(KEYS, random.randint(0, 2)), random.choice(["", "ab", "x", "ca"]), scalar(),
    ])
    obj = {"name": random.choice(names + ["zz", [1], {"a": 1}]), "arguments": args}
    if random.random() < 0.2:
        obj = {"arguments": args, "name": obj["name"], "extra": 1}
    text = json.dumps(obj, ensure_ascii=random.random() < 0.5)
    return random.choice(["", "\n", " "]) + text + random.choice(["", "\n", " "])


def completion(names):
    think = random.choice(["<think>" + s() + "</think>"] * 6 + [s() + "</think>"] * 2 + [
        "<think>" + s(), "", "<think>a</think><think>b</think>", "<think>a<think>b</think>"])
    r = random.random()
    if r < 0.4:
        answer = s(8)
    elif r < 0.95:
        answer = "".join(random.choice([s(2), ""]) + "<tool_call>" + body(names) + "</tool_call>"
                         for _ in range(random.randint(1, 3)))
        if random.random() < 0.1:
            answer += "<tool_call>" + body(names)
    else:
        answer = "<tool_call>" + s(3)
    return random.choice(["", "\n", " ", "\u3000"]) + think + random.choice(["", "\n\n", " "]) + answer


def fuzz(seed, n):
    random.seed(seed)
    for i in range(n):
        lines = [tool_line() for _ in range(random.randint(0, 4))]
        r = random.random()
        p = prompt_for(None if r < 0.1 else lines, user=s(6), system=random.choice([None, s(4)]))
        if random.random() < 0.05:
            p += "<tools>\n" + tool_line() + "\n</tools>"
        names = []
        for l in lines:
            try:
                t = json.loads(l)
                t = t.get("function", t) if isinstance(t, dict) else {}
                names.append(t.get("name") if isinstance(t, dict) else None)
            except Exception:
                pass
        names = [x for x in names if isinstance(x, (str, int, float, type(None)))] or ["f"]
        comps = [completion(names) for _ in range(random.randint(1, 6))]
        if random.random() < 0.5 and comps:
            comps.append(random.choice(comps))
        case = {"prompt": p, "completions": comps}
        if random.random() < 0.5:
            msgs = [{"role": "user", "content": s(3)}, {"role": "assistant", "content": s(3), "tool_calls": None}]
            case["row"] = {"id": f"fz-{i}", "messages": msgs, "meta": val(), "tools": []} if random.random() < 0.5 \
                else {"messages": msgs, "id": i}
        print(json.dumps(case, ensure_ascii=random.random() < 0.5))


if __name__ == "__main__":
    if sys.argv[1] == "hand":
        hand()
    else:
        fuzz(int(sys.argv[2]), int(sys.argv[3]))
