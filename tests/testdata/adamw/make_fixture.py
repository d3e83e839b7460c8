# Writes adamw_torch.json: a few AdamW steps with global-norm clipping computed by torch in
# float64, for tests/adamw_ref_test.ts. Run: /usr/bin/python3 make_fixture.py (Debian python3-torch).
import json
import torch

torch.manual_seed(7)
dt = torch.float64
params = {
    "model.layers.0.mlp.up_proj.weight": torch.randn(3, 4, dtype=dt),
    "model.layers.0.input_layernorm.weight": torch.randn(5, dtype=dt),
}
decay = {"model.layers.0.mlp.up_proj.weight": 0.1, "model.layers.0.input_layernorm.weight": 0.0}
init = {k: v.flatten().tolist() for k, v in params.items()}
leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
opt = torch.optim.AdamW(
    [{"params": [leaves[k]], "weight_decay": decay[k]} for k in leaves],
    lr=1.0, betas=(0.9, 0.95), eps=1e-8,
)
lrs = [0.0, 1e-2, 3e-2, 2e-2, 5e-3, 1e-2]
gscale = [0.2, 3.0, 0.05, 1e-9, 10.0, 0.3]  # some steps clip (norm > 1), one where eps matters
steps = []
for lr, s in zip(lrs, gscale):
    grads = {k: (torch.randn(v.shape, dtype=dt) * s) for k, v in leaves.items()}
    for k, v in leaves.items():
        v.grad = grads[k].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(leaves.values()), max_norm=1.0)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.step()
    steps.append({
        "lr": lr,
        "grads": {k: g.flatten().tolist() for k, g in grads.items()},
        "norm": norm.item(),
        "params": {k: v.detach().flatten().tolist() for k, v in leaves.items()},
    })
out = {"torch": torch.__version__, "betas": [0.9, 0.95], "eps": 1e-8, "max_norm": 1.0,
       "weight_decay": decay, "init": init, "steps": steps}
with open("adamw_torch.json", "w") as f:
    json.dump(out, f, indent=1)
