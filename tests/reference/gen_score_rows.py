"""Writes adversarial `star score` input rows (tests/testdata/score_rows.jsonl) that exercise
every rule of SIMRL_REWARD.md: tools blocks of every shape, think-tag failures, bad JSON, NaN,
int/float/bool/str mixes, nested values in another key order, duplicate and reordered calls,
replies with unicode and odd whitespace, and malformed labels. Deterministic (seeded)."""
import json
import random
import sys

rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
WORDS = ("the running runner runs quickly generously city cities happy happiness weather "
         "forecast paris london new york temperature celsius fahrenheit book books booking "
         "hotel flight flights search searching results relational conditional agreed feed "
         "news dying skies İstanbul Kelvin \u212aelvin caf\u00e9 na\u00efve \u00c9cole "
         "\u4e2d\u6587 \u0394\u03b5\u03bb\u03c4\u03b1 \u03a3\u039f\u03a3 \U0001f600 ok OK 42 3.14 "
         "x_y a-b it's \"quoted\" back\\slash tab\tsep").split(" ")
SPACES = [" ", "\n", "\t", "\r\n", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85", "\ufeff",
          "\u200b", "\x0b", ""]
TOOL_NAMES = ["get_weather", "search_hotels", "book_flight", "calc", "noop", "translate"]
ARG_NAMES = ["city", "date", "limit", "unit", "query", "opts", "flag", "ids", "price", "lang"]


def words(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def rand_value(depth=0):
    r = rng.random()
    if r < 0.25:
        return words(rng.randrange(0, 5))
    if r < 0.4:
        return rng.choice([0, 1, -1, 7, 10, 2 ** 53 + 1, 10 ** 30, -0])
    if r < 0.55:
        return rng.choice([1.0, 0.5, 100.0, 1e-05, 1e16, -0.0, 2.0 ** 53, 3.14, 7.0, 1e300])
    if r < 0.62:
        return rng.choice([True, False])
    if r < 0.67:
        return None
    if r < 0.72:
        return rng.choice(["None", "True", "1", "1.0", "", " ", "\u00a0", "[1]", "{'a': 1}"])
    if r < 0.72 + (0.14 if depth < 2 else 0):
        return [rand_value(depth + 1) for _ in range(rng.randrange(0, 4))]
    if depth < 2:
        return {rng.choice(ARG_NAMES): rand_value(depth + 1) for _ in range(rng.randrange(0, 4))}
    return words(2)


def mutate(v):
    """A value that Python may or may not consider equal to v."""
    r = rng.random()
    if r < 0.35:
        return v
    if isinstance(v, bool):
        return rng.choice([int(v), float(v), str(v), not v])
    if isinstance(v, int):
        return rng.choice([float(v), str(v), v + 1, bool(v), [v]])
    if isinstance(v, float):
        return rng.choice([int(v) if v == v and abs(v) != float("inf") else v, str(v), v * 2, -v])
    if isinstance(v, str):
        ws = v.split(" ")
        rng.shuffle(ws)
        return rng.choice([" ".join(ws), v.upper(), v + " " + words(1), words(2), v.strip(), ""])
    if isinstance(v, list):
        return rng.choice([list(reversed(v)), [mutate(x) for x in v], v + [1]])
    if isinstance(v, dict):
        items = list(v.items())
        rng.shuffle(items)
        return rng.choice([dict(items), {k: mutate(x) for k, x in v.items()}])
    return rng.choice(["None", 0, False, []])


def dump_float(x):
    if x != x:
        return "NaN"
    if x == float("inf"):
        return "Infinity"
    if x == float("-inf"):
        return "-Infinity"
    s = repr(x)
    if rng.random() < 0.2 and x == int(x) and abs(x) < 1e6:
        s = rng.choice([f"{int(x)}.0", f"{int(x)}.00", f"{x:e}", f"{int(x)}E0"])
    return s


def dump(v, dup=True):
    """JSON text with random spacing, float lexemes and (sometimes) duplicate keys."""
    sp = lambda: rng.choice(["", " ", "", "\n", "  ", "\t"])
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return dump_float(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=rng.random() < 0.5)
    if isinstance(v, list):
        return "[" + sp() + ("," + sp()).join(dump(x) for x in v) + sp() + "]"
    items = [json.dumps(k) + sp() + ":" + sp() + dump(x) for k, x in v.items()]
    if dup and v and rng.random() < 0.08:
        k = rng.choice(list(v))
        items.insert(0, json.dumps(k) + ": " + dump(rand_value(1)))  # first position, last value
    return "{" + sp() + ("," + sp()).join(items) + sp() + "}"


def make_tools():
    tools = []
    for name in rng.sample(TOOL_NAMES, rng.randrange(1, 5)):
        args = rng.sample(ARG_NAMES, rng.randrange(0, 5))
        style = rng.random()
        props = {a: {"type": "string", "description": words(3)} for a in args}
        if style < 0.5:
            params = {"type": "object", "properties": props, "required": args[:1]}
        elif style < 0.6:
            params = {"type": None, "properties": props}
        elif style < 0.7:
            params = {"properties": props}
        elif style < 0.75:
            params = {"type": "object", "properties": "not a dict", **{a: {} for a in args}}
        else:
            params = {a: {"description": words(2), "type": "str", "default": ""} for a in args}
        tools.append({"name": name, "description": words(6), "parameters": params})
    return tools


def tools_block(tools):
    lines = [json.dumps(t, ensure_ascii=rng.random() < 0.5) for t in tools]
    r = rng.random()
    if r < 0.05:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(SPACES) * 2)
    elif r < 0.08:
        lines.append('{"name": "broken", "parameters": ')  # a bad line: row error
    elif r < 0.10:
        lines.append('{"name": "noparams"}')  # lacks parameters: row error
    elif r < 0.13 and tools:
        lines.append(json.dumps({"name": tools[0]["name"], "parameters": {"only": {}}}))
    elif r < 0.15:
        lines = [rng.choice(SPACES) + l + rng.choice(SPACES) for l in lines]
    return "\n".join(lines)


