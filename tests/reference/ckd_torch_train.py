#!/usr/bin/python3
"""A CKD training run in torch float64, independent of the TypeScript trainer: the student and
the teacher are the torch Qwen3 of qwen3_torch.py, the loss is STAR's CKD (teacher top-k
fkl/rkl/akl + the tail of the student's own top-m outside it + kd_ratio mixing with CE), each
micro-batch's loss is its mean over target tokens and the step's loss their mean (gradients
accumulated by autograd), the learning rate follows HF's cosine_with_min_lr with ceil(ratio x N)
warmup steps, torch.nn.utils.clip_grad_norm_ clips and torch.optim.AdamW updates (no decay on
biases and norm weights). Parameters and AdamW moments are rounded to float32 after every step,
like f32 master weights. The data order is star's (SplitMix64-seeded Fisher-Yates per epoch,
re-implemented here from its description). Writes the data and the per-step metrics as JSON.

Run (Debian python3-torch):
  /usr/bin/python3 tests/reference/ckd_torch_train.py --student DIR --teacher DIR \
      --config '{"seed": 3, ...}' --rows 13 --output F.json
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen3_torch import forward, load_model  # noqa: E402

M64 = (1 << 64) - 1
PHI = 0x9E3779B97F4A7C15
NO_DECAY = ["bias", "layer_norm.weight", "layernorm.weight", "norm.weight", "ln_f.weight"]


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + PHI) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        limit = 2**32 - (2**32 % n)
        while True:
            x = self.next() >> 32
            if x < limit:
                return x % n


def epoch_order(n, seed, epoch):
    rng = SplitMix64(SplitMix64((seed & M64) ^ ((epoch * PHI) & M64)).next())
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def lr_factor(step, warmup, total, min_ratio):
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    c = 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, c * (1 - min_ratio) + min_ratio)


def ckd_rows(z, t_vals, t_ids, target, c):
    """Per-row CKD loss and parts for student logits z (R, V)."""
    s_all = z.log_softmax(-1)
    s = s_all.gather(-1, t_ids)
    P, q = t_vals.exp(), s.exp()
    fkl = (P * (t_vals - s)).sum(-1)
    rkl = (q * (s - t_vals)).sum(-1)
    if c["kd_kl_type"] == "fkl":
        div = fkl
    elif c["kd_kl_type"] == "rkl":
        div = rkl
    else:
        head = (torch.cumsum(P, -1) - P) < 0.5
        head[..., 0] = True
        margin = (P - q).abs()
        gh, gt = (margin * head).sum(-1), (margin * ~head).sum(-1)
        den = gh + gt
        den = torch.where(den != 0, den, torch.full_like(den, 1e-9))
        div = (gh * fkl + gt * rkl) / den
    sv, si = s_all.topk(c["kd_student_topm"], -1)
    outside = ~(si.unsqueeze(-1) == t_ids.unsqueeze(-2)).any(-1)
    tail = (outside * sv.exp()).sum(-1)
    kd = div + c["kd_kl_l1_coef"] * tail
    ce = -s_all.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    r = c["kd_ratio"]
    loss = kd if r >= 1 else r * kd + (1 - r) * ce
    return loss, fkl, tail, ce


def round_f32(t):
    with torch.no_grad():
        t.copy_(t.float().double())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--config", required=True, help="JSON: the trainer keys used here")
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    c = json.loads(a.config)
    scfg, S = load_model(a.student)
    tcfg, T = load_model(a.teacher)
    V = scfg["vocab_size"]
    assert tcfg["vocab_size"] == V
    g = torch.Generator().manual_seed(a.data_seed)
    data = []
    for _ in range(a.rows):
        n = int(torch.randint(5, 10, (1,), generator=g))
        ids = torch.randint(0, V, (n,), generator=g).tolist()
        data.append({"ids": ids, "promptLength": int(torch.randint(1, 4, (1,), generator=g))})

    params = {n: t.clone().requires_grad_(True) for n, t in S.items()}
    decay = [p for n, p in params.items() if not any(s in n for s in NO_DECAY)]
    no_decay = [p for n, p in params.items() if any(s in n for s in NO_DECAY)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": c["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=c["learning_rate"], betas=tuple(c["adam_betas"]), eps=c["adam_eps"])
    tbs, mbs = c["train_batch_size"], c["micro_train_batch_size"]
    per_epoch = a.rows // tbs
    total = per_epoch * c["max_epochs"]
    warmup = math.ceil(c["lr_warmup_ratio"] * total)
    teacher_lp = {}
    with torch.no_grad():
        for i, row in enumerate(data):
            teacher_lp[i] = forward(tcfg, T, row["ids"]).log_softmax(-1)
    metrics = []
    for step in range(total):
        epoch, b = divmod(step, per_epoch)
        rows = epoch_order(a.rows, c["seed"], epoch)[b * tbs:(b + 1) * tbs]
        micro = [rows[i:i + mbs] for i in range(0, tbs, mbs)]
        lr = c["learning_rate"] * lr_factor(step, warmup, total, c["min_lr_ratio"])
        for grp in opt.param_groups:
            grp["lr"] = lr
        loss_sum, parts, tokens = 0.0, [0.0, 0.0, 0.0], 0
        for mb in micro:
            losses, fkls, tails, ces = [], [], [], []
            for r in mb:
                ids, p0 = data[r]["ids"], data[r]["promptLength"]
                tokens += len(ids)
                pos = list(range(max(0, p0 - 1), len(ids) - 1))
                z = forward(scfg, params, ids)[pos]
                t_vals, t_ids = teacher_lp[r][pos].topk(c["kd_topk"], -1)
                target = torch.tensor([ids[t + 1] for t in pos])
                lo, fk, ta, ce = ckd_rows(z, t_vals, t_ids, target, c)
                losses.append(lo), fkls.append(fk), tails.append(ta), ces.append(ce)
            mb_loss = torch.cat(losses).mean()
            (mb_loss / len(micro)).backward()
            loss_sum += mb_loss.item() / len(micro)
            for j, xs in enumerate([fkls, tails, ces]):
                parts[j] += torch.cat(xs).mean().item() / len(micro)
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), c["max_norm"]).item()
        opt.step()
        opt.zero_grad()
        for p in params.values():
            round_f32(p)
            st = opt.state[p]
            round_f32(st["exp_avg"])
            round_f32(st["exp_avg_sq"])
        metrics.append({"step": step + 1, "loss": loss_sum, "lr": lr, "grad_norm": norm,
                        "tokens": tokens, "kd_fkl": parts[0], "kd_tail": parts[1],
                        "kd_ce": parts[2]})
    with open(a.output, "w") as f:
        json.dump({"torch": torch.__version__, "config": c, "data": data, "metrics": metrics}, f,
                  indent=1)
    print(f"wrote {a.output}: {total} steps, loss {metrics[0]['loss']:.6f} -> {metrics[-1]['loss']:.6f}")


if __name__ == "__main__":
    main()
