#!/bin/sh
# Regenerates tests/testdata/rollout/: the hand-made and fuzzed cases of gen_rollout_cases.py and
# what rollout_ref.py (STAR's teacher-rollout filter in plain Python) makes of them.
set -eu
here=$(dirname "$0")
out="$here/../testdata/rollout"
mkdir -p "$out"
python3 "$here/gen_rollout_cases.py" hand >"$out/cases.jsonl"
python3 "$here/rollout_ref.py" "$out/cases.jsonl" >"$out/cases.expected.jsonl"
tmp=$(mktemp -d)
python3 "$here/gen_rollout_cases.py" fuzz 12 1500 >"$tmp/fuzz.jsonl"
python3 "$here/rollout_ref.py" "$tmp/fuzz.jsonl" >"$tmp/fuzz.expected.jsonl"
gzip -9nc "$tmp/fuzz.jsonl" >"$out/fuzz.jsonl.gz"
gzip -9nc "$tmp/fuzz.expected.jsonl" >"$out/fuzz.expected.jsonl.gz"
rm -r "$tmp"
