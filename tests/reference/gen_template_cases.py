#!/usr/bin/env python3
"""Writes tests/testdata/template_cases.jsonl: small Jinja templates rendered by Python's jinja2
the way transformers' apply_chat_template sets it up (see prepare_ref.py), to pin down where
star's renderer must follow Python rather than the JavaScript Jinja package.
Each row: {"name", "template", "vars" (JSON text, read with json.loads), "output" | "error"}.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from prepare_ref import compile_template  # noqa: E402

CASES = [
    ("strip with chars", "{{ s.strip('\\n') }}|{{ s.lstrip('\\n') }}|{{ s.rstrip('\\n') }}",
     {"s": "\n  a b \n\n"}),
    ("strip without chars", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}]",
     {"s": "\u3000\x1c a\u00a0\ufeff \t"}),
    ("strip with char set", "{{ s.strip('xy') }}", {"s": "xyxhixyy"}),
    ("floats keep Python repr in tojson", "{{ v | tojson }}",
     "{\"v\": [1.0, 1e-05, 1e16, -0.0, 0.1, 123456789.123, 1.5e300, 2.5E-7]}"),
    ("big ints stay exact", "{{ v | tojson }}", "{\"v\": [12345678901234567890, -9007199254740993]}"),
    ("digit keys keep their order", "{{ v | tojson }}", "{\"v\": {\"b\": 1, \"10\": 2, \"2\": 3, \"a\": 4}}"),
    ("tojson keeps non-ASCII and escapes controls", "{{ v | tojson }}",
     {"v": {"k\u00e9y": "\u4f60\u597d \U0001F600 \"q\" \\ \n\t\x01\x7f <>&'"}}),
    ("tojson indent", "{{ v | tojson(indent=2) }}", "{\"v\": {\"a\": [1, 2.0, {}], \"b\": []}}"),
    ("tojson separators and sort_keys", "{{ v | tojson(separators=(',', ':'), sort_keys=true) }}",
     "{\"v\": {\"b\": 1, \"a\": [1, 2]}}"),
    ("tojson ensure_ascii", "{{ v | tojson(ensure_ascii=true) }}", {"v": "\u00e9\U0001F600"}),
    ("printing Python values", "{{ f }} {{ i }} {{ t }} {{ l }} {{ d }}",
     "{\"f\": 1.0, \"i\": 3, \"t\": true, \"l\": [1, \"a\", null, 2.5], \"d\": {\"x\": false}}"),
    ("tojson of undefined fails", "{{ missing | tojson }}", {}),
    ("raise_exception", "{{ raise_exception('bad input') }}", {}),
    ("trim and lstrip blocks", "a\n  {% if x %}\nb\n  {% endif %}\nc\n", {"x": True}),
    ("namespace and loops", "{% set ns = namespace(n=0) %}{% for m in ms[::-1] %}"
     "{% set ns.n = ns.n + loop.index0 %}{{ m }}{% endfor %}={{ ns.n }}", {"ms": ["a", "b", "c"]}),
    ("split and index", "{{ s.split('</think>')[-1].lstrip('\\n') }}|{{ s.split('</think>')[0] }}",
     {"s": "<think>\nr\n</think>\n\nanswer"}),
    ("is string test", "{% for a in xs %}{{ a is string }},{% endfor %}", {"xs": ["x", 1, None]}),
    ("attribute falls back to item", "{% if c.function %}{{ c.function.name }}{% else %}{{ c.name }}{% endif %}",
     {"c": {"name": "n1"}}),
]


def main(out_path):
    with open(out_path, "w", encoding="utf-8") as f:
        for name, template, variables in CASES:
            text = variables if isinstance(variables, str) else json.dumps(variables, ensure_ascii=False)
            row = {"name": name, "template": template, "vars": text}
            try:
                row["output"] = compile_template(template).render(**json.loads(text))
            except Exception as e:  # noqa: BLE001
                row["error"] = f"{type(e).__name__}: {e}"
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "testdata", "template_cases.jsonl"))
