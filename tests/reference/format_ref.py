#!/usr/bin/env python3
"""Reference for `star data format`: raw rows of toolmind | toolace | xlam | hammer to messages
rows, restating STAR's data_process/format_data.py in plain Python, then its Sim-RL
self-check (filter_on_simrl) with the chat template rendered as prepare_ref.py renders it and
the reward of sim_rl_reward.py. Where the script would stop on an uncaught exception, the row
is dropped instead (as star does). Prints the number of rows written and dropped to stderr.

  /usr/bin/python3 format_ref.py TOKENIZER_CONFIG.json DATASET INPUT OUTPUT [SIZE [SEED]]

Needs python3-jinja2 and python3-nltk (Debian), through prepare_ref.py and sim_rl_reward.py.
"""
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_ref  # noqa: E402
import sim_rl_reward  # noqa: E402


class Skip(Exception):
    """Something the script catches and prints (a ValueError): it drops that and goes on."""


def load_rows(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    rows = []
    for line in text.split("\n"):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                rows.append(None)  # a malformed row: dropped where it is reached
    return rows


def unwrap_tool(tool):
    while isinstance(tool, dict) and "type" in tool and "function" in tool:
        tool = tool["function"]
    if not isinstance(tool, dict) or "name" not in tool:
        raise RuntimeError("bad tool")
    if "parameters" not in tool:
        if "arguments" not in tool:
            raise RuntimeError("bad tool")
        tool["parameters"] = tool.pop("arguments")
    return tool


def toolmind(row, i, produced):
    convo = row.pop("conversations")
    row["id"] = f"toolmind_{i}"
    messages = []
    for m in convo:
        role = m["role"]
        if role in ("user", "tool"):
            messages.append(m)
            continue
        if role != "assistant":
            raise RuntimeError("role")
        calls = None
        if "tool_calls" in m:
            calls = [c["function"] if "function" in c else c for c in m["tool_calls"]]
        reasoning = content = None
        if "content" in m:
            text = m["content"]
            if not isinstance(text, str):
                raise RuntimeError("content")
            content = text
            if "<think>" in text:
                if text.count("<think>") != 1 and text.count("</think>") != 1:
                    raise Skip()
                found = re.search(r"<think>(.*?)</think>", text, re.S)
                if not found:
                    raise Skip()
                reasoning = found.group(1)
                content = text.split("</think>")[-1]
        messages.append({"role": "assistant", "reasoning_content": reasoning,
                         "tool_calls": calls, "content": content})
    row["messages"] = messages
    row["tools"] = [unwrap_tool(t) for t in row["tools"]]
    return [row]


def toolace(row, i, produced):
    out = []
    try:
        tools = row["tools"]
        tools = json.loads(tools) if isinstance(tools, str) else tools
        convo = row["conversations"]
        convo = json.loads(convo) if isinstance(convo, str) else convo
        history, pending = [], []
        for j, m in enumerate(convo):
            role = m["role"]
            if role == "user" and m.get("content"):
                history.append({"role": "user", "content": m["content"]})
            elif role == "tool":
                c = m["content"]
                history.append({"role": "tool", "content": c if isinstance(c, str)
                                else json.dumps(c, ensure_ascii=False)})
            elif role == "assistant" and m.get("content"):
                turn = {"role": "assistant", "content": m["content"]}
                out.append({"id": f"toolace-{i}-{j}", "messages": history + [turn], "tools": tools})
                history.append(turn)
            elif role == "assistant" and m.get("tool_calls"):
                calls = [c["function"] for c in m["tool_calls"]]
                names = [t["name"] for t in tools]
                try:
                    for c in calls:
                        if c["name"] not in names:
                            c["name"] = next((n for n in names if c["name"] in n), None)
                            if c["name"] is None:
                                raise Skip()
                    by_name = {t["name"]: t for t in tools}
                    for c in calls:
                        args = c["arguments"]
                        if not isinstance(args, dict):
                            try:
                                args = json.loads(args)
                            except ValueError:
                                raise Skip()
                            c["arguments"] = args
                        if any(a not in by_name[c["name"]]["parameters"] for a in args):
                            raise Skip()
                except Skip:
                    continue
                pending.extend(calls)
                if j == len(convo) - 1 or not convo[j + 1].get("tool_calls"):
                    turn = {"role": "assistant", "tool_calls": pending}
                    out.append({"id": f"toolace-{i}-{j}", "messages": history + [turn],
                                "tools": tools})
                    history.append(turn)
                    pending = []
    except Exception:  # noqa: BLE001 - the script gives up the rest of the conversation
        pass
    return out


def xlam(row, i, produced):
    rid = f"xlam_{row['id']}"
    tools = row["tools"]
    tools = json.loads(tools) if isinstance(tools, str) else tools
    tools = [{"name": t["name"], "parameters": t.get("parameters", {}),
              "description": t.get("description", "")} for t in tools]
    answers = row["answers"]
    answers = json.loads(answers) if isinstance(answers, str) else answers
    messages = [{"role": "user", "content": row["query"]},
                {"role": "assistant", "content": None, "tool_calls": answers or None}]
    return [{"id": rid, "messages": messages, "tools": tools}]


def hammer(row, i, produced):
    rid = row.get("trace_id", f"hammer_{produced}")
    tools = [{"name": f["name"], "parameters": f.get("parameters", {}),
              "description": f.get("description", "")} for f in row.get("functions", [])]
    messages = [{"role": m["role"], "content": m.get("content")} for m in row.get("messages", [])]
    messages.append({"role": "assistant", "content": row.get("expected_output", ""),
                     "tool_calls": None})
    return [{"id": rid, "messages": messages, "tools": tools}]


def self_check(row, template, specials):
    def norm(ms):
        return [dict(m, content="") if not isinstance(m.get("content"), str) else m for m in ms]

    messages = norm(row["messages"])
    prompt = prepare_ref.apply_chat_template(template, specials, messages[:-1], tools=row["tools"],
                                             add_generation_prompt=True)
    solution = prepare_ref.apply_chat_template(template, specials, messages[-1:])
    solution = solution.replace("<|im_start|>assistant", "")
    if "</think>" not in solution:
        solution = "<think></think>" + solution
    try:
        score = sim_rl_reward.reward(prompt, solution, solution)[0]
    except sim_rl_reward.RowError:
        return False
    return score > 0.99


def main():
    config_path, dataset, inp, out = sys.argv[1:5]
    size = int(sys.argv[5]) if len(sys.argv) > 5 else None
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 42
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    template = prepare_ref.compile_template(config["chat_template"])
    specials = prepare_ref.special_tokens(config)
    random.seed(seed)
    rows = load_rows(inp)
    if size is not None and size < len(rows):
        rows = random.sample(rows, size)
    convert = {"toolmind": toolmind, "toolace": toolace, "xlam": xlam, "hammer": hammer}[dataset]
    converted, dropped = [], 0
    for i, row in enumerate(rows):
        try:
            if row is None:
                raise RuntimeError("malformed")
            got = convert(row, i, len(converted))
        except Exception:  # noqa: BLE001 - Skip, or where the script would stop
            dropped += 1
            continue
        converted.extend(got)
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        for row in converted:
            try:
                ok = self_check(row, template, specials)
            except Exception:  # noqa: BLE001 - a template that cannot render the row
                ok = False
            if ok:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
    print(f"{written} written, {len(converted)} converted, {dropped} raw rows dropped",
          file=sys.stderr)


if __name__ == "__main__":
    main()
