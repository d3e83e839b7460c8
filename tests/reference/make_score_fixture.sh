#!/bin/sh
# Rebuilds tests/testdata/score_fixture.jsonl.gz: adversarial rows from gen_score_rows.py plus
# a sample of the shared score cases, each with the reward the Python reference gives it.
# Needs Debian's /usr/bin/python3 with python3-nltk.
set -e
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
python3 tests/reference/gen_score_rows.py "$tmp/adv.jsonl" 3 6000
if [ -f ../shared/checks/score_cases.jsonl ]; then
  awk 'NR % 4 == 1' ../shared/checks/score_cases.jsonl >> "$tmp/adv.jsonl"
fi
/usr/bin/python3 tests/reference/sim_rl_reward.py "$tmp/adv.jsonl" "$tmp/ref.jsonl"
python3 - "$tmp/adv.jsonl" "$tmp/ref.jsonl" <<'PY' | gzip -9n > tests/testdata/score_fixture.jsonl.gz
import json, sys
for a, b in zip(open(sys.argv[1], encoding="utf-8"), open(sys.argv[2], encoding="utf-8")):
    print(json.dumps({"row": json.loads(a), "expected": json.loads(b)}, ensure_ascii=False))
PY
rm -r "$tmp"
