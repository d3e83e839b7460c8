#!/usr/bin/python3
"""Sim-RL's GRPO formulas written again, apart from the TypeScript, in float64: OpenRLHF's
dynamic filtering loop as STAR patched it (group mean strictly inside the range shrunk by 1e-6,
max - min > 0, kept groups gathered over generation batches and cut at rollout_batch_size),
group_norm / dr_grpo advantages (numpy, unbiased std + 1e-9, clamp to +-10), the PPO clipped
loss with the k1/k2/k3 KL term per micro-batch (token means, step = mean over micro-batches),
the gradient of the step loss w.r.t. every current log-prob by torch autograd (so torch's own
clamp/minimum rules decide ties and bounds; closed form when torch is absent), and the LR
horizon and HF cosine_with_min_lr lambda. Writes tests/testdata/simrl/grpo_ref.json.

Run: /usr/bin/python3 tests/reference/grpo_ref.py   (numpy; Debian python3-torch for gradients)
"""
import json
import math
import os

import numpy as np

try:
    import torch
except ImportError:  # gradients then come from the closed form below
    torch = None

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "simrl",
                   "grpo_ref.json")
rng = np.random.default_rng(20260311)


# ---------------------------------------------------------------- filtering

def passes(scores, lo, hi, enabled=True):
    if not enabled:
        return True
    avg = sum(scores) / len(scores)
    return lo + 1e-6 < avg < hi - 1e-6 and max(scores) - min(scores) > 0


def filter_cases():
    cases = []
    lo, hi = 0.01, 0.99
    # two-sample groups [0, 2x] have mean exactly x (doubling is exact)
    for x in [0.01, 0.01 + 1e-7, 0.01 + 1e-6, 0.01 + 1.01e-6, 0.011, 0.5, 0.99 - 1.01e-6,
              0.99 - 1e-6, 0.99 - 1e-7, 0.99]:
        cases.append({"scores": [0.0, 2 * x], "range": [lo, hi]})
    cases.append({"scores": [0.5] * 8, "range": [lo, hi]})  # flat, mean inside
    cases.append({"scores": [0.0] * 8, "range": [lo, hi]})  # all format failures
    cases.append({"scores": [1.0] * 7 + [0.0], "range": [lo, hi]})
    cases.append({"scores": [0.5] * 8, "range": [-1.0, 2.0]})  # flat fails on max - min alone
    cases.append({"scores": [0.0] * 8, "range": [lo, hi], "enabled": False})
    pool = [0.0, 0.0, 0.0, 0.25, 1 / 3, 0.5, 2 / 3, 1.0, 1.0]
    for _ in range(40):
        s = [float(rng.choice(pool)) if rng.random() < 0.7 else float(rng.random())
             for _ in range(8)]
        cases.append({"scores": s, "range": [lo, hi]})
    for c in cases:
        c["kept"] = passes(c["scores"], *c["range"], c.get("enabled", True))
    return cases


def accumulate_cases():
    """OpenRLHF's loop: extend with passing groups after each generation batch; once at least
    rollout_batch_size groups are there, train on the first rollout_batch_size."""
    cases = []
    for rbs, batches, enabled in [(3, [5, 5, 5], True), (4, [4, 4, 4, 4], True),
                                  (2, [3, 3], False), (5, [2, 2, 2], True),
                                  (9, [3, 3], True)]:
        gen = []
        for b in batches:
            gen.append([[float(rng.choice([0.0, 0.0, 0.5, 1.0])) for _ in range(4)]
                        for _ in range(b)])
        fates, kept = [], 0
        for batch in gen:
            f = []
            for g in batch:
                if not passes(g, 0.01, 0.99, enabled):
                    f.append("filtered")
                elif kept < rbs:
                    kept += 1
                    f.append("kept")
                else:
                    f.append("surplus")
            fates.append(f)
            if kept >= rbs:
                break
        cases.append({"rollout_batch_size": rbs, "enabled": enabled, "batches": gen[:len(fates)],
                      "fates": fates, "full": kept >= rbs})
    return cases


# ---------------------------------------------------------------- advantages

def advantages(r, estimator):
    r = np.asarray(r, dtype=np.float64)
    a = r - r.mean()
    if estimator == "group_norm":
        a = a / (r.std(ddof=1) + 1e-9)
    return np.clip(a, -10.0, 10.0)


