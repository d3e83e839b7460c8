# Writes ckd_torch.json for tests/ckd_loss_ref_test.ts: the CKD loss of STAR's OpenRLHF patch
# (top-k fkl/rkl/akl + tail over the student's top-m + kd_ratio mixing with CE), restated here
# with torch ops in float64, and its gradient w.r.t. the student's logits by autograd.
# Run: /usr/bin/python3 make_fixture.py (Debian python3-torch).
import json
import torch

torch.manual_seed(11)
dt = torch.float64


def ckd(z, t_vals, t_ids, target, kl_type, l1, m, ratio):
    s_all = z.log_softmax(-1)                       # (N, V) full-vocab student log-probs
    s = s_all.gather(-1, t_ids)                     # (N, k) on the teacher's top-k
    P, q = t_vals.exp(), s.exp()
    fkl = (P * (t_vals - s)).sum(-1)
    rkl = (q * (s - t_vals)).sum(-1)
    if kl_type == "fkl":
        div = fkl
    elif kl_type == "rkl":
        div = rkl
    else:
        before = torch.cumsum(P, -1) - P            # teacher mass strictly before entry j
        head = before < 0.5
        head[..., 0] = True
        margin = (P - q).abs()
        gh = (margin * head).sum(-1)
        gt = (margin * ~head).sum(-1)
        den = gh + gt
        den = torch.where(den != 0, den, torch.full_like(den, 1e-9))
        div = (gh * fkl + gt * rkl) / den
    tail = torch.zeros_like(div)
    if l1 > 0:
        sv, si = s_all.topk(m, -1)
        outside = ~(si.unsqueeze(-1) == t_ids.unsqueeze(-2)).any(-1)
        tail = (outside * sv.exp()).sum(-1)
    kd = div + l1 * tail
    ce = -s_all.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    row = kd if ratio >= 1 else ratio * kd + (1 - ratio) * ce
    return row, div, fkl, tail, ce


cases = []
for V, k, m, rows in [(37, 8, 6, 3), (500, 100, 100, 2)]:
    for kl_type, ratio in [("fkl", 1.0), ("rkl", 1.0), ("akl", 1.0), ("akl", 0.6), ("fkl", 0.0)]:
        if V == 500 and kl_type == "rkl":
            continue
        tz = torch.randn(rows, V, dtype=dt) * 3
        tz[0] *= 0.3                                # a flat teacher row: several AKL head entries
        t_vals, t_ids = tz.log_softmax(-1).topk(k, -1)
        z = (0.6 * tz + torch.randn(rows, V, dtype=dt) * 1.5).requires_grad_(True)
        target = torch.randint(0, V, (rows,))
        row, div, fkl, tail, ce = ckd(z, t_vals, t_ids, target, kl_type, 10.0, m, ratio)
        row.sum().backward()
        cases.append({
            "vocab": V, "k": k, "m": m, "kl_type": kl_type, "l1": 10.0, "kd_ratio": ratio,
            "logits": z.detach().tolist(), "teacher_ids": t_ids.tolist(),
            "teacher_logprobs": t_vals.tolist(), "targets": target.tolist(),
            "loss": row.tolist(), "kl": div.tolist(), "fkl": fkl.tolist(),
            "tail": tail.tolist(), "ce": ce.tolist(), "dlogits": z.grad.tolist(),
        })
with open("ckd_torch.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
