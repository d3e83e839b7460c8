#!/bin/sh
# Rebuilds tests/testdata/qwen3: toy checkpoints written by `star init-model` and the torch
# float64 fixtures computed from them (Debian python3-torch: apt-get install python3-torch).
set -e
cd "$(dirname "$0")/../.."
T=tests/testdata/qwen3
deno run -A main.ts init-model --config $T/toy_tied.config.json --output $T/toy_tied --seed 1 --max-shard-size 10KB
deno run -A main.ts init-model --config $T/toy_untied.config.json --output $T/toy_untied_bf16 --seed 2
/usr/bin/python3 tests/reference/qwen_torch.py --model $T/toy_tied \
  --seqs '[[3,17,5,36,0,9,49,21,21,8],[12,12,4],[7,30]]' \
  --labels '[[-100,-100,-100,36,0,9,49,-100,21,8],[12,12,4],[7,30]]' \
  --topk 5 --grads --generate 8 --output $T/toy_tied.torch.json
/usr/bin/python3 tests/reference/qwen_torch.py --model $T/toy_untied_bf16 \
  --seqs "[[60,$(seq -s, 1 40)],[0,59,33]]" \
  --topk 3 --grads --generate 6 --output $T/toy_untied_bf16.torch.json
# real vocabulary: the tiny preset and the exact Qwen3-0.6B shape (bf16), seed 0, rebuilt by the
# tests themselves from `star init-model`
S1='151644,872,198,3838,374,279,9104,304,12095,3351,30,151645,198,151644,77091,198,151667,271,151668,271'
S2='151657,198,4913,606,788,330,455,69364,497,330,16370,788,5212,8926,788,330,59604,95642,151658,151645'
S32="$S1,151657,198,4913,606,788,330,455,69364,497,330,16370,788"
TMP=$(mktemp -d)
deno run -A main.ts init-model --preset tiny --seed 0 --output "$TMP/tiny"
/usr/bin/python3 tests/reference/qwen_torch.py --model "$TMP/tiny" --seqs "[[$S1],[$S2]]" \
  --topk 5 --generate 6 --output $T/tiny_seed0.torch.json
deno run -A main.ts init-model --preset qwen3-0.6b --seed 0 --output "$TMP/q06"
/usr/bin/python3 tests/reference/qwen_torch.py --model "$TMP/q06" --seqs "[[$S32]]" \
  --topk 5 --generate 4 --output $T/qwen3-0.6b_seed0_bf16.torch.json
rm -rf "$TMP"