def advantage_cases():
    groups = [
        [1.0, 0.0, 0.0, 0.0, -1.0, -1.0, 0.5, 0.25],
        [-1.0] * 7 + [0.0],
        [-1.0] * 8,  # constant: 0 / (0 + 1e-9) = 0
        [0.2, 0.4],
        [1.0, 1.0, 1.0, 0.0],
        [100.0, 0.0, 0.0, 0.0],  # dr_grpo clamps at 10
        [1.0] + [0.0] * 199,  # group_norm reaches (n-1)/sqrt(n) > 10: clamps
    ]
    for _ in range(6):
        groups.append([float(x) if rng.random() < 0.8 else -1.0 for x in rng.random(8)])
    out = []
    for g in groups:
        f32 = advantages(np.float32(g), "group_norm")  # OpenRLHF's float32 path, for the note
        out.append({"rewards": g,
                    "group_norm": advantages(g, "group_norm").tolist(),
                    "dr_grpo": advantages(g, "dr_grpo").tolist(),
                    "group_norm_float32_max_abs_diff":
                        float(np.abs(advantages(g, "group_norm") -
                                     np.asarray(f32, np.float32).astype(np.float64)).max())})
    return out


# ---------------------------------------------------------------- loss

def kl_raw(d, estimator):
    if estimator == "k1":
        return d
    if estimator == "k2":
        return d * d / 2
    return np.exp(-d) - 1 + d


def step_closed_form(mbs, eps, beta, estimator):
    """Token losses, metrics and d(step loss)/d(logp), written from the formulas."""
    M = len(mbs)
    metrics, grads = [], []
    for mb in mbs:
        T = sum(len(s["logp"]) for s in mb)
        acc = {"policy_loss": 0.0, "kl": 0.0, "clip_ratio": 0.0, "ppo_kl": 0.0}
        g_mb = []
        for s in mb:
            lp, old, ref = (np.asarray(s[k], np.float64) for k in ("logp", "old", "ref"))
            A = np.broadcast_to(np.asarray(s["adv"], np.float64), lp.shape)
            ratio = np.exp(lp - old)
            s1, s2 = ratio * A, np.clip(ratio, 1 - eps, 1 + eps) * A
            clipped = s2 < s1
            d = lp - ref
            raw = kl_raw(d, estimator)
            kl = np.clip(raw, -10, 10)
            dk = {"k1": np.ones_like(d), "k2": d, "k3": 1 - np.exp(-d)}[estimator]
            dk = np.where((raw >= -10) & (raw <= 10), dk, 0.0)
            acc["policy_loss"] += float((-np.minimum(s1, s2)).sum()) / T
            acc["kl"] += float(kl.sum()) / T
            acc["clip_ratio"] += float(clipped.sum()) / T
            acc["ppo_kl"] += float((old - lp).sum()) / T
            g_mb.append(((np.where(clipped, 0.0, -A * ratio) + beta * dk) / (M * T)).tolist())
        acc["loss"] = acc["policy_loss"] + beta * acc["kl"]
        acc["tokens"] = T
        metrics.append(acc)
        grads.append(g_mb)
    return metrics, grads


def step_autograd(mbs, eps, beta, estimator):
    """The same step loss through torch ops (float64), differentiated by autograd."""
    M = len(mbs)
    total = 0.0
    leaves = []
    for mb in mbs:
        lp = [torch.tensor(s["logp"], dtype=torch.float64, requires_grad=True) for s in mb]
        leaves.append(lp)
        cat = torch.cat(lp)
        old = torch.tensor(sum((s["old"] for s in mb), []), dtype=torch.float64)
        ref = torch.tensor(sum((s["ref"] for s in mb), []), dtype=torch.float64)
        A = torch.cat([torch.tensor(s["adv"], dtype=torch.float64).expand(len(s["logp"]))
                       for s in mb])
        ratio = (cat - old).exp()
        s1 = ratio * A
        s2 = ratio.clamp(1 - eps, 1 + eps) * A
        pl = (-torch.min(s1, s2)).mean()
        d = cat - ref
        raw = {"k1": d, "k2": d ** 2 / 2.0, "k3": (-d).exp() - 1 - (-d)}[estimator]
        kl = raw.clamp(min=-10, max=10).mean()
        total = total + (pl + beta * kl) / M
    total.backward()
    return float(total), [[leaf.grad.tolist() for leaf in lp] for lp in leaves]


