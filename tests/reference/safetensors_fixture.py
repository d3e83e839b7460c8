#!/usr/bin/python3
"""Writes tests/testdata/safetensors/{mixed.safetensors,mixed.json}: a small safetensors file
made without star's code (struct + json + torch for the half-precision rounding), laid out as
the Rust safetensors crate lays it out (tensors ordered by dtype size then name, compact JSON
header with __metadata__ first, padded with spaces to 8 bytes), and the values it holds.

Run: /usr/bin/python3 tests/reference/safetensors_fixture.py   (Debian python3-torch)
"""
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "testdata", "safetensors")
os.makedirs(OUT, exist_ok=True)

g = torch.Generator().manual_seed(7)
special = [0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 1e5, 6.1e-5, 5.96e-8, 2.98e-8, 1e-9,
           1.0009765625, 1.00048828125, 1.0014648437, 3.0e38, -1e-40, 0.333333343,
           float("inf"), float("-inf"), 1.00390625, 1.005859375, 2 ** -126, 2 ** -133, 7.0]

tensors = {
    "model.layers.0.mlp.up_proj.weight": ("F32", torch.randn(3, 5, generator=g, dtype=torch.float32)),
    "model.norm.weight": ("F32", torch.tensor([0.5, -1.25, 3.0], dtype=torch.float32)),
    "model.embed_tokens.weight": ("BF16", torch.cat([torch.tensor(special, dtype=torch.float32),
                                                    torch.randn(24, generator=g) * 10]).reshape(8, 6)),
    "lm_head.weight": ("F16", torch.cat([torch.tensor(special, dtype=torch.float32),
                                         torch.randn(24, generator=g) * 100]).reshape(2, 3, 8)),
    "scalar": ("F32", torch.tensor(4.5, dtype=torch.float32)),
    "empty": ("F16", torch.zeros(0, 3, dtype=torch.float32)),
}
TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
SIZE = {"F32": 4, "F16": 2, "BF16": 2}

# the Rust crate's order: larger dtypes first, then by name
order = sorted(tensors, key=lambda n: (-SIZE[tensors[n][0]], n))
header = {"__metadata__": {"format": "pt", "note": "made by safetensors_fixture.py"}}
blobs = []
off = 0
expected = {}
for name in order:
    dt, src = tensors[name]
    t = src.to(TORCH[dt]).contiguous()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
    off += len(raw)
    blobs.append(raw)
    def num(x):
        return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")
    e = {"dtype": dt, "shape": list(t.shape),
         "source": [num(v) for v in src.reshape(-1).tolist()],
         "values": [num(v) for v in t.to(torch.float32).reshape(-1).tolist()]}
    if dt != "F32":
        e["bits"] = list(struct.unpack(f"<{t.numel()}H", raw))
    expected[name] = e

text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(OUT, "mixed.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for b in blobs:
        f.write(b)
with open(os.path.join(OUT, "mixed.json"), "w") as f:
    json.dump({"order": order, "metadata": header["__metadata__"], "tensors": expected}, f, indent=1)
print("wrote", OUT)