def make_prompt(tools):
    sys_text = "<|im_start|>system\n" + words(5)
    r = rng.random()
    if r < 0.85:
        sys_text += "\n# Tools\n\n<tools>\n" + tools_block(tools) + "\n</tools>\n" + words(4)
    elif r < 0.9:
        sys_text += "\n<tools>\n" + json.dumps({"name": "decoy", "parameters": {}}) + \
            "\n</tools>\nthen\n<tools>\n" + tools_block(tools) + "\n</tools>"
    # else: no tools block at all
    return sys_text + "<|im_end|>\n<|im_start|>user\n" + words(8) + \
        "<|im_end|>\n<|im_start|>assistant\n<think>"


def gold_calls(tools):
    calls = []
    for _ in range(rng.randrange(1, 4)):
        t = rng.choice(tools) if tools else {"name": "ghost", "parameters": {}}
        params = t["parameters"]
        names = list(params["properties"]) if isinstance(params.get("properties"), dict) \
            and params.get("type") is not None else list(params)
        args = {a: rand_value() for a in rng.sample(names, min(len(names), rng.randrange(0, 4)))}
        calls.append({"name": t["name"], "arguments": args})
    if rng.random() < 0.15 and calls:
        calls.append(json.loads(json.dumps(calls[0])))  # a duplicate call
    return calls


def call_text(c):
    return "<tool_call>\n" + dump(c) + "\n</tool_call>"


def make_label(gold, reply):
    r = rng.random()
    think = rng.choice(["", words(6) + "\n", "Thinking about <tool_call> formats.\n"])
    if gold is not None:
        body = "\n".join(call_text(c) for c in gold)
    else:
        body = reply
    label = think + "</think>\n\n" + body + "<|im_end|>\n"
    if r < 0.02:
        label = label.replace("</think>", "")
    elif r < 0.04:
        label = "</think>" + label
    elif r < 0.05 and gold is not None:
        label = label.replace("</tool_call>", "", 1)
    elif r < 0.06 and gold is not None:
        label = label.replace('"arguments"', '"args"', 1)
    elif r < 0.07 and gold is not None:
        label = label.replace("<tool_call>\n{", "<tool_call>\n{{", 1)
    return label


