"""An independent Python implementation of shared/SIMRL_REWARD.md, written from the text with
Python's own json, re, str and NLTK's Porter stemmer, to produce fixtures for star's reward.

Usage: /usr/bin/python3 sim_rl_reward.py IN.jsonl OUT.jsonl
Each input row {"id"?, "prompt"|"inputs", "completion", "label"|"targets"} gives one output
row {"id"?, "reward", "format", "answer"} or {"id"?, "error": "..."}.
Needs Debian's python3-nltk. ROUGE-L follows rouge_score's tokenizer and LCS (not installed).
"""
import json
import re
import sys

from nltk.stem import porter

STEMMER = porter.PorterStemmer()
THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
TOOLS = re.compile(r"<tools>(.*?)</tools>", re.DOTALL)
NON_ALNUM = re.compile(r"[^a-z0-9]+")
VALID = re.compile(r"^[a-z0-9]+$")


class RowError(Exception):
    pass


def tokenize(text):
    text = NON_ALNUM.sub(" ", text.lower())
    tokens = re.split(r"\s+", text)
    tokens = [STEMMER.stem(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if VALID.match(t)]


def lcs(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def rouge(p, g):
    if p == g:
        return 1.0
    if not p.strip() or not g.strip():
        return 0.0
    pt, gt = tokenize(p), tokenize(g)
    if not pt or not gt:
        return 0.0
    n = lcs(gt, pt)
    precision, recall = n / len(pt), n / len(gt)
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def is_number(v):
    return isinstance(v, (int, float))  # bool is an int


def value_sim(p, g):
    if isinstance(p, str) and isinstance(g, str):
        return rouge(p, g)
    if is_number(p) and is_number(g):
        return 1.0 if p == g else 0.0
    return 1.0 if str(p) == str(g) else 0.0


def as_args(a):
    if isinstance(a, dict):
        return a
    if a == "" or a == [] and isinstance(a, list):
        return {}
    return None


def arg_sim(p, g):
    left = dict(g)
    total = 0.0
    for k, pv in p.items():
        if k in left:
            gv = left.pop(k)
            total += value_sim(pv, gv)
    den = len(p) + len(left)
    return 1.0 if den == 0 else total / den


def call_sim(pred, gold):
    buckets = {}
    nan_left = 0
    for g in gold:
        try:
            buckets.setdefault(g["name"], []).append(g["arguments"])
        except TypeError:
            raise RowError("unhashable gold name")
    total = 0.0
    for c in pred:
        try:
            bucket = buckets.get(c["name"])
        except TypeError:
            bucket = None
        if not bucket:
            continue
        args = as_args(c["arguments"])
        sims = [arg_sim(args, g) for g in bucket]
        best = max(sims)
        del bucket[sims.index(best)]
        total += best
    left = sum(len(b) for b in buckets.values())
    den = left + len(pred)
    return 1.0 if den == 0 else total / den


def parse_tools(prompt):
    blocks = TOOLS.findall(prompt)
    tools = {}
    if not blocks:
        return tools
    for line in blocks[-1].split("\n"):
        line = line.strip()
        if not line:
            continue
        try:
            t = json.loads(line)
        except (ValueError, RecursionError):
            raise RowError("bad tools line")
        if not isinstance(t, dict) or "name" not in t or "parameters" not in t:
            raise RowError("tools line lacks name/parameters")
        params = t["parameters"]
        if not isinstance(params, dict):
            raise RowError("parameters not a dict")
        props = params.get("properties")
        if isinstance(props, dict) and params.get("type") is not None:
            names = set(props.keys())
        else:
            names = set(params.keys())
        try:
            tools[t["name"]] = names
        except TypeError:
            raise RowError("unhashable tool name")
    return tools


def parse_label(label):
    if label.count("</think>") != 1:
        raise RowError("label think count")
    answer = label.split("</think>")[1].strip()
    if "<tool_call>" not in answer:
        return [], answer
    calls = []
    for body in TOOL_CALL.findall(answer):
        try:
            c = json.loads(body)
        except (ValueError, RecursionError):
            raise RowError("bad gold json")
        if not isinstance(c, dict) or "name" not in c or "arguments" not in c:
            raise RowError("gold lacks name/arguments")
        if not isinstance(c["arguments"], dict):
            raise RowError("gold arguments not a dict")
        try:
            hash(c["name"])
        except TypeError:
            raise RowError("unhashable gold name")
        calls.append(c)
    if not calls:
        raise RowError("no gold calls")
    return calls, None


def parse_generation(prompt, completion):
    query = prompt + completion
    gen = query.split("<|im_start|>assistant\n")[-1]
    if len(THINK.findall(gen)) != 1:
        return None
    answer = gen.split("</think>")[-1].strip()
    if "<tool_call>" not in answer:
        return [], answer
    calls = []
    for body in TOOL_CALL.findall(answer):
        try:
            c = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(c, dict) or "name" not in c or "arguments" not in c:
            return None
        calls.append(c)
    return calls, None


def valid(calls, tools):
    for c in calls:
        try:
            if c["name"] not in tools:
                return False
        except TypeError:
            return False
        args = as_args(c["arguments"])
        if args is None:
            return False
        allowed = tools[c["name"]]
        if any(k not in allowed for k in args):
            return False
    return True


def reward(prompt, completion, label):
    gold_calls, gold_reply = parse_label(label)
    tools = parse_tools(prompt)
    parsed = parse_generation(prompt, completion)
    if parsed is None or not valid(parsed[0], tools):
        return -1.0, -1, 0.0
    calls, reply = parsed
    if gold_calls:
        answer = 0.0 if not calls else call_sim(calls, gold_calls)
    else:
        answer = rouge(reply, gold_reply) if reply else 0.0
    return answer, 1, answer


def main():
    with open(sys.argv[1], encoding="utf-8") as f, open(sys.argv[2], "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            prompt = row["prompt"] if "prompt" in row else row["inputs"]
            label = row["label"] if "label" in row else row["targets"]
            res = {"id": row["id"]} if "id" in row else {}
            try:
                r, fmt, ans = reward(prompt, row["completion"], label)
                res.update(reward=r, format=fmt, answer=ans)
            except RowError as e:
                res["error"] = str(e)
            out.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
