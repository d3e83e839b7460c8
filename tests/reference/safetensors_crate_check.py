#!/usr/bin/python3
"""Cross-checks with the official safetensors package (the Rust crate's Python binding):
1. writes tests/testdata/safetensors/crate_written.safetensors with safetensors.torch.save_file
   (star must read it and rewrite it byte for byte);
2. loads every checkpoint under tests/testdata/qwen3 (written by `star init-model`, single file
   and sharded) with safe_open, as transformers and vLLM do, and compares the tensors with the
   struct/json reader of qwen3_torch.py.

Run: PYTHONPATH=<dir with safetensors> /usr/bin/python3 tests/reference/safetensors_crate_check.py
"""
import glob
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from qwen3_torch import read_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "testdata")

g = torch.Generator().manual_seed(3)
tensors = {
    "model.embed_tokens.weight": (torch.randn(7, 4, generator=g) * 3).to(torch.bfloat16),
    "model.layers.0.self_attn.q_norm.weight": torch.randn(5, generator=g).to(torch.float16),
    "model.layers.0.mlp.down_proj.weight": torch.randn(3, 2, 2, generator=g),
    "lm_head.weight": torch.randn(7, 4, generator=g).to(torch.bfloat16),
    "model.norm.weight": torch.ones(4),
}
out = os.path.join(DATA, "safetensors", "crate_written.safetensors")
save_file(tensors, out, metadata={"format": "pt"})
print("wrote", out)

n = 0
for path in sorted(glob.glob(os.path.join(DATA, "qwen3", "*", "*.safetensors"))):
    ours = read_safetensors(path)
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"format": "pt"}, f.metadata()
        assert sorted(f.keys()) == sorted(ours), path
        for k in f.keys():
            t = f.get_tensor(k).to(torch.float64)
            assert torch.equal(t, ours[k]), (path, k)
            n += 1
print(f"safe_open read {n} tensors of star's checkpoints, all equal")
