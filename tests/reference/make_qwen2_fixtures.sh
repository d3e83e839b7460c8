#!/bin/sh
# Rebuilds tests/testdata/qwen2: toy Qwen2 checkpoints with non-zero biases (a tied f32 model,
# an untied bf16 model with 3:1 grouped-query attention and head_dim from hidden_size / heads)
# and the torch float64 fixtures computed from them (Debian python3-torch).
set -e
cd "$(dirname "$0")/../.."
T=tests/testdata/qwen2
rm -rf $T/toy_tied $T/toy_untied_bf16
deno run -A tests/reference/make_toy_checkpoint.ts $T/toy_tied.config.json $T/toy_tied 21 f32
deno run -A tests/reference/make_toy_checkpoint.ts $T/toy_untied.config.json $T/toy_untied_bf16 22 bf16
/usr/bin/python3 tests/reference/qwen_torch.py --model $T/toy_tied \
  --seqs '[[3,17,5,36,0,9,49,21,21,8],[12,12,4],[7,30]]' \
  --labels '[[-100,-100,-100,36,0,9,49,-100,21,8],[12,12,4],[7,30]]' \
  --topk 5 --grads --generate 8 --output $T/toy_tied.torch.json
/usr/bin/python3 tests/reference/qwen_torch.py --model $T/toy_untied_bf16 \
  --seqs "[[60,$(seq -s, 1 40)],[0,59,33]]" \
  --topk 3 --grads --generate 6 --output $T/toy_untied_bf16.torch.json
