#!/bin/sh
# Rebuilds the CKD training-run fixture: the student is `star init-model` of student.config.json
# (seed 3), the teacher is tests/testdata/qwen3/toy_untied_bf16; torch computes the run
# (tests/reference/ckd_torch_train.py, Debian python3-torch).
set -e
cd "$(dirname "$0")/../../.."
D=tests/testdata/ckd
deno run -A main.ts init-model --config $D/student.config.json --seed 3 --output $D/student
CFG='{"seed": 3, "max_epochs": 3, "train_batch_size": 4, "micro_train_batch_size": 2,
 "learning_rate": 0.02, "lr_scheduler": "cosine_with_min_lr", "lr_warmup_ratio": 0.1,
 "min_lr_ratio": 0.1, "adam_betas": [0.9, 0.95], "adam_eps": 1e-8, "weight_decay": 0.01,
 "max_norm": 1.0, "kd_topk": 8, "kd_student_topm": 6, "kd_kl_l1_coef": 10.0}'
for v in 'akl 0.7' 'fkl 1.0'; do
  set -- $v
  C=$(echo "$CFG" | sed "s/}\$/, \"kd_kl_type\": \"$1\", \"kd_ratio\": $2}/")
  /usr/bin/python3 tests/reference/ckd_torch_train.py --student $D/student \
    --teacher tests/testdata/qwen3/toy_untied_bf16 --config "$C" --rows 13 --data-seed 5 \
    --output $D/train_$1.torch.json
done
