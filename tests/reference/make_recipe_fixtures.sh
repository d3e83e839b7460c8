#!/bin/sh
# Regenerates tests/testdata/recipe/ from gen_recipe_cases.py (inputs) and recipe_ref.py
# (expected outputs, Python 3.11 stdlib). Run from anywhere; needs only python3.
set -eu
here=$(dirname "$0")
out="$here/../testdata/recipe"
ref="$here/recipe_ref.py"
python3 "$here/gen_recipe_cases.py" "$out"
python3 "$ref" random "$out/random.expected.jsonl"
python3 "$ref" calls "$out/calls_cases.jsonl" "$out/calls.expected.jsonl"
python3 "$ref" label "$out/label_cases.jsonl" "$out/label.expected.jsonl" \
  "$out/label.report.json" "$out/label.txt"
python3 "$ref" label "$out/label_cases.jsonl" "$out/label_last.expected.jsonl" \
  "$out/label_last.report.json" "$out/label_last.txt" --only-last-round
mix() {
  name=$1
  shift
  python3 "$ref" mix "$out/mix_cases_a.jsonl,$out/mix_cases_b.jsonl" "$out/mix_$name.expected.jsonl" \
    "$out/mix_$name.report.json" "$out/mix_$name.txt" "$@"
}
# The settings; recipe_test.ts repeats them.
mix default --size 400
mix seed7 --size 250 --seed 7 --max-prompt-tokens 5000 --max-turns 4
mix rates --size 300 --seed 1 --response-rate 0.5 --multi-step-rate 0.1 --single-turns-rate 0.6 --parallel-rate 0.2
mix short --size 2900 --seed 3
mix zero --size 0
gzip -9nf "$out/calls_cases.jsonl" "$out/calls.expected.jsonl" "$out/mix_cases_a.jsonl" \
  "$out/mix_cases_b.jsonl" "$out"/mix_*.expected.jsonl "$out/label_cases.jsonl" \
  "$out"/label*.expected.jsonl "$out/random.expected.jsonl"
# The xlam sample (tests/testdata/prepare/xlam_sample.jsonl.gz, a copy of shared/data's):
# labelled with --only-last-round, then mixed to 100 rows. Its prompts are all far below 8192
# tokens, so "_tokens": 0 stands for the tokenizer; only the ids of the mix are kept.
tmp=$(mktemp -d)
gzip -dc "$here/../testdata/prepare/xlam_sample.jsonl.gz" >"$tmp/xlam.jsonl"
python3 "$ref" label "$tmp/xlam.jsonl" "$tmp/labeled.jsonl" "$out/xlam_label.report.json" \
  "$out/xlam_label.txt" --only-last-round
python3 -c 'import json,sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for r in rows:
        r["_tokens"] = 0
        f.write(json.dumps(r, ensure_ascii=False) + "\n")' "$tmp/labeled.jsonl" "$tmp/tokens.jsonl"
python3 "$ref" mix "$tmp/tokens.jsonl" "$tmp/mix.jsonl" "$out/xlam_mix.report.json" "$out/xlam_mix.txt" --size 100
python3 -c 'import json,sys
print(json.dumps([json.loads(l)["id"] for l in open(sys.argv[1])]))' "$tmp/mix.jsonl" >"$out/xlam_mix.ids.json"
rm -r "$tmp"
