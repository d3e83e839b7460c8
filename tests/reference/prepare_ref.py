#!/usr/bin/env python3
"""Reference for `star prepare`: messages rows -> {"id", "inputs", "targets"} rows.

Renders a tokenizer's chat template the way transformers' apply_chat_template does
(jinja2 ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols
extension, a `tojson` filter that is json.dumps(ensure_ascii=False, ...), `raise_exception`,
the special tokens of tokenizer_config.json as variables, messages and tools passed as they
are), then applies the STAR conversion of CONTRACT.md. `content: null` is rendered as "".

Rows that cannot be converted are written to stderr as "LINE: reason" and skipped.
Output rows are json.dumps(row, ensure_ascii=False), one per line.

Usage: prepare_ref.py TOKENIZER_CONFIG.json INPUT.jsonl OUTPUT.jsonl [--add-reasoning-content]
Needs only python3-jinja2 (Debian), not transformers.
"""
import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ASSISTANT_HEADER = "<|im_start|>assistant\n"


def compile_template(source):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)


def special_tokens(config):
    """The tokenizer's special_tokens_map: the set special tokens, as strings."""
    out = {}
    for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token"):
        v = config.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[key] = v
    extra = config.get("additional_special_tokens")
    if extra:
        out["additional_special_tokens"] = [t["content"] if isinstance(t, dict) else t for t in extra]
    return out


def apply_chat_template(template, specials, messages, tools=None, add_generation_prompt=False):
    return template.render(messages=messages, tools=tools, documents=None,
                           add_generation_prompt=add_generation_prompt, **specials)


def convert(row, template, specials, add_reasoning_content):
    messages = []
    for m in row["messages"]:
        m = dict(m)
        if m.get("content") is None:
            m["content"] = ""
        messages.append(m)
    inputs = apply_chat_template(template, specials, messages[:-1], tools=row.get("tools"),
                                 add_generation_prompt=True) + "<think>"
    targets = apply_chat_template(template, specials, [messages[-1]])
    if targets.startswith(ASSISTANT_HEADER):
        targets = targets[len(ASSISTANT_HEADER):]
    if targets.startswith("<think>"):
        targets = targets[len("<think>"):]
    if "</think>" not in targets:
        targets = "</think>" + targets
    if add_reasoning_content:
        reasoning = messages[-1].get("reasoning_content")
        if reasoning:
            targets = reasoning + targets
    return {"id": row.get("id"), "inputs": inputs, "targets": targets}


def main(argv):
    add_reasoning = "--add-reasoning-content" in argv
    args = [a for a in argv if a != "--add-reasoning-content"]
    config_path, input_path, output_path = args
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    template = compile_template(config["chat_template"])
    specials = special_tokens(config)
    n_ok = n_bad = 0
    with open(input_path, encoding="utf-8") as fin, open(output_path, "w", encoding="utf-8") as fout:
        for line_no, line in enumerate(fin, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if len(row["messages"]) < 2:
                    raise ValueError("fewer than 2 messages")
                out = convert(row, template, specials, add_reasoning)
            except Exception as e:  # noqa: BLE001 - report and skip, like star prepare
                print(f"{line_no}: {type(e).__name__}: {e}", file=sys.stderr)
                n_bad += 1
                continue
            fout.write(json.dumps(out, ensure_ascii=False) + "\n")
            n_ok += 1
    print(f"{n_ok} rows written, {n_bad} skipped", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
