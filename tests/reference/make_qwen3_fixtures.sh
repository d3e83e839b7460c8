#!/bin/sh
# Rebuilds tests/testdata/qwen3: toy checkpoints written by `star init-model` and the torch
# float64 fixtures computed from them (Debian python3-torch: apt-get install python3-torch).
set -e
cd "$(dirname "$0")/../.."
T=tests/testdata/qwen3
deno run -A main.ts init-model --config $T/toy_tied.config.json --output $T/toy_tied --seed 1 --max-shard-size 10KB
deno run -A main.ts init-model --config $T/toy_untied.config.json --output $T/toy_untied_bf16 --seed 2
/usr/bin/python3 tests/reference/qwen3_torch.py --model $T/toy_tied \
  --seqs '[[3,17,5,36,0,9,49,21,21,8],[12,12,4],[7,30]]' \
  --labels '[[-100,-100,-100,36,0,9,49,-100,21,8],[12,12,4],[7,30]]' \
  --topk 5 --grads --generate 8 --output $T/toy_tied.torch.json
/usr/bin/python3 tests/reference/qwen3_torch.py --model $T/toy_untied_bf16 \
  --seqs "[[60,$(seq -s, 1 40)],[0,59,33]]" \
  --topk 3 --grads --generate 6 --output $T/toy_untied_bf16.torch.json
