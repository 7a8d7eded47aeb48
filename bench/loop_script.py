"""The plain loop script igb's ensembles are compared with: what a user writes by hand.

    python bench/loop_script.py N_INITS [mlp|authors]

``mlp``: the issue's benchmark (MLP depth 10, width 100, BatchNorm after the ReLU, 10
classes, 2000 centred Gaussian points of dimension 100, BatchNorm on batches of 500).
``authors``: the authors' scale (their two blobs at +-1/sqrt(1000), D = 1000, N = 20 000,
depth 1, BatchNorm before the ReLU, one batch). Prints the mean ``f_max``.
"""

import sys

import torch
from torch import nn

n_inits, setting = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "mlp")
g = torch.Generator().manual_seed(0)
if setting == "mlp":
    x, depth, classes, batch, post = torch.randn(2000, 100, generator=g), 10, 10, 500, True
else:
    sign = torch.arange(20000) % 2 * 2 - 1.0
    x = torch.randn(20000, 1000, generator=g) + sign[:, None] / 1000**0.5
    depth, classes, batch, post = 1, 2, 20000, False
layers, fan_in = [], x.shape[1]
for _ in range(depth):
    linear, norm = nn.Linear(fan_in, 100), nn.BatchNorm1d(100)
    layers += [linear, nn.ReLU(), norm] if post else [linear, norm, nn.ReLU()]
    fan_in = 100
model = nn.Sequential(*layers, nn.Linear(100, classes))
f_max = []
with torch.no_grad():
    for seed in range(n_inits):
        torch.manual_seed(seed)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        pred = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]).argmax(1)
        f_max.append(torch.bincount(pred, minlength=classes).max().item() / len(x))
print(sum(f_max) / n_inits)
