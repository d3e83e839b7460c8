#!/usr/bin/env python3
"""Reference for reward/rollout_format.ts: the filter of STAR's teacher rollout
(data_process/teacher_rollout.py) in plain Python, so that its Python behaviour (exceptions,
`in` on dicts/lists/strings, int/float/bool equality, string iteration) comes for free.

Usage: rollout_ref.py CASES.jsonl > EXPECTED.jsonl
A case is {"prompt": str, "completions": [str, ...], "row"?: {...}}. Its expected line is
{"verdicts": [{"ok": true, "message": <json of the message>, "key": str} |
              {"ok": false, "reason": "think"|"tool_call"|"tools"|"name"|"arguments"}],
 "rows": [<json.dumps(row, ensure_ascii=False) of each output row>]}   ("rows" only with "row")
The expected file itself is ASCII (ensure_ascii=True), so lone surrogates survive in it.
"""
import json
import re
import sys

THINK = re.compile(r"<think>(.*?)</think>", re.S)
CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
TOOLS = re.compile(r"<tools>(.*?)</tools>", re.S)


class Rejected(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def split_completion(text):
    """(think, calls, reply) of a completion, or Rejected("think" | "tool_call")."""
    if "<think>" not in text:
        text = "<think>" + text
    blocks = THINK.findall(text)
    if len(blocks) != 1:
        raise Rejected("think")
    answer = text.split("</think>")[-1].strip()
    if "<tool_call>" not in answer:
        return blocks[0].strip(), [], answer
    calls = []
    for body in CALL.findall(answer):
        try:
            obj = json.loads(body)
            calls.append({"name": obj["name"], "arguments": obj["arguments"]})
        except Exception:
            raise Rejected("tool_call")
    return blocks[0].strip(), calls, None


def tool_table(prompt):
    """name -> parameters from the prompt's last tools block; any failure propagates."""
    found = TOOLS.findall(prompt)
    if not found:
        return []
    table = {}
    for line in found[-1].split("\n"):
        line = line.strip()
        if not line:
            continue
        spec = json.loads(line)
        if "type" in spec and "function" in spec:
            spec = spec["function"]
        name = spec["name"]
        params = spec["parameters"]
        if ("properties" in params and isinstance(params["properties"], dict)
                and params.get("type") is not None):
            params = params["properties"]
        table[name] = params
    return table


def judge(prompt, completion):
    """("ok", message) or ("rejected", reason)."""
    try:
        think, calls, reply = split_completion(completion)
    except Rejected as r:
        return "rejected", r.reason
    try:
        table = tool_table(prompt)
    except Exception:
        return "rejected", "tools"
    for call in calls:
        try:
            known = call["name"] in table
        except TypeError:
            known = False
        if not known:
            return "rejected", "name"
        try:
            params = table[call["name"]]
            for p in call["arguments"]:
                if p not in params:
                    return "rejected", "arguments"
        except Exception:
            return "rejected", "arguments"
    message = {"reasoning_content": think or None, "content": None, "tool_calls": None}
    if calls:
        message["tool_calls"] = calls
    elif reply:
        message["content"] = reply
    return "ok", message


def dedupe_key(m):
    calls = m["tool_calls"]
    return json.dumps({
        "content": m["content"],
        "tool_calls": sorted(calls, key=lambda c: json.dumps(c, sort_keys=True)) if calls else None,
        "reasoning_content": m["reasoning_content"],
    }, sort_keys=True)


def as_written(m):
    return {"role": "assistant", "content": m["content"], "tool_calls": m["tool_calls"],
            "reasoning_content": m["reasoning_content"]}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            verdicts, kept = [], []
            for completion in case["completions"]:
                status, what = judge(case["prompt"], completion)
                if status == "ok":
                    verdicts.append({"ok": True, "message": json.dumps(as_written(what), ensure_ascii=False),
                                     "key": dedupe_key(what)})
                    kept.append(what)
                else:
                    verdicts.append({"ok": False, "reason": what})
            out = {"verdicts": verdicts}
            if "row" in case:
                row, seen, rows = case["row"], set(), []
                for m in kept:
                    k = dedupe_key(m)
                    if k in seen:
                        continue
                    seen.add(k)
                    new = dict(row)
                    new["messages"] = row["messages"][:-1] + [as_written(m)]
                    rows.append(json.dumps(new, ensure_ascii=False))
                out["rows"] = rows
            print(json.dumps(out))


if __name__ == "__main__":
    main()
