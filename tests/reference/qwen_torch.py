#!/usr/bin/python3
"""An independent Qwen3 / Qwen2 in torch float64, following transformers' Qwen3ForCausalLM and
Qwen2ForCausalLM: RMSNorm before attention and MLP, q/k/v projections (with biases for Qwen2),
per-head q_norm/k_norm before rotate-half RoPE (Qwen3 only), grouped-query causal attention
scaled by 1/sqrt(head_dim), SwiGLU MLP, final norm, tied or untied LM head. head_dim defaults to
128 for Qwen3 and to hidden_size / heads for Qwen2, as the transformers configs do.
Weights come from a model directory (config.json + model.safetensors or shards + index), read
here with struct/json (no safetensors package). Gradients come from torch autograd.

Writes a JSON fixture with, for each sequence, logprobs[t] = log p(ids[t+1] | ids[..t]) and the
top-k, the mean cross-entropy over the counted label positions (-100 ignored, transformers
style), optionally every parameter's gradient of that loss, and greedy continuations.

Run (Debian python3-torch, not a pyenv python):
  /usr/bin/python3 tests/reference/qwen_torch.py --model DIR --seqs '[[1,2,3]]' --output F.json
"""
import argparse
import json
import os
import struct

import torch

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            s, e = info["data_offsets"]
            f.seek(base + s)
            raw = bytearray(f.read(e - s))
            t = torch.frombuffer(raw, dtype=DT[info["dtype"]]) if raw else torch.zeros(0)
            out[name] = t.reshape(info["shape"]).to(torch.float64)
        return out


def load_model(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["model_type"] in ("qwen3", "qwen2")
    idx = os.path.join(d, "model.safetensors.index.json")
    params = {}
    if os.path.exists(idx):
        for shard in sorted(set(json.load(open(idx))["weight_map"].values())):
            params.update(read_safetensors(os.path.join(d, shard)))
    else:
        params.update(read_safetensors(os.path.join(d, "model.safetensors")))
    return cfg, params


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def forward(cfg, P, ids):
    """logits (T, V) of one sequence."""
    H = cfg["num_attention_heads"]
    qwen2 = cfg["model_type"] == "qwen2"
    E = cfg.get("head_dim") or (cfg["hidden_size"] // H if qwen2 else 128)
    K = cfg.get("num_key_value_heads") or H
    eps = cfg.get("rms_norm_eps", 1e-6)
    T = len(ids)
    inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, E, 2, dtype=torch.float64) / E))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]  # (T, 1, E)
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = P["model.embed_tokens.weight"][torch.tensor(ids)]
    for l in range(cfg["num_hidden_layers"]):
        p = lambda n: P[f"model.layers.{l}.{n}"]
        h = rms_norm(x, p("input_layernorm.weight"), eps)
        proj = lambda n: h @ p(f"self_attn.{n}.weight").T + (p(f"self_attn.{n}.bias") if qwen2 else 0)
        q = proj("q_proj").view(T, H, E)
        k = proj("k_proj").view(T, K, E)
        v = proj("v_proj").view(T, K, E)
        if not qwen2:
            q = rms_norm(q, p("self_attn.q_norm.weight"), eps)
            k = rms_norm(k, p("self_attn.k_norm.weight"), eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // K, dim=1)  # query head j reads kv head j // (H/K)
        v = v.repeat_interleave(H // K, dim=1)
        s = torch.einsum("thd,uhd->htu", q, k) * E ** -0.5 + mask
        o = torch.einsum("htu,uhd->thd", s.softmax(-1), v).reshape(T, H * E)
        x = x + o @ p("self_attn.o_proj.weight").T
        h = rms_norm(x, p("post_attention_layernorm.weight"), eps)
        g = h @ p("mlp.gate_proj.weight").T
        u = h @ p("mlp.up_proj.weight").T
        x = x + (torch.nn.functional.silu(g) * u) @ p("mlp.down_proj.weight").T
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else P["lm_head.weight"]
    return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--seqs", required=True, help="JSON list of token-id lists")
    ap.add_argument("--labels", help="JSON list of label lists (-100 ignored); default the ids")
    ap.add_argument("--topk", type=int, default=0)
    ap.add_argument("--grads", action="store_true")
    ap.add_argument("--generate", type=int, default=0, help="greedy new tokens per sequence")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    torch.set_grad_enabled(True)
    cfg, P = load_model(a.model)
    for t in P.values():
        t.requires_grad_(a.grads)
    seqs = json.loads(a.seqs)
    labels = json.loads(a.labels) if a.labels else seqs
    out = {"model": os.path.basename(os.path.normpath(a.model)), "seqs": seqs, "labels": labels,
           "results": []}
    total, count = 0.0, 0
    for ids, lab in zip(seqs, labels):
        lp = forward(cfg, P, ids).log_softmax(-1)
        r = {"logprobs": [lp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]}
        if a.topk:
            v, i = lp[:-1].detach().topk(a.topk, dim=-1)
            r["topk_ids"], r["topk_logprobs"] = i.tolist(), v.tolist()
        for t in range(len(ids) - 1):
            if lab[t + 1] != -100:
                total = total - lp[t, lab[t + 1]]
                count += 1
        out["results"].append(r)
    loss = total / count
    out["loss"], out["count"] = float(loss), count
    if a.grads:
        loss.backward()
        out["grads"] = {n: t.grad.reshape(-1).tolist() for n, t in P.items()}
    if a.generate:
        gens = []
        with torch.no_grad():
            for ids in seqs:
                cur, new, lps = list(ids), [], []
                for _ in range(a.generate):
                    lp = forward(cfg, P, cur)[-1].log_softmax(-1)
                    nxt = int(lp.argmax())
                    new.append(nxt)
                    lps.append(lp[nxt].item())
                    cur.append(nxt)
                gens.append({"ids": new, "logprobs": lps})
        out["greedy"] = gens
    with open(a.output, "w") as f:
        json.dump(out, f)
    print(f"wrote {a.output}: loss {float(loss):.10f} over {count} tokens")


if __name__ == "__main__":
    main()