def sample(T, spread_old, spread_ref, adv=None):
    lp = -rng.exponential(1.0, T)
    return {"logp": lp.tolist(),
            "old": (lp + rng.normal(0, spread_old, T)).tolist(),
            "ref": (lp + rng.normal(0, spread_ref, T)).tolist(),
            "adv": float(rng.normal(0, 1.2)) if adv is None else adv}


def loss_cases():
    cases = []
    shapes = [[[3, 5], [1], [7, 2]], [[4], [6, 1], [2, 2]], [[9, 3]]]
    for est in ["k1", "k2", "k3"]:
        for si, shape in enumerate(shapes):
            mbs = [[sample(T, 0.35, 3.5) for T in mb] for mb in shape]
            if si == 1:  # one sample with an advantage per token
                mbs[1][0]["adv"] = rng.normal(0, 1, len(mbs[1][0]["logp"])).tolist()
            cases.append({"estimator": est, "eps_clip": 0.2, "kl_coef": 0.05 if si else 1e-3,
                          "micro_batches": mbs})
    # clamp bounds hit exactly: d = +-10 for k1 (gradient passes), d = 10.5 (it does not)
    cases.append({"estimator": "k1", "eps_clip": 0.2, "kl_coef": 0.5, "micro_batches": [[{
        "logp": [-1.0, -12.0, -1.0, -2.0], "old": [-1.0, -12.0, -1.0, -2.0],
        "ref": [-11.0, -2.0, -11.5, -2.0], "adv": 0.7}]]})
    # ratios far on both sides of the clip, both signs of the advantage
    for adv in [1.3, -0.9]:
        cases.append({"estimator": "k2", "eps_clip": 0.2, "kl_coef": 0.0, "micro_batches": [[{
            "logp": [-1.0, -1.0, -1.0, -1.0, -1.0], "old": [-1.5, -0.5, -1.1, -0.9, -1.0],
            "ref": [-1.0] * 5, "adv": adv}]]})
    for c in cases:
        metrics, grads = step_closed_form(c["micro_batches"], c["eps_clip"], c["kl_coef"],
                                          c["estimator"])
        c["metrics"] = metrics
        c["step"] = {k: sum(m[k] for m in metrics) / len(metrics)
                     for k in ("loss", "policy_loss", "kl", "clip_ratio", "ppo_kl")}
        if torch is not None:
            total, g = step_autograd(c["micro_batches"], c["eps_clip"], c["kl_coef"],
                                     c["estimator"])
            assert abs(total - c["step"]["loss"]) < 1e-12, (total, c["step"]["loss"])
            flat = lambda x: [v for mb in x for s in mb for v in s]  # noqa: E731
            assert np.allclose(flat(g), flat(grads), rtol=1e-12, atol=1e-15), c["estimator"]
            c["dlogp"], c["grad_source"] = g, "torch autograd " + torch.__version__
        else:
            c["dlogp"], c["grad_source"] = grads, "closed form"
    return cases


# ---------------------------------------------------------------- schedule

def schedule_cases():
    out = []
    for prompts, n, tbs, episodes, epochs in [(1000, 8, 128, 3, 1), (100, 8, 128, 3, 1),
                                              (37, 4, 16, 2, 2), (16, 8, 128, 1, 1)]:
        T = prompts * n // tbs * episodes * epochs  # ppo_trainer.py max_steps
        W = math.ceil(T * 0.03)
        lam = []
        for k in sorted({0, 1, W - 1, W, W + 1, T // 2, T - 1, T} - {-1}):
            if k < W:
                f = k / max(1, W)
            else:
                p = (k - W) / max(1, T - W)
                f = max(0.0, 0.5 * (1 + math.cos(math.pi * 0.5 * 2.0 * p)) * 0.9 + 0.1)
            lam.append([k, f])
        out.append({"prompts": prompts, "n": n, "train_batch_size": tbs,
                    "num_episodes": episodes, "max_epochs": epochs, "total_steps": T,
                    "warmup_steps": W, "factors": lam})
    return out


def main():
    fixture = {
        "generator": "tests/reference/grpo_ref.py",
        "numpy": np.__version__,
        "filter": filter_cases(),
        "accumulate": accumulate_cases(),
        "advantages": advantage_cases(),
        "loss": loss_cases(),
        "schedule": schedule_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: " + ", ".join(f"{k} {len(v)}" for k, v in fixture.items()
                                        if isinstance(v, list)))


if __name__ == "__main__":
    main()
