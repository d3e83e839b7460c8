#!/usr/bin/env python3
"""Reference for the pure parts of star's data recipe (data/recipe/), Python stdlib only.

It restates, in plain Python and with the real `random` and `ast` modules, what STAR's
data_process scripts do: the Python-style call parser of format_data.py (values through
ast.literal_eval), the assistant-message labels and statistics of labeling_messages.py, and
the stratified greedy sampler of data_proportion.py (prompt tokens taken from a "_tokens"
field, since no tokenizer is at hand). Outputs are written the way star writes them, so the
tests compare bytes.

  recipe_ref.py random OUT
  recipe_ref.py calls IN OUT
  recipe_ref.py label IN OUT REPORT TEXT [--only-last-round]
  recipe_ref.py mix IN OUT REPORT TEXT --size N [--seed S] [--max-turns T]
        [--response-rate R] [--multi-step-rate R] [--single-turns-rate R] [--parallel-rate R]
        [--max-prompt-tokens N]
"""
import argparse
import ast
import json
import random
import sys
from collections import Counter


def dumps(v, **kw):
    return json.dumps(v, ensure_ascii=False, **kw)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(dumps(r) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pct2(x):
    return format(x, ".2f")


# --- Python's random --------------------------------------------------------------------------

def cmd_random(out):
    rows = []
    for seed in [0, 1, 42, 7, -5, 2**32 + 3, 123456789012345678901234567890]:
        for n in [0, 1, 2, 5, 21, 22, 30, 100, 1000]:
            r = random.Random(seed)
            x = list(range(n))
            r.shuffle(x)
            rows.append({"seed": str(seed), "op": "shuffle", "n": n, "k": None, "result": x})
            for k in sorted(k for k in {0, 1, 3, n // 2, n - 1, n} if 0 <= k <= n):
                r = random.Random(seed)
                rows.append({"seed": str(seed), "op": "sample", "n": n, "k": k,
                             "result": r.sample(range(n), k)})
        r = random.Random(seed)
        rows.append({"seed": str(seed), "op": "getrandbits", "n": None, "k": None,
                     "result": [str(r.getrandbits(b)) for b in [1, 7, 31, 32, 33, 64, 100]]})
    # Big populations take the set branch of sample().
    for seed, n, k in [(42, 100000, 50000), (3, 600000, 40), (42, 55000, 50000)]:
        r = random.Random(seed)
        rows.append({"seed": str(seed), "op": "sample", "n": n, "k": k,
                     "result": r.sample(range(n), k)[:200]})
    write_jsonl(out, rows)


# --- the call parser --------------------------------------------------------------------------

class NoParen(Exception):
    pass


def split_calls(text):
    """[f(...), g(...)] -> (name, argument text) pairs, scanning as format_data.py does.

    A generator, so that each call's arguments are evaluated before the next call is scanned
    (an error in the arguments comes before a syntax error further on, as in the script).
    """
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return
    body = text[1:-1].strip()
    pos = 0
    n = len(body)
    while True:
        while pos < n and body[pos] in " ,\t\n":
            pos += 1
        if pos >= n:
            return
        start = pos
        while pos < n and (body[pos].isalnum() or body[pos] in "_."):
            pos += 1
        name = body[start:pos]
        while pos < n and body[pos] in " \t\n":
            pos += 1
        if pos >= n or body[pos] != "(":
            raise NoParen(name)
        pos += 1
        depth, quote, esc, chars = 1, None, False, []
        closed = False
        while pos < n:
            ch = body[pos]
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif quote:
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    closed = True
                    break
            chars.append(ch)
            pos += 1
        if not closed:
            return
        pos += 1
        yield name, "".join(chars).strip()


def split_arguments(text):
    if not text.strip():
        return []
    pieces, cur, depth, quote, esc = [], [], 0, None, False
    for ch in text:
        if esc:
            esc = False
        elif ch == "\\":
            esc = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    last = "".join(cur).strip()
    if last:
        pieces.append(last)
    return pieces


def argument_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if len(text) >= 1 and text[0] == text[-1] and text[0] in "\"'":
            return text[1:-1]
        return text


def parse_calls(text):
    calls = []
    for name, args in split_calls(text):
        d = {}
        for piece in split_arguments(args):
            if "=" in piece:
                k, _, v = piece.partition("=")
                d[k.strip()] = argument_value(v.strip())
        calls.append({"name": name, "arguments": d})
    return calls


def call_result(text):
    try:
        calls = parse_calls(text)
    except NoParen:
        return {"error": "CallSyntaxError"}
    except (TypeError, MemoryError, RecursionError):
        return {"error": "NotJson"}
    try:
        json.loads(dumps(calls))
        return {"calls": calls}
    except (TypeError, ValueError):
        return {"error": "NotJson"}


def cmd_calls(inp, out):
    rows = []
    for case in read_jsonl(inp):
        rows.append(call_result(case["text"]))
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(dumps(r) + "\n")


# --- labels -----------------------------------------------------------------------------------

def label_message(messages, i):
    m = messages[i]
    calls = m.get("tool_calls")
    n = len(calls) if calls else 0
    tags = []
    if m.get("content") not in (None, ""):
        tags.append("response")
    if n == 1:
        tags.append("single")
    elif n > 1:
        tags.append("parallel")
    if i > 0 and n > 0 and messages[i - 1].get("role") == "tool":
        tags.append("multi-step")
    return tags, (i + 1) // 2, n


def cmd_label(inp, out, report_path, text_path, only_last):
    rows_out = []
    tags_seen, combos, turns_seen, calls_seen = [], [], [], []
    conversations = assistants = 0
    for row in read_jsonl(inp):
        messages = row.get("messages", [])
        new = []
        for i, m in enumerate(messages):
            if m.get("role") != "assistant":
                new.append(m)
                continue
            tags, turns, n = label_message(messages, i)
            lm = dict(m)
            lm["tag"], lm["turns"], lm["tool_call_num"] = tags, turns, n
            new.append(lm)
            assistants += 1
            if only_last and i != len(messages) - 1:
                continue
            tags_seen.extend(tags)
            combos.append("+".join(sorted(tags)))
            turns_seen.append(turns)
            calls_seen.append(n)
        conversations += 1
        out_row = dict(row)
        out_row["messages"] = new
        rows_out.append(out_row)
    write_jsonl(out, rows_out)

    def dist(values):
        c = Counter(values)
        return c, {k: v / len(values) * 100 for k, v in c.items()}

    tc, tp = dist(tags_seen)
    cc, cp = dist(combos)
    uc, up = dist(turns_seen)
    nc, np_ = dist(calls_seen)
    report = {
        "summary": {"total_conversations": conversations, "total_assistant_messages": assistants,
                    "only_stat_last_round": only_last},
        "tag_distribution": {"total_tags": len(tags_seen), "tag_counts": dict(tc),
                             "tag_percentages": tp},
        "tag_combination_distribution": {"total_combinations": len(combos),
                                         "combination_counts": dict(cc.most_common()),
                                         "combination_percentages": cp},
        "turns_distribution": {"turns_counts": dict(uc), "turns_percentages": up},
        "tool_call_num_distribution": {"tool_call_num_counts": dict(nc),
                                       "tool_call_num_percentages": np_},
    }
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=2)

    lines = []

    def line(name, n, total):
        lines.append(f"  {name:<24} {n:>8}  {pct2(n / total * 100 if total else 0)}%")

    scope = "last message only" if only_last else "every assistant message"
    lines.append(f"{conversations} conversations, {assistants} assistant messages "
                 f"(statistics: {scope})")
    lines.append(f"tags ({len(tags_seen)} in all):")
    for k, n in sorted(tc.items(), key=lambda kv: -kv[1]):
        line(k, n, len(tags_seen))
    lines.append(f"tag combinations ({len(combos)} messages, top 20):")
    for k, n in cc.most_common(20):
        line(k or "(none)", n, len(combos))
    lines.append("turns:")
    for k, n in sorted(uc.items()):
        line(str(k), n, len(turns_seen))
    lines.append("tool calls per message:")
    for k, n in sorted(nc.items()):
        line(str(k), n, len(calls_seen))
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# --- the mix ----------------------------------------------------------------------------------

CLASSES = ["single_turn", "multi_turn", "parallel", "single", "response", "multi_step"]


def classes_of(row):
    last = None
    for m in reversed(row.get("messages", [])):
        if m.get("role") == "assistant":
            last = m
            break
    if last is None:
        return None, set()
    turns = last.get("turns", 0)
    tags = last.get("tag", [])
    calls = last.get("tool_calls")
    n = len(calls) if calls else 0
    got = set()
    if turns == 1:
        got.add("single_turn")
    if turns > 1:
        got.add("multi_turn")
    if n > 1:
        got.add("parallel")
    if n == 1:
        got.add("single")
    if "response" in tags:
        got.add("response")
    if "multi-step" in tags:
        got.add("multi_step")
    return turns, got


def cmd_mix(a):
    size = a.size
    quota = {
        "single_turn": int(a.single_turns_rate * size),
        "multi_turn": int((1 - a.single_turns_rate) * size),
        "parallel": int(a.parallel_rate * size),
        "single": int((1 - a.parallel_rate) * size),
        "response": int(a.response_rate * size),
        "multi_step": int(a.multi_step_rate * size),
    }
    rows = []
    for path in a.input.split(","):
        rows.extend(read_jsonl(path))
    rng = random.Random(a.seed)
    order = list(rows)
    rng.shuffle(order)
    taken, counts = [], dict.fromkeys(CLASSES, 0)
    for row in order:
        if len(taken) >= int(size * 1.1):
            break
        turns, got = classes_of(row)
        if turns is not None and turns > a.max_turns:
            continue
        if "response" in got and counts["response"] >= quota["response"]:
            continue
        if any(counts[c] < quota[c] for c in got):
            taken.append(row)
            for c in got:
                counts[c] += 1
    kept = [r for r in taken if r["_tokens"] <= a.max_prompt_tokens]
    if len(kept) >= size:
        final = rng.sample(kept, size)
    else:
        final = kept
    if not final and size > 0:
        sys.exit("nothing left")
    write_jsonl(a.output, final)
    fc = dict.fromkeys(CLASSES, 0)
    for r in final:
        for c in classes_of(r)[1]:
            fc[c] += 1
    total = len(final)
    report = {
        "rows_read": len(rows), "dataset_size": size, "targets": quota,
        "sampled": len(taken), "sampled_counts": counts,
        "max_prompt_tokens": a.max_prompt_tokens, "over_max_prompt_tokens": len(taken) - len(kept),
        "total_count": total, "category_counts": fc,
        "category_proportions": {c: (fc[c] / total * 100) if total > 0 else 0 for c in CLASSES},
    }
    with open(a.report, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=2)
    lines = [
        f"{len(rows)} rows read; quotas for {size} rows, "
        f"at most {int(size * 1.1)} taken before the prompt-token limit",
        f"greedy pass: {len(taken)} rows taken",
        f"  {'class':<12} {'taken':>8} {'quota':>8}",
    ]
    for c in CLASSES:
        mark = "" if counts[c] >= quota[c] else "  (short)"
        lines.append(f"  {c:<12} {counts[c]:>8} {quota[c]:>8}{mark}")
    lines.append(f"prompt-token limit {a.max_prompt_tokens}: {len(taken) - len(kept)} rows dropped, "
                 f"{len(kept)} left")
    short = f" (fewer than the {size} asked for)" if total < size else ""
    lines.append(f"final: {total} rows{short}")
    for c in CLASSES:
        p = fc[c] / total * 100 if total > 0 else 0
        lines.append(f"  {c:<12} {fc[c]:>8}  {pct2(p)}%")
    with open(a.text, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "random":
        cmd_random(sys.argv[2])
    elif cmd == "calls":
        cmd_calls(sys.argv[2], sys.argv[3])
    elif cmd == "label":
        cmd_label(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
                  "--only-last-round" in sys.argv[6:])
    elif cmd == "mix":
        p = argparse.ArgumentParser()
        p.add_argument("input")
        p.add_argument("output")
        p.add_argument("report")
        p.add_argument("text")
        p.add_argument("--size", type=int, required=True)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--max-turns", type=int, default=10)
        p.add_argument("--response-rate", type=float, default=0.2)
        p.add_argument("--multi-step-rate", type=float, default=0.3)
        p.add_argument("--single-turns-rate", type=float, default=0.3)
        p.add_argument("--parallel-rate", type=float, default=0.5)
        p.add_argument("--max-prompt-tokens", type=int, default=8192)
        cmd_mix(p.parse_args(sys.argv[2:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
