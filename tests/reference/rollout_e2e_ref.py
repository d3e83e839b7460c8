#!/usr/bin/env python3
"""Reference for `star rollout` end to end against a server whose replies are recorded:
messages rows in, output rows out, as STAR's teacher_rollout.py would write them with rows in
input order (star keeps passed-through rows in place). Prompts are rendered by
prepare_ref.py's jinja2, completions judged by rollout_ref.py, and with --min-reward each kept
completion is scored by sim_rl_reward.py against the original answer rendered as
`star prepare` renders targets (a row the reward cannot score is skipped, as star reports it).
Usage: rollout_e2e_ref.py TOKENIZER_CONFIG.json MESSAGES.jsonl RESPONSES.jsonl OUT.jsonl [--min-reward R]
"""
import json
import sys

from prepare_ref import compile_template, convert, special_tokens
from rollout_ref import as_written, dedupe_key, judge


def main(argv):
    min_reward = None
    if "--min-reward" in argv:
        i = argv.index("--min-reward")
        min_reward = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
        global reward, RowError
        from sim_rl_reward import RowError, reward
    config_path, messages_path, responses_path, out_path = argv
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    template = compile_template(config["chat_template"])
    specials = special_tokens(config)
    replies = {}
    with open(responses_path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            choices = sorted(rec["response"]["choices"], key=lambda c: c["index"])
            replies[rec["prompt"]] = [c["text"] for c in choices]
    with open(messages_path, encoding="utf-8") as fin, open(out_path, "w", encoding="utf-8") as out:
        for line in fin:
            if not line.strip():
                continue
            row = json.loads(line)
            messages = row.get("messages")
            if not messages or messages[-1].get("role") != "assistant":
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                continue
            trainset = convert(row, template, specials, False)
            prompt = trainset["inputs"][:-len("<think>")]
            if min_reward is not None:
                try:
                    reward(prompt, "", trainset["targets"])
                except RowError:  # the reward cannot read the label or the tools: a bad row
                    continue
            seen = set()
            for completion in replies[prompt]:
                status, message = judge(prompt, completion)
                if status != "ok":
                    continue
                if min_reward is not None:
                    text = completion if "<think>" in completion else "<think>" + completion
                    if reward(prompt, text, trainset["targets"])[0] < min_reward:
                        continue
                key = dedupe_key(message)
                if key in seen:
                    continue
                seen.add(key)
                new = dict(row)
                new["messages"] = messages[:-1] + [as_written(message)]
                out.write(json.dumps(new, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