def predicted_calls(gold, tools):
    if gold is None:
        gold = gold_calls(tools) if tools else []
    calls = []
    for g in gold:
        r = rng.random()
        if r < 0.1:
            continue  # drop it
        args = dict(g["arguments"])
        if rng.random() < 0.5:
            args = {k: mutate(v) for k, v in args.items()}
        if rng.random() < 0.2:
            items = list(args.items())
            rng.shuffle(items)
            args = dict(items)
        if rng.random() < 0.1 and args:
            args.pop(rng.choice(list(args)))
        if rng.random() < 0.08:
            args[rng.choice(ARG_NAMES + ["hallucinated"])] = rand_value()
        name = g["name"]
        if rng.random() < 0.05:
            name = rng.choice(TOOL_NAMES + ["made_up_tool"])
        c = {"name": name, "arguments": args}
        if rng.random() < 0.06:
            c["arguments"] = rng.choice(["", [], None, 1, "x", [1], True, {}])
        calls.append(c)
    if rng.random() < 0.2:
        rng.shuffle(calls)
    if rng.random() < 0.1 and calls:
        calls.append(rng.choice(calls))
    return calls


def make_completion(gold, reply, tools):
    think = "\n" + words(rng.randrange(0, 12)) + "\n</think>\n\n"
    if gold is not None and rng.random() < 0.8 or gold is None and rng.random() < 0.15:
        calls = predicted_calls(gold, tools)
        texts = [call_text(c) for c in calls]
        r = rng.random()
        if r < 0.03 and texts:
            texts[0] = texts[0].replace("}", "", 1)  # bad JSON
        elif r < 0.05 and texts:
            texts[0] = "<tool_call>\n[1, 2]\n</tool_call>"
        elif r < 0.06:
            texts.append("<tool_call>\n{\"name\": \"calc\"}\n</tool_call>")
        elif r < 0.07:
            texts = ["<tool_call>\n" + dump(gold[0] if gold else {}) if texts else "<tool_call>"]
        elif r < 0.08 and texts:
            texts[0] = texts[0].replace("\n}", "\n, \"x\": NaN}", 1)
        answer = "\n".join(texts)
    else:
        if reply is not None and rng.random() < 0.3:
            answer = reply
        else:
            answer = rng.choice([words(rng.randrange(1, 15)), "", " ", "\u3000", reply or "",
                                 (reply or "").upper(), words(3) + " \U0001f600 " + words(2)])
    end = rng.choice(["<|im_end|>", "<|im_end|><|endoftext|>", "", "\n", "\u00a0"])
    completion = think + rng.choice(SPACES) + answer + rng.choice(SPACES) + end
    r = rng.random()
    if r < 0.03:
        completion = completion.replace("</think>", "")  # no closing tag
    elif r < 0.05:
        completion = "\n<think>" + words(2) + "</think>" + completion  # two think blocks
    elif r < 0.06:
        completion = completion + "\n</think> trailing"  # answer after the last </think>
    elif r < 0.07:
        completion = words(2) + "<|im_end|>\n<|im_start|>assistant\n<think>" + completion
    elif r < 0.08:
        completion = completion.replace("</think>", "</think></think>", 1)
    return completion


def make_row(i):
    tools = make_tools()
    prompt = make_prompt(tools)
    if rng.random() < 0.6:
        gold, reply = gold_calls(tools), None
    else:
        gold, reply = None, rng.choice([words(rng.randrange(1, 20)), words(3) + " \u212aelvin",
                                        "İstanbul hotels", "", "\u00a0"])
    label = make_label(gold, reply)
    completion = make_completion(gold, reply, tools)
    row = {"id": f"adv-{i:05d}"}
    if rng.random() < 0.5:
        row.update(prompt=prompt, completion=completion, label=label)
    else:
        row.update(inputs=prompt, completion=completion, targets=label)
    return row


n = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for i in range(n):
        out.write(json.dumps(make_row(i), ensure_ascii=False) + "\n")
